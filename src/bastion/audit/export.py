"""Exporting audit events as JSON Lines, by time range, in chain order."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import func, select

from bastion.storage import Database
from bastion.storage.tables import audit_events

#: Rows fetched per query while exporting (keyset pages keep memory flat on any size).
EXPORT_PAGE_ROWS = 1000

_EPOCH = re.compile(r"^\d+(\.\d+)?$")


def parse_time(value: str) -> float:
    """An ISO-8601 time (no zone means UTC) or epoch seconds, as epoch seconds."""
    v = value.strip()
    if _EPOCH.match(v):
        return float(v)
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise ValueError(f"{value!r} is neither ISO-8601 nor epoch seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def export_line(row: Mapping[str, Any]) -> str:
    """One event row as a JSON Lines record: the event as stored (with its seq) plus its two hashes."""
    record = json.loads(row["body"])
    record["prev_hash"] = row["prev_hash"]
    record["hash"] = row["hash"]
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def checkpoint_line(row: Mapping[str, Any]) -> str:
    """One checkpoint as a JSON Lines record of kind ``checkpoint``."""
    fields = ("seq", "hash", "ts", "key_id", "signature")
    return json.dumps({"kind": "checkpoint", **{k: row[k] for k in fields}}, separators=(",", ":"))


def _window(since: float | None, until: float | None) -> list[Any]:
    where: list[Any] = []
    if since is not None:
        where.append(audit_events.c.ts >= since)
    if until is not None:
        where.append(audit_events.c.ts < until)
    return where


def count_events(db: Database, *, since: float | None = None, until: float | None = None) -> int:
    """How many events fall in ``[since, until)``."""
    with db.engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(audit_events).where(*_window(since, until))).scalar() or 0
        )


def export_events(
    db: Database,
    out: TextIO,
    *,
    since: float | None = None,
    until: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the events in ``[since, until)`` to ``out`` as JSON Lines; return how many."""
    cols = [audit_events.c.seq, audit_events.c.prev_hash, audit_events.c.hash, audit_events.c.body]
    where = _window(since, until)
    written, after = 0, -1
    with db.engine.connect() as conn:
        while True:
            page = conn.execute(
                select(*cols)
                .where(audit_events.c.seq > after, *where)
                .order_by(audit_events.c.seq)
                .limit(EXPORT_PAGE_ROWS)
            ).all()
            if not page:
                break
            out.write("".join(export_line(dict(r._mapping)) + "\n" for r in page))
            written += len(page)
            after = int(page[-1].seq)
            if progress is not None:
                progress(len(page))
    return written
