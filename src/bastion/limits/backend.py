"""What a counter backend is, and the arithmetic every backend shares.

A *charge* asks one counter for some units (requests, tokens or micro-dollars).
Rolling windows (second/minute/hour) are a generic cell rate algorithm: the
counter holds a *debt* in microseconds that drains in real time; a charge of
``n`` units adds ``n * window / limit`` and fits while the debt stays within the
window, so ``limit`` units fit at once and then one more every ``window/limit``.
Calendar windows (UTC day/month) are plain sums keyed by the window's id.

A batch of charges is all-or-nothing for hard limits: if any hard charge does
not fit, nothing is counted. Soft charges are counted when they fit and merely
reported when they do not. Backends raise only ``bastion.errors.LimitsUnavailable``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

US = 1_000_000


@dataclass(frozen=True, slots=True)
class Charge:
    """Units asked of one counter. For settlement ``cost`` is a signed correction."""

    key: str
    rolling: bool
    #: The limit in units (requests, tokens, micro-dollars).
    limit: int
    cost: int
    hard: bool
    #: Rolling: the window length. Calendar: time left until the window ends. Microseconds.
    window_us: int


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """How one counter answered a charge."""

    allowed: bool
    #: Units that would still fit after this charge (before it, when refused).
    remaining: int
    #: Seconds until the counter is back to its full allowance.
    reset_seconds: float
    #: Seconds until a refused charge would fit (0 when allowed).
    retry_after_seconds: float


class CounterBackend(Protocol):
    """Where counters live: this process or a server every replica shares."""

    name: str

    async def charge(self, charges: Sequence[Charge]) -> tuple[bool, list[ChargeResult]]:
        """Apply a batch atomically; return whether every hard charge fitted and each result."""
        ...

    async def adjust(self, charges: Sequence[Charge]) -> None:
        """Add signed corrections to counters without checking limits (settlement)."""
        ...

    async def ping(self) -> None:
        """Raise LimitsUnavailable when the counters cannot be reached."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def rolling_charge(debt_us: float, elapsed_us: float, c: Charge) -> tuple[ChargeResult, float]:
    """One rolling-window charge: the result and the new debt (unchanged when refused)."""
    step = c.window_us / c.limit
    # Half a step of slack absorbs float rounding without ever fitting one unit more.
    slack = step / 2
    debt = max(0.0, debt_us - elapsed_us)
    new_debt = debt + c.cost * step
    if new_debt <= c.window_us + slack:
        remaining = max(0, math.floor((c.window_us + slack - new_debt) / step))
        return ChargeResult(True, remaining, new_debt / US, 0.0), new_debt
    remaining = max(0, math.floor((c.window_us + slack - debt) / step))
    retry = max(0.0, new_debt - c.window_us) / US
    return ChargeResult(False, remaining, debt / US, retry), debt


def calendar_charge(used: int, c: Charge) -> tuple[ChargeResult, int]:
    """One calendar-window charge: the result and the new sum (unchanged when refused)."""
    total = used + c.cost
    left = c.window_us / US
    if total <= c.limit:
        return ChargeResult(True, c.limit - total, left, 0.0), total
    return ChargeResult(False, max(0, c.limit - used), left, left), used


def rolling_adjust(debt_us: float, elapsed_us: float, c: Charge) -> float:
    """A rolling counter's debt after a signed correction."""
    return max(0.0, max(0.0, debt_us - elapsed_us) + c.cost * (c.window_us / c.limit))
