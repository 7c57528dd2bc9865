"""The approval queue on SQLite and PostgreSQL: one decision, one execution, sealed arguments, webhooks."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.support.services import pg_schema
from tests.unit.test_backend import serve_in_thread

from bastion.context import Principal
from bastion.errors import InvalidRequest, PermissionDenied, ServiceUnavailable
from bastion.storage import Database, open_database
from bastion.storage.approvals_tables import approvals
from bastion.tools.approvals import ApprovalStore, HeldCall, Sealer, WebhookNotifier

ALICE = Principal(subject="alice", groups=("staff",), attributes={"scopes": ["files.delete"]})
BOB = Principal(subject="bob", roles=("approver",))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def held(arguments: dict[str, Any] | None = None) -> HeldCall:
    args = arguments or {"path": "/srv/report.pdf"}
    return HeldCall(principal=ALICE, tool="delete_file", action="delete", arguments=args,
                    arguments_redacted={"path": "[REDACTED]"}, arguments_sha256="a" * 64,
                    reason="Delete actions need an approver's approval.", request_id="req_1",
                    policy_version="v1", workflow_id="wf-1")


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = open_database(f"sqlite:///{tmp_path / 'a.db'}")
        yield database
        database.close()
        return
    with pg_schema() as url:
        database = open_database(url)
        yield database
        database.close()


def make_store(db: Database, tmp_path: Path, clock: Clock | None = None) -> ApprovalStore:
    return ApprovalStore(db, Sealer.load_or_create(tmp_path / "seal.key"), ttl_seconds=600,
                         clock=clock or Clock())


def test_request_lifecycle_and_separation_of_duties(db: Database, tmp_path: Path) -> None:
    store = make_store(db, tmp_path)

    async def run() -> None:
        rec = await store.create(held())
        assert rec.state == "pending" and rec.requester == "alice" and rec.workflow_id == "wf-1"
        assert rec.requester_info["scopes"] == ["files.delete"] and rec.requester_info["channel"] == "rest"
        assert "/srv/report.pdf" not in json.dumps(rec.to_json())
        with pytest.raises(PermissionDenied) as own:
            await store.decide(rec.id, ALICE, approve=True, comment="")
        assert own.value.code == "separation_of_duties"
        decided = await store.decide(rec.id, BOB, approve=True, comment="ok")
        assert decided.state == "approved" and decided.decided_by == "bob" and decided.comment == "ok"
        with pytest.raises(InvalidRequest) as twice:
            await store.decide(rec.id, BOB, approve=False, comment="changed my mind")
        assert twice.value.code == "approval_not_pending"
        record, args = await store.claim(rec.id)
        assert record.state == "executing" and args == {"path": "/srv/report.pdf"}
        done = await store.finish(rec.id, ok=True, outcome={"is_error": False})
        assert done.state == "done" and done.outcome == {"is_error": False}
        assert [r.id for r in await store.list(state="done")] == [rec.id]
        assert await store.get("apr_missing") is None

    asyncio.run(run())


def test_pending_requests_expire(db: Database, tmp_path: Path) -> None:
    clock = Clock()
    store = make_store(db, tmp_path, clock)

    async def run() -> None:
        rec = await store.create(held())
        clock.now += 601
        got = await store.get(rec.id)
        assert got is not None and got.state == "expired"
        with pytest.raises(InvalidRequest):
            await store.decide(rec.id, BOB, approve=True, comment="")
        with pytest.raises(InvalidRequest):
            await store.claim(rec.id)

    asyncio.run(run())


def test_unused_approval_lapses(db: Database, tmp_path: Path) -> None:
    clock = Clock()
    store = make_store(db, tmp_path, clock)

    async def run() -> None:
        rec = await store.create(held())
        await store.decide(rec.id, BOB, approve=True, comment="")
        clock.now += 601
        with pytest.raises(InvalidRequest) as exc:
            await store.claim(rec.id)
        assert "expired" in exc.value.message
        got = await store.get(rec.id)
        assert got is not None and got.state == "expired" and got.decided_by == "bob"

    asyncio.run(run())


def test_concurrent_claims_run_exactly_once(db: Database, tmp_path: Path) -> None:
    store = make_store(db, tmp_path)

    async def prepare() -> str:
        rec = await store.create(held())
        await store.decide(rec.id, BOB, approve=True, comment="")
        return rec.id

    approval_id = asyncio.run(prepare())
    wins: list[Any] = []
    losses: list[str] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        try:
            wins.append(asyncio.run(store.claim(approval_id)))
        except InvalidRequest as exc:
            losses.append(exc.code)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(wins) == 1 and losses == ["approval_not_approved"] * 7


def test_sealed_arguments_cannot_be_moved_to_another_request(db: Database, tmp_path: Path) -> None:
    store = make_store(db, tmp_path)

    async def run() -> None:
        a = await store.create(held({"path": "/a"}))
        b = await store.create(held({"path": "/b"}))
        for rec in (a, b):
            await store.decide(rec.id, BOB, approve=True, comment="")
        with db.engine.begin() as conn:
            sealed_a = conn.execute(approvals.select().where(approvals.c.id == a.id)).first()._mapping[
                "arguments_sealed"]
            conn.execute(approvals.update().where(approvals.c.id == b.id).values(arguments_sealed=sealed_a))
        with pytest.raises(ServiceUnavailable) as exc:
            await store.claim(b.id)
        assert exc.value.code == "approval_unreadable"
        assert (await store.claim(a.id))[1] == {"path": "/a"}

    asyncio.run(run())


def test_sealer_key_is_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "k" / "seal.key"
    one = Sealer.load_or_create(path)
    two = Sealer.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert two.open(one.seal(b"x", "apr_1"), "apr_1") == b"x"
    assert "key hidden" in repr(one)


def test_database_failure_refuses(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'gone.db'}")
    store = make_store(database, tmp_path)
    with database.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE tool_approvals")
    with pytest.raises(ServiceUnavailable) as exc:
        asyncio.run(store.create(held()))
    assert exc.value.code == "approvals_unavailable"
    database.close()


def test_webhook_posts_notes_and_survives_failures(tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: Request) -> Response:
        received.append(await request.json())
        # 204 carries no body; the second note gets a server error the notifier must survive.
        return Response(status_code=204) if len(received) == 1 else JSONResponse({}, status_code=500)

    database = open_database(f"sqlite:///{tmp_path / 'w.db'}")
    store = make_store(database, tmp_path)
    with serve_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:

        async def run() -> None:
            async with httpx.AsyncClient() as http:
                rec = await store.create(held())
                for target in (url + "/hook", url + "/hook", "http://127.0.0.1:9/unreachable"):
                    notifier = WebhookNotifier(target, http, timeout_seconds=2)
                    notifier.notify("approval.requested", rec)
                    await notifier.drain()

        asyncio.run(run())
    assert [r["event"] for r in received] == ["approval.requested", "approval.requested"]
    assert received[0]["approval"]["tool"] == "delete_file"
    assert "/srv/report.pdf" not in json.dumps(received)
    database.close()
