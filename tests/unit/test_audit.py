"""The audit trail on SQLite: events, group commit, tampering, failures, export, CLI."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bastion.audit.chain import GENESIS_HASH, canonical_json, chain_hash, checkpoint_statement
from bastion.audit.events import build_request_event, content_of, make_event
from bastion.audit.export import export_events, parse_time
from bastion.audit.signing import AuditSigner, load_public_key, public_path_for
from bastion.audit.verify import verify_chain
from bastion.audit.writer import AuditLog
from bastion.context import Finding, Principal, RequestContext
from bastion.errors import AuditUnavailable, ConfigError
from bastion.settings import AuditSettings
from bastion.storage import Database, open_database


@pytest.fixture(params=["normal", "full"])
def db(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    """Both committers: in the event loop (synchronous=NORMAL) and on a writer thread (FULL)."""
    d = open_database(f"sqlite:///{tmp_path / 'audit.db'}", sqlite_synchronous=request.param)
    yield d
    d.close()


@pytest.fixture
def signer(tmp_path: Path) -> AuditSigner:
    return AuditSigner.load_or_create(tmp_path / "audit-signing.key")


def _settings(**kw: Any) -> AuditSettings:
    return AuditSettings(**kw)


async def _write(db: Database, signer: AuditSigner, n: int, *, concurrent: bool = False, **kw: Any) -> AuditLog:
    log = AuditLog(db, signer, _settings(**kw))
    await log.start()
    if concurrent:
        await asyncio.gather(*(log.append(make_event("test", request_id=f"req-{i}")) for i in range(n)))
    else:
        for i in range(1, n + 1):
            seq = await log.append(make_event("test", request_id=f"req-{i}", note="hello"))
            assert seq == i
    await log.stop()
    return log


# -- events --------------------------------------------------------------------------


def _ctx() -> RequestContext:
    ctx = RequestContext(endpoint="/v1/chat/completions", client_ip="127.0.0.1")
    ctx.principal = Principal(subject="alice", key_id="key_123", groups=("eng",))
    ctx.model, ctx.provider, ctx.status = "gpt-test", "fake", 200
    ctx.findings.append(Finding(type="EMAIL", start=5, end=22, score=0.9, detector="email", location="messages[0]"))
    ctx.decide("policy", "redact", "emails are masked for this group")
    ctx.prompt_text = "mail [EMAIL_1] now"
    ctx.response_text = "done"
    ctx.upstream_ns = 2_000_000
    ctx.started_ns -= 10_000_000  # the request has been running for 10 ms
    return ctx


@pytest.mark.parametrize(
    ("mode", "present", "absent"),
    [
        ("redacted", {"prompt": "mail [EMAIL_1] now", "response": "done"}, ["prompt_sha256"]),
        ("full", {"prompt": "mail [EMAIL_1] now", "response": "done"}, ["prompt_sha256"]),
        (
            "hash",
            {
                "prompt_sha256": hashlib.sha256(b"mail [EMAIL_1] now").hexdigest(),
                "response_sha256": hashlib.sha256(b"done").hexdigest(),
            },
            ["prompt", "response"],
        ),
        ("none", {}, ["prompt", "response", "prompt_sha256", "response_sha256"]),
    ],
)
def test_request_event_content_modes(mode: Any, present: dict[str, str], absent: list[str]) -> None:
    event = build_request_event(_ctx(), mode)
    content = event["content"]
    assert content["mode"] == mode
    for key, value in present.items():
        assert content[key] == value
    for key in absent:
        assert key not in content


def test_request_event_metadata() -> None:
    event = build_request_event(_ctx(), "redacted")
    assert event["kind"] == "request" and event["key_id"] == "key_123"
    assert event["principal"]["subject"] == "alice"
    assert event["findings"] == [
        {
            "type": "EMAIL",
            "start": 5,
            "end": 22,
            "score": 0.9,
            "detector": "email",
            "data_classes": [],
            "location": "messages[0]",
        }
    ]
    assert event["decisions"][0]["reason"] == "emails are masked for this group"
    lat = event["latency"]
    assert lat["upstream_ms"] == 2.0 and lat["gateway_ms"] == pytest.approx(lat["total_ms"] - 2.0, abs=0.01)
    canonical_json(event)  # plain JSON


def test_content_is_clipped_and_marked() -> None:
    c = content_of("x" * 50, None, "redacted", max_chars=10)
    assert c == {
        "mode": "redacted",
        "prompt": "x" * 10,
        "prompt_truncated": True,
        "prompt_chars": 50,
    }


@pytest.mark.parametrize(
    ("kind", "fields"),
    [("Bad Kind", {}), ("x" * 40, {}), ("checkpoint", {}), ("ok", {"seq": 3}), ("ok", {"hash": "0"})],
)
def test_make_event_rejects(kind: str, fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_event(kind, **fields)


# -- signing -------------------------------------------------------------------------


def test_signing_key_file(tmp_path: Path) -> None:
    path = tmp_path / "k" / "audit-signing.key"
    a = AuditSigner.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_public_key(public_path_for(path)) is not None
    b = AuditSigner.load_or_create(path)
    assert a.key_id == b.key_id and len(a.key_id) == 32
    assert "PRIVATE" not in repr(a)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        AuditSigner.load_or_create(path)


# -- the chain and group commit -------------------------------------------------------


def test_concurrent_appends_share_commits(db: Database, signer: AuditSigner) -> None:
    async def go() -> tuple[list[int], dict[str, Any]]:
        log = AuditLog(db, signer, _settings(checkpoint_every=50))
        await log.start()
        seqs = await asyncio.gather(*(log.append(make_event("test", request_id=f"r{i}")) for i in range(300)))
        stats = log.stats()
        await log.stop()
        return list(seqs), stats

    seqs, stats = asyncio.run(go())
    assert sorted(seqs) == list(range(1, 301))
    assert stats["events"] == 300
    assert stats["transactions"] < 300, stats
    assert stats["largest_batch"] > 1
    report = verify_chain(db, [signer.public_key])
    assert report.ok and report.events_checked == 300 and report.unsigned_events == 0


def test_checkpoints_fall_every_n_events_after_their_callers_are_answered(db: Database, signer: AuditSigner) -> None:
    """A checkpoint due in a batch is signed in a transaction of its own, once the batch's
    callers have their seq: the caller that completes the fifth event never waits for it."""

    async def go() -> tuple[list[int], list[int]]:
        log = AuditLog(db, signer, _settings(checkpoint_every=5))
        await log.start()
        signed_when_answered = []
        for i in range(12):
            seq = await log.append(make_event("test", request_id=f"r{i}"))
            signed_when_answered.append(log.stats()["checkpoints"])
            assert seq == i + 1
        for _ in range(50):  # the deferred checkpoints follow within a few loop turns
            if log.stats()["checkpoints"] >= 2:
                break
            await asyncio.sleep(0.01)
        with db.engine.connect() as conn:
            running = [r[0] for r in conn.exec_driver_sql("SELECT seq FROM audit_checkpoints ORDER BY seq")]
        await log.stop()
        return signed_when_answered, running

    answered, running = asyncio.run(go())
    # When the fifth caller got its seq, no checkpoint had been signed yet.
    assert answered[4] == 0
    assert running == [5, 10]
    report = verify_chain(db, [signer.public_key])
    assert report.ok and report.last_checkpoint_seq == 12 and report.unsigned_events == 0


def test_a_cancelled_caller_still_leaves_its_event_committed(db: Database, signer: AuditSigner) -> None:
    """A request whose client went away is cancelled while it waits: its event is still recorded."""

    async def go() -> int:
        log = AuditLog(db, signer, _settings())
        await log.start()
        gone = asyncio.create_task(log.append(make_event("test", request_id="client-gone")))
        await asyncio.sleep(0)  # the event is queued and its caller waits for the commit
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        seq = await log.append(make_event("test", request_id="next"))
        await log.stop()
        return seq

    assert asyncio.run(go()) == 2
    with db.engine.connect() as conn:
        ids = [r[0] for r in conn.exec_driver_sql("SELECT request_id FROM audit_events ORDER BY seq")]
    assert ids == ["client-gone", "next"]
    assert verify_chain(db, [signer.public_key]).ok


def test_restart_continues_the_chain_and_stop_signs_the_tail(db: Database, signer: AuditSigner) -> None:
    asyncio.run(_write(db, signer, 7, checkpoint_every=1000))
    report = verify_chain(db, [signer.public_key])
    assert report.ok and report.last_checkpoint_seq == 7  # the final checkpoint on stop

    async def more() -> int:
        log = AuditLog(db, signer, _settings())
        await log.start()
        seq = await log.append(make_event("test", request_id="after-restart"))
        await log.stop()
        return seq

    assert asyncio.run(more()) == 8
    assert verify_chain(db, [signer.public_key]).ok


def test_interval_checkpoint(db: Database, signer: AuditSigner) -> None:
    async def go() -> int:
        log = AuditLog(db, signer, _settings(checkpoint_every=1000, checkpoint_interval_seconds=0.2))
        await log.start()
        await log.append(make_event("test"))
        await asyncio.sleep(0.6)
        n: int = log.stats()["checkpoints"]
        await log.stop()
        return n

    assert asyncio.run(go()) == 1


def test_jsonl_copy(db: Database, signer: AuditSigner, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"

    async def go() -> None:
        log = AuditLog(db, signer, _settings(checkpoint_every=3), jsonl_path=out)
        await log.start()
        for i in range(3):
            await log.append(make_event("test", request_id=f"j{i}"))
        await log.stop()

    asyncio.run(go())
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["test", "test", "test", "checkpoint"]
    assert [x["request_id"] for x in lines[:3]] == ["j0", "j1", "j2"]
    assert [x["seq"] for x in lines] == [1, 2, 3, 3]
    assert lines[0]["prev_hash"] == GENESIS_HASH and lines[3]["hash"] == lines[2]["hash"]


def test_malformed_and_unserialisable_events_are_refused(db: Database, signer: AuditSigner) -> None:
    async def go() -> None:
        log = AuditLog(db, signer, _settings())
        await log.start()
        with pytest.raises(AuditUnavailable):
            await log.append({"kind": "Nope"})
        with pytest.raises(AuditUnavailable):
            await log.append(make_event("test", value=float("nan")))
        with pytest.raises(AuditUnavailable):
            await log.append(make_event("test", value=object()))
        assert await log.append(make_event("test")) == 1
        await log.stop()
        with pytest.raises(AuditUnavailable):
            await log.append(make_event("test"))

    asyncio.run(go())
    assert verify_chain(db, [signer.public_key]).ok


# -- failures ------------------------------------------------------------------------


def test_store_error_refuses_then_recovers_without_a_gap(db: Database, signer: AuditSigner, tmp_path: Path) -> None:
    path = tmp_path / "audit.db"

    def sql(statement: str) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute(statement)

    async def go() -> None:
        log = AuditLog(db, signer, _settings(checkpoint_every=4))
        await log.start()
        for _ in range(3):
            await log.append(make_event("test"))
        sql("ALTER TABLE audit_events RENAME TO audit_events_away")
        results = await asyncio.gather(*(log.append(make_event("test")) for _ in range(5)), return_exceptions=True)
        assert all(isinstance(r, AuditUnavailable) for r in results), results
        assert not log.healthy() and log.stats()["failed_batches"] >= 1
        sql("ALTER TABLE audit_events_away RENAME TO audit_events")
        for _ in range(40):  # readiness comes back by itself, with no traffic to prove it
            if log.healthy():
                break
            await asyncio.sleep(0.1)
        assert log.healthy()
        seqs = [await log.append(make_event("test", request_id=f"ok{i}")) for i in range(3)]
        assert seqs == [4, 5, 6] and log.healthy()
        await log.stop()

    asyncio.run(go())
    report = verify_chain(db, [signer.public_key])
    assert report.ok and report.last_seq == 6


def test_locked_store_times_out_then_recovers(db: Database, signer: AuditSigner, tmp_path: Path) -> None:
    async def go() -> None:
        log = AuditLog(db, signer, _settings(commit_timeout_seconds=0.3))
        await log.start()
        await log.append(make_event("test"))
        blocker = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(AuditUnavailable):
                await log.append(make_event("test", request_id="while-locked"))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await asyncio.sleep(0.5)  # let the writer's own lock wait end
        seq = await log.append(make_event("test", request_id="after"))
        assert seq in (2, 3)  # 3 if the locked one committed late, after its caller gave up
        await log.stop()

    asyncio.run(go())
    assert verify_chain(db, [signer.public_key]).ok


def test_a_lock_held_briefly_by_another_process_delays_but_does_not_refuse(
    db: Database, signer: AuditSigner, tmp_path: Path
) -> None:
    async def go() -> int:
        log = AuditLog(db, signer, _settings(commit_timeout_seconds=3.0))
        await log.start()
        blocker = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        loop = asyncio.get_running_loop()
        loop.call_later(0.15, lambda: (blocker.execute("ROLLBACK"), blocker.close()))
        started = loop.time()
        seq = await log.append(make_event("test", request_id="waited"))
        waited = loop.time() - started
        await log.stop()
        assert waited >= 0.1  # it really waited for the lock, without blocking the loop's timer
        return seq

    assert asyncio.run(go()) == 1
    assert verify_chain(db, [signer.public_key]).ok


def test_committed_events_reach_the_database_file_off_the_loop(signer: AuditSigner, tmp_path: Path) -> None:
    """In-loop commits leave the WAL alone; a background thread copies it back into the database."""
    db = open_database(f"sqlite:///{tmp_path / 'audit.db'}", sqlite_synchronous="normal")

    async def go() -> None:
        log = AuditLog(db, signer, _settings())
        await log.start()
        await asyncio.gather(*(log.append(make_event("test", request_id=f"w{i}")) for i in range(20)))
        await asyncio.sleep(2.5)
        # Only the main file, without its WAL: the events are there once the WAL was copied back.
        snapshot = tmp_path / "snapshot.db"
        snapshot.write_bytes((tmp_path / "audit.db").read_bytes())
        with sqlite3.connect(snapshot) as conn:
            assert conn.execute("SELECT count(*) FROM audit_events").fetchone()[0] == 20
        await log.stop()

    try:
        asyncio.run(go())
    finally:
        db.close()


def test_queue_limit_refuses_at_once(db: Database, signer: AuditSigner) -> None:
    async def go() -> list[Any]:
        log = AuditLog(db, signer, _settings(max_queue=1, group_commit_max_batch=1))
        await log.start()
        out = await asyncio.gather(*(log.append(make_event("test")) for _ in range(50)), return_exceptions=True)
        assert log.stats()["refused"] > 0
        await log.stop()
        return out

    results = asyncio.run(go())
    assert any(isinstance(r, AuditUnavailable) for r in results)
    assert any(isinstance(r, int) for r in results)
    assert verify_chain(db, [signer.public_key]).ok


# -- tampering -----------------------------------------------------------------------

Tamper = Callable[[sqlite3.Connection, AuditSigner], None]


def _rehash_from(conn: sqlite3.Connection, first: int) -> None:
    prev = (
        GENESIS_HASH
        if first == 1
        else conn.execute("SELECT hash FROM audit_events WHERE seq=?", (first - 1,)).fetchone()[0]
    )
    for seq, body in conn.execute("SELECT seq, body FROM audit_events WHERE seq>=? ORDER BY seq", (first,)).fetchall():
        obj = json.loads(body)
        obj["seq"] = seq
        new_body = canonical_json(obj)
        digest = chain_hash(seq, prev, new_body)
        conn.execute(
            "UPDATE audit_events SET body=?, prev_hash=?, hash=? WHERE seq=?",
            (new_body, prev, digest, seq),
        )
        prev = digest


def _edit_body(c: sqlite3.Connection, _: AuditSigner) -> None:
    c.execute("UPDATE audit_events SET body=replace(body,'hello','HELLO') WHERE seq=5")


def _edit_column(c: sqlite3.Connection, _: AuditSigner) -> None:
    c.execute("UPDATE audit_events SET kind='admin' WHERE seq=7")


def _delete_middle(c: sqlite3.Connection, _: AuditSigner) -> None:
    c.execute("DELETE FROM audit_events WHERE seq=12")


def _delete_and_renumber(c: sqlite3.Connection, _: AuditSigner) -> None:
    c.execute("DELETE FROM audit_events WHERE seq=12")
    c.execute("UPDATE audit_events SET seq=seq+1000 WHERE seq>12")
    c.execute("UPDATE audit_events SET seq=seq-1001 WHERE seq>1000")


def _delete_tail(c: sqlite3.Connection, _: AuditSigner) -> None:
    c.execute("DELETE FROM audit_events WHERE seq>25")


def _insert_forged(c: sqlite3.Connection, _: AuditSigner) -> None:
    c.execute("UPDATE audit_events SET seq=seq+1000 WHERE seq>=15")
    c.execute("UPDATE audit_events SET seq=seq-999 WHERE seq>=1000")
    prev = c.execute("SELECT hash FROM audit_events WHERE seq=14").fetchone()[0]
    event = make_event("test", request_id="forged", note="all is well")
    body = canonical_json({**event, "seq": 15})
    c.execute(
        "INSERT INTO audit_events (seq, event_id, request_id, ts, kind, body, prev_hash, hash)"
        " VALUES (?,?,?,?,?,?,?,?)",
        (
            15,
            event["event_id"],
            "forged",
            event["ts"],
            "test",
            body,
            prev,
            chain_hash(15, prev, body),
        ),
    )


def _swap(a: int, b: int) -> Tamper:
    def tamper(c: sqlite3.Connection, _: AuditSigner) -> None:
        c.execute("UPDATE audit_events SET seq=-1 WHERE seq=?", (a,))
        c.execute("UPDATE audit_events SET seq=? WHERE seq=?", (a, b))
        c.execute("UPDATE audit_events SET seq=? WHERE seq=-1", (b,))

    return tamper


def _swap_and_rehash(c: sqlite3.Connection, signer: AuditSigner) -> None:
    _swap(8, 17)(c, signer)
    for seq in (8, 17):
        body, prev = c.execute("SELECT body, prev_hash FROM audit_events WHERE seq=?", (seq,)).fetchone()
        new_body = canonical_json({**json.loads(body), "seq": seq})
        c.execute(
            "UPDATE audit_events SET body=?, hash=? WHERE seq=?", (new_body, chain_hash(seq, prev, new_body), seq)
        )


def _forge_signature(c: sqlite3.Connection, _: AuditSigner) -> None:
    c.execute(
        "UPDATE audit_checkpoints SET signature=? WHERE seq=20",
        (base64.b64encode(os.urandom(64)).decode(),),
    )


def _edit_and_rehash_one(c: sqlite3.Connection, _: AuditSigner) -> None:
    body = c.execute("SELECT body FROM audit_events WHERE seq=9").fetchone()[0].replace("hello", "bye")
    prev = c.execute("SELECT prev_hash FROM audit_events WHERE seq=9").fetchone()[0]
    c.execute("UPDATE audit_events SET body=?, hash=? WHERE seq=9", (body, chain_hash(9, prev, body)))


def _rewrite_tail(c: sqlite3.Connection, _: AuditSigner) -> None:
    c.execute("UPDATE audit_events SET body=replace(body,'hello','bye') WHERE seq>=22")
    _rehash_from(c, 22)


def _rewrite_tail_and_resign(c: sqlite3.Connection, _: AuditSigner) -> None:
    _rewrite_tail(c, _)
    forger = AuditSigner.generate()
    head = c.execute("SELECT hash FROM audit_events WHERE seq=30").fetchone()[0]
    ts = 1.0
    sig = forger.sign(checkpoint_statement(30, head, ts, forger.key_id))
    c.execute(
        "UPDATE audit_checkpoints SET hash=?, ts=?, key_id=?, signature=? WHERE seq=30",
        (head, ts, forger.key_id, sig),
    )


TAMPERING = [
    ("edit a body", _edit_body, "edited", 5, "req-5"),
    ("edit a column", _edit_column, "edited", 7, "req-7"),
    ("edit and rehash one event", _edit_and_rehash_one, "edited", 9, "req-9"),
    ("rewrite and rehash the tail", _rewrite_tail, "edited", 30, "req-30"),
    ("delete a middle event", _delete_middle, "deleted", 12, None),
    ("delete and renumber", _delete_and_renumber, "deleted", 12, "req-13"),
    ("delete the tail after a checkpoint", _delete_tail, "truncated", 26, None),
    ("insert a forged event", _insert_forged, "inserted", 15, "forged"),
    ("swap two events", _swap(8, 17), "reordered", 8, "req-17"),
    ("swap neighbours", _swap(3, 4), "reordered", 3, "req-4"),
    ("swap and rehash", _swap_and_rehash, "reordered", 8, "req-17"),
    ("forge a checkpoint signature", _forge_signature, "bad_signature", 20, "req-20"),
    (
        "re-sign a rewritten tail with another key",
        _rewrite_tail_and_resign,
        "bad_signature",
        30,
        "req-30",
    ),
]


@pytest.mark.parametrize(("case", "tamper", "kind", "seq", "request_id"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampering_is_caught_and_named(
    db: Database,
    signer: AuditSigner,
    tmp_path: Path,
    case: str,
    tamper: Tamper,
    kind: str,
    seq: int,
    request_id: str | None,
) -> None:
    asyncio.run(_write(db, signer, 30, checkpoint_every=10))
    assert verify_chain(db, [signer.public_key]).ok
    with sqlite3.connect(tmp_path / "audit.db") as conn:
        tamper(conn, signer)
    report = verify_chain(db, [signer.public_key])
    assert not report.ok
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq, report.problem.request_id) == (
        kind,
        seq,
        request_id,
    ), report.problem


def test_checkpoints_from_other_replicas_need_their_key(db: Database, signer: AuditSigner) -> None:
    other = AuditSigner.generate()
    asyncio.run(_write(db, other, 5, checkpoint_every=5))
    report = verify_chain(db, [signer.public_key])
    assert not report.ok and report.problem is not None and report.problem.kind == "bad_signature"
    assert "unknown key" in report.problem.detail
    assert verify_chain(db, [signer.public_key, other.public_key]).ok


# -- export and CLI ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("1700000000", 1700000000.0),
        ("1700000000.5", 1700000000.5),
        ("2023-11-14T22:13:20Z", 1700000000.0),
        ("2023-11-14T22:13:20", 1700000000.0),
        ("2023-11-14T23:13:20+01:00", 1700000000.0),
    ],
)
def test_parse_time(text: str, epoch: float) -> None:
    assert parse_time(text) == epoch


def test_parse_time_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_time("yesterday")


def test_export_window(db: Database, signer: AuditSigner) -> None:
    async def go() -> None:
        log = AuditLog(db, signer, _settings())
        await log.start()
        for i in range(10):
            await log.append(make_event("test", request_id=f"e{i}", ts=1000.0 + i))
        await log.stop()

    asyncio.run(go())
    import io

    buf = io.StringIO()
    assert export_events(db, buf, since=1003, until=1006) == 3
    rows = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert [r["request_id"] for r in rows] == ["e3", "e4", "e5"]
    assert [r["seq"] for r in rows] == [4, 5, 6]


def _cli(tmp_path: Path, *args: str) -> Any:
    from bastion.cli import _register, app

    _register()
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_cli_verify_and_export(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(f"data_dir: {data}\n")
    db = open_database(f"sqlite:///{data / 'bastion.db'}")
    signer = AuditSigner.load_or_create(data / "audit-signing.key")
    asyncio.run(_write(db, signer, 12, checkpoint_every=5))
    db.close()

    ok = _cli(tmp_path, "audit", "verify", "--config", str(cfg))
    assert ok.exit_code == 0, ok.output
    assert "ok: 12 events" in ok.output
    as_json = _cli(tmp_path, "audit", "verify", "--config", str(cfg), "--json")
    assert json.loads(as_json.output)["events_checked"] == 12

    out = tmp_path / "out.jsonl"
    exp = _cli(tmp_path, "audit", "export", "--config", str(cfg), "--output", str(out), "--since", "0")
    assert exp.exit_code == 0
    assert len(out.read_text().splitlines()) == 12
    to_stdout = _cli(tmp_path, "audit", "export", "--config", str(cfg), "--until", "1")
    assert to_stdout.exit_code == 0 and to_stdout.output == ""

    with sqlite3.connect(data / "bastion.db") as conn:
        conn.execute("DELETE FROM audit_events WHERE seq=6")
    bad = _cli(tmp_path, "audit", "verify", "--config", str(cfg))
    assert bad.exit_code == 1
    assert "deleted at seq 6" in bad.output
    bad_json = json.loads(_cli(tmp_path, "audit", "verify", "--config", str(cfg), "--json").output)
    assert bad_json["problem"]["kind"] == "deleted" and bad_json["problem"]["seq"] == 6


def test_cli_errors_are_not_verdicts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(f"data_dir: {data}\n")
    assert _cli(tmp_path, "audit", "export", "--config", str(cfg), "--since", "yesterday").exit_code == 2
    open_database(f"sqlite:///{data / 'bastion.db'}").close()
    with sqlite3.connect(data / "bastion.db") as conn:
        conn.execute("DROP TABLE audit_events")
    assert _cli(tmp_path, "audit", "verify", "--config", str(cfg)).exit_code == 2
    assert _cli(tmp_path, "audit", "verify", "--config", str(tmp_path / "missing.yaml")).exit_code == 2


def test_progress_bar_only_on_long_jobs_at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from bastion.cli import audit as cli_audit

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    with cli_audit._progress("verifying", 10) as advance:
        assert advance is None  # too short to be worth a bar
    with cli_audit._progress("verifying", cli_audit.PROGRESS_MIN_EVENTS) as advance:
        assert advance is not None
        advance(cli_audit.PROGRESS_MIN_EVENTS)
    assert "verifying" in term.getvalue()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with cli_audit._progress("verifying", 10**6) as advance:
        assert advance is None  # not a terminal: nothing drawn
