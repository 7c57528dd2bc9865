"""The audit log writer: events are committed in groups, callers await their commit.

A request calls ``await AuditLog.append(event)``. Everything waiting is committed in one
transaction that takes the chain lock, reads the chain's tail from the database, appends
the batch with its hashes, adds a signed checkpoint when one is due, and commits. Only
then are the waiting coroutines woken with their sequence numbers. A batch that fails
is rolled back whole, so the chain never has a gap; the next batch starts again from
whatever the database holds. Reading the tail inside the lock on every batch is what
lets several processes (replicas on PostgreSQL, the CLI beside a server on SQLite)
share one chain.

Two committers share that logic:

* **SQLite** (the embedded default, ``synchronous=NORMAL``): a commit only writes the
  WAL file into the operating system's cache, which takes microseconds, so batches are
  written on the event loop itself. Appends made while the loop runs other callbacks
  join the same batch, which is flushed by the next loop iteration: no thread hand-off,
  no contention for the interpreter lock. The write lock is taken without waiting
  (another process holding it makes the batch retry shortly, never block the loop),
  and the WAL is copied back into the database by a background thread, so the loop
  never waits for the disk.
* **PostgreSQL**, and SQLite with ``synchronous=FULL`` (every commit waits for the
  disk): one writer thread takes whatever is queued and commits it, so network round
  trips and disk flushes never block the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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

#: Seconds between copies of the SQLite WAL back into the database file (off the event loop).
WAL_CHECKPOINT_SECONDS = 1.0

#: First and longest pause, in seconds, before an in-loop batch retries a write lock another process holds.
LOCK_RETRY_FIRST_SECONDS = 0.001
LOCK_RETRY_MAX_SECONDS = 0.02

_SQLITE_INSERT_EVENT = (
    "INSERT INTO audit_events (seq, event_id, request_id, ts, kind, body, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_INSERT_CHECKPOINT = "INSERT INTO audit_checkpoints (seq, hash, ts, key_id, signature) VALUES (?, ?, ?, ?, ?)"
_SQLITE_TAIL = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
_SQLITE_LAST_CHECKPOINT = "SELECT max(seq) FROM audit_checkpoints"


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


class _StoreBusy(Exception):
    """Another process holds the write lock; the batch may be tried again."""


class _Store(Protocol):
    """One transaction's worth of chain operations on a connection."""

    def begin(self) -> None: ...
    def head(self) -> tuple[int, str, int]: ...
    def insert_events(self, rows: list[dict[str, Any]]) -> None: ...
    def insert_checkpoint(self, row: dict[str, Any]) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


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


def _wake_from_thread(item: _Pending, seq: int | None = None, exc: BaseException | None = None) -> None:
    try:
        item.loop.call_soon_threadsafe(_resolve, item.future, seq, exc)
    except RuntimeError:
        # The caller's loop is closed (shutdown); nobody is left to wake.
        pass


def _wake_in_loop(item: _Pending, seq: int | None = None, exc: BaseException | None = None) -> None:
    _resolve(item.future, seq, exc)


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
        #: Thread mode: ``None`` in the queue asks the writer to finish.
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=settings.max_queue)
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None
        #: In-loop mode: the loop, what waits for the next flush, and the scheduled callbacks.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: deque[_Pending] = deque()
        self._flush_handle: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._raw: sqlite3.Connection | None = None
        self._lock_deadline: float | None = None
        self._lock_pause = LOCK_RETRY_FIRST_SECONDS
        self._wal_stop = threading.Event()
        self._wal_thread: threading.Thread | None = None
        self._accepting = False
        self._healthy = True
        self._stats = AuditStats()
        self._stats_lock = threading.Lock()
        self._dirty_since: float | None = None
        self._last_checkpoint_seq = 0
        #: A checkpoint fell due in a batch: it is signed in a transaction of its own, right
        #: after that batch's callers are answered, so no caller waits for the signature.
        self._checkpoint_owed = False

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Read the chain's tail and start committing (in the loop, or in a writer thread)."""
        if self._thread is not None or self._loop is not None:
            return
        try:
            await asyncio.to_thread(self._read_tail_once)
            raw = await asyncio.to_thread(self._open_inline) if self.db.is_sqlite else None
        except Exception as exc:
            log.error("audit store unreadable at start: %s", type(exc).__name__)
            raise AuditUnavailable() from None
        self._accepting = True
        if raw is not None:
            self._raw = raw
            self._loop = asyncio.get_running_loop()
            self._arm_timer()
            self._wal_thread = threading.Thread(target=self._wal_checkpointer, name="bastion-audit-wal", daemon=True)
            self._wal_thread.start()
            return
        self._thread = threading.Thread(target=self._run, name="bastion-audit-writer", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Refuse new events, commit those waiting, write a final checkpoint, stop."""
        if self._loop is not None:
            self._accepting = False
            self._stop_inline()
            return
        if self._thread is None:
            return
        self._accepting = False
        thread = self._thread
        await asyncio.to_thread(self._queue.put, None)
        await asyncio.to_thread(thread.join, STOP_JOIN_SECONDS)
        self._thread = None

    def healthy(self) -> bool:
        """Whether the writer is running and its last commit succeeded."""
        if self._loop is not None:
            return self._accepting and self._healthy
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
                "queue_depth": len(self._pending) if self._loop is not None else self._queue.qsize(),
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
        if self._loop is not None:
            return await self._append_inline(item)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._refuse_full()
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

    def _refuse_full(self) -> None:
        self._count("refused")
        log.error("audit queue full (%d events waiting); refusing", self.settings.max_queue)
        raise AuditUnavailable() from None

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

    def _read_tail_once(self) -> None:
        with self.db.engine.connect() as conn:
            seq, _, self._last_checkpoint_seq = _head(conn)
        with self._stats_lock:
            self._stats.last_seq = seq
        if seq > self._last_checkpoint_seq:
            # Events from a previous run (maybe cut short) are not yet signed: sign them soon.
            self._dirty_since = time.monotonic()

    # -- in-loop committing (SQLite) -------------------------------------------------

    def _open_inline(self) -> sqlite3.Connection | None:
        """A dedicated connection for in-loop commits, or None where commits wait for the disk."""
        fairy = self.db.engine.raw_connection()
        raw = fairy.dbapi_connection
        if not isinstance(raw, sqlite3.Connection):
            fairy.close()
            return None
        fairy.detach()  # the connection is ours for the writer's lifetime, not the pool's
        mode = raw.execute("PRAGMA synchronous").fetchone()[0]
        if int(mode) >= 2:
            # FULL waits for the disk on every commit: that belongs on a thread, not the loop.
            raw.close()
            return None
        raw.isolation_level = None  # transactions are begun and ended explicitly below
        raw.execute("PRAGMA busy_timeout=0")  # never wait for another process's lock on the loop
        raw.execute("PRAGMA wal_autocheckpoint=0")  # the WAL thread copies it back, off the loop
        return raw

    async def _append_inline(self, item: _Pending) -> int:
        if len(self._pending) >= self.settings.max_queue:
            self._refuse_full()
        self._pending.append(item)
        if self._flush_handle is None:
            assert self._loop is not None
            self._flush_handle = self._loop.call_soon(self._flush)
        # Awaited directly (one wake-up, no shield): a caller cancelled meanwhile (client gone)
        # cancels this future, and the flush still commits its event (see ``_write_batch``). The
        # flush resolves every other future within the commit timeout, by a seq or by a refusal.
        return await item.future

    def _flush(self) -> None:
        self._flush_handle = None
        if not self._pending or self._raw is None:
            return
        if self._lock_deadline is None:
            self._lock_deadline = time.monotonic() + self.settings.commit_timeout_seconds
        size = self.settings.group_commit_max_batch
        batch = [self._pending.popleft() for _ in range(min(size, len(self._pending)))]
        try:
            self._write_guarded(batch, _SqliteStore(self._raw), _wake_in_loop)
        except _StoreBusy:
            self._pending.extendleft(reversed(batch))
            self._retry_locked()
            return
        self._lock_deadline = None
        self._lock_pause = LOCK_RETRY_FIRST_SECONDS
        assert self._loop is not None
        if self._checkpoint_owed:
            # Scheduled after the callers just answered, so their responses go out first.
            self._loop.call_soon(self._owed_checkpoint)
        if self._pending:
            self._flush_handle = self._loop.call_soon(self._flush)
        if self._timer is None or not self._healthy:
            self._arm_timer()  # a checkpoint now due in the interval, or a probe of a failing store

    def _owed_checkpoint(self) -> None:
        if not self._checkpoint_owed or self._raw is None:
            return
        try:
            self._write_guarded([], _SqliteStore(self._raw), _wake_in_loop, force_checkpoint=True)
        except _StoreBusy:
            pass  # still owed: the next batch falls due again and asks once more

    def _retry_locked(self) -> None:
        """Another process holds the write lock: try again shortly, refuse at the commit timeout."""
        assert self._loop is not None and self._lock_deadline is not None
        if time.monotonic() >= self._lock_deadline:
            waiting = list(self._pending)
            self._pending.clear()
            self._lock_deadline = None
            self._lock_pause = LOCK_RETRY_FIRST_SECONDS
            self._count("timeouts", len(waiting))
            log.error("audit store stayed locked for %.1fs; refusing", self.settings.commit_timeout_seconds)
            for item in waiting:
                _wake_in_loop(item, exc=AuditUnavailable())
            return
        self._flush_handle = self._loop.call_later(self._lock_pause, self._flush)
        self._lock_pause = min(self._lock_pause * 2, LOCK_RETRY_MAX_SECONDS)

    def _arm_timer(self) -> None:
        """Schedule the next idle duty (a due checkpoint, a health probe), if any."""
        if self._loop is None or not self._accepting:
            return
        wait = self._idle_timeout()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if wait is not None:
            self._timer = self._loop.call_later(wait, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._raw is None:
            return
        if not self._healthy:
            self._probe_inline()
        if self._healthy and self._checkpoint_due() and not self._pending:
            try:
                self._write_guarded([], _SqliteStore(self._raw), _wake_in_loop, force_checkpoint=True)
            except _StoreBusy:
                pass  # the next timer tries again
        self._arm_timer()

    def _probe_inline(self) -> None:
        assert self._raw is not None
        try:
            _SqliteStore(self._raw).head()
        except sqlite3.Error as exc:
            log.debug("audit store probe failed: %s", type(exc).__name__)
            return
        self._healthy = True
        log.info("audit store reachable again")

    def _stop_inline(self) -> None:
        for handle in (self._flush_handle, self._timer):
            if handle is not None:
                handle.cancel()
        self._flush_handle = self._timer = None
        raw = self._raw
        if raw is not None:
            store = _SqliteStore(raw)
            waiting = list(self._pending)
            self._pending.clear()
            size = self.settings.group_commit_max_batch
            chunks = [waiting[i : i + size] for i in range(0, len(waiting), size)] or [[]]
            deadline = time.monotonic() + self.settings.commit_timeout_seconds
            for i, chunk in enumerate(chunks):
                while True:
                    try:
                        self._write_guarded(chunk, store, _wake_in_loop, force_checkpoint=i == len(chunks) - 1)
                        break
                    except _StoreBusy:
                        if time.monotonic() >= deadline:
                            for item in chunk:
                                _wake_in_loop(item, exc=AuditUnavailable())
                            break
                        time.sleep(LOCK_RETRY_MAX_SECONDS)
        self._wal_stop.set()
        if self._wal_thread is not None:
            self._wal_thread.join(STOP_JOIN_SECONDS)
            self._wal_thread = None
        if raw is not None:
            with contextlib.suppress(sqlite3.Error):
                raw.execute("PRAGMA wal_checkpoint(PASSIVE)")
            raw.close()
        self._raw = None
        self._loop = None

    def _wal_checkpointer(self) -> None:
        """Copy the WAL back into the database now and then, on a connection of its own."""
        conn: Any = None
        while not self._wal_stop.wait(WAL_CHECKPOINT_SECONDS):
            try:
                if conn is None:
                    fairy = self.db.engine.raw_connection()
                    conn = fairy.dbapi_connection
                    fairy.detach()
                assert conn is not None
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except Exception as exc:  # noqa: BLE001 - a failed copy is retried; commits are unaffected
                log.debug("audit WAL checkpoint failed: %s", type(exc).__name__)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                    conn = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    # -- the writer thread (PostgreSQL; SQLite with synchronous=FULL) ------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=self._idle_timeout())
            except queue.Empty:
                if not self._healthy:
                    self._probe()
                if self._checkpoint_due():
                    self._write_threaded([], force_checkpoint=True)
                continue
            batch, stopping = self._take(first, self.settings.group_commit_max_batch)
            if not stopping:
                self._write_threaded(batch)
                if self._checkpoint_owed:
                    # The batch's callers are answered; now sign, in a transaction of its own.
                    self._write_threaded([], force_checkpoint=True)
                continue
            # Everything still queued goes out before the final checkpoint.
            more, _ = self._take(None, self.settings.max_queue + 1)
            batch += more
            size = self.settings.group_commit_max_batch
            chunks = [batch[i : i + size] for i in range(0, len(batch), size)] or [[]]
            for i, chunk in enumerate(chunks):
                self._write_threaded(chunk, force_checkpoint=i == len(chunks) - 1)
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

    def _write_threaded(self, batch: list[_Pending], *, force_checkpoint: bool = False) -> None:
        try:
            store = _AlchemyStore(self._connection(), self)
        except Exception as exc:
            self._failed(exc, batch, _wake_from_thread)
            return
        try:
            self._write_guarded(batch, store, _wake_from_thread, force_checkpoint=force_checkpoint)
        except _StoreBusy:  # pragma: no cover - only the SQLite store raises it
            for item in batch:
                _wake_from_thread(item, exc=AuditUnavailable())

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

    # -- one batch, either way -----------------------------------------------------------

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

    def _write_guarded(
        self, batch: list[_Pending], store: _Store, wake: Any, *, force_checkpoint: bool = False
    ) -> None:
        try:
            self._write_batch(batch, store, wake, force_checkpoint=force_checkpoint)
        except _StoreBusy:
            raise
        except Exception as exc:
            # A bug here must not stop the writer: refuse this batch and carry on.
            log.error("audit writer error: %s", type(exc).__name__, exc_info=exc)
            for item in batch:
                wake(item, exc=AuditUnavailable())

    def _write_batch(self, batch: list[_Pending], store: _Store, wake: Any, *, force_checkpoint: bool = False) -> None:
        # A cancelled future is a caller that stopped waiting (client gone): its event is still
        # committed. Only an event given up on (``abandoned``) or already settled is skipped.
        live = [
            item for item in batch
            if not item.abandoned and (not item.future.done() or item.future.cancelled())
        ]
        if not live and not (force_checkpoint and self._dirty_since is not None):
            return
        started = time.perf_counter()
        rows: list[dict[str, Any]] = []
        committed: list[_Pending] = []
        rejected: set[int] = set()
        checkpoint: dict[str, Any] | None = None
        try:
            try:
                store.begin()
                seq, prev, last_cp = store.head()
                for item in live:
                    event = item.event
                    try:
                        body = canonical_json({**event, "seq": seq + 1})
                    except (TypeError, ValueError):
                        # Rejected before it takes a seq: the chain has no gap.
                        log.error("refusing an audit event that is not plain JSON (kind %s)", event.get("kind"))
                        wake(item, exc=AuditUnavailable())
                        rejected.add(id(item))
                        continue
                    seq += 1
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
                    committed.append(item)
                    prev = digest
                if rows:
                    store.insert_events(rows)
                owed = seq > last_cp and seq - last_cp >= self.settings.checkpoint_every
                if seq > last_cp and force_checkpoint:
                    checkpoint = self._checkpoint_row(seq, prev)
                    store.insert_checkpoint(checkpoint)
                store.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    store.rollback()
                raise
        except _StoreBusy:
            raise
        except Exception as exc:
            self._failed(exc, [item for item in live if id(item) not in rejected], wake)
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
            self._checkpoint_owed = False
        else:
            self._checkpoint_owed = owed
        if checkpoint is None and rows and self._dirty_since is None:
            self._dirty_since = time.monotonic()
        for item, row in zip(committed, rows, strict=True):
            wake(item, seq=row["seq"])
        if self._jsonl_path is not None:
            self._copy_to_jsonl(rows, checkpoint)

    def _failed(self, exc: BaseException, items: list[_Pending], wake: Any) -> None:
        if self._loop is None:
            self._close_conn()
        self._healthy = False
        self._count("failed_batches")
        if self._dirty_since is not None:
            retry_at = time.monotonic() + CHECKPOINT_RETRY_SECONDS
            self._dirty_since = retry_at - self.settings.checkpoint_interval_seconds
        # The type only: messages from the driver may carry SQL or paths.
        log.error("audit batch of %d events failed to commit: %s", len(items), type(exc).__name__)
        for item in items:
            wake(item, exc=AuditUnavailable())

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


class _SqliteStore:
    """The chain's statements on the in-loop SQLite connection (explicit transactions)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def begin(self) -> None:
        try:
            # IMMEDIATE takes the write lock now, so the tail read below cannot go stale.
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or (
                "locked" in str(exc)
            ):
                raise _StoreBusy() from None
            raise

    def head(self) -> tuple[int, str, int]:
        row = self._conn.execute(_SQLITE_TAIL).fetchone()
        cp = self._conn.execute(_SQLITE_LAST_CHECKPOINT).fetchone()[0]
        if row is None:
            return 0, GENESIS_HASH, int(cp or 0)
        return int(row[0]), str(row[1]), int(cp or 0)

    def insert_events(self, rows: list[dict[str, Any]]) -> None:
        self._conn.executemany(
            _SQLITE_INSERT_EVENT,
            [(r["seq"], r["event_id"], r["request_id"], r["ts"], r["kind"], r["body"], r["prev_hash"], r["hash"])
             for r in rows],
        )

    def insert_checkpoint(self, row: dict[str, Any]) -> None:
        self._conn.execute(_SQLITE_INSERT_CHECKPOINT, (row["seq"], row["hash"], row["ts"], row["key_id"],
                                                       row["signature"]))

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")


class _AlchemyStore:
    """The chain's statements on the writer thread's SQLAlchemy connection."""

    def __init__(self, conn: Connection, owner: AuditLog) -> None:
        self._conn = conn
        self._owner = owner

    def begin(self) -> None:
        conn, settings = self._conn, self._owner.settings
        if self._owner.db.is_sqlite:
            # IMMEDIATE takes the write lock now, so the tail read below cannot go stale.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            # One round trip: bound every wait by the commit timeout, then take the chain lock.
            # The tail is read by a later statement, so its snapshot is taken inside the lock.
            ms = int(settings.commit_timeout_seconds * 1000)
            conn.exec_driver_sql(
                f"SET LOCAL lock_timeout = {ms}; SET LOCAL statement_timeout = {ms}; "
                f"SELECT pg_advisory_xact_lock({PG_CHAIN_LOCK_CLASS}, hashtext(current_schema()))"
            )

    def head(self) -> tuple[int, str, int]:
        return _head(self._conn)

    def insert_events(self, rows: list[dict[str, Any]]) -> None:
        # One statement for the batch (executemany with the same compiled, cached statement).
        self._conn.execute(insert(audit_events), rows)

    def insert_checkpoint(self, row: dict[str, Any]) -> None:
        self._conn.execute(insert(audit_checkpoints), row)

    def commit(self) -> None:
        self._conn.commit()

    def rollback(self) -> None:
        self._conn.rollback()


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
