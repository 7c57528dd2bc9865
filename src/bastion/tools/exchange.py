"""OAuth 2.0 Token Exchange (RFC 8693): let the company's identity provider issue the backend token.

Instead of minting, Bastion can hand the user's token (and optionally its own
actor token) to the identity provider's token endpoint and ask for a token for
the tool's audience and scopes. Results are cached, keyed by a hash of the
inputs (never the raw tokens), until shortly before they expire. An exchanged
token carries no body hash: the identity provider cannot bind it to a request.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from bastion.errors import ConfigError, PermissionDenied, UpstreamFailed, UpstreamTimeout
from bastion.providers.secrets import Secret, SecretResolver
from bastion.tools.config import TokenExchangeSettings

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
#: Lifetime assumed when the endpoint omits ``expires_in``, in seconds (short, so little is cached).
DEFAULT_EXPIRES_IN_SECONDS = 60
#: Longest lifetime an exchanged token is cached for, whatever the endpoint says, in seconds.
MAX_CACHE_SECONDS = 3600
#: OAuth errors that mean the identity provider refused this user or audience (403, not 502).
_REFUSALS = frozenset({"invalid_grant", "invalid_target", "invalid_scope", "unauthorized_client", "access_denied"})


@dataclass(frozen=True, slots=True)
class ExchangedToken:
    """A token the identity provider issued for a backend."""

    access_token: str
    issued_token_type: str
    scopes: frozenset[str]
    expires_at: float

    def __repr__(self) -> str:
        return f"ExchangedToken(type={self.issued_token_type!r}, expires_at={self.expires_at})"


class TokenExchangeClient:
    """An RFC 8693 client for one token endpoint, with a bounded cache."""

    def __init__(
        self,
        settings: TokenExchangeSettings,
        *,
        client_secret: Secret | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._secret = client_secret
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(settings.timeout_seconds), follow_redirects=False)
        self._owns_http = http is None
        self._clock = clock
        self._cache: OrderedDict[str, ExchangedToken] = OrderedDict()

    async def aclose(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._owns_http:
            await self._http.aclose()

    async def exchange(
        self,
        subject_token: str,
        *,
        audience: str,
        scopes: Iterable[str],
        actor_token: str | None = None,
    ) -> ExchangedToken:
        """A token for ``audience`` with at most ``scopes``, for the subject token's user."""
        wanted = frozenset(scopes)
        key = self._cache_key(subject_token, actor_token, audience, wanted)
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit.expires_at - self.settings.refresh_before_expiry_seconds > now:
            self._cache.move_to_end(key)
            return hit
        token = await self._request(subject_token, actor_token, audience, wanted)
        if self.settings.max_cache_entries:
            self._cache[key] = token
            self._cache.move_to_end(key)
            while len(self._cache) > self.settings.max_cache_entries:
                self._cache.popitem(last=False)
        return token

    @staticmethod
    def _cache_key(subject: str, actor: str | None, audience: str, scopes: frozenset[str]) -> str:
        h = hashlib.sha256()
        for part in (subject, actor or "", audience, " ".join(sorted(scopes))):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()

    async def _request(self, subject: str, actor: str | None, audience: str, scopes: frozenset[str]) -> ExchangedToken:
        s = self.settings
        form: dict[str, str] = {
            "grant_type": GRANT_TYPE,
            "subject_token": subject,
            "subject_token_type": s.subject_token_type,
            "requested_token_type": s.requested_token_type,
            "audience": audience,
        }
        if scopes:
            form["scope"] = " ".join(sorted(scopes))
        if actor:
            form["actor_token"] = actor
            form["actor_token_type"] = s.actor_token_type
        auth: httpx.BasicAuth | None = None
        if s.auth_method == "client_secret_basic" and self._secret is not None:
            auth = httpx.BasicAuth(s.client_id, self._secret.reveal())
        else:
            form["client_id"] = s.client_id
            if self._secret is not None:
                form["client_secret"] = self._secret.reveal()
        try:
            async with self._http.stream(
                "POST",
                s.token_endpoint,
                data=form,
                auth=auth,
                headers={"Accept": "application/json"},
            ) as resp:
                body = await self._read_limited(resp)
                status = resp.status_code
        except httpx.TimeoutException:
            raise UpstreamTimeout(
                "The identity provider did not answer the token exchange in time.",
                code="token_exchange_timeout",
            ) from None
        except httpx.HTTPError:
            raise UpstreamFailed(
                "The identity provider could not be reached for token exchange.",
                code="token_exchange_failed",
            ) from None
        return self._parse(status, body, scopes)

    async def _read_limited(self, resp: httpx.Response) -> bytes:
        buf = bytearray()
        async for chunk in resp.aiter_bytes():
            buf.extend(chunk)
            if len(buf) > self.settings.max_response_bytes:
                raise UpstreamFailed(
                    "The identity provider's token answer is too large.",
                    code="token_exchange_failed",
                )
        return bytes(buf)

    def _parse(self, status: int, body: bytes, wanted: frozenset[str]) -> ExchangedToken:
        try:
            data: Any = json.loads(body) if body else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamFailed("The identity provider's token answer is not JSON.", code="token_exchange_failed")
        if status != 200:
            error = data.get("error")
            if status in (400, 403) and error in _REFUSALS:
                raise PermissionDenied(
                    "The identity provider refused to issue a token for this tool.",
                    code="token_exchange_denied",
                    details={"oauth_error": error},
                )
            raise UpstreamFailed("The identity provider's token exchange failed.", code="token_exchange_failed")
        token = data.get("access_token")
        token_type = data.get("issued_token_type", self.settings.requested_token_type)
        if not isinstance(token, str) or not token or not isinstance(token_type, str):
            raise UpstreamFailed("The identity provider's token answer has no token.", code="token_exchange_failed")
        granted = frozenset(str(data["scope"]).split()) if "scope" in data else wanted
        if not granted <= wanted:
            # Delegation only narrows: a wider token than asked for is refused, not used.
            raise PermissionDenied(
                "The identity provider granted wider scopes than requested.",
                code="token_exchange_denied",
            )
        expires_in = data.get("expires_in", DEFAULT_EXPIRES_IN_SECONDS)
        if not isinstance(expires_in, int | float) or expires_in <= 0:
            expires_in = DEFAULT_EXPIRES_IN_SECONDS
        expires_at = self._clock() + min(float(expires_in), MAX_CACHE_SECONDS)
        return ExchangedToken(token, token_type, granted, expires_at)


def build_exchange_client(settings: TokenExchangeSettings, secrets: SecretResolver) -> TokenExchangeClient:
    """The gateway's exchange client; a secret that is named but not set stops start-up."""
    secret = secrets.get(settings.client_secret_env)
    if settings.client_secret_env and secret is None:
        name = settings.client_secret_env
        raise ConfigError(f"tools.tokens.exchange: the secret {name} is not set")
    return TokenExchangeClient(settings, client_secret=secret)
