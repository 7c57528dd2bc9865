"""Benchmark the limiter: admit throughput and latency per backend, accuracy across processes.

    .venv/bin/python bench/limits.py [--redis-url URL] [--out bench/results/limits.json]

Latency is one ``admit`` (three rules: per-user requests, per-key tokens, global
spend) measured sequentially; throughput is with 32 admits in flight. Accuracy
starts two processes that fire concurrent admits at one global limit in Redis
and compares the number admitted with the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from bastion.context import Principal, RequestContext
from bastion.limits import Limiter, LimitSettings, ModelPrice, make_backend

RULES = [
    {"name": "rpm", "scope": "user", "metric": "requests", "window": "minute", "limit": 10**6},
    {"name": "tpm", "scope": "key", "metric": "tokens", "window": "minute", "limit": 10**9},
    {"name": "spend", "scope": "global", "metric": "spend", "window": "day", "limit": 10**6},
]
BODY = {"model": "m", "max_tokens": 256, "messages": [{"role": "user", "content": "x" * 400}]}
PRICES = {"m": ModelPrice(input_per_mtok=2.5, output_per_mtok=10.0)}
CONCURRENCY = 32
#: (limit, admits per process, window). A calendar window is a fixed count, so admitted must
#: equal the limit; a rolling window also refills while the run lasts (one per window/limit).
ACCURACY_RUNS = ((100, 150, "day"), (1000, 1500, "day"), (5000, 4000, "day"), (100, 150, "hour"))

REPLICA = """
import asyncio, sys, time
from bastion.context import Principal, RequestContext
from bastion.errors import RateLimited
from bastion.limits import LimitSettings, Limiter, make_backend
url, prefix = sys.argv[1], sys.argv[2]
n, limit, start, window = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
async def main():
    s = LimitSettings.model_validate({"backend": "redis", "redis_url": url, "key_prefix": prefix,
        "redis_timeout_seconds": 5, "rules": [{"name": "g", "scope": "global",
        "metric": "requests", "window": window, "limit": limit}]})
    lim = Limiter(s, make_backend(s))
    await lim.healthy()
    while time.time() < start:
        await asyncio.sleep(0.002)
    async def one(i):
        try:
            await lim.admit(RequestContext(endpoint="/v1/chat/completions",
                                           principal=Principal(subject=f"p{i}")))
        except RateLimited:
            return 0
        return 1
    print(sum(await asyncio.gather(*(one(i) for i in range(n)))))
    await lim.aclose()
asyncio.run(main())
"""


def _ctx(i: int) -> RequestContext:
    principal = Principal(subject=f"user{i % 1000}", key_id=f"key{i % 100}", tenant="t")
    return RequestContext(endpoint="/v1/chat/completions", principal=principal, body=dict(BODY))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(settings: LimitSettings, n: int) -> dict[str, Any]:
    lim = Limiter(settings, make_backend(settings), prices=PRICES)
    for i in range(200):  # warm connections and scripts
        await lim.admit(_ctx(i))
    lat = []
    for i in range(n):
        ctx = _ctx(i)
        t0 = time.perf_counter_ns()
        await lim.admit(ctx)
        lat.append((time.perf_counter_ns() - t0) / 1000)
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with sem:
            await lim.admit(_ctx(i))

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    await lim.aclose()
    return {
        "admits": n,
        "sequential_admits_per_second": round(n / (sum(lat) / 1e6), 1),
        f"concurrent{CONCURRENCY}_admits_per_second": round(n / elapsed, 1),
        "p50_us": round(statistics.median(lat), 1),
        "p99_us": round(_pct(lat, 0.99), 1),
    }


def _accuracy(url: str, limit: int, per_process: int, window: str) -> dict[str, Any]:
    prefix = f"bastion-bench:{uuid.uuid4().hex[:12]}"
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REPLICA, url, prefix, str(per_process), str(limit), str(start)]
            + [window],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    counts = [int(p.communicate(timeout=120)[0].strip()) for p in procs]
    _cleanup(url, prefix)
    return {
        "limit": limit,
        "window": window,
        "attempted": 2 * per_process,
        "admitted_per_process": counts,
        "admitted": sum(counts),
        "exact": sum(counts) == limit,
    }


def _cleanup(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def main() -> None:
    """Run every benchmark and write the JSON results."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--admits", type=int, default=20000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "limits.json"))
    args = ap.parse_args()
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus_shared": True},
        "rules_per_admit": len(RULES),
    }
    mem = LimitSettings.model_validate({"backend": "memory", "rules": RULES})
    results["memory"] = asyncio.run(_measure(mem, args.admits))
    try:
        redis.Redis.from_url(args.redis_url, socket_timeout=1).ping()
    except (redis.RedisError, OSError) as exc:
        results["redis"] = {"skipped": f"unreachable: {type(exc).__name__}"}
    else:
        prefix = f"bastion-bench:{uuid.uuid4().hex[:12]}"
        red = LimitSettings.model_validate(
            {"backend": "redis", "redis_url": args.redis_url, "key_prefix": prefix, "rules": RULES}
        )
        try:
            results["redis"] = asyncio.run(_measure(red, max(1000, args.admits // 4)))
        finally:
            _cleanup(args.redis_url, prefix)
        results["accuracy_two_processes"] = [
            _accuracy(args.redis_url, limit, per, window) for limit, per, window in ACCURACY_RUNS
        ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
