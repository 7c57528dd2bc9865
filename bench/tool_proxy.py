"""Added latency of a proxied tool call: through Bastion's REST door vs straight to the backend.

    python bench/tool_proxy.py [--iterations 400]

A small backend (Starlette under uvicorn, 127.0.0.1) answers a JSON POST. The
same call is made directly and through ``POST /v1/tools/{name}/invoke`` on an
in-process gateway (uvicorn, 127.0.0.1), one call at a time, interleaved. The
proxied path runs everything a real call does: API-key identification, schema
validation, argument scan, policy (default Cedar set), a token minted for the
exact body (EdDSA), the result scan (PII, secrets, injection) and the audit
commit (SQLite, synchronous=FULL). Every server shares this one process and
its GIL with the client, so the figures are an upper bound on the proxy's cost.
Also reports each step's own p50, measured in the same process.
Writes bench/results/tool_proxy.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bastion.app import build_runtime, create_app
from bastion.audit.events import make_event
from bastion.identity import Authenticator
from bastion.policy.model import PolicyRequest
from bastion.settings import Settings
from bastion.tools.proxy import ToolCall
from bastion.tools.registry import scopes_with_roles
from bastion.tools.rest import encode_body
from bastion.tools.service import ToolService

RESULTS = Path(__file__).resolve().parent / "results" / "tool_proxy.json"
WARMUP = 50
ARGUMENTS = {"query": "quarterly review notes for the platform team", "limit": 5}
ANSWER = {"items": [{"id": i, "title": f"Planning notes {i}", "status": "open"} for i in range(5)]}


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def serve(app: Any, sock: socket.socket) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def backend() -> Starlette:
    async def search(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse(ANSWER)

    return Starlette(routes=[Route("/search", search, methods=["POST"])])


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": pct(samples, 0.5), "p90_ms": pct(samples, 0.9), "p99_ms": pct(samples, 0.99),
            "mean_ms": round(statistics.fmean(samples) * 1000, 3)}


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=400)
    n = parser.parse_args().iterations
    root = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    gw_sock = _socket()
    gw_url = f"http://127.0.0.1:{gw_sock.getsockname()[1]}"
    with contextlib.ExitStack() as stack:
        be_url = stack.enter_context(serve(backend(), _socket()))
        settings = Settings.model_validate({
            "data_dir": str(root / "data"),
            "providers": [{"name": "builtin", "type": "echo"}],
            "models": [{"name": "echo", "provider": "builtin"}],
            "policy": {"reload_seconds": 0},
            "tools": {
                "proxy": {"public_url": gw_url, "role_scopes": {"staff": ["notes.read"]}},
                "registry": [{
                    "name": "notes_search", "owner": "it", "audience": "https://notes.internal",
                    "base_url": be_url, "operation": {"method": "POST", "path": "/search"},
                    "scopes": ["notes.read"],
                    "arguments_schema": {"type": "object", "properties": {
                        "query": {"type": "string", "maxLength": 500}, "limit": {"type": "integer"}}},
                }],
            },
        })
        rt = build_runtime(settings)
        service = ToolService.build(settings, db=rt.db, audit=rt.audit.append,
                                    authenticator=Authenticator(rt.keys), http=rt.http, policy=rt.policies,
                                    scan=rt.protection.scanner.scan if rt.protection else None)
        app = create_app(settings, rt)
        app.router.routes.extend(service.routes())
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(a: Any) -> AsyncIterator[None]:
            async with inner(a):
                await service.start()
                try:
                    yield
                finally:
                    await service.stop()

        app.router.lifespan_context = lifespan
        stack.enter_context(serve(app, gw_sock))
        key = rt.keys.create("sam.okafor", groups=["staff"])[0]
        body = encode_body(ARGUMENTS)
        direct_client = stack.enter_context(httpx.Client(base_url=be_url, timeout=10))
        proxy_client = stack.enter_context(httpx.Client(base_url=gw_url, timeout=10,
                                                        headers={"Authorization": f"Bearer {key}"}))

        def direct() -> None:
            r = direct_client.post("/search", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 200

        def proxied() -> None:
            r = proxy_client.post("/v1/tools/notes_search/invoke", json=ARGUMENTS)
            assert r.status_code == 200, r.text

        for _ in range(WARMUP):
            direct()
            proxied()
        d_samples: list[float] = []
        p_samples: list[float] = []
        for _ in range(n):
            d_samples += timed(direct, 1)
            p_samples += timed(proxied, 1)
        steps = step_costs(service, rt, key, n)
        steps["proxy_invoke_incl_backend"] = invoke_p50(rt)

    direct_s, proxied_s = summary(d_samples), summary(p_samples)
    result = {
        "benchmark": "tool_proxy",
        "iterations": n,
        "direct": direct_s,
        "proxied": proxied_s,
        "added_p50_ms": round(proxied_s["p50_ms"] - direct_s["p50_ms"], 3),
        "added_p90_ms": round(proxied_s["p90_ms"] - direct_s["p90_ms"], 3),
        "steps_p50_ms": steps,
        "target_added_p50_ms": 2.0,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "notes": "client, gateway and backend share one process; audit commits to SQLite with synchronous="
                 + settings.storage.sqlite_synchronous,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def invoke_p50(rt: Any) -> float:
    """p50 of the time the proxy spent in each call up to its audit record (backend call included)."""
    from sqlalchemy import select

    from bastion.storage.tables import audit_events

    with rt.db.engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.body).where(audit_events.c.kind == "tool_call")).all()
    latencies = sorted(json.loads(r[0])["latency_ms"] for r in rows)
    return round(latencies[len(latencies) // 2], 3)


def step_costs(service: ToolService, rt: Any, key: str, n: int) -> dict[str, float]:
    """p50 of each step of the proxied path, in this process."""
    proxy = service.proxy
    tool = proxy.registry.get("notes_search")
    text = json.dumps(ANSWER)

    async def run() -> dict[str, float]:
        principal = await service.authenticator.authenticate(f"Bearer {key}")
        principal = scopes_with_roles(principal, service.settings.tools.proxy.role_scopes)
        out: dict[str, list[float]] = {k: [] for k in (
            "identify", "validate_and_scan_arguments", "policy", "mint_token", "guard_result", "audit_commit")}
        engine = service.policy.engine
        for _ in range(n):
            t0 = time.perf_counter()
            await service.authenticator.authenticate(f"Bearer {key}")
            t1 = time.perf_counter()
            call = ToolCall(principal, "notes_search", dict(ARGUMENTS), "req_bench", "rest", "bench")
            findings = proxy._check_arguments(tool, call)
            t2 = time.perf_counter()
            engine.decide(PolicyRequest(principal, "call_tool", tool.resource(), {"approved": False}))
            t3 = time.perf_counter()
            service.minter.mint_tool_token(principal, tool.settings, actor="bench", scopes=None,
                                           request_id="req_bench", body=encode_body(ARGUMENTS))
            t4 = time.perf_counter()
            proxy._guard(tool, text)
            t5 = time.perf_counter()
            await rt.audit.append(make_event("bench", findings=len(findings)))
            t6 = time.perf_counter()
            for name, dt in zip(out, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
                out[name].append(dt)
        return {k: pct(v, 0.5) for k, v in out.items()}

    # The audit writer is a thread fed by a queue, so any loop may await its commits.
    return asyncio.run(run())


if __name__ == "__main__":
    main()
