"""Window arithmetic: UTC calendar windows, counter keys, and durations as clients read them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import lru_cache

from bastion.limits.config import ROLLING_WINDOW_SECONDS


def calendar_window(window: str, now: float) -> tuple[str, float]:
    """The id of the UTC day or month holding ``now`` and the epoch second it ends."""
    t = datetime.fromtimestamp(now, UTC)
    if window == "day":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start.timestamp() + 86400
        return start.strftime("d%Y%m%d"), end
    if window == "month":
        if t.month == 12:
            nxt = t.replace(
                year=t.year + 1, month=1, day=1, hour=0, minute=0, second=0, microsecond=0
            )
        else:
            nxt = t.replace(month=t.month + 1, day=1, hour=0, minute=0, second=0, microsecond=0)
        return t.strftime("m%Y%m"), nxt.timestamp()
    raise ValueError(f"not a calendar window: {window}")


def calendar_start(window: str, now: float) -> float:
    """The epoch second the UTC day or month holding ``now`` began."""
    t = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "month":
        t = t.replace(day=1)
    return t.timestamp()


def rolling_seconds(window: str) -> int:
    """Length of a rolling window in seconds."""
    return ROLLING_WINDOW_SECONDS[window]


@lru_cache(maxsize=65536)
def subject_digest(value: str) -> str:
    """A short, fixed-length stand-in for a subject in counter keys (no emails in Redis)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def format_reset(seconds: float) -> str:
    """A duration as ``x-ratelimit-reset-*`` headers spell it: ``20ms``, ``1s``, ``6m0s``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    total = round(seconds, 3)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    sec_text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{sec_text}"
    if minutes:
        return f"{int(minutes)}m{sec_text}"
    return sec_text
