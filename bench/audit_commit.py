"""Audit commit throughput and latency: appends per second and per-append wait, SQLite and PostgreSQL.

    python bench/audit_commit.py [--seconds 3] [--pg postgresql://postgres@127.0.0.1:5432/test]

Each run starts a fresh chain, runs N concurrent tasks that append request-sized events
for a fixed time, and records how long each caller waited for its commit. Writes
bench/results/audit_commit.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bastion.audit.events import build_request_event
from bastion.audit.signing import AuditSigner
from bastion.audit.verify import verify_chain
from bastion.audit.writer import AuditLog
from bastion.context import Decision, Finding, Principal, RequestContext
from bastion.settings import AuditSettings
from bastion.storage import Database, open_database

RESULTS = Path(__file__).resolve().parent / "results" / "audit_commit.json"
CONCURRENCY = (1, 16, 64)


def _event() -> dict[str, Any]:
    ctx = RequestContext(endpoint="/v1/chat/completions", client_ip="10.0.0.1")
    ctx.principal = Principal(subject="alice@example.com", key_id="key_abc", groups=("eng",))
    ctx.model, ctx.provider, ctx.status = "gpt-4o", "openai", 200
    ctx.findings.append(Finding("EMAIL", 10, 27, 0.95, "email", ("pii",), location="messages[0]"))
    ctx.decisions.append(Decision("policy", "redact", "PII is masked for this group"))
    ctx.prompt_text = "user: please summarise the mail from [EMAIL_1] " * 8
    ctx.response_text = "Here is a summary of the message. " * 12
    return build_request_event(ctx, "redacted")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(db: Database, signer: AuditSigner, concurrency: int, seconds: float) -> dict[str, Any]:
    log = AuditLog(db, signer, AuditSettings.model_validate({"commit_timeout_seconds": 30}))
    await log.start()
    waits: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            event = _event()
            t = time.perf_counter()
            await log.append(event)
            waits.append(time.perf_counter() - t)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    stats = log.stats()
    await log.stop()
    return {
        "concurrency": concurrency,
        "events": len(waits),
        "appends_per_second": round(len(waits) / elapsed, 1),
        "transactions": stats["transactions"],
        "events_per_transaction": round(stats["events"] / max(1, stats["transactions"]), 2),
        "commit_wait_ms": {
            "p50": round(statistics.median(waits) * 1000, 3),
            "p99": round(_pct(waits, 0.99) * 1000, 3),
            "max": round(max(waits) * 1000, 3),
        },
    }


def _pg_reachable(url: str) -> bool:
    host_port = url.split("@", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 5432)), timeout=1.0):
            return True
    except OSError:
        return False


def _bench_backend(url: str, signer: AuditSigner, seconds: float, **open_kw: Any) -> list[dict[str, Any]]:
    runs = []
    for c in CONCURRENCY:
        db = open_database(url, **open_kw)
        try:
            runs.append(asyncio.run(_run(db, signer, c, seconds)))
            assert verify_chain(db, [signer.public_key]).ok
            with db.engine.begin() as conn:  # a fresh chain per run
                conn.exec_driver_sql("DELETE FROM audit_events")
                conn.exec_driver_sql("DELETE FROM audit_checkpoints")
        finally:
            db.close()
        print(url.split(":", 1)[0], runs[-1])
    return runs


def main() -> None:
    """Run the benchmark and write the JSON results."""
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--pg", default=os.environ.get("BASTION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    args = p.parse_args()
    signer = AuditSigner.generate()
    results: dict[str, Any] = {
        "benchmark": "audit_commit",
        "seconds_per_run": args.seconds,
        # The load average says how much else ran: on a shared machine, figures move with it.
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_before": os.getloadavg()},
        "backends": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        # The gateway's default (commits in the event loop), then a disk flush per commit (a writer thread).
        results["backends"]["sqlite"] = _bench_backend(f"sqlite:///{tmp}/bench.db", signer, args.seconds,
                                                       sqlite_synchronous="normal")
        results["backends"]["sqlite_synchronous_full"] = _bench_backend(
            f"sqlite:///{tmp}/bench-full.db", signer, args.seconds, sqlite_synchronous="full")
    if _pg_reachable(args.pg):
        import psycopg

        schema = "bench_" + uuid.uuid4().hex[:10]
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            url = f"{args.pg}?options=-csearch_path%3D{schema}"
            results["backends"]["postgresql"] = _bench_backend(url, signer, args.seconds)
        finally:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    else:
        results["backends"]["postgresql"] = "skipped: not reachable"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
