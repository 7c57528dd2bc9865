"""The audit log writer: one thread commits events in groups, callers await their commit.

A request calls ``await AuditLog.append(event)``; the event joins a queue. One writer
thread takes everything waiting (up to ``group_commit_max_batch``), and in a single
transaction takes the chain lock, reads the chain's tail from the database, appends
the batch with its hashes, adds a signed checkpoint when one is due, and commits. Only
then are the waiting coroutines woken with their sequence numbers. A batch that fails
is rolled back whole, so the chain never has a gap; the next batch starts again from
whatever the database holds. Reading the tail inside the lock on every batch is what
lets several processes (replicas on PostgreSQL) share one chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from bastion.audit.chain import GENESIS_HASH, canonical_json, chain_hash, checkpoint_statement
from bastion.audit.events import KIND_PATTERN, RESERVED_KEYS, RESERVED_KINDS, new_event_id
from bastion.audit.export import checkpoint_line, export_line
from bastion.audit.signing import AuditSigner
from bastion.errors import AuditUnavailable
from bastion.settings import AuditSettings
from bastion.storage import Database
from bastion.storage.tables import audit_checkpoints, audit_events

log = logging.getLogger("bastion.audit")

#: First half of the PostgreSQL advisory lock key that serialises chain writers
#: (the second half is derived from the schema, so separate schemas do not contend).
PG_CHAIN_LOCK_CLASS = 7250101

#: Longest request id kept in its indexed column (the body keeps it whole).
_COLUMN_TEXT_MAX = 64

#: Seconds ``stop`` waits for the writer thread to finish its last batches.
STOP_JOIN_SECONDS = 30.0

#: Seconds between checks of a failing store while no events arrive (so readiness can recover).
HEALTH_PROBE_SECONDS = 1.0

#: Seconds before a failed checkpoint-only write is retried (no busy loop while the store is down).
CHECKPOINT_RETRY_SECONDS = 1.0


@dataclass(eq=False)
class _Pending:
    """One event waiting to be committed, and how to wake its caller."""

    event: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[int]
    #: Set when the caller gave up waiting; the writer skips it if it has not started it yet.
    abandoned: bool = False


@dataclass
class AuditStats:
    """Counters for metrics and tests."""

    events: int = 0
    transactions: int = 0
    checkpoints: int = 0
    failed_batches: int = 0
    refused: int = 0
    timeouts: int = 0
    last_seq: int = 0
    largest_batch: int = 0
    commit_seconds_total: float = 0.0
    jsonl_errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _resolve(fut: asyncio.Future[int], seq: int | None, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(seq if seq is not None else 0)


def _consume(fut: asyncio.Future[int]) -> None:
    if not fut.cancelled():
        fut.exception()


def _wake(item: _Pending, seq: int | None = None, exc: BaseException | None = None) -> None:
    try:
        item.loop.call_soon_threadsafe(_resolve, item.future, seq, exc)
    except RuntimeError:
        # The caller's loop is closed (shutdown); nobody is left to wake.
        pass


class AuditLog:
    """The tamper-evident audit trail: group-committed, hash-chained, checkpoint-signed."""

    def __init__(
        self,
        db: Database,
        signer: AuditSigner,
        settings: AuditSettings,
        *,
        jsonl_path: str | Path | None = None,
    ) -> None:
        self.db = db
        self.signer = signer
        self.settings = settings
        self._jsonl_path = Path(jsonl_path) if jsonl_path else None
        #: ``None`` in the queue asks the writer to finish.
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=settings.max_queue)
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None
        self._accepting = False
        self._healthy = True
        self._stats = AuditStats()
        self._stats_lock = threading.Lock()
        self._dirty_since: float | None = None
        self._last_checkpoint_seq = 0

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Read the chain's tail and start the writer thread."""
        if self._thread is not None:
            return
        try:
            await asyncio.to_thread(self._read_tail_once)
        except Exception as exc:
            log.error("audit store unreadable at start: %s", type(exc).__name__)
            raise AuditUnavailable() from None
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="bastion-audit-writer", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Refuse new events, commit those waiting, write a final checkpoint, stop the thread."""
        if self._thread is None:
            return
        self._accepting = False
        thread = self._thread
        await asyncio.to_thread(self._queue.put, None)
        await asyncio.to_thread(thread.join, STOP_JOIN_SECONDS)
        self._thread = None

    def healthy(self) -> bool:
        """Whether the writer is running and its last commit succeeded."""
        return self._accepting and self._healthy and self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict[str, Any]:
        """Counters: events, transactions (fewer than events when commits are shared), failures."""
        with self._stats_lock:
            s = self._stats
            return {
                "events": s.events,
                "transactions": s.transactions,
                "checkpoints": s.checkpoints,
                "failed_batches": s.failed_batches,
                "refused": s.refused,
                "timeouts": s.timeouts,
                "last_seq": s.last_seq,
                "largest_batch": s.largest_batch,
                "commit_seconds_total": s.commit_seconds_total,
                "jsonl_errors": s.jsonl_errors,
                "queue_depth": self._queue.qsize(),
                "healthy": self.healthy(),
            }

    # -- the caller's side ---------------------------------------------------------

    async def append(self, event: dict[str, Any]) -> int:
        """Record ``event``; return its seq once committed, or raise AuditUnavailable."""
        if not self._accepting:
            self._count("refused")
            raise AuditUnavailable()
        prepared = self._prepare(event)
        loop = asyncio.get_running_loop()
        item = _Pending(prepared, loop, loop.create_future())
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._count("refused")
            log.error("audit queue full (%d events waiting); refusing", self.settings.max_queue)
            raise AuditUnavailable() from None
        try:
            # Shielded: a caller that is cancelled (client gone) still leaves its event to commit.
            return await asyncio.wait_for(asyncio.shield(item.future), self.settings.commit_timeout_seconds)
        except TimeoutError:
            item.abandoned = True
            self._count("timeouts")
            log.error("audit commit took longer than %.1fs; refusing", self.settings.commit_timeout_seconds)
            raise AuditUnavailable() from None
        finally:
            if not item.future.done():
                # Nobody awaits it any more; its outcome must not be reported as never retrieved.
                item.future.add_done_callback(_consume)

    def _prepare(self, event: dict[str, Any]) -> dict[str, Any]:
        kind = event.get("kind")
        bad_kind = not isinstance(kind, str) or not KIND_PATTERN.match(kind) or kind in RESERVED_KINDS
        if bad_kind or RESERVED_KEYS.intersection(event):
            # A malformed event is a bug in the caller; refuse the request rather than log garbage.
            log.error("refusing a malformed audit event (kind %r)", str(kind)[:40])
            raise AuditUnavailable()
        out = dict(event)
        out.setdefault("event_id", new_event_id())
        out.setdefault("ts", time.time())
        if not isinstance(out["ts"], int | float):
            log.error("refusing an audit event whose ts is not a number")
            raise AuditUnavailable()
        return out

    def _count(self, name: str, n: int = 1) -> None:
        with self._stats_lock:
            setattr(self._stats, name, getattr(self._stats, name) + n)

    # -- the writer thread ---------------------------------------------------------

    def _read_tail_once(self) -> None:
        with self.db.engine.connect() as conn:
            seq, _, self._last_checkpoint_seq = _head(conn)
        with self._stats_lock:
            self._stats.last_seq = seq
        if seq > self._last_checkpoint_seq:
            # Events from a previous run (maybe cut short) are not yet signed: sign them soon.
            self._dirty_since = time.monotonic()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=self._idle_timeout())
            except queue.Empty:
                if not self._healthy:
                    self._probe()
                if self._checkpoint_due():
                    self._write_guarded([], force_checkpoint=True)
                continue
            batch, stopping = self._take(first, self.settings.group_commit_max_batch)
            if not stopping:
                self._write_guarded(batch)
                continue
            # Everything still queued goes out before the final checkpoint.
            more, _ = self._take(None, self.settings.max_queue + 1)
            batch += more
            size = self.settings.group_commit_max_batch
            chunks = [batch[i : i + size] for i in range(0, len(batch), size)] or [[]]
            for i, chunk in enumerate(chunks):
                self._write_guarded(chunk, force_checkpoint=i == len(chunks) - 1)
        self._close_conn()

    def _take(self, first: _Pending | None, limit: int) -> tuple[list[_Pending], bool]:
        """``first`` plus whatever is waiting, up to ``limit``; and whether stop was asked."""
        batch = [first] if first is not None else []
        stopping = first is None
        while len(batch) < limit:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                stopping = True
            else:
                batch.append(nxt)
        return batch, stopping

    def _write_guarded(self, batch: list[_Pending], *, force_checkpoint: bool = False) -> None:
        try:
            self._write_batch(batch, force_checkpoint=force_checkpoint)
        except Exception as exc:
            # A bug here must not kill the only writer: refuse this batch and carry on.
            log.error("audit writer error: %s", type(exc).__name__, exc_info=exc)
            for item in batch:
                _wake(item, exc=AuditUnavailable())

    def _checkpoint_due(self) -> bool:
        """Whether unsigned events have waited ``checkpoint_interval_seconds``."""
        if self._dirty_since is None:
            return False
        return time.monotonic() >= self._dirty_since + self.settings.checkpoint_interval_seconds

    def _idle_timeout(self) -> float | None:
        """How long the writer may wait for events before it has other work (checkpoint, probe)."""
        waits = []
        if self._dirty_since is not None:
            due = self._dirty_since + self.settings.checkpoint_interval_seconds
            waits.append(max(0.0, due - time.monotonic()))
        if not self._healthy:
            waits.append(HEALTH_PROBE_SECONDS)
        return min(waits) if waits else None

    def _probe(self) -> None:
        """After a failure, check the store while idle, so readiness recovers without traffic."""
        try:
            conn = self._connection()
            _head(conn)
            conn.rollback()
        except Exception as exc:  # noqa: BLE001 - a failed probe only keeps the writer unhealthy
            self._close_conn()
            log.debug("audit store probe failed: %s", type(exc).__name__)
            return
        self._healthy = True
        log.info("audit store reachable again")

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self.db.engine.connect()
            if self.db.is_sqlite:
                # Wait for another writer's lock no longer than a caller waits for its commit.
                ms = int(self.settings.commit_timeout_seconds * 1000)
                conn.exec_driver_sql(f"PRAGMA busy_timeout={ms}")
                conn.commit()
            self._conn = conn
        return self._conn

    def _close_conn(self) -> None:
        if self._conn is not None:
            # Closing a broken connection may fail too; it is dropped either way.
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _begin_locked(self, conn: Connection) -> None:
        if self.db.is_sqlite:
            # IMMEDIATE takes the write lock now, so the tail read below cannot go stale.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            # One round trip: bound every wait by the commit timeout, then take the chain lock.
            # The tail is read by a later statement, so its snapshot is taken inside the lock.
            ms = int(self.settings.commit_timeout_seconds * 1000)
            conn.exec_driver_sql(
                f"SET LOCAL lock_timeout = {ms}; SET LOCAL statement_timeout = {ms}; "
                f"SELECT pg_advisory_xact_lock({PG_CHAIN_LOCK_CLASS}, hashtext(current_schema()))"
            )

    def _write_batch(self, batch: list[_Pending], *, force_checkpoint: bool = False) -> None:
        live = [item for item in batch if not item.abandoned and not item.future.done()]
        bodies: list[tuple[_Pending, dict[str, Any]]] = []
        for item in live:
            try:
                canonical_json(item.event)  # reject what cannot be stored before the transaction
            except (TypeError, ValueError):
                log.error(
                    "refusing an audit event that is not plain JSON (kind %s)",
                    item.event.get("kind"),
                )
                _wake(item, exc=AuditUnavailable())
                continue
            bodies.append((item, item.event))
        if not bodies and not (force_checkpoint and self._dirty_since is not None):
            return
        started = time.perf_counter()
        rows: list[dict[str, Any]] = []
        checkpoint: dict[str, Any] | None = None
        try:
            conn = self._connection()
            try:
                self._begin_locked(conn)
                seq, prev, last_cp = _head(conn)
                for _, event in bodies:
                    seq += 1
                    body = canonical_json({**event, "seq": seq})
                    digest = chain_hash(seq, prev, body)
                    rid = event.get("request_id")
                    rows.append(
                        {
                            "seq": seq,
                            "event_id": str(event["event_id"])[:_COLUMN_TEXT_MAX],
                            "request_id": str(rid)[:_COLUMN_TEXT_MAX] if rid is not None else None,
                            "ts": float(event["ts"]),
                            "kind": event["kind"],
                            "body": body,
                            "prev_hash": prev,
                            "hash": digest,
                        }
                    )
                    prev = digest
                if rows:
                    # One multi-row statement, not one per row: each statement hands the
                    # interpreter lock to the event loop, which may keep it for a whole switch
                    # interval, so fewer statements mean much shorter commits under load.
                    conn.execute(insert(audit_events).values(rows))
                due = seq - last_cp >= self.settings.checkpoint_every or force_checkpoint
                if seq > last_cp and due:
                    checkpoint = self._checkpoint_row(seq, prev)
                    conn.execute(insert(audit_checkpoints), checkpoint)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        except Exception as exc:
            self._close_conn()
            self._healthy = False
            self._count("failed_batches")
            if self._dirty_since is not None:
                retry_at = time.monotonic() + CHECKPOINT_RETRY_SECONDS
                self._dirty_since = retry_at - self.settings.checkpoint_interval_seconds
            # The type only: messages from the driver may carry SQL or paths.
            log.error("audit batch of %d events failed to commit: %s", len(bodies), type(exc).__name__)
            for item, _ in bodies:
                _wake(item, exc=AuditUnavailable())
            return
        elapsed = time.perf_counter() - started
        self._healthy = True
        # Counters first, then wake: a caller that has its seq sees stats that include it.
        with self._stats_lock:
            s = self._stats
            s.events += len(rows)
            s.transactions += 1
            s.largest_batch = max(s.largest_batch, len(rows))
            s.commit_seconds_total += elapsed
            if rows:
                s.last_seq = rows[-1]["seq"]
            if checkpoint is not None:
                s.checkpoints += 1
        if checkpoint is not None:
            self._last_checkpoint_seq = checkpoint["seq"]
            self._dirty_since = None
        elif rows and self._dirty_since is None:
            self._dirty_since = time.monotonic()
        for (item, _), row in zip(bodies, rows, strict=True):
            _wake(item, seq=row["seq"])
        if self._jsonl_path is not None:
            self._copy_to_jsonl(rows, checkpoint)

    def _checkpoint_row(self, seq: int, head: str) -> dict[str, Any]:
        ts = time.time()
        statement = checkpoint_statement(seq, head, ts, self.signer.key_id)
        return {
            "seq": seq,
            "hash": head,
            "ts": ts,
            "key_id": self.signer.key_id,
            "signature": self.signer.sign(statement),
        }

    def _copy_to_jsonl(self, rows: list[dict[str, Any]], checkpoint: dict[str, Any] | None) -> None:
        assert self._jsonl_path is not None
        lines = [export_line(r) for r in rows]
        if checkpoint is not None:
            lines.append(checkpoint_line(checkpoint))
        try:
            with self._jsonl_path.open("a", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in lines))
        except OSError as exc:
            # The database is the record; the file is a convenience copy for a log shipper.
            self._count("jsonl_errors")
            log.warning("audit JSONL copy failed: %s", exc.strerror)


def _head(conn: Connection) -> tuple[int, str, int]:
    """The last seq, its hash and the last checkpointed seq, in one query."""
    cols = (audit_events.c.seq, audit_events.c.hash)
    last_sq = select(*cols).order_by(audit_events.c.seq.desc()).limit(1).subquery()
    row = conn.execute(
        select(
            select(last_sq.c.seq).scalar_subquery(),
            select(last_sq.c.hash).scalar_subquery(),
            select(func.max(audit_checkpoints.c.seq)).scalar_subquery(),
        )
    ).one()
    if row[0] is None:
        return 0, GENESIS_HASH, int(row[2] or 0)
    return int(row[0]), str(row[1]), int(row[2] or 0)
