"""Bastion's public keys for a backend: a JWKS from a URL (cached) or given as a dict."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from jwt import PyJWK
from jwt.exceptions import PyJWKError

from bastion.backend.errors import BastionTokenError

#: Algorithms a Bastion tool token may be signed with. Symmetric and "none" never are.
ALLOWED_ALGORITHMS: frozenset[str] = frozenset({"EdDSA", "ES256"})
#: Seconds a fetched key set is used before it is fetched again.
DEFAULT_CACHE_SECONDS = 300.0
#: Least seconds between two fetches caused by an unknown ``kid`` (junk kids cannot flood Bastion).
DEFAULT_MIN_REFETCH_SECONDS = 30.0
#: Seconds a key set may outlive its cache period while Bastion cannot be reached.
DEFAULT_MAX_STALE_SECONDS = 600.0
#: Seconds to wait for the JWKS endpoint.
DEFAULT_FETCH_TIMEOUT_SECONDS = 5.0
#: Largest JWKS document read, in bytes.
MAX_JWKS_BYTES = 64 * 1024

Fetcher = Callable[[str, float], bytes]


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def check_jwks_url(url: str, *, allow_insecure_http: bool = False) -> str:
    """``url`` if keys may be fetched from it: https, or http only to this machine (or when allowed)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "https" and parsed.hostname:
        return url
    # Keys fetched over plain HTTP could be swapped in transit, and every token forged with them.
    if parsed.scheme == "http" and parsed.hostname and (allow_insecure_http or parsed.hostname in _LOOPBACK):
        return url
    raise ValueError("the JWKS URL must be https:// (http:// only for 127.0.0.1 or localhost)")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead to plain HTTP or another host: treat it as a failure."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch_url(url: str, timeout: float) -> bytes:
    """GET ``url`` (no redirects) and return at most ``MAX_JWKS_BYTES`` of its body."""
    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
    with opener.open(req, timeout=timeout) as resp:
        data: bytes = resp.read(MAX_JWKS_BYTES + 1)
    if len(data) > MAX_JWKS_BYTES:
        raise ValueError("the JWKS document is too large")
    return data


def parse_jwks(doc: Mapping[str, Any], allowed: frozenset[str] = ALLOWED_ALGORITHMS) -> dict[str, PyJWK]:
    """The usable signing keys of a JWKS by ``kid``; other key types and algorithms are ignored."""
    keys: dict[str, PyJWK] = {}
    raw = doc.get("keys")
    if not isinstance(raw, list):
        raise ValueError("a JWKS needs a 'keys' list")
    for jwk in raw:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("kty") not in ("OKP", "EC"):
            continue  # an "oct" (shared secret) key must never verify anything
        try:
            key = PyJWK(jwk)
        except PyJWKError:
            continue
        if key.algorithm_name in allowed and jwk.get("alg", key.algorithm_name) == key.algorithm_name:
            keys[jwk["kid"]] = key
    return keys


class JWKSCache:
    """Keys by ``kid``, fetched from a URL and refreshed on a period or on an unknown ``kid``."""

    def __init__(
        self,
        source: str | Mapping[str, Any],
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        min_refetch_seconds: float = DEFAULT_MIN_REFETCH_SECONDS,
        max_stale_seconds: float = DEFAULT_MAX_STALE_SECONDS,
        timeout_seconds: float = DEFAULT_FETCH_TIMEOUT_SECONDS,
        allowed_algorithms: frozenset[str] = ALLOWED_ALGORITHMS,
        allow_insecure_http: bool = False,
        fetcher: Fetcher = fetch_url,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allowed = allowed_algorithms
        self._cache_seconds = cache_seconds
        self._min_refetch = min_refetch_seconds
        self._max_stale = max_stale_seconds
        self._timeout = timeout_seconds
        self._fetcher = fetcher
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")  # when the keys we hold were fetched
        self._tried_at = float("-inf")  # when we last tried, successful or not
        self.fetches = 0
        if isinstance(source, str):
            self._url: str | None = check_jwks_url(source, allow_insecure_http=allow_insecure_http)
        else:
            self._url = None
            self._keys = parse_jwks(source, allowed_algorithms)

    def is_fresh(self, kid: str) -> bool:
        """Whether ``kid`` can be answered from memory, without any network call."""
        if self._url is None:
            return True
        return kid in self._keys and self._clock() - self._fetched_at < self._cache_seconds

    def key_for(self, kid: str) -> PyJWK:
        """The key for ``kid``, fetching the set again when it is old or ``kid`` is unknown."""
        if self._url is None:
            return self._static(kid)
        now = self._clock()
        if kid in self._keys and now - self._fetched_at < self._cache_seconds:
            return self._keys[kid]
        with self._lock:
            now = self._clock()
            age = now - self._fetched_at
            if kid in self._keys and age < self._cache_seconds:
                return self._keys[kid]  # another thread fetched meanwhile
            self._refresh(now)
            if self._clock() - self._fetched_at >= self._cache_seconds + self._max_stale:
                raise BastionTokenError("jwks_unavailable", "Bastion's key set could not be fetched")
            key = self._keys.get(kid)
        if key is None:
            raise BastionTokenError("unknown_key", "the token's key is not in Bastion's key set")
        return key

    def _static(self, kid: str) -> PyJWK:
        key = self._keys.get(kid)
        if key is None:
            raise BastionTokenError("unknown_key", "the token's key is not in the key set")
        return key

    def _refresh(self, now: float) -> None:
        assert self._url is not None
        if now - self._tried_at < self._min_refetch:
            return  # tried too recently; answer from what we hold
        self._tried_at = now
        self.fetches += 1
        try:
            doc = json.loads(self._fetcher(self._url, self._timeout))
            if not isinstance(doc, dict):
                raise ValueError("the JWKS is not a JSON object")
            keys = parse_jwks(doc, self._allowed)
        except (OSError, ValueError):
            return  # keep the old set until it is too stale; the caller decides
        self._keys = keys
        self._fetched_at = now
