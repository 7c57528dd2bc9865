"""A writer killed with SIGKILL at random moments loses no acknowledged event; the chain holds."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bastion.audit.signing import AuditSigner
from bastion.audit.verify import verify_chain
from bastion.storage import open_database
from bastion.storage.tables import audit_events

ROOT = Path(__file__).resolve().parents[2]

#: Kill rounds; each restarts the writer on the same database.
ROUNDS = 4


def _run_until_killed(url: str, key: Path, prefix: str, seconds: float) -> list[tuple[int, str]]:
    """Start the writer, read acknowledgements for ``seconds``, SIGKILL it, return full lines."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.audit_crash_writer",
            url,
            str(key),
            "--workers",
            "16",
            "--prefix",
            prefix,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    buf = b""
    # The clock starts at the first acknowledgement, so the kill lands while events flow.
    start_by = time.monotonic() + 60
    deadline: float | None = None
    try:
        while deadline is None or time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.02)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                if deadline is None:
                    deadline = time.monotonic() + seconds
            if deadline is None and time.monotonic() > start_by:
                pytest.fail("the writer never acknowledged an event")
    finally:
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
    # Lines that arrived after the kill were still acknowledged before it: count them too.
    buf += rest
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")[-2000:]
    acked = []
    for line in buf.split(b"\n")[:-1]:  # the last piece may be a half-written line
        seq, rid = line.decode().split()
        acked.append((int(seq), rid))
    return acked


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_event(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    key = tmp_path / "audit-signing.key"
    rng = random.Random(int(os.environ.get("BASTION_CRASH_SEED", "7")))
    acked: list[tuple[int, str]] = []
    for r in range(ROUNDS):
        got = _run_until_killed(url, key, f"round{r}", rng.uniform(0.2, 1.2))
        assert got, "no event acknowledged before the kill"
        acked.extend(got)

    db = open_database(url)
    try:
        signer = AuditSigner.load_or_create(key)
        report = verify_chain(db, [signer.public_key])
        assert report.ok, report.problem
        with db.engine.connect() as conn:
            stored = {int(r.seq): r.request_id for r in conn.execute(audit_events.select())}
    finally:
        db.close()
    missing = [(s, rid) for s, rid in acked if stored.get(s) != rid]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"
    assert len({s for s, _ in acked}) == len(acked)
    assert report.events_checked >= len(acked)


@pytest.mark.slow
def test_two_processes_share_one_sqlite_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    open_database(url).close()  # migrate once, before the writers race
    keys = [tmp_path / "a.key", tmp_path / "b.key"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.audit_crash_writer", url, str(key), "--workers", "8"]
            + ["--count", "300", "--prefix", name],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name, key in zip("ab", keys, strict=True)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode(errors="replace")[-2000:]
    acked = [line.split() for out, _ in outputs for line in out.decode().splitlines()[:-1]]
    assert len(acked) == 600
    db = open_database(url)
    try:
        report = verify_chain(db, [AuditSigner.load_or_create(k).public_key for k in keys])
        assert report.ok and report.events_checked == 600, report.problem
        with db.engine.connect() as conn:
            stored = {int(r.seq): r.request_id for r in conn.execute(audit_events.select())}
    finally:
        db.close()
    assert all(stored[int(seq)] == rid for seq, rid in acked)
