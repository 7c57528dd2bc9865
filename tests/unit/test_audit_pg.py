"""PostgreSQL: replicas (separate processes, each with its own key) share one audit chain."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.services import pg_schema

from bastion.audit.events import make_event
from bastion.audit.signing import AuditSigner
from bastion.audit.verify import verify_chain
from bastion.audit.writer import AuditLog
from bastion.errors import AuditUnavailable
from bastion.settings import AuditSettings
from bastion.storage import open_database
from bastion.storage.tables import audit_checkpoints, audit_events

ROOT = Path(__file__).resolve().parents[2]

#: Events each replica writes.
PER_REPLICA = 400

pytestmark = pytest.mark.services


def _replica(url: str, key: Path, prefix: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.audit_crash_writer",
            url,
            str(key),
            "--workers",
            "16",
            "--count",
            str(PER_REPLICA),
            "--prefix",
            prefix,
            "--checkpoint-every",
            "50",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_two_replicas_one_chain(tmp_path: Path) -> None:
    with pg_schema() as url:
        open_database(url).close()  # migrate once, before the replicas race
        keys = [tmp_path / "a.key", tmp_path / "b.key"]
        procs = [_replica(url, keys[0], "a"), _replica(url, keys[1], "b")]
        outputs = [p.communicate(timeout=180) for p in procs]
        for p, (out, err) in zip(procs, outputs, strict=True):
            assert p.returncode == 0, err.decode(errors="replace")[-2000:]
            assert out.endswith(b"DONE\n")
        acked = [line.split() for out, _ in outputs for line in out.decode().splitlines()[:-1]]
        assert len(acked) == 2 * PER_REPLICA

        db = open_database(url)
        try:
            signers = [AuditSigner.load_or_create(k) for k in keys]
            report = verify_chain(db, [s.public_key for s in signers])
            assert report.ok, report.problem
            assert report.events_checked == 2 * PER_REPLICA and report.unsigned_events == 0
            with db.engine.connect() as conn:
                stored = {str(r.seq): r.request_id for r in conn.execute(audit_events.select())}
                signed_by = {r.key_id for r in conn.execute(audit_checkpoints.select())}
            assert all(stored.get(seq) == rid for seq, rid in acked)
            assert signed_by == {s.key_id for s in signers}
            # Without the other replica's key, its checkpoints do not verify.
            assert verify_chain(db, [signers[0].public_key]).problem is not None
        finally:
            db.close()


def test_failed_batch_on_postgres_leaves_no_gap(tmp_path: Path) -> None:
    with pg_schema() as url:
        db = open_database(url)
        signer = AuditSigner.load_or_create(tmp_path / "k.key")

        async def go() -> None:
            log = AuditLog(db, signer, AuditSettings.model_validate({"commit_timeout_seconds": 2}))
            await log.start()
            assert await log.append(make_event("test")) == 1
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE audit_events RENAME TO audit_events_away")
            with pytest.raises(AuditUnavailable):
                await log.append(make_event("test"))
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE audit_events_away RENAME TO audit_events")
            assert await log.append(make_event("test")) == 2
            await log.stop()

        try:
            asyncio.run(go())
            assert verify_chain(db, [signer.public_key]).ok
        finally:
            db.close()
