"""Verifying OIDC/JWT bearer tokens against the signing keys each trusted issuer publishes.

For each configured issuer the verifier discovers ``jwks_uri`` (checking that
the discovery document names the same issuer), fetches the key set with a
timeout and a size limit, and keeps it for ``jwks_cache_seconds``. A token
signed with an unknown ``kid`` causes one refetch, at most once every
``jwks_min_refetch_seconds`` per issuer; requests arriving together share it.

What is never accepted: ``alg: none``, any HMAC algorithm (so a public key can
never double as a shared secret), an algorithm the issuer is not configured
for, or a key whose type does not fit the token's algorithm. When keys are
needed and the issuer cannot be reached, the request is refused with 503
``identity_provider_unavailable``: stale keys are never used past their cache
time, because a key removed from the set may have been removed for a reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from bastion.context import Principal
from bastion.errors import AuthenticationFailed, ServiceUnavailable
from bastion.settings import OIDCIssuer

log = logging.getLogger("bastion.identity")

#: Largest token accepted, in bytes (real ID and access tokens are a few KiB).
MAX_TOKEN_BYTES = 16 * 1024
#: Largest discovery document and key set read from an issuer, in bytes.
MAX_DISCOVERY_BYTES = 64 * 1024
MAX_JWKS_BYTES = 256 * 1024
#: Most keys kept from one key set.
MAX_JWKS_KEYS = 64
#: Most values in a groups or roles claim, and longest value kept.
MAX_CLAIM_ITEMS = 256
MAX_CLAIM_CHARS = 256
#: Seconds a failed fetch is remembered before the issuer is asked again.
FETCH_FAILURE_BACKOFF_SECONDS = 2.0
#: Verified tokens remembered (by hash), and for how long at most, so a client reusing its
#: token is not re-verified on every request. Entries die with the key set they were checked against.
VERIFIED_CACHE_MAX_ENTRIES = 10_000
VERIFIED_CACHE_SECONDS = 30.0
#: Claims every token must carry, whatever ``required_claims`` says.
ALWAYS_REQUIRED_CLAIMS = ("iss", "aud", "exp")

#: Which key a signing algorithm may use: key type, and allowed curves (None: not applicable).
_KEY_FOR_ALG: dict[str, tuple[str, frozenset[str] | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}
_LIST_SPLIT = re.compile(r"[\s,]+")


def _invalid(message: str) -> AuthenticationFailed:
    return AuthenticationFailed(message, code="invalid_token")


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The identity provider cannot be reached to check this token; try again shortly.",
        code="identity_provider_unavailable",
        headers={"Retry-After": "5"},
    )


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    issuer: str
    generation: int
    until: float  # wall-clock time after which the token must be checked again


class _FetchFailed(Exception):
    """An issuer's discovery document or key set could not be fetched or understood."""


@dataclass(frozen=True, slots=True)
class _Jwk:
    kid: str | None
    kty: str
    crv: str | None
    alg: str | None
    key: Any

    def fits(self, alg: str) -> bool:
        if self.alg is not None and self.alg != alg:
            return False
        kty, curves = _KEY_FOR_ALG[alg]
        return self.kty == kty and (curves is None or self.crv in curves)


@dataclass
class _IssuerState:
    cfg: OIDCIssuer
    jwks_uri: str | None = None
    keys: tuple[_Jwk, ...] | None = None
    fetched_at: float = -math.inf
    kid_refetch_at: float = -math.inf
    failed_at: float = -math.inf
    generation: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def fresh(self, now: float) -> bool:
        return self.keys is not None and now - self.fetched_at < self.cfg.jwks_cache_seconds

    def find(self, kid: str | None, alg: str) -> tuple[_Jwk | None, bool]:
        """The key to verify with, and whether ``kid`` is in the set at all."""
        keys = self.keys or ()
        if kid is None:
            # Without a kid, only an unambiguous set can be used.
            fitting = [k for k in keys if k.fits(alg)]
            return (fitting[0] if len(fitting) == 1 else None), True
        named = [k for k in keys if k.kid == kid]
        for k in named:
            if k.fits(alg):
                return k, True
        return None, bool(named)


def _parse_jwks(doc: Any) -> tuple[_Jwk, ...]:
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise _FetchFailed("the key set has no 'keys' list")
    out: list[_Jwk] = []
    for raw in doc["keys"][:MAX_JWKS_KEYS]:
        if not isinstance(raw, dict):
            continue
        if raw.get("use", "sig") != "sig":
            continue
        ops = raw.get("key_ops")
        if isinstance(ops, list) and "verify" not in ops:
            continue
        kty = raw.get("kty")
        if kty not in ("RSA", "EC", "OKP"):
            continue  # symmetric ("oct") keys are never trusted
        try:
            parsed = jwt.PyJWK(raw)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            log.warning(
                "skipping a key the issuer published (kid %r): %s",
                str(raw.get("kid"))[:64],
                type(exc).__name__,
            )
            continue
        kid = raw.get("kid")
        alg = raw.get("alg")
        crv = raw.get("crv")
        out.append(
            _Jwk(
                kid=str(kid) if kid is not None else None,
                kty=str(kty),
                crv=str(crv) if crv is not None else None,
                alg=str(alg) if alg is not None else None,
                key=parsed.key,
            )
        )
    return tuple(out)


def _claim(payload: dict[str, Any], path: str) -> Any:
    """The value at a dotted claim path (``realm_access.roles``), or None."""
    if path in payload:
        return payload[path]
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _text_claim(payload: dict[str, Any], path: str) -> str | None:
    value = _claim(payload, path)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _invalid(f"The token's {path} claim is not a string.")
    text = str(value)
    if not text or len(text) > MAX_CLAIM_CHARS:
        raise _invalid(f"The token's {path} claim is empty or too long.")
    return text


def _list_claim(payload: dict[str, Any], path: str) -> tuple[str, ...]:
    value = _claim(payload, path)
    if value is None:
        return ()
    items: list[Any]
    if isinstance(value, str):
        items = [v for v in _LIST_SPLIT.split(value) if v]
    elif isinstance(value, list):
        items = value
    else:
        raise _invalid(f"The token's {path} claim is not a list.")
    if len(items) > MAX_CLAIM_ITEMS:
        raise _invalid(f"The token's {path} claim has too many values.")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item or len(item) > MAX_CLAIM_CHARS:
            raise _invalid(f"The token's {path} claim holds a value that is not a short string.")
        out.append(item)
    return tuple(dict.fromkeys(out))


class OIDCVerifier:
    """Checks bearer JWTs from the configured issuers and turns them into principals."""

    def __init__(
        self,
        issuers: Sequence[OIDCIssuer],
        http: httpx.AsyncClient,
        *,
        max_token_bytes: int = MAX_TOKEN_BYTES,
        verified_cache_seconds: float = VERIFIED_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuers = {i.issuer: _IssuerState(i) for i in issuers}
        self._http = http
        self._max_token_bytes = max_token_bytes
        self._verified_cache_seconds = verified_cache_seconds
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()
        self._clock = clock

    @property
    def issuers(self) -> tuple[str, ...]:
        """The trusted issuer URLs."""
        return tuple(self._issuers)

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; AuthenticationFailed, or 503 if the IdP is down."""
        if len(token) > self._max_token_bytes:
            raise _invalid("The token is larger than this gateway accepts.")
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        cached = self._cached(digest)
        if cached is not None:
            return cached
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _invalid("The token is not a well-formed JWT.") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in _KEY_FOR_ALG:
            # Covers "none" and every HMAC algorithm: neither can prove who signed.
            raise _invalid("The token's signing algorithm is not accepted.")
        if "crit" in header:
            raise _invalid("The token uses header extensions this gateway does not support.")
        iss = unverified.get("iss")
        state = self._issuers.get(iss) if isinstance(iss, str) else None
        if state is None:
            raise _invalid("The token's issuer is not trusted.")
        cfg = state.cfg
        if alg not in cfg.algorithms:
            raise _invalid("The token's signing algorithm is not accepted.")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _invalid("The token's key id is not a string.")
        key = await self._signing_key(state, kid, alg)
        generation = state.generation
        payload = self._decode(token, key, alg, cfg)
        principal = self._principal(payload, cfg)
        self._remember(digest, principal, state, generation, float(payload["exp"]) + cfg.clock_skew_seconds)
        return principal

    def _cached(self, digest: bytes) -> Principal | None:
        hit = self._verified.get(digest)
        if hit is None:
            return None
        state = self._issuers[hit.issuer]
        # Valid only while the token is unexpired and the key set it was checked against is current.
        if hit.generation == state.generation and time.time() < hit.until and state.fresh(self._clock()):
            self._verified.move_to_end(digest)
            return hit.principal
        del self._verified[digest]
        return None

    def _remember(
        self, digest: bytes, principal: Principal, state: _IssuerState, generation: int, expires: float
    ) -> None:
        if self._verified_cache_seconds <= 0:
            return
        until = min(expires, time.time() + self._verified_cache_seconds)
        self._verified[digest] = _Verified(principal, state.cfg.issuer, generation, until)
        self._verified.move_to_end(digest)
        while len(self._verified) > VERIFIED_CACHE_MAX_ENTRIES:
            self._verified.popitem(last=False)

    def _decode(self, token: str, key: _Jwk, alg: str, cfg: OIDCIssuer) -> dict[str, Any]:
        required = list(dict.fromkeys([*ALWAYS_REQUIRED_CLAIMS, *cfg.required_claims]))
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=list(cfg.audience),
                issuer=cfg.issuer,
                leeway=cfg.clock_skew_seconds,
                options={
                    "require": required,
                    "verify_signature": True,
                    "verify_exp": True,
                    "verify_nbf": True,
                    "verify_iat": True,
                    "verify_aud": True,
                    "verify_iss": True,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("The token has expired.", code="expired_token") from None
        except jwt.ImmatureSignatureError:
            raise _invalid("The token is not valid yet.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _invalid(f"The token lacks the required {exc.claim!r} claim.") from None
        except jwt.InvalidAudienceError:
            raise _invalid("The token is not meant for this gateway (audience).") from None
        except jwt.InvalidIssuerError:
            raise _invalid("The token's issuer is not trusted.") from None
        except jwt.InvalidSignatureError:
            raise _invalid("The token's signature does not verify.") from None
        except jwt.PyJWTError:
            raise _invalid("The token is not valid.") from None
        return payload

    def _principal(self, payload: dict[str, Any], cfg: OIDCIssuer) -> Principal:
        names = cfg.claims
        subject = _text_claim(payload, names.subject)
        if subject is None:
            raise _invalid(f"The token lacks the {names.subject!r} claim.")
        attributes: dict[str, Any] = {}
        for extra in ("azp", "client_id"):
            value = payload.get(extra)
            if isinstance(value, str) and len(value) <= MAX_CLAIM_CHARS:
                attributes[extra] = value
        return Principal(
            subject=subject,
            kind="user",
            email=_text_claim(payload, names.email),
            groups=_list_claim(payload, names.groups),
            roles=_list_claim(payload, names.roles),
            tenant=_text_claim(payload, names.tenant),
            attributes=attributes,
            auth_method="oidc",
            issuer=cfg.issuer,
        )

    # -- keys ------------------------------------------------------------------------

    async def _signing_key(self, state: _IssuerState, kid: str | None, alg: str) -> _Jwk:
        if not state.fresh(self._clock()):
            await self._refresh(state, kid_triggered=False, seen=state.generation)
        seen = state.generation
        key, kid_known = state.find(kid, alg)
        if key is None and not kid_known:
            window_open = self._clock() - state.kid_refetch_at >= state.cfg.jwks_min_refetch_seconds
            # A fetch in flight may be the one that brings this kid: wait for it rather than refuse.
            if window_open or state.lock.locked():
                await self._refresh(state, kid_triggered=True, seen=seen)
                key, kid_known = state.find(kid, alg)
        if key is None:
            if kid is None:
                raise _invalid("The token names no signing key (kid) and none can be chosen.")
            if kid_known:
                raise _invalid("The token's algorithm does not fit the key it names.")
            raise _invalid("The token was signed with a key this gateway does not know.")
        return key

    async def _refresh(self, state: _IssuerState, *, kid_triggered: bool, seen: int) -> None:
        async with state.lock:
            if state.generation != seen:
                return  # another request fetched the keys while this one waited
            now = self._clock()
            if kid_triggered:
                if now - state.kid_refetch_at < state.cfg.jwks_min_refetch_seconds:
                    return
                state.kid_refetch_at = now
            backoff = min(FETCH_FAILURE_BACKOFF_SECONDS, float(state.cfg.jwks_min_refetch_seconds))
            if now - state.failed_at < backoff:
                raise _unavailable()
            try:
                keys = await self._fetch_keys(state)
            except _FetchFailed as exc:
                state.failed_at = self._clock()
                # Discover again next time: the issuer may have moved its keys.
                state.jwks_uri = None
                log.warning("cannot fetch signing keys of issuer %s: %s", state.cfg.issuer, exc)
                raise _unavailable() from None
            state.keys = keys
            state.fetched_at = self._clock()
            state.failed_at = -math.inf
            state.generation += 1

    async def _fetch_keys(self, state: _IssuerState) -> tuple[_Jwk, ...]:
        cfg = state.cfg
        if cfg.jwks_uri:
            state.jwks_uri = cfg.jwks_uri
        if state.jwks_uri is None:
            url = cfg.discovery_url or cfg.issuer.rstrip("/") + "/.well-known/openid-configuration"
            doc = await self._get_json(url, MAX_DISCOVERY_BYTES, cfg.http_timeout_seconds)
            if not isinstance(doc, dict):
                raise _FetchFailed("the discovery document is not a JSON object")
            if doc.get("issuer") != cfg.issuer:
                raise _FetchFailed("the discovery document names a different issuer")
            uri = doc.get("jwks_uri")
            if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
                raise _FetchFailed("the discovery document has no usable jwks_uri")
            if uri.startswith("http://") and not cfg.issuer.startswith("http://"):
                # An https issuer may not send its keys over plain HTTP.
                raise _FetchFailed("the discovery document points at a plain-HTTP jwks_uri")
            state.jwks_uri = uri
        return _parse_jwks(await self._get_json(state.jwks_uri, MAX_JWKS_BYTES, cfg.http_timeout_seconds))

    async def _get_json(self, url: str, max_bytes: int, wait_seconds: float) -> Any:
        try:
            async with asyncio.timeout(wait_seconds):
                async with self._http.stream(
                    "GET", url, headers={"Accept": "application/json"}, timeout=wait_seconds
                ) as resp:
                    if resp.status_code != 200:
                        raise _FetchFailed(f"HTTP {resp.status_code}")
                    declared = resp.headers.get("content-length")
                    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                        raise _FetchFailed("the document is too large")
                    body = bytearray()
                    async for chunk in resp.aiter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise _FetchFailed("the document is too large")
        except TimeoutError:
            raise _FetchFailed("timed out") from None
        except httpx.HTTPError as exc:
            raise _FetchFailed(type(exc).__name__) from None
        try:
            return json.loads(bytes(body))
        except (ValueError, UnicodeDecodeError):
            raise _FetchFailed("the document is not JSON") from None
