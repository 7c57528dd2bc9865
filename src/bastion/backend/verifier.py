"""Verifying a Bastion tool token: signature, audience, issuer, lifetime, replay and body hash."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from bastion.backend.errors import BastionTokenError
from bastion.backend.jwks import JWKSCache
from bastion.backend.replay import MemoryReplayCache, ReplayCache, ReplayCacheFull

#: The ``typ`` header Bastion puts on tool tokens (RFC 9068).
TOOL_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
#: Largest token accepted, in characters.
MAX_TOKEN_CHARS = 8 * 1024
#: Default tolerance for clock differences, in seconds.
DEFAULT_LEEWAY_SECONDS = 30
#: Longest ``exp - iat`` accepted, in seconds (Bastion mints at most 600).
DEFAULT_MAX_LIFETIME_SECONDS = 600
#: Most nested ``act`` claims read.
MAX_ACTOR_CHAIN = 10
_REQUIRED = ["iss", "aud", "sub", "exp", "iat", "nbf", "jti"]


@dataclass(frozen=True, slots=True)
class VerifiedCaller:
    """Who a verified tool token says is calling, and on whose behalf."""

    subject: str
    #: The client or agent acting for the subject (the outermost ``act``).
    actor: str | None
    scopes: frozenset[str]
    email: str | None
    groups: tuple[str, ...]
    tenant: str | None
    request_id: str | None
    tool: str | None
    token_id: str
    claims: dict[str, Any] = field(repr=False)
    #: Every actor, current first, then those it acts through (nested ``act`` claims).
    actor_chain: tuple[str, ...] = ()

    def has_scope(self, scope: str) -> bool:
        """Whether the token grants ``scope``."""
        return scope in self.scopes


def body_hash(body: bytes) -> str:
    """The base64url (unpadded) SHA-256 of ``body``."""
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode("ascii")


def _header(token: str) -> dict[str, Any]:
    """The JOSE header alone; cheaper than PyJWT's, which decodes and checks every segment."""
    head, dot, _ = token.partition(".")
    if not dot or len(head) > 1024:
        raise BastionTokenError("malformed_token")
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except ValueError:
        raise BastionTokenError("malformed_token") from None
    if not isinstance(header, dict):
        raise BastionTokenError("malformed_token")
    return header


def _actor_chain(act: Any) -> tuple[str, ...]:
    chain: list[str] = []
    while isinstance(act, dict) and isinstance(act.get("sub"), str) and len(chain) < MAX_ACTOR_CHAIN:
        chain.append(act["sub"])
        act = act.get("act")
    return tuple(chain)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class BastionTokenVerifier:
    """Checks tokens Bastion minted for one backend (one audience)."""

    def __init__(
        self,
        jwks: str | Mapping[str, Any] | JWKSCache,
        audience: str,
        issuer: str,
        *,
        leeway: float = DEFAULT_LEEWAY_SECONDS,
        replay_cache: ReplayCache | None = None,
        max_lifetime_seconds: float = DEFAULT_MAX_LIFETIME_SECONDS,
        require_body_hash: bool = True,
    ) -> None:
        self.keys = jwks if isinstance(jwks, JWKSCache) else JWKSCache(jwks)
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.replay_cache: ReplayCache = replay_cache if replay_cache is not None else MemoryReplayCache()
        self.max_lifetime_seconds = max_lifetime_seconds
        self.require_body_hash = require_body_hash

    def needs_fetch(self, token: str) -> bool:
        """Whether verifying ``token`` may block on fetching the key set."""
        try:
            kid = _header(token).get("kid")
        except BastionTokenError:
            return False
        return isinstance(kid, str) and not self.keys.is_fresh(kid)

    def verify(self, token: str, *, body: bytes) -> VerifiedCaller:
        """Verify ``token`` for a request whose exact body is ``body``; BastionTokenError if not."""
        if not token:
            raise BastionTokenError("missing_token")
        if len(token) > MAX_TOKEN_CHARS:
            raise BastionTokenError("malformed_token", "the token is too long")
        header = _header(token)
        if header.get("typ") != TOOL_TOKEN_TYPE:
            raise BastionTokenError("wrong_token_type", "not a Bastion tool token")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise BastionTokenError("unknown_key", "the token names no key")
        key = self.keys.key_for(kid)
        # The algorithm comes from our key, never from the token: no "none", no HS256 confusion.
        if header.get("alg") != key.algorithm_name:
            raise BastionTokenError("algorithm_not_allowed", "the token's algorithm does not match its key")
        claims = self._decode(token, key)
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int | float) or exp - iat > self.max_lifetime_seconds:
            raise BastionTokenError("lifetime_too_long", "the token lives longer than allowed")
        self._check_body(claims, body)
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise BastionTokenError("missing_claim", "jti")
        try:
            replayed = self.replay_cache.seen(jti, float(exp) + self.leeway)
        except ReplayCacheFull:
            raise BastionTokenError("replay_unavailable", "the replay cache is full") from None
        except Exception:  # noqa: BLE001 - any cache failure must refuse, never accept
            raise BastionTokenError("replay_unavailable", "the replay cache failed") from None
        if replayed:
            raise BastionTokenError("replayed", "this token was already used")
        return self._caller(claims)

    def _decode(self, token: str, key: Any) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": _REQUIRED, "strict_aud": False},
            )
        except InvalidSignatureError:
            raise BastionTokenError("bad_signature") from None
        except ExpiredSignatureError:
            raise BastionTokenError("expired") from None
        except ImmatureSignatureError:
            raise BastionTokenError("not_yet_valid") from None
        except InvalidAudienceError:
            raise BastionTokenError("wrong_audience") from None
        except InvalidIssuerError:
            raise BastionTokenError("wrong_issuer") from None
        except MissingRequiredClaimError as exc:
            raise BastionTokenError("missing_claim", exc.claim) from None
        except PyJWTError:
            raise BastionTokenError("malformed_token") from None
        return claims

    def _check_body(self, claims: Mapping[str, Any], body: bytes) -> None:
        expected = claims.get("bastion_bh")
        if expected is None and not self.require_body_hash:
            return
        if not isinstance(expected, str):
            raise BastionTokenError("missing_claim", "bastion_bh")
        if not hmac.compare_digest(expected, body_hash(body)):
            raise BastionTokenError("body_mismatch", "the body is not the one the token was minted for")

    @staticmethod
    def _caller(claims: dict[str, Any]) -> VerifiedCaller:
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub:
            raise BastionTokenError("missing_claim", "sub")
        chain = _actor_chain(claims.get("act"))
        scope = claims.get("scope", "")
        groups = claims.get("groups", [])
        return VerifiedCaller(
            subject=sub,
            actor=chain[0] if chain else None,
            actor_chain=chain,
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            email=_str_or_none(claims.get("email")),
            groups=tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else (),
            tenant=_str_or_none(claims.get("tenant")),
            request_id=_str_or_none(claims.get("bastion_rid")),
            tool=_str_or_none(claims.get("bastion_tool")),
            token_id=claims["jti"],
            claims=claims,
        )


def verify_bastion_token(verifier: BastionTokenVerifier, token: str, *, body: bytes) -> VerifiedCaller:
    """The plain-function form of ``verifier.verify``."""
    return verifier.verify(token, body=body)
