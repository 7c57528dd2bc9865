"""Counters in this process: the embedded default, exact for one replica."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from bastion.errors import LimitsUnavailable
from bastion.limits.backend import (
    US,
    Charge,
    ChargeResult,
    calendar_charge,
    rolling_adjust,
    rolling_charge,
)

#: Operations between two sweeps of expired counters.
SWEEP_EVERY = 4096
#: Calendar counters outlive their window a little, so late settlements still land.
CALENDAR_GRACE_US = 3600 * US


def _monotonic_us() -> float:
    return time.monotonic_ns() / 1000


class MemoryBackend:
    """Counters in a dict guarded by a lock; expired counters are swept, memory is bounded."""

    name = "memory"

    def __init__(
        self, max_keys: int = 1_000_000, clock_us: Callable[[], float] | None = None
    ) -> None:
        self._max_keys = max_keys
        self._clock = clock_us or _monotonic_us
        # key -> [value, last_us, expires_us]; value is debt (rolling) or the sum (calendar).
        self._cells: dict[str, list[float]] = {}
        # A plain lock: no awaits happen inside, and it also guards against other threads.
        self._lock = threading.Lock()
        self._ops = 0

    def __len__(self) -> int:
        return len(self._cells)

    async def charge(self, charges: Sequence[Charge]) -> tuple[bool, list[ChargeResult]]:
        """Apply a batch atomically; nothing is counted when a hard charge does not fit."""
        with self._lock:
            now = self._clock()
            self._maybe_sweep(now, len(charges))
            results: list[ChargeResult] = []
            updates: list[tuple[Charge, float]] = []
            admitted = True
            for c in charges:
                cell = self._cells.get(c.key)
                if c.rolling:
                    debt, last = (cell[0], cell[1]) if cell else (0.0, now)
                    res, value = rolling_charge(debt, now - last, c)
                else:
                    used = int(cell[0]) if cell else 0
                    res, value_i = calendar_charge(used, c)
                    value = float(value_i)
                results.append(res)
                if res.allowed:
                    updates.append((c, value))
                elif c.hard:
                    admitted = False
            if admitted:
                for c, value in updates:
                    self._store(c, value, now)
            return admitted, results

    async def adjust(self, charges: Sequence[Charge]) -> None:
        """Add signed corrections without checking limits."""
        with self._lock:
            now = self._clock()
            self._maybe_sweep(now, len(charges))
            for c in charges:
                cell = self._cells.get(c.key)
                if c.rolling:
                    debt, last = (cell[0], cell[1]) if cell else (0.0, now)
                    self._store(c, rolling_adjust(debt, now - last, c), now)
                else:
                    used = cell[0] if cell else 0.0
                    self._store(c, max(0.0, used + c.cost), now)

    async def ping(self) -> None:
        """Always reachable; full only when the key bound is hit."""
        with self._lock:
            if len(self._cells) >= self._max_keys:
                self._sweep(self._clock())
            if len(self._cells) >= self._max_keys:
                raise LimitsUnavailable("The usage counters are full.")

    async def aclose(self) -> None:
        """Forget every counter."""
        with self._lock:
            self._cells.clear()

    def _store(self, c: Charge, value: float, now: float) -> None:
        if c.rolling:
            expires = now + value  # the debt has drained by then: a fresh counter is the same
        else:
            expires = now + c.window_us + CALENDAR_GRACE_US
        cell = self._cells.get(c.key)
        if cell is None:
            self._cells[c.key] = [value, now, expires]
        else:
            cell[0], cell[1], cell[2] = value, now, expires

    def _maybe_sweep(self, now: float, adding: int) -> None:
        self._ops += 1
        if self._ops >= SWEEP_EVERY or len(self._cells) + adding > self._max_keys:
            self._ops = 0
            self._sweep(now)
            if len(self._cells) + adding > self._max_keys:
                # Dropping live counters would let callers past their limits: fail instead.
                raise LimitsUnavailable("The usage counters are full.")

    def _sweep(self, now: float) -> None:
        dead = [k for k, cell in self._cells.items() if cell[2] <= now]
        for k in dead:
            del self._cells[k]
