"""RFC 8693 token exchange against a small token endpoint on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.unit.test_backend import serve_in_thread

from bastion.errors import PermissionDenied, UpstreamFailed, UpstreamTimeout
from bastion.providers.secrets import Secret
from bastion.tools.config import TokenExchangeSettings
from bastion.tools.exchange import GRANT_TYPE, TokenExchangeClient

CLIENT_SECRET = "exchange-client-secret-value"  # noqa: S105 - a test fixture


class TokenEndpoint:
    """A fake identity provider token endpoint; ``mode`` picks its next answer."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []

    async def token(self, request: Request) -> Response:
        form = dict(await request.form())
        self.requests.append({"form": form, "authorization": request.headers.get("authorization")})
        if self.mode == "slow":
            await asyncio.sleep(2)
        if self.mode == "denied":
            return JSONResponse({"error": "invalid_target"}, status_code=400)
        if self.mode == "bad_client":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if self.mode == "not_json":
            return Response("<html>oops</html>", status_code=200)
        if self.mode == "huge":
            return Response(b"x" * 200_000, status_code=200)
        if self.mode == "no_token":
            return JSONResponse({"token_type": "Bearer"})
        scope = form.get("scope", "")
        if self.mode == "wider":
            scope = str(scope) + " admin"
        return JSONResponse(
            {
                "access_token": f"exchanged-{len(self.requests)}",
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": scope,
            }
        )


@pytest.fixture
def endpoint() -> Iterator[tuple[str, TokenEndpoint]]:
    fake = TokenEndpoint()
    app = Starlette(routes=[Route("/oauth/token", fake.token, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield url + "/oauth/token", fake


def settings(url: str, **overrides: Any) -> TokenExchangeSettings:
    fields: dict[str, Any] = {
        "token_endpoint": url,
        "client_id": "bastion",
        "client_secret_env": "X",
        "timeout_seconds": 0.5,
    }
    fields.update(overrides)
    return TokenExchangeSettings.model_validate(fields)


async def _exchange(client: TokenExchangeClient, **kw: Any) -> Any:
    args: dict[str, Any] = {"audience": "https://hr.test", "scopes": ["hr.reviews.read"]}
    args.update(kw)
    subject = args.pop("subject", "user-token")
    return await client.exchange(subject, **args)


def run(client: TokenExchangeClient, **kw: Any) -> Any:
    async def go() -> Any:
        try:
            return await _exchange(client, **kw)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_an_exchange_sends_rfc8693_fields_and_client_auth(
    endpoint: tuple[str, TokenEndpoint],
) -> None:
    url, fake = endpoint
    client = TokenExchangeClient(settings(url), client_secret=Secret(CLIENT_SECRET))
    token = run(client, actor_token="bastion-actor")
    assert token.access_token == "exchanged-1"
    assert token.scopes == frozenset({"hr.reviews.read"})
    assert token.expires_at > time.time() + 250
    sent = fake.requests[0]
    assert sent["form"] == {
        "grant_type": GRANT_TYPE,
        "subject_token": "user-token",
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "audience": "https://hr.test",
        "scope": "hr.reviews.read",
        "actor_token": "bastion-actor",
        "actor_token_type": "urn:ietf:params:oauth:token-type:access_token",
    }
    expected = base64.b64encode(f"bastion:{CLIENT_SECRET}".encode()).decode()
    assert sent["authorization"] == f"Basic {expected}"
    assert CLIENT_SECRET not in repr(client.__dict__) and "exchanged" not in repr(token)


def test_client_secret_post(endpoint: tuple[str, TokenEndpoint]) -> None:
    url, fake = endpoint
    client = TokenExchangeClient(settings(url, auth_method="client_secret_post"), client_secret=Secret(CLIENT_SECRET))
    run(client)
    assert fake.requests[0]["authorization"] is None
    assert fake.requests[0]["form"]["client_id"] == "bastion"
    assert fake.requests[0]["form"]["client_secret"] == CLIENT_SECRET


def test_exchanged_tokens_are_cached_until_near_expiry(endpoint: tuple[str, TokenEndpoint]) -> None:
    url, fake = endpoint
    now = [1000.0]
    client = TokenExchangeClient(settings(url, refresh_before_expiry_seconds=30), clock=lambda: now[0])

    async def go() -> list[str]:
        out = [(await _exchange(client)).access_token, (await _exchange(client)).access_token]
        out.append((await _exchange(client, subject="other-user")).access_token)
        out.append((await _exchange(client, audience="https://mail.test")).access_token)
        now[0] = 1000.0 + 300 - 29  # inside the refresh margin: fetched again
        out.append((await _exchange(client)).access_token)
        await client.aclose()
        return out

    assert asyncio.run(go()) == [
        "exchanged-1",
        "exchanged-1",
        "exchanged-2",
        "exchanged-3",
        "exchanged-4",
    ]


def test_the_cache_is_bounded(endpoint: tuple[str, TokenEndpoint]) -> None:
    url, fake = endpoint
    client = TokenExchangeClient(settings(url, max_cache_entries=2))

    async def go() -> None:
        for s in ("a", "b", "c", "a"):
            await _exchange(client, subject=s)
        await client.aclose()

    asyncio.run(go())
    assert len(fake.requests) == 4  # "a" was evicted by "c"
    assert len(client._cache) == 2
    # Keys are hashes of the inputs, never the raw tokens.
    assert all(len(k) == 64 and "token" not in k for k in client._cache)


ERRORS: list[tuple[str, type[Exception], str]] = [
    ("denied", PermissionDenied, "token_exchange_denied"),
    ("wider", PermissionDenied, "token_exchange_denied"),
    ("bad_client", UpstreamFailed, "token_exchange_failed"),
    ("not_json", UpstreamFailed, "token_exchange_failed"),
    ("huge", UpstreamFailed, "token_exchange_failed"),
    ("no_token", UpstreamFailed, "token_exchange_failed"),
    ("slow", UpstreamTimeout, "token_exchange_timeout"),
]


@pytest.mark.parametrize(("mode", "error", "code"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_map_to_bastion_errors(
    endpoint: tuple[str, TokenEndpoint], mode: str, error: type[Exception], code: str
) -> None:
    url, fake = endpoint
    fake.mode = mode
    client = TokenExchangeClient(settings(url, max_response_bytes=100_000))
    with pytest.raises(error) as err:
        run(client)
    assert getattr(err.value, "code", None) == code
    assert "user-token" not in str(err.value)


def test_an_unreachable_endpoint_is_an_upstream_failure() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = TokenExchangeClient(settings(f"http://127.0.0.1:{port}/token"))
    with pytest.raises(UpstreamFailed) as err:
        run(client)
    assert err.value.code == "token_exchange_failed"


def test_build_exchange_client_needs_its_named_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from bastion.errors import ConfigError
    from bastion.providers.secrets import SecretResolver
    from bastion.tools.exchange import build_exchange_client

    monkeypatch.delenv("BASTION_TEST_EXCHANGE_SECRET", raising=False)
    cfg = settings("https://idp.test/token", client_secret_env="BASTION_TEST_EXCHANGE_SECRET")
    with pytest.raises(ConfigError, match="BASTION_TEST_EXCHANGE_SECRET"):
        build_exchange_client(cfg, SecretResolver())
    monkeypatch.setenv("BASTION_TEST_EXCHANGE_SECRET", CLIENT_SECRET)
    client = build_exchange_client(cfg, SecretResolver())
    assert client._secret is not None and client._secret.reveal() == CLIENT_SECRET
    asyncio.run(client.aclose())


def _tool(mode: str, **overrides: Any) -> Any:
    from bastion.tools.config import ToolSettings

    fields: dict[str, Any] = {
        "name": "hr_reviews",
        "owner": "people-team",
        "audience": "https://hr.test",
        "base_url": "http://hr.internal",
        "operation": {"method": "GET", "path": "/reviews/team"},
        "scopes": ["hr.reviews.read"],
        "token_mode": mode,
    }
    fields.update(overrides)
    return ToolSettings.model_validate(fields)


def test_credentials_mint_or_exchange_per_tool(endpoint: tuple[str, TokenEndpoint], tmp_path: Any) -> None:
    from bastion.backend import BastionTokenVerifier
    from bastion.context import Principal
    from bastion.tools.credentials import ToolCredentials
    from bastion.tools.keys import ToolKeyRing
    from bastion.tools.tokens import ToolTokenMinter

    url, fake = endpoint
    ring = ToolKeyRing(tmp_path, rotation_seconds=3600)
    creds = ToolCredentials(ToolTokenMinter(ring, issuer="https://bastion.test"), TokenExchangeClient(settings(url)))
    user = Principal(subject="sam", attributes={"scopes": ["hr.reviews.read", "admin"]})
    no_scope = Principal(subject="sam", attributes={"scopes": []})
    call = {"actor": "app", "scopes": None, "request_id": "req_1", "body": b""}

    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["minted"] = await creds.token_for(user, _tool("mint"), **call, subject_token="user-token")
        out["exchanged"] = await creds.token_for(user, _tool("exchange"), **call, subject_token="user-token")
        for name, who, tool, subject in [
            ("no subject token", user, _tool("exchange"), None),
            ("disabled", user, _tool("exchange", action="write"), "user-token"),
            ("user lacks scope", no_scope, _tool("exchange"), "user-token"),
        ]:
            try:
                await creds.token_for(who, tool, **call, subject_token=subject)
                out[name] = "issued"
            except PermissionDenied as exc:
                out[name] = exc.code
        assert creds.exchange is not None
        await creds.exchange.aclose()
        return out

    out = asyncio.run(go())
    verifier = BastionTokenVerifier(ring.jwks(), "https://hr.test", "https://bastion.test")
    assert verifier.verify(out["minted"], body=b"").subject == "sam"
    assert out["exchanged"] == "exchanged-1"
    assert out["no subject token"] == "token_exchange_denied"
    assert out["disabled"] == "tool_disabled"
    assert out["user lacks scope"] == "insufficient_scope"
    # Only the one legitimate exchange reached the identity provider, asking for the narrowed scope.
    assert len(fake.requests) == 1 and fake.requests[0]["form"]["scope"] == "hr.reviews.read"
