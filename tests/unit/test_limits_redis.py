"""Redis-only behaviour: exact limits across processes, namespaced keys with TTLs, outages."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bastion.context import Principal, RequestContext
from bastion.errors import LimitsUnavailable
from bastion.limits import Limiter, LimitSettings, make_backend

REDIS_URL = os.environ.get("BASTION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# One replica: waits for a shared start time, then fires N concurrent admits and prints
# how many were admitted.
REPLICA = """
import asyncio, sys, time
from bastion.context import Principal, RequestContext
from bastion.errors import RateLimited
from bastion.limits import LimitSettings, Limiter, make_backend

url, prefix = sys.argv[1], sys.argv[2]
n, limit, start = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])

async def main():
    s = LimitSettings.model_validate({"backend": "redis", "redis_url": url, "key_prefix": prefix,
        "redis_timeout_seconds": 5, "rules": [{"name": "g", "scope": "global",
        "metric": "requests", "window": "hour", "limit": limit}]})
    lim = Limiter(s, make_backend(s))
    assert await lim.healthy()
    while time.time() < start:
        await asyncio.sleep(0.002)
    async def one(i):
        try:
            await lim.admit(RequestContext(endpoint="/v1/chat/completions",
                                           principal=Principal(subject=f"p{i}")))
        except RateLimited:
            return 0
        return 1
    got = sum(await asyncio.gather(*(one(i) for i in range(n))))
    await lim.aclose()
    print(got)

asyncio.run(main())
"""


def _redis_or_skip() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
    except (redis.RedisError, OSError) as exc:
        if os.environ.get("BASTION_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis at {REDIS_URL} is required but unreachable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} unreachable")
    return REDIS_URL


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh key prefix on a reachable Redis, with its keys removed afterwards."""
    url = _redis_or_skip()
    value = f"bastion-test:{uuid.uuid4().hex[:12]}"
    yield value
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{value}:*"))
    if keys:
        client.delete(*keys)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _settings(url: str, prefix: str = "bastion-test:x", **extra: Any) -> LimitSettings:
    rules = [
        {"name": "rpm", "scope": "user", "metric": "requests", "window": "minute", "limit": 5},
        {"name": "tpm", "scope": "key", "metric": "tokens", "window": "minute", "limit": 50000},
    ]
    return LimitSettings.model_validate(
        {"backend": "redis", "redis_url": url, "key_prefix": prefix, "rules": rules, **extra}
    )


def _ctx(subject: str = "alice@example.com") -> RequestContext:
    return RequestContext(
        endpoint="/v1/chat/completions",
        principal=Principal(subject=subject, key_id="key-1", email=subject),
        body={"model": "m", "messages": [{"role": "user", "content": "hello"}]},
    )


@pytest.mark.slow
def test_two_processes_admit_exactly_the_global_limit(prefix: str) -> None:
    limit, per_process = 100, 150
    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                REPLICA,
                REDIS_URL,
                prefix,
                str(per_process),
                str(limit),
                str(start),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    counts = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        counts.append(int(out.strip()))
    assert sum(counts) == limit, counts


def test_keys_are_namespaced_hashed_and_expire(prefix: str) -> None:
    async def main() -> None:
        settings = _settings(REDIS_URL, prefix)
        lim = Limiter(settings, make_backend(settings))
        adm = await lim.admit(_ctx())
        await lim.settle(adm, None)
        await lim.aclose()

    asyncio.run(main())
    client = redis.Redis.from_url(REDIS_URL)
    keys = [k.decode() for k in client.scan_iter(f"{prefix}:*")]
    assert len(keys) == 2
    for k in keys:
        assert "alice" not in k and "key-1" not in k
        assert 0 < client.pttl(k) <= 61_000


def test_redis_down_fails_closed_by_default() -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"

    async def main() -> None:
        settings = _settings(url, redis_timeout_seconds=0.3)
        lim = Limiter(settings, make_backend(settings))
        with pytest.raises(LimitsUnavailable) as err:
            await lim.admit(_ctx())
        assert err.value.status_code == 503 and err.value.code == "limits_unavailable"
        assert await lim.healthy() is False
        status = lim.status()
        assert status["ready"] is False and status["healthy"] is False
        assert status["on_backend_error"] == "fail_closed"
        ready, detail = await lim.readiness()
        assert ready is False and "fail_closed" in detail
        await lim.aclose()

    asyncio.run(main())


def test_redis_down_fails_open_when_configured() -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    settings = _settings(url, on_backend_error="fail_open", redis_timeout_seconds=0.3)

    async def main() -> None:
        lim = Limiter(settings, make_backend(settings))
        alerts = []
        for _ in range(10):  # well past the limit of 5 per minute: nothing is counted
            adm = await lim.admit(_ctx())
            assert adm.degraded and not adm.metered
            alerts += lim.take_alerts(adm)
            meter = lim.meter(adm)
            assert await meter.add(tokens=100_000)
            alerts += await lim.settle(adm, meter.usage())
        # The outage is reported, but not once per request.
        assert [a.kind for a in alerts] == ["limits_unavailable"]
        assert lim.status()["ready"] is True and lim.status()["healthy"] is False
        assert await lim.readiness() == (
            True,
            "redis counters unreachable; admitting unmetered (fail_open)",
        )
        await lim.aclose()

    asyncio.run(main())


def test_a_silent_redis_times_out_and_fails_closed() -> None:
    async def main() -> None:
        held: list[asyncio.StreamWriter] = []

        async def swallow(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            held.append(w)  # accept the connection and never answer

        server = await asyncio.start_server(swallow, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        url = f"redis://127.0.0.1:{port}/0"
        settings = _settings(url, redis_timeout_seconds=0.2)
        lim = Limiter(settings, make_backend(settings))
        t0 = time.perf_counter()
        with pytest.raises(LimitsUnavailable):
            await lim.admit(_ctx())
        assert time.perf_counter() - t0 < 2.0
        for w in held:
            w.close()
        server.close()
        await lim.aclose()

    asyncio.run(main())


def test_recovery_is_reported_healthy(prefix: str) -> None:
    async def main() -> None:
        settings = _settings(REDIS_URL, prefix)
        lim = Limiter(settings, make_backend(settings))
        assert await lim.readiness() == (True, "redis counters reachable")
        assert lim.status() == {
            "backend": "redis",
            "healthy": True,
            "on_backend_error": "fail_closed",
            "ready": True,
            "last_error": None,
            "rules": 2,
        }
        await lim.aclose()

    asyncio.run(main())
