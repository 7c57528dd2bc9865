"""Held tool calls: the approval requests a person decides, stored in the database.

A request moves ``pending -> approved | denied | expired`` once, by the first
reviewer to decide; an approved one moves ``approved -> executing -> done |
failed`` once, by the first caller to claim it. Every move is one conditional
``UPDATE ... WHERE state = <expected>``, so two replicas or two concurrent
``execute`` calls can never both win: the call runs exactly once.

The exact arguments are needed to run the call later, but nobody reading the
queue should see them: they are sealed (AES-GCM, key in the data directory)
and the queue shows only the redacted copy.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update

from bastion.context import Principal
from bastion.errors import ConfigError, InvalidRequest, PermissionDenied, ServiceUnavailable
from bastion.storage import Database
from bastion.storage.approvals_tables import approvals
from bastion.tools.tokens import user_scopes

log = logging.getLogger("bastion.tools.approvals")

ApprovalState = Literal["pending", "approved", "denied", "expired", "executing", "done", "failed"]
#: States after which nothing more happens to a request.
FINAL_STATES = frozenset({"denied", "expired", "done", "failed"})
#: Most requests one list call returns.
MAX_LIST = 500
#: Longest reviewer comment kept, in characters.
MAX_COMMENT_CHARS = 2000
#: Bytes of the sealing key (AES-256).
SEAL_KEY_BYTES = 32
_NONCE_BYTES = 12


def new_approval_id() -> str:
    """A unique, unguessable approval id."""
    return "apr_" + uuid.uuid4().hex


class Sealer:
    """Encrypts the exact arguments of a held call; only the execution opens them."""

    def __init__(self, key: bytes) -> None:
        if len(key) != SEAL_KEY_BYTES:
            raise ConfigError("the approvals sealing key must be 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"

    @classmethod
    def load_or_create(cls, path: str | Path) -> Sealer:
        """The key at ``path``, created (0600) on first use; replicas must share the file."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = p.read_bytes()
        else:
            key = secrets.token_bytes(SEAL_KEY_BYTES)
            try:
                os.write(fd, key)
                os.fsync(fd)
            finally:
                os.close(fd)
        return cls(key)

    def seal(self, plaintext: bytes, associated: str) -> str:
        """``plaintext`` encrypted and bound to ``associated`` (the approval id)."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        blob = nonce + self._aead.encrypt(nonce, plaintext, associated.encode())
        return base64.b64encode(blob).decode("ascii")

    def open(self, sealed: str, associated: str) -> bytes:
        """The plaintext of ``sealed``; refuses a blob moved to another approval or altered."""
        try:
            blob = base64.b64decode(sealed)
            return self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], associated.encode())
        except (ValueError, InvalidTag):
            raise ServiceUnavailable("The held call cannot be opened.", code="approval_unreadable") from None


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """One approval request as reviewers and requesters see it (never the exact arguments)."""

    id: str
    state: ApprovalState
    tool: str
    action: str
    requester: str
    requester_info: dict[str, Any]
    request_id: str
    workflow_id: str | None
    reason: str
    arguments_redacted: Any
    arguments_sha256: str
    policy_version: str
    created_at: float
    expires_at: float
    decided_by: str | None = None
    decided_at: float | None = None
    comment: str | None = None
    executed_at: float | None = None
    outcome: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as the admin API and the poll endpoint show it."""
        return {
            "id": self.id,
            "state": self.state,
            "tool": self.tool,
            "action": self.action,
            "requester": self.requester,
            "requester_info": self.requester_info,
            "request_id": self.request_id,
            "workflow_id": self.workflow_id,
            "reason": self.reason,
            "arguments": self.arguments_redacted,
            "arguments_sha256": self.arguments_sha256,
            "policy_version": self.policy_version,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "comment": self.comment,
            "executed_at": self.executed_at,
            "outcome": self.outcome,
        }


def _record(row: Any) -> ApprovalRecord:
    m = row._mapping
    return ApprovalRecord(
        id=m["id"],
        state=m["state"],
        tool=m["tool"],
        action=m["action"],
        requester=m["requester"],
        requester_info=json.loads(m["requester_json"]),
        request_id=m["request_id"],
        workflow_id=m["workflow_id"],
        reason=m["reason"],
        arguments_redacted=json.loads(m["arguments_redacted"]),
        arguments_sha256=m["arguments_sha256"],
        policy_version=m["policy_version"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        decided_by=m["decided_by"],
        decided_at=m["decided_at"],
        comment=m["comment"],
        executed_at=m["executed_at"],
        outcome=json.loads(m["outcome"]) if m["outcome"] else None,
    )


@dataclass(frozen=True, slots=True)
class HeldCall:
    """What a caller needs to create a request: who, which tool, why, and the arguments."""

    principal: Principal
    tool: str
    action: str
    arguments: Any
    arguments_redacted: Any
    arguments_sha256: str
    reason: str
    request_id: str
    policy_version: str
    workflow_id: str | None = None
    #: ``rest`` or ``mcp``: which door the call came through.
    channel: str = "rest"


class ApprovalStore:
    """The approval queue in the database. Every method runs its SQL off the event loop."""

    def __init__(
        self, db: Database, sealer: Sealer, *, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._sealer = sealer
        self._ttl = ttl_seconds
        self._clock = clock

    async def _run(self, fn: Callable[[], Any]) -> Any:
        try:
            return await asyncio.to_thread(fn)
        except (InvalidRequest, PermissionDenied, ServiceUnavailable):
            raise
        except Exception as exc:  # a database failure: refuse rather than guess (fail closed)
            log.error("approval store failed: %s", type(exc).__name__)
            raise ServiceUnavailable("Approvals cannot be reached right now.", code="approvals_unavailable") from None

    async def create(self, call: HeldCall) -> ApprovalRecord:
        """Store a new pending request and return it."""
        approval_id = new_approval_id()
        now = self._clock()
        row = {
            "id": approval_id,
            "state": "pending",
            "tool": call.tool,
            "action": call.action,
            "requester": call.principal.subject,
            # Enough of the requester to run the call as them later (scopes included), never a token.
            "requester_json": json.dumps(
                {**call.principal.to_audit(), "scopes": sorted(user_scopes(call.principal)), "channel": call.channel},
                sort_keys=True,
            ),
            "request_id": call.request_id,
            "workflow_id": call.workflow_id,
            "reason": call.reason,
            "arguments_redacted": json.dumps(call.arguments_redacted, sort_keys=True),
            "arguments_sha256": call.arguments_sha256,
            "arguments_sealed": self._sealer.seal(
                json.dumps({"arguments": call.arguments}).encode(), approval_id
            ),
            "policy_version": call.policy_version,
            "created_at": now,
            "expires_at": now + self._ttl,
        }

        def insert() -> None:
            with self._db.engine.begin() as conn:
                conn.execute(approvals.insert().values(**row))

        await self._run(insert)
        got = await self.get(approval_id)
        assert got is not None  # just written in a committed transaction
        return got

    def _expire_sync(self, now: float) -> None:
        with self._db.engine.begin() as conn:
            conn.execute(
                update(approvals)
                .where(approvals.c.state == "pending", approvals.c.expires_at <= now)
                .values(state="expired", decided_at=now)
            )
            # An approval not used within the time-to-live lapses too (decided_at keeps the decision's time).
            conn.execute(
                update(approvals)
                .where(approvals.c.state == "approved", approvals.c.decided_at <= now - self._ttl)
                .values(state="expired")
            )

    async def get(self, approval_id: str) -> ApprovalRecord | None:
        """The request ``approval_id`` (expired ones say so), or None."""
        now = self._clock()

        def read() -> ApprovalRecord | None:
            self._expire_sync(now)
            with self._db.engine.connect() as conn:
                row = conn.execute(select(approvals).where(approvals.c.id == approval_id)).first()
            return _record(row) if row is not None else None

        result: ApprovalRecord | None = await self._run(read)
        return result

    async def list(self, *, state: str | None = None, limit: int = 100) -> list[ApprovalRecord]:
        """Requests, newest first, optionally only those in ``state``."""
        now = self._clock()
        limit = max(1, min(limit, MAX_LIST))

        def read() -> list[ApprovalRecord]:
            self._expire_sync(now)
            q = select(approvals).order_by(approvals.c.created_at.desc()).limit(limit)
            if state is not None:
                q = q.where(approvals.c.state == state)
            with self._db.engine.connect() as conn:
                return [_record(r) for r in conn.execute(q)]

        result: list[ApprovalRecord] = await self._run(read)
        return result

    async def decide(self, approval_id: str, reviewer: Principal, *, approve: bool, comment: str) -> ApprovalRecord:
        """Approve or deny a pending request; the requester may never decide their own."""
        current = await self.get(approval_id)
        if current is None:
            raise InvalidRequest("No such approval request.", code="approval_not_found")
        if current.requester == reviewer.subject:
            raise PermissionDenied(
                "You cannot decide your own request: another reviewer must.", code="separation_of_duties"
            )
        now = self._clock()
        new_state = "approved" if approve else "denied"

        def write() -> int:
            with self._db.engine.begin() as conn:
                res = conn.execute(
                    update(approvals)
                    .where(
                        approvals.c.id == approval_id,
                        approvals.c.state == "pending",
                        approvals.c.expires_at > now,
                    )
                    .values(
                        state=new_state,
                        decided_by=reviewer.subject,
                        decided_at=now,
                        comment=comment[:MAX_COMMENT_CHARS],
                    )
                )
                return int(res.rowcount)

        if await self._run(write) != 1:
            latest = await self.get(approval_id)
            state = latest.state if latest is not None else "unknown"
            raise InvalidRequest(f"The request is {state}, not pending.", code="approval_not_pending")
        got = await self.get(approval_id)
        assert got is not None
        return got

    async def claim(self, approval_id: str) -> tuple[ApprovalRecord, Any]:
        """Move an approved request to ``executing`` and return it with its exact arguments.

        Exactly one caller wins; every other gets ``approval_not_approved``. An approval
        left unused for ``ttl_seconds`` lapses: it was given for a moment, not forever.
        """
        now = self._clock()
        lapsed_before = now - self._ttl

        def write() -> str | None:
            with self._db.engine.begin() as conn:
                res = conn.execute(
                    update(approvals)
                    .where(
                        approvals.c.id == approval_id,
                        approvals.c.state == "approved",
                        approvals.c.decided_at > lapsed_before,
                    )
                    .values(state="executing", executed_at=now)
                )
                if res.rowcount != 1:
                    return None
                sealed = conn.execute(
                    select(approvals.c.arguments_sealed).where(approvals.c.id == approval_id)
                ).scalar_one()
                return str(sealed)

        sealed = await self._run(write)
        record = await self.get(approval_id)
        if sealed is None or record is None:
            state = record.state if record is not None else "unknown"
            raise InvalidRequest(
                f"The request is {state}; only an approved request runs.", code="approval_not_approved"
            )
        arguments = json.loads(self._sealer.open(sealed, approval_id))["arguments"]
        return record, arguments

    async def finish(self, approval_id: str, *, ok: bool, outcome: dict[str, Any]) -> ApprovalRecord:
        """Record how the execution ended (``executing -> done | failed``)."""

        def write() -> None:
            with self._db.engine.begin() as conn:
                conn.execute(
                    update(approvals)
                    .where(approvals.c.id == approval_id, approvals.c.state == "executing")
                    .values(state="done" if ok else "failed", outcome=json.dumps(outcome, sort_keys=True))
                )

        await self._run(write)
        got = await self.get(approval_id)
        assert got is not None
        return got


class WebhookNotifier:
    """POSTs a JSON note about approval requests to a URL; failures are logged and never block."""

    def __init__(self, url: str | None, http: httpx.AsyncClient, *, timeout_seconds: float) -> None:
        self.url = url
        self._http = http
        self._timeout = timeout_seconds
        self._tasks: set[asyncio.Task[None]] = set()

    def notify(self, event: str, record: ApprovalRecord) -> None:
        """Send ``event`` (``approval.requested``, ``approval.approved`` ...) in the background."""
        if not self.url:
            return
        body = {"event": event, "approval": record.to_json()}
        task = asyncio.get_running_loop().create_task(self._send(body), name="approval-webhook")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, body: dict[str, Any]) -> None:
        assert self.url is not None
        try:
            resp = await self._http.post(self.url, json=body, timeout=self._timeout)
            if resp.status_code >= 300:
                log.warning("approval webhook answered %d", resp.status_code)
        except Exception as exc:  # noqa: BLE001 - a webhook never decides anything
            log.warning("approval webhook failed: %s", type(exc).__name__)

    async def drain(self) -> None:
        """Wait for notes still in flight (at shutdown, and in tests)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
