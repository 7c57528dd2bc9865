"""The backend module refuses forged, expired, replayed, misdirected and body-swapped tokens."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.backend import (
    BastionTokenError,
    BastionTokenVerifier,
    JWKSCache,
    MemoryReplayCache,
    RedisReplayCache,
    require_bastion_caller,
    verify_bastion_token,
)
from bastion.backend.replay import ReplayCacheFull
from bastion.context import Principal
from bastion.tools.config import ToolSettings
from bastion.tools.keys import ToolKeyRing
from bastion.tools.tokens import ToolTokenMinter, body_hash

ISSUER = "https://bastion.test"
AUDIENCE = "https://hr.test"
BODY = b'{"employee_id": "e-104"}'


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn on 127.0.0.1 (OS-assigned port) in a thread; yield its URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def make_tool(**overrides: Any) -> ToolSettings:
    """An HR read tool as an administrator would register it."""
    fields: dict[str, Any] = {
        "name": "hr_reviews",
        "owner": "people-team",
        "audience": AUDIENCE,
        "base_url": "http://hr.internal",
        "operation": {"method": "POST", "path": "/reviews/search"},
        "scopes": ["hr.reviews.read"],
        "data_classes": ["hr"],
    }
    fields.update(overrides)
    return ToolSettings.model_validate(fields)


ALICE = Principal(
    subject="alice",
    email="alice@corp.test",
    groups=("engineering",),
    tenant="corp",
    attributes={"scopes": ["hr.reviews.read", "mail.send"]},
)


@pytest.fixture
def ring(tmp_path: Path) -> ToolKeyRing:
    return ToolKeyRing(tmp_path / "keys", rotation_seconds=3600)


@pytest.fixture
def minter(ring: ToolKeyRing) -> ToolTokenMinter:
    return ToolTokenMinter(ring, issuer=ISSUER)


def mint(m: ToolTokenMinter, *, body: bytes = BODY, tool: ToolSettings | None = None) -> str:
    return m.mint_tool_token(ALICE, tool or make_tool(), actor="agent-7", scopes=None, request_id="req_abc", body=body)


def sign_raw(ring: ToolKeyRing, claims: dict[str, Any], **headers: Any) -> str:
    """Sign arbitrary claims with the ring's current key (to build malformed-but-signed tokens)."""
    key = ring.current()
    h = {"kid": key.kid, "typ": "at+jwt"}
    h.update(headers)
    h = {k: v for k, v in h.items() if v is not None}
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers=h)


def good_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "jti": "j-" + str(time.perf_counter_ns()),
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "bastion_bh": body_hash(BODY),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_minted_token_verifies_and_names_user_actor_and_request(ring: ToolKeyRing, minter: ToolTokenMinter) -> None:
    verifier = BastionTokenVerifier(ring.jwks(), AUDIENCE, ISSUER)
    caller = verify_bastion_token(verifier, mint(minter), body=BODY)
    assert caller.subject == "alice"
    assert caller.actor == "agent-7"
    assert caller.scopes == frozenset({"hr.reviews.read"})
    assert caller.email == "alice@corp.test"
    assert caller.groups == ("engineering",)
    assert caller.tenant == "corp"
    assert caller.request_id == "req_abc"
    assert caller.tool == "hr_reviews"
    assert caller.has_scope("hr.reviews.read") and not caller.has_scope("mail.send")


def _forged(ring: ToolKeyRing, m: ToolTokenMinter) -> str:
    # Same kid, same claims, but signed by a key the attacker made.
    other = ed25519.Ed25519PrivateKey.generate()
    claims = jwt.decode(mint(m), options={"verify_signature": False})
    return jwt.encode(claims, other, algorithm="EdDSA", headers={"kid": ring.current().kid, "typ": "at+jwt"})


def _tampered(ring: ToolKeyRing, m: ToolTokenMinter) -> str:
    head, payload, sig = mint(m).split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["sub"] = "ceo"
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{head}.{forged}.{sig}"


def _alg_none(ring: ToolKeyRing, m: ToolTokenMinter) -> str:
    headers = {"kid": ring.current().kid, "typ": "at+jwt"}
    return jwt.encode(good_claims(), None, algorithm="none", headers=headers)  # type: ignore[arg-type]


def _hs256_with_public_key(ring: ToolKeyRing, m: ToolTokenMinter) -> str:
    # The classic confusion: use the published public key as an HMAC secret.
    public = (
        ring.current().private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return jwt.encode(
        good_claims(),
        public,
        algorithm="HS256",
        headers={"kid": ring.current().kid, "typ": "at+jwt"},
    )


def _expired(ring: ToolKeyRing, m: ToolTokenMinter) -> str:
    past = ToolTokenMinter(ring, issuer=ISSUER, clock=lambda: time.time() - 1000)
    return mint(past)


def _future(ring: ToolKeyRing, m: ToolTokenMinter) -> str:
    return mint(ToolTokenMinter(ring, issuer=ISSUER, clock=lambda: time.time() + 1000))


REFUSALS: list[tuple[str, Callable[[ToolKeyRing, ToolTokenMinter], str], str]] = [
    ("empty", lambda r, m: "", "missing_token"),
    ("garbage", lambda r, m: "not.a.jwt", "malformed_token"),
    ("huge", lambda r, m: "a" * 10_000, "malformed_token"),
    ("forged signature", _forged, "bad_signature"),
    ("tampered payload", _tampered, "bad_signature"),
    ("alg none", _alg_none, "algorithm_not_allowed"),
    ("HS256 with the public key", _hs256_with_public_key, "algorithm_not_allowed"),
    ("expired", _expired, "expired"),
    ("not yet valid", _future, "not_yet_valid"),
    (
        "wrong audience",
        lambda r, m: mint(m, tool=make_tool(audience="https://mail.test")),
        "wrong_audience",
    ),
    (
        "wrong issuer",
        lambda r, m: mint(ToolTokenMinter(r, issuer="https://evil.test")),
        "wrong_issuer",
    ),
    ("body swapped", lambda r, m: mint(m, body=b'{"employee_id": "e-999"}'), "body_mismatch"),
    ("plain JWT type", lambda r, m: sign_raw(r, good_claims(), typ="JWT"), "wrong_token_type"),
    ("no kid", lambda r, m: sign_raw(r, good_claims(), kid=None), "unknown_key"),
    ("unknown kid", lambda r, m: sign_raw(r, good_claims(), kid="nope"), "unknown_key"),
    (
        "lives an hour",
        lambda r, m: sign_raw(r, good_claims(exp=int(time.time()) + 3600)),
        "lifetime_too_long",
    ),
    ("no jti", lambda r, m: sign_raw(r, good_claims(jti=None)), "missing_claim"),
    ("no body hash", lambda r, m: sign_raw(r, good_claims(bastion_bh=None)), "missing_claim"),
    ("no sub", lambda r, m: sign_raw(r, good_claims(sub=None)), "missing_claim"),
]


@pytest.mark.parametrize(("case", "make", "reason"), REFUSALS, ids=[c[0] for c in REFUSALS])
def test_refused_tokens(
    ring: ToolKeyRing,
    minter: ToolTokenMinter,
    case: str,
    make: Callable[[ToolKeyRing, ToolTokenMinter], str],
    reason: str,
) -> None:
    verifier = BastionTokenVerifier(ring.jwks(), AUDIENCE, ISSUER)
    with pytest.raises(BastionTokenError) as err:
        verifier.verify(make(ring, minter), body=BODY)
    assert err.value.reason == reason
    assert err.value.status_code == 401


def test_a_replayed_token_is_refused(ring: ToolKeyRing, minter: ToolTokenMinter) -> None:
    verifier = BastionTokenVerifier(ring.jwks(), AUDIENCE, ISSUER)
    token = mint(minter)
    verifier.verify(token, body=BODY)
    with pytest.raises(BastionTokenError) as err:
        verifier.verify(token, body=BODY)
    assert err.value.reason == "replayed"


def test_a_token_raced_by_threads_is_accepted_once(ring: ToolKeyRing, minter: ToolTokenMinter) -> None:
    verifier = BastionTokenVerifier(ring.jwks(), AUDIENCE, ISSUER)
    token = mint(minter)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def attempt() -> None:
        start.wait()
        try:
            verifier.verify(token, body=BODY)
            outcomes.append("ok")
        except BastionTokenError as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(outcomes) == ["ok"] + ["replayed"] * 7


def test_a_refused_body_does_not_burn_the_token(ring: ToolKeyRing, minter: ToolTokenMinter) -> None:
    verifier = BastionTokenVerifier(ring.jwks(), AUDIENCE, ISSUER)
    token = mint(minter)
    with pytest.raises(BastionTokenError):
        verifier.verify(token, body=b"{}")
    assert verifier.verify(token, body=BODY).subject == "alice"


def test_memory_replay_cache_forgets_expired_ids_and_refuses_when_full() -> None:
    now = [1000.0]
    cache = MemoryReplayCache(max_entries=2, clock=lambda: now[0])
    assert not cache.seen("a", 1010)
    assert cache.seen("a", 1010)
    assert not cache.seen("b", 1020)
    with pytest.raises(ReplayCacheFull):
        cache.seen("c", 1030)
    now[0] = 1015.0  # "a" has expired and may be forgotten
    assert not cache.seen("c", 1030)
    assert len(cache) == 2


def test_a_full_replay_cache_refuses_with_503(ring: ToolKeyRing, minter: ToolTokenMinter) -> None:
    verifier = BastionTokenVerifier(ring.jwks(), AUDIENCE, ISSUER, replay_cache=MemoryReplayCache(max_entries=1))
    verifier.verify(mint(minter), body=BODY)
    with pytest.raises(BastionTokenError) as err:
        verifier.verify(mint(minter), body=BODY)
    assert (err.value.reason, err.value.status_code) == ("replay_unavailable", 503)


class _BrokenRedis:
    def set(self, *args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("down")


def test_a_failing_replay_store_refuses(ring: ToolKeyRing, minter: ToolTokenMinter) -> None:
    verifier = BastionTokenVerifier(ring.jwks(), AUDIENCE, ISSUER, replay_cache=RedisReplayCache(_BrokenRedis()))
    with pytest.raises(BastionTokenError) as err:
        verifier.verify(mint(minter), body=BODY)
    assert err.value.reason == "replay_unavailable"


@pytest.mark.services
def test_replicas_sharing_redis_refuse_a_replay_across_them(ring: ToolKeyRing, minter: ToolTokenMinter) -> None:
    from tests.support.services import REDIS_URL, need

    need("127.0.0.1", 6379, "Redis")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"test:jti:{time.perf_counter_ns()}:"
    one = BastionTokenVerifier(ring.jwks(), AUDIENCE, ISSUER, replay_cache=RedisReplayCache(client, prefix=prefix))
    two = BastionTokenVerifier(ring.jwks(), AUDIENCE, ISSUER, replay_cache=RedisReplayCache(client, prefix=prefix))
    token = mint(minter)
    one.verify(token, body=BODY)
    with pytest.raises(BastionTokenError) as err:
        two.verify(token, body=BODY)
    assert err.value.reason == "replayed"
    ttl = client.ttl(prefix + jwt.decode(token, options={"verify_signature": False})["jti"])
    assert 0 < ttl <= 120 + 31 + 1
    client.close()


class JWKSServer:
    """Serves a key ring's JWKS over HTTP and counts the fetches."""

    def __init__(self, ring: ToolKeyRing) -> None:
        self.ring = ring
        self.fetches = 0
        self.failing = False

    async def endpoint(self, request: Request) -> Response:
        self.fetches += 1
        if self.failing:
            return Response("down", status_code=503)
        return JSONResponse(self.ring.jwks())

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/.well-known/jwks.json", self.endpoint)])


@pytest.fixture
def jwks_url(ring: ToolKeyRing) -> Iterator[tuple[str, JWKSServer]]:
    server = JWKSServer(ring)
    with serve_in_thread(server.app()) as url:
        yield url + "/.well-known/jwks.json", server


def test_unknown_kid_refetches_the_jwks_once_per_interval(
    ring: ToolKeyRing, minter: ToolTokenMinter, jwks_url: tuple[str, JWKSServer]
) -> None:
    url, server = jwks_url
    clock = [0.0]
    keys = JWKSCache(url, min_refetch_seconds=30, clock=lambda: clock[0])
    verifier = BastionTokenVerifier(keys, AUDIENCE, ISSUER)
    verifier.verify(mint(minter), body=BODY)
    verifier.verify(mint(minter), body=BODY)
    assert server.fetches == 1  # cached

    clock[0] = 40.0
    ring.rotate()
    verifier.verify(mint(minter), body=BODY)  # new kid: fetched again
    assert server.fetches == 2

    for _ in range(3):  # junk kids do not cause a fetch each
        with pytest.raises(BastionTokenError) as err:
            verifier.verify(sign_raw(ring, good_claims(), kid="junk"), body=BODY)
        assert err.value.reason == "unknown_key"
    assert server.fetches == 2
    clock[0] = 80.0
    with pytest.raises(BastionTokenError):
        verifier.verify(sign_raw(ring, good_claims(), kid="junk"), body=BODY)
    assert server.fetches == 3


def test_rotation_keeps_the_previous_key_until_it_is_dropped(
    ring: ToolKeyRing, minter: ToolTokenMinter, jwks_url: tuple[str, JWKSServer]
) -> None:
    url, server = jwks_url
    clock = [0.0]
    verifier = BastionTokenVerifier(
        JWKSCache(url, cache_seconds=300, min_refetch_seconds=1, clock=lambda: clock[0]),
        AUDIENCE,
        ISSUER,
    )
    old_token = mint(minter)
    old_token_2 = mint(minter)
    ring.rotate()
    clock[0] = 400.0  # cache expired: the backend sees the rotated set
    assert verifier.verify(old_token, body=BODY).subject == "alice"  # previous key still published
    assert verifier.verify(mint(minter), body=BODY).subject == "alice"  # current key
    ring.rotate()  # the first key is dropped now
    clock[0] = 800.0
    with pytest.raises(BastionTokenError) as err:
        verifier.verify(old_token_2, body=BODY)
    assert err.value.reason == "unknown_key"
    assert server.fetches == 2


def test_an_unreachable_jwks_refuses_with_503(ring: ToolKeyRing, minter: ToolTokenMinter) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    verifier = BastionTokenVerifier(
        JWKSCache(f"http://127.0.0.1:{port}/jwks.json", timeout_seconds=1), AUDIENCE, ISSUER
    )
    with pytest.raises(BastionTokenError) as err:
        verifier.verify(mint(minter), body=BODY)
    assert (err.value.reason, err.value.status_code) == ("jwks_unavailable", 503)


def test_stale_keys_serve_through_a_short_outage_then_refuse(
    ring: ToolKeyRing, minter: ToolTokenMinter, jwks_url: tuple[str, JWKSServer]
) -> None:
    url, server = jwks_url
    clock = [0.0]
    keys = JWKSCache(
        url,
        cache_seconds=300,
        max_stale_seconds=600,
        min_refetch_seconds=10,
        clock=lambda: clock[0],
    )
    verifier = BastionTokenVerifier(keys, AUDIENCE, ISSUER)
    verifier.verify(mint(minter), body=BODY)
    server.failing = True
    clock[0] = 500.0
    assert verifier.verify(mint(minter), body=BODY).subject == "alice"
    clock[0] = 1000.0
    with pytest.raises(BastionTokenError) as err:
        verifier.verify(mint(minter), body=BODY)
    assert err.value.reason == "jwks_unavailable"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://bastion.example/.well-known/jwks.json", True),
        ("http://127.0.0.1:8080/.well-known/jwks.json", True),
        ("http://localhost/.well-known/jwks.json", True),
        ("http://bastion.example/.well-known/jwks.json", False),
        ("file:///etc/passwd", False),
        ("ftp://bastion.example/jwks.json", False),
        ("https:///no-host", False),
    ],
)
def test_jwks_urls_must_be_https_except_on_this_machine(url: str, allowed: bool) -> None:
    if allowed:
        JWKSCache(url)
    else:
        with pytest.raises(ValueError):
            JWKSCache(url)


def test_plain_http_jwks_can_be_allowed_explicitly() -> None:
    JWKSCache("http://bastion.internal/jwks.json", allow_insecure_http=True)


def test_a_redirected_jwks_is_not_followed(ring: ToolKeyRing, minter: ToolTokenMinter) -> None:
    from starlette.responses import RedirectResponse

    async def moved(request: Request) -> Response:
        return RedirectResponse("http://127.0.0.1:9/elsewhere.json")

    with serve_in_thread(Starlette(routes=[Route("/jwks.json", moved)])) as url:
        verifier = BastionTokenVerifier(JWKSCache(url + "/jwks.json", timeout_seconds=2), AUDIENCE, ISSUER)
        with pytest.raises(BastionTokenError) as err:
            verifier.verify(mint(minter), body=BODY)
    assert err.value.reason == "jwks_unavailable"


def test_jwks_ignores_symmetric_and_unknown_keys(ring: ToolKeyRing) -> None:
    doc = {
        "keys": [
            {"kty": "oct", "kid": "shared", "k": "c2VjcmV0", "alg": "HS256"},
            {"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB"},
            *ring.jwks()["keys"],
        ]
    }
    verifier = BastionTokenVerifier(doc, AUDIENCE, ISSUER)
    token = jwt.encode(good_claims(), b"s" * 32, algorithm="HS256", headers={"kid": "shared", "typ": "at+jwt"})
    with pytest.raises(BastionTokenError) as err:
        verifier.verify(token, body=BODY)
    assert err.value.reason == "unknown_key"


def _backend_app(verifier: BastionTokenVerifier) -> Starlette:
    caller_of = require_bastion_caller(verifier)

    async def echo(request: Request) -> Response:
        caller = await caller_of(request)
        payload = await request.json()  # the body is still readable after verification
        return JSONResponse({"sub": caller.subject, "rid": caller.request_id, "payload": payload})

    return Starlette(routes=[Route("/echo", echo, methods=["POST"])])


def test_the_gateway_publishes_the_jwks_with_a_cache_lifetime(ring: ToolKeyRing, minter: ToolTokenMinter) -> None:
    async def jwks(request: Request) -> Response:
        return minter.jwks_response()

    app = Starlette(routes=[Route("/.well-known/jwks.json", jwks)])
    with serve_in_thread(app) as url:
        resp = httpx.get(url + "/.well-known/jwks.json")
        assert resp.headers["cache-control"] == "public, max-age=300"
        verifier = BastionTokenVerifier(url + "/.well-known/jwks.json", AUDIENCE, ISSUER)
        assert verifier.verify(mint(minter), body=BODY).subject == "alice"


def test_starlette_helper_over_http(ring: ToolKeyRing, minter: ToolTokenMinter) -> None:
    verifier = BastionTokenVerifier(ring.jwks(), AUDIENCE, ISSUER)
    with serve_in_thread(_backend_app(verifier)) as url, httpx.Client(base_url=url) as client:
        ok = client.post("/echo", content=BODY, headers={"Authorization": f"Bearer {mint(minter)}"})
        assert ok.status_code == 200
        assert ok.json() == {"sub": "alice", "rid": "req_abc", "payload": {"employee_id": "e-104"}}

        missing = client.post("/echo", content=BODY)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")

        swapped = client.post(
            "/echo",
            content=b'{"employee_id": "e-1"}',
            headers={"Authorization": f"Bearer {mint(minter)}"},
        )
        assert swapped.status_code == 401
        assert 'error="invalid_token"' in swapped.headers["www-authenticate"]
        assert "body_mismatch" in swapped.headers["www-authenticate"]


def test_required_scopes_answer_403_with_a_step_up_challenge(ring: ToolKeyRing, minter: ToolTokenMinter) -> None:
    verifier = BastionTokenVerifier(ring.jwks(), AUDIENCE, ISSUER)
    needs_write = require_bastion_caller(verifier, scopes=["hr.reviews.read", "hr.reviews.write"])
    needs_read = require_bastion_caller(verifier, scopes=["hr.reviews.read"])

    async def write(request: Request) -> Response:
        return JSONResponse({"sub": (await needs_write(request)).subject})

    async def read(request: Request) -> Response:
        return JSONResponse({"sub": (await needs_read(request)).subject})

    app = Starlette(routes=[Route("/w", write, methods=["POST"]), Route("/r", read, methods=["POST"])])
    with serve_in_thread(app) as url, httpx.Client(base_url=url) as client:
        denied = client.post("/w", content=BODY, headers={"Authorization": f"Bearer {mint(minter)}"})
        assert denied.status_code == 403
        assert denied.headers["www-authenticate"] == (
            'Bearer realm="bastion", error="insufficient_scope", scope="hr.reviews.write"'
        )
        ok = client.post("/r", content=BODY, headers={"Authorization": f"Bearer {mint(minter)}"})
        assert ok.status_code == 200


def test_fastapi_dependency(ring: ToolKeyRing, minter: ToolTokenMinter) -> None:
    fastapi = pytest.importorskip("fastapi")
    verifier = BastionTokenVerifier(ring.jwks(), AUDIENCE, ISSUER)
    app = fastapi.FastAPI()

    @app.post("/who")  # type: ignore[untyped-decorator]
    async def who(
        caller: Any = fastapi.Depends(require_bastion_caller(verifier)),
    ) -> dict[str, Any]:
        return {"sub": caller.subject}

    with serve_in_thread(app) as url, httpx.Client(base_url=url) as client:
        ok = client.post("/who", content=BODY, headers={"Authorization": f"Bearer {mint(minter)}"})
        assert ok.json() == {"sub": "alice"}
        assert client.post("/who", content=BODY).status_code == 401


def test_the_backend_module_imports_nothing_else_of_bastion() -> None:
    code = (
        "import sys, bastion.backend as b; b.require_bastion_caller; "
        "print(sorted(m for m in sys.modules if m.startswith('bastion')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout)  # a printed list of module names
    assert all(m == "bastion" or m.startswith("bastion.backend") for m in loaded), loaded
    assert "bastion.backend.integration" in loaded
