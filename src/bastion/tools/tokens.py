"""Per-call tool tokens: Bastion never passes the user's own token to a backend.

For each tool call Bastion mints a short-lived JWT that names the user
(``sub``), who acts for them (``act``, RFC 8693), the backend it is for
(``aud``), the scopes granted for this call (never wider than the user's own),
the request id, and a hash of the exact body sent, so the backend can enforce
least privilege itself and a captured token is useless for any other request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from starlette.responses import JSONResponse

from bastion.context import Principal
from bastion.errors import ConfigError, InvalidRequest, PermissionDenied
from bastion.tools.config import (
    DEFAULT_TOOL_TOKEN_LIFETIME_SECONDS,
    ToolSettings,
    ToolTokenSettings,
)
from bastion.tools.keys import SigningKey, ToolKeyRing

#: The JWT ``typ`` header of tool tokens (RFC 9068), so they cannot be mistaken for other JWTs.
TOOL_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
#: Claim carrying the request (correlation) id.
REQUEST_ID_CLAIM = "bastion_rid"
#: Claim carrying the base64url SHA-256 of the request body.
BODY_HASH_CLAIM = "bastion_bh"
#: Claim naming the registered tool the token is for.
TOOL_CLAIM = "bastion_tool"
#: Attribute of ``Principal.attributes`` where identity puts the user's granted scopes.
PRINCIPAL_SCOPES_ATTRIBUTE = "scopes"
#: Seconds a backend may cache the published JWKS (short: an unknown kid also triggers a refetch).
JWKS_MAX_AGE_SECONDS = 300
#: Most actors in a delegation chain (the acting agent and those it acts through).
MAX_ACTOR_CHAIN = 5
#: Longest actor id or request id accepted into a token.
MAX_ID_LENGTH = 256


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def body_hash(body: bytes) -> str:
    """The base64url (unpadded) SHA-256 of ``body``, as carried in ``bastion_bh``."""
    return _b64url(hashlib.sha256(body).digest()).decode("ascii")


def _jose_header(key: SigningKey) -> bytes:
    """The encoded JOSE header of every token ``key`` signs (compact JSON, sorted members)."""
    header = {"alg": key.algorithm, "kid": key.kid, "typ": TOOL_TOKEN_TYPE}
    return _b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode("ascii"))


def _sign(key: SigningKey, signing_input: bytes) -> bytes:
    """The JWS signature of ``signing_input``: raw Ed25519, or ES256 as the fixed 64-byte ``r || s``."""
    private = key.private_key
    if isinstance(private, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return private.sign(signing_input)


def user_scopes(principal: Principal) -> frozenset[str]:
    """The scopes the user holds: ``attributes["scopes"]`` as a list or a space-separated string."""
    raw = principal.attributes.get(PRINCIPAL_SCOPES_ATTRIBUTE)
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list | tuple | set | frozenset):
        return frozenset(s for s in raw if isinstance(s, str))
    return frozenset()  # unknown means none: fail closed


def narrow_scopes(tool: ToolSettings, requested: Iterable[str] | None, held: frozenset[str]) -> tuple[str, ...]:
    """The scopes a token for ``tool`` may carry: requested ∩ tool's ∩ the user's, sorted.

    Refuses (``insufficient_scope``) when the user lacks a scope the tool needs,
    or when nothing would be left: delegation only ever narrows.
    """
    needed = frozenset(tool.scopes)
    missing = needed - held
    if missing:
        raise PermissionDenied(
            "You do not hold the scopes this tool needs.",
            code="insufficient_scope",
            details={"missing_scopes": sorted(missing)},
        )
    wanted = needed if requested is None else frozenset(requested)
    granted = wanted & needed & held
    if needed and not granted:
        raise PermissionDenied("No requested scope can be granted for this tool.", code="insufficient_scope")
    return tuple(sorted(granted))


def _check_id(value: str, what: str) -> str:
    if not value or len(value) > MAX_ID_LENGTH or any(ord(c) < 0x20 for c in value):
        raise InvalidRequest(f"The {what} is empty, too long or contains control characters.")
    return value


def _actor_claim(chain: list[str]) -> dict[str, Any]:
    """Nested ``act`` claims: the outermost is the current actor, each inner one the actor before."""
    if len(chain) > MAX_ACTOR_CHAIN:
        raise InvalidRequest(f"A delegation chain may have at most {MAX_ACTOR_CHAIN} actors.")
    claim: dict[str, Any] | None = None
    for actor in reversed(chain):
        inner = claim
        claim = {"sub": _check_id(actor, "actor id")}
        if inner is not None:
            claim["act"] = inner
    assert claim is not None
    return claim


class ToolTokenMinter:
    """Mints tool tokens with the current key of a ``ToolKeyRing``."""

    def __init__(
        self,
        keyring: ToolKeyRing,
        *,
        issuer: str,
        lifetime_seconds: int = DEFAULT_TOOL_TOKEN_LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keyring = keyring
        self.issuer = issuer
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock
        #: The encoded header of the key last signed with; it changes only when the key does.
        self._header: tuple[SigningKey, bytes] | None = None

    def jwks(self) -> dict[str, Any]:
        """The key set backends verify these tokens with (served at /.well-known/jwks.json)."""
        return self.keyring.jwks()

    def jwks_response(self) -> JSONResponse:
        """The JWKS as an HTTP answer for ``GET /.well-known/jwks.json``, with its cache lifetime."""
        return JSONResponse(self.jwks(), headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE_SECONDS}"})

    def mint_tool_token(
        self,
        principal: Principal,
        tool: ToolSettings,
        *,
        actor: str,
        scopes: Iterable[str] | None,
        request_id: str,
        body: bytes,
        via: Sequence[str] = (),
    ) -> str:
        """A signed token for one call of ``tool`` by ``actor`` on behalf of ``principal``.

        ``scopes`` are those the caller asks for (``None``: all the tool needs);
        the token carries only those the tool needs and the user holds. ``via``
        names the prior actors ``actor`` works through, nearest first (e.g. the
        client app an agent runs in); they become nested ``act`` claims (RFC 8693).
        """
        if not tool.is_enabled:
            raise PermissionDenied(
                f"The tool {tool.name!r} is not enabled; an administrator must enable it.",
                code="tool_disabled",
            )
        granted = narrow_scopes(tool, scopes, user_scopes(principal))
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": tool.audience,
            "sub": principal.subject,
            "act": _actor_claim([actor, *via]),
            "scope": " ".join(granted),
            "jti": os.urandom(16).hex(),
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_seconds,
            "client_id": via[-1] if via else actor,
            REQUEST_ID_CLAIM: _check_id(request_id, "request id"),
            BODY_HASH_CLAIM: body_hash(body),
            TOOL_CLAIM: tool.name,
        }
        if principal.email:
            claims["email"] = principal.email
        if principal.groups:
            claims["groups"] = list(principal.groups)
        if principal.tenant:
            claims["tenant"] = principal.tenant
        return self._encode(claims)

    def _encode(self, claims: dict[str, Any]) -> str:
        """The compact JWS of ``claims`` signed with the current key (RFC 7515).

        The same bytes PyJWT would produce, without its per-call header encoding
        and checks: the header depends only on the key, so it is encoded once per key.
        """
        key = self.keyring.current()
        cached = self._header
        if cached is None or cached[0] is not key:
            cached = (key, _jose_header(key))
            self._header = cached
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
        signing_input = cached[1] + b"." + payload
        return (signing_input + b"." + _b64url(_sign(key, signing_input))).decode("ascii")


def build_minter(settings: ToolTokenSettings, *, data_dir: str | Path, public_url: str) -> ToolTokenMinter:
    """The gateway's minter: keys in ``key_dir`` or ``{data_dir}/tool_keys``, issuer its URL."""
    key_dir = Path(settings.key_dir).expanduser() if settings.key_dir else Path(data_dir) / "tool_keys"
    ring = ToolKeyRing(key_dir, algorithm=settings.algorithm, rotation_seconds=settings.rotation_seconds)
    ring.open()  # an unreadable or damaged key ring stops start-up here, not on the first call
    issuer = settings.issuer or public_url.rstrip("/")
    if not issuer:
        raise ConfigError("tools.tokens.issuer is empty and the gateway has no public URL")
    return ToolTokenMinter(ring, issuer=issuer, lifetime_seconds=settings.lifetime_seconds)
