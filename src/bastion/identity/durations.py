"""Durations as people write them on the command line: ``30d``, ``12h``, ``90m``, ``never``."""

from __future__ import annotations

import re

from bastion.errors import InvalidRequest

#: Longest lifetime a duration may name (ten years): a typo cannot make an eternal key.
MAX_DURATION_SECONDS = 10 * 366 * 86400.0

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$", re.IGNORECASE)
_NEVER = frozenset({"never", "none", "0"})


def parse_duration(text: str | None) -> float | None:
    """Seconds named by ``text`` (``30d``, ``12h``, ``90m``, ``45s``, ``2w``); None for never."""
    if text is None or text.strip().lower() in _NEVER:
        return None
    m = _DURATION.match(text)
    if not m:
        raise InvalidRequest(
            "A duration is a whole number followed by s, m, h, d or w (e.g. 30d), or 'never'.",
            code="invalid_duration",
        )
    seconds = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if seconds <= 0 or seconds > MAX_DURATION_SECONDS:
        raise InvalidRequest("A duration must be more than zero and at most ten years.", code="invalid_duration")
    return seconds
