"""Checking the audit chain: every link, every body, every signed checkpoint.

The walk goes through the events in ``seq`` order, a page at a time, and stops at the
first problem. It then names the problem by looking at what is there:

- ``deleted``: a sequence number is missing (or the rows after a deletion were renumbered);
- ``inserted``: a row sits where it does not belong because rows were slipped in before it;
- ``reordered``: two rows exchanged places;
- ``edited``: a body, a column or a hash was changed (or a row was rewritten and rehashed);
- ``truncated``: a signed checkpoint vouches for events that are no longer there;
- ``bad_signature``: a checkpoint whose signature does not verify with any trusted key.

Events after the last checkpoint are covered by the chain only: cutting them off
leaves no trace inside the database. The report says how many there are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.engine import Connection

from bastion.audit.chain import GENESIS_HASH, chain_hash, checkpoint_statement
from bastion.audit.signing import keyring, verify_signature
from bastion.storage import Database
from bastion.storage.tables import audit_checkpoints, audit_events

ProblemKind = Literal["edited", "deleted", "inserted", "reordered", "bad_signature", "truncated"]

#: Rows read per query during the walk.
VERIFY_PAGE_ROWS = 2000

#: Columns that repeat a field of the body (for indexing) and so must agree with it.
_MIRRORED = ("event_id", "request_id", "kind", "ts")


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with the chain."""

    seq: int
    request_id: str | None
    kind: ProblemKind
    detail: str


@dataclass
class VerifyReport:
    """What ``verify_chain`` found."""

    ok: bool = True
    events_checked: int = 0
    checkpoints_checked: int = 0
    last_seq: int = 0
    last_checkpoint_seq: int = 0
    #: Events after the last valid checkpoint: chained but not yet signed.
    unsigned_events: int = 0
    problem: Problem | None = None
    key_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        return asdict(self)


@dataclass
class _Row:
    seq: int
    event_id: str
    request_id: str | None
    ts: float
    kind: str
    body: str
    prev_hash: str
    hash: str
    parsed: dict[str, Any] | None = None

    def body_seq(self) -> int | None:
        value = self.parsed.get("seq") if self.parsed else None
        return value if isinstance(value, int) else None


#: The columns of a ``_Row``, in its field order.
_ROW_COLUMNS = tuple(audit_events.c[name] for name in _Row.__dataclass_fields__ if name != "parsed")


@dataclass
class _Checkpoint:
    id: int
    seq: int
    hash: str
    ts: float
    key_id: str
    signature: str


def _parse(row: _Row) -> None:
    try:
        parsed = json.loads(row.body)
    except ValueError:
        return
    row.parsed = parsed if isinstance(parsed, dict) else None


def _mirror_mismatch(row: _Row) -> str | None:
    body = row.parsed or {}
    for col in _MIRRORED:
        stored, claimed = getattr(row, col), body.get(col)
        if col == "ts":
            same = isinstance(claimed, int | float) and float(claimed) == stored
        elif col in ("event_id", "request_id"):
            # The writer keeps at most 64 characters in the column; the body keeps the whole value.
            same = stored == (str(claimed)[:64] if claimed is not None else None)
        else:
            same = claimed == stored
        if not same:
            return f"column {col} no longer matches the event body"
    return None


def _row_at(conn: Connection, seq: int) -> _Row | None:
    r = conn.execute(select(*_ROW_COLUMNS).where(audit_events.c.seq == seq)).first()
    if r is None:
        return None
    row = _Row(*r)
    _parse(row)
    return row


class _Walk:
    """State of one pass over the chain."""

    def __init__(self, conn: Connection, keys: dict[str, Ed25519PublicKey]) -> None:
        self.conn = conn
        self.keys = keys
        self.prev: _Row | None = None
        self.checkpoints: dict[int, list[_Checkpoint]] = {}
        self.report = VerifyReport(key_ids=sorted(keys))

    def load_checkpoints(self) -> list[_Checkpoint]:
        rows = self.conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq, audit_checkpoints.c.id))
        cps = [_Checkpoint(**dict(r._mapping)) for r in rows]
        for cp in cps:
            self.checkpoints.setdefault(cp.seq, []).append(cp)
        return cps

    def signature_ok(self, cp: _Checkpoint) -> bool:
        statement = checkpoint_statement(cp.seq, cp.hash, cp.ts, cp.key_id)
        return verify_signature(self.keys, cp.key_id, statement, cp.signature)

    def bad_signature(self, cp: _Checkpoint, request_id: str | None) -> Problem:
        why = "an unknown key" if cp.key_id not in self.keys else f"key {cp.key_id}"
        return Problem(
            cp.seq,
            request_id,
            "bad_signature",
            f"checkpoint #{cp.id} at seq {cp.seq} does not verify with {why}",
        )

    def check(self, row: _Row) -> Problem | None:
        """The problem at ``row`` (the next row in seq order), if any."""
        expected = self.prev.seq + 1 if self.prev else 1
        expected_prev = self.prev.hash if self.prev else GENESIS_HASH
        _parse(row)
        if row.seq > expected:
            missing = f"seq {expected}" if row.seq == expected + 1 else f"seq {expected}..{row.seq - 1}"
            return Problem(
                expected,
                None,
                "deleted",
                f"{missing} missing; next present: seq {row.seq} (request {row.request_id})",
            )
        if row.parsed is None:
            return Problem(row.seq, row.request_id, "edited", "the body is not a JSON object any more")
        claimed = row.body_seq()
        if claimed is not None and claimed != row.seq:
            return self._moved(row, claimed)
        if chain_hash(row.seq, row.prev_hash, row.body) != row.hash:
            return Problem(
                row.seq,
                row.request_id,
                "edited",
                "the body or hash was changed after it was written",
            )
        mismatch = _mirror_mismatch(row)
        if mismatch:
            return Problem(row.seq, row.request_id, "edited", mismatch)
        if row.prev_hash != expected_prev:
            origin = self._seq_with_hash(row.prev_hash)
            if origin is not None and origin != row.seq - 1:
                return Problem(
                    row.seq,
                    row.request_id,
                    "reordered",
                    f"the event at seq {row.seq} was written after seq {origin}: it was moved and rehashed",
                )
            if self.prev is None:
                return Problem(
                    row.seq,
                    row.request_id,
                    "edited",
                    "the first event does not start from the genesis hash",
                )
            return Problem(
                self.prev.seq,
                self.prev.request_id,
                "edited",
                f"seq {row.seq} links to a different hash for seq {self.prev.seq}: "
                f"seq {self.prev.seq} was rewritten and rehashed",
            )
        return self._against_checkpoints(row)

    def _seq_with_hash(self, digest: str) -> int | None:
        """Where the event hashing to ``digest`` sits now (only asked once a link is broken)."""
        found = self.conn.execute(select(audit_events.c.seq).where(audit_events.c.hash == digest).limit(1)).first()
        return int(found.seq) if found is not None else None

    def _moved(self, row: _Row, claimed: int) -> Problem:
        if claimed > row.seq:
            other = _row_at(self.conn, claimed)
            if other is not None and other.body_seq() == row.seq:
                return Problem(
                    row.seq,
                    row.request_id,
                    "reordered",
                    f"seq {row.seq} and seq {claimed} exchanged places "
                    f"(requests {row.request_id} and {other.request_id})",
                )
            return Problem(
                row.seq,
                row.request_id,
                "deleted",
                f"the event written as seq {claimed} now sits at seq {row.seq}: "
                f"events before it were removed and the rest renumbered",
            )
        first = _row_at(self.conn, claimed)
        rid = first.request_id if first else None
        count = row.seq - claimed
        return Problem(
            claimed,
            rid,
            "inserted",
            f"{count} event(s) slipped in at seq {claimed}; the event written as seq {claimed} "
            f"(request {row.request_id}) was pushed to seq {row.seq}",
        )

    def _against_checkpoints(self, row: _Row) -> Problem | None:
        for cp in self.checkpoints.get(row.seq, ()):
            if not self.signature_ok(cp):
                return self.bad_signature(cp, row.request_id)
            if cp.hash != row.hash:
                since = self.report.last_checkpoint_seq
                return Problem(
                    row.seq,
                    row.request_id,
                    "edited",
                    f"the chain no longer matches the checkpoint signed at seq {row.seq}: "
                    f"events after seq {since} were rewritten",
                )
            self.report.checkpoints_checked += 1
            self.report.last_checkpoint_seq = row.seq
        return None


def _rows_after(conn: Connection, after: int) -> list[_Row]:
    page = conn.execute(
        select(*_ROW_COLUMNS).where(audit_events.c.seq > after).order_by(audit_events.c.seq).limit(VERIFY_PAGE_ROWS)
    ).all()
    return [_Row(*r) for r in page]


def verify_chain(
    db: Database,
    public_keys: list[Ed25519PublicKey],
    *,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Walk the whole chain and its checkpoints; report the first problem, if any."""
    with db.engine.connect() as conn:
        walk = _Walk(conn, keyring(public_keys))
        report = walk.report
        cps = walk.load_checkpoints()
        problem: Problem | None = None
        # Start below zero so rows slipped in at seq 0 or less are seen too.
        after = -(2**62)
        while problem is None:
            page = _rows_after(conn, after)
            if not page:
                break
            for row in page:
                if row.seq < 1:
                    problem = Problem(
                        row.seq,
                        row.request_id,
                        "inserted",
                        f"a row was added at seq {row.seq}, before the first event",
                    )
                    break
                problem = walk.check(row)
                if problem is not None:
                    break
                walk.prev = row
                report.events_checked += 1
            after = page[-1].seq
            if progress is not None:
                progress(len(page))
        last = walk.prev.seq if walk.prev else 0
        report.last_seq = last
        if problem is None:
            problem = _beyond_tail(walk, cps, last)
        report.unsigned_events = max(0, last - report.last_checkpoint_seq)
        report.problem = problem
        report.ok = problem is None
        return report


def _beyond_tail(walk: _Walk, cps: list[_Checkpoint], last: int) -> Problem | None:
    for cp in cps:
        if cp.seq <= last:
            continue
        if not walk.signature_ok(cp):
            return walk.bad_signature(cp, None)
        return Problem(
            last + 1,
            None,
            "truncated",
            f"checkpoint #{cp.id} vouches for events up to seq {cp.seq}, but the chain ends at seq {last}",
        )
    return None


def count_all(db: Database) -> int:
    """How many event rows there are (for progress bars)."""
    from sqlalchemy import func

    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_events)).scalar() or 0)
