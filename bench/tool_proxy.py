"""Added latency of a proxied tool call: through Bastion's REST door vs straight to the backend.

    python bench/tool_proxy.py [--iterations 400] [--baseline-src DIR]

A small backend (Starlette under uvicorn, 127.0.0.1) answers a JSON POST. The
same call is made directly and through ``POST /v1/tools/{name}/invoke`` on a
gateway (uvicorn, 127.0.0.1), one call at a time, interleaved; client, gateway
and backend each run in their own process. The proxied path runs everything a
real call does: API-key identification, schema validation, argument scan,
policy (default Cedar set), a token minted for the
exact body (EdDSA), the result scan (PII, secrets, injection) and the audit
commit (SQLite). Also reports each step's own p50, measured in this process.
Writes bench/results/tool_proxy.json.

With ``--baseline-src DIR`` a second gateway runs the ``bastion`` package found
in ``DIR`` (e.g. an older checkout's ``src``) next to this one, and the three
calls (direct, this gateway, the baseline gateway) are interleaved in one run,
in rotating order, so both gateways see the same machine load.
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
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
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


def bench_settings(root: Path, gw_url: str, be_url: str) -> Settings:
    """The gateway's configuration: one HTTP tool on the backend."""
    return Settings.model_validate({
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


def build_service(settings: Settings) -> tuple[Any, ToolService]:
    """The runtime and its tool service, as the gateway builds them."""
    rt = build_runtime(settings)
    assert rt.tools is not None
    return rt, rt.tools


def run_backend() -> None:
    """Child process: the backend; prints its URL, serves until told to stop (a line on stdin)."""
    with serve(backend(), _socket()) as url:
        print(url, flush=True)
        sys.stdin.readline()


def run_gateway(root: Path, be_url: str) -> None:
    """Child process: the gateway with the tool proxy mounted; prints its URL and a key, serves until killed."""
    sock = _socket()
    gw_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    rt, _ = build_service(bench_settings(root, gw_url, be_url))
    # The tool routes and the service's start and stop come with the application, as in the gateway.
    app = create_app(rt.settings, rt)
    timings: list[float] = []

    async def timed_app(scope: Any, receive: Any, send: Any) -> None:
        # The gateway's own time per request, from the first ASGI call to the last byte handed back.
        t0 = time.perf_counter()
        try:
            await app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                timings.append(time.perf_counter() - t0)

    with serve(timed_app, sock):
        key = rt.keys.create("sam.okafor", groups=["staff"])[0]
        print(gw_url, key, flush=True)
        sys.stdin.readline()
        print(json.dumps(summary(timings[WARMUP:])), flush=True)


def _child(*args: str, src: str | None = None) -> tuple[subprocess.Popen[str], list[str]]:
    env = None
    if src is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line:
        raise RuntimeError(f"{args[1]} did not start")
    return proc, line


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--role", choices=["client", "backend", "gateway"], default="client")
    parser.add_argument("--root")
    parser.add_argument("--backend-url")
    parser.add_argument("--baseline-src", help="a directory holding another version of the bastion package")
    args = parser.parse_args()
    if args.role == "backend":
        return run_backend()
    if args.role == "gateway":
        return run_gateway(Path(args.root), args.backend_url)
    n = args.iterations
    root = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    procs: list[subprocess.Popen[str]] = []
    try:
        be, (be_url,) = _child("--role", "backend")
        procs.append(be)
        gw, (gw_url, key) = _child("--role", "gateway", "--root", str(root / "gw"), "--backend-url", be_url)
        procs.append(gw)
        base: subprocess.Popen[str] | None = None
        if args.baseline_src:
            base, (base_url, base_key) = _child("--role", "gateway", "--root", str(root / "base"), "--backend-url",
                                                be_url, src=str(Path(args.baseline_src).resolve()))
            procs.append(base)
        body = encode_body(ARGUMENTS)
        with contextlib.ExitStack() as stack:
            direct_client = stack.enter_context(httpx.Client(base_url=be_url, timeout=10))

            def via(url: str, credential: str) -> Callable[[], None]:
                client = stack.enter_context(
                    httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {credential}"}))

                def proxied() -> None:
                    r = client.post("/v1/tools/notes_search/invoke", json=ARGUMENTS)
                    assert r.status_code == 200, r.text

                return proxied

            def direct() -> None:
                r = direct_client.post("/search", content=body, headers={"Content-Type": "application/json"})
                assert r.status_code == 200

            calls: dict[str, Callable[[], None]] = {"direct": direct, "proxied": via(gw_url, key)}
            if base is not None:
                calls["baseline_proxied"] = via(base_url, base_key)
            for _ in range(WARMUP):
                for call in calls.values():
                    call()
            samples: dict[str, list[float]] = {name: [] for name in calls}
            order = list(calls)
            for i in range(n):
                for name in order[i % len(order):] + order[:i % len(order)]:
                    samples[name] += timed(calls[name], 1)
        gateway_own = _stop_gateway(gw)
        base_own = _stop_gateway(base) if base is not None else None
        invoke = invoke_p50(root / "gw" / "data" / "bastion.db")
        settings = bench_settings(root / "steps", "http://127.0.0.1:1", be_url)
        rt, service = build_service(settings)
        steps = step_costs(service, rt, n)
        steps["proxy_invoke_incl_backend"] = invoke
        steps["gateway_request_incl_backend"] = gateway_own["p50_ms"]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(10)

    direct_s, proxied_s = summary(samples["direct"]), summary(samples["proxied"])
    result: dict[str, Any] = {
        "benchmark": "tool_proxy",
        "iterations": n,
        "direct": direct_s,
        "proxied": proxied_s,
        **added(proxied_s, direct_s),
        "steps_p50_ms": steps,
        "target_added_p50_ms": 2.0,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "notes": "client, gateway and backend in three processes on 127.0.0.1; audit commits to SQLite with "
                 "synchronous=" + settings.storage.sqlite_synchronous,
    }
    if base_own is not None:
        base_s = summary(samples["baseline_proxied"])
        result["baseline"] = {"src": args.baseline_src, "proxied": base_s, **added(base_s, direct_s),
                              "gateway_request_incl_backend": base_own["p50_ms"]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def added(proxied: dict[str, float], direct: dict[str, float]) -> dict[str, float]:
    """What the proxy adds over the direct call, per percentile."""
    return {f"added_{q}_ms": round(proxied[f"{q}_ms"] - direct[f"{q}_ms"], 3) for q in ("p50", "p90", "p99")}


def _stop_gateway(proc: subprocess.Popen[str]) -> dict[str, float]:
    """Tell a gateway child to stop; its own per-request timings."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("stop\n")
    proc.stdin.flush()
    own: dict[str, float] = json.loads(proc.stdout.readline())
    return own


def invoke_p50(db_path: Path) -> float:
    """p50 of the time the proxy spent in each call up to its audit record (backend call included)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        rows = conn.execute("SELECT body FROM audit_events WHERE kind = 'tool_call'").fetchall()
    latencies = sorted(json.loads(r[0])["latency_ms"] for r in rows)
    return round(latencies[len(latencies) // 2], 3)


def step_costs(service: ToolService, rt: Any, n: int) -> dict[str, float]:
    """p50 of each step of the proxied path, in this process."""
    proxy = service.proxy
    tool = proxy.registry.get("notes_search")
    text = json.dumps(ANSWER)

    key = rt.keys.create("sam.okafor", groups=["staff"])[0]

    async def run() -> dict[str, float]:
        await rt.audit.start()
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
        await rt.audit.stop()
        return {k: pct(v, 0.5) for k, v in out.items()}

    return asyncio.run(run())


if __name__ == "__main__":
    main()
