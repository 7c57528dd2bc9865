"""Replay protection: each token id (``jti``) is accepted once until the token expires."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

#: Most token ids the in-memory cache holds; past that it refuses rather than forgets.
DEFAULT_MAX_ENTRIES = 200_000


class ReplayCache(Protocol):
    """Remembers token ids. ``seen`` must check and record in one atomic step."""

    def seen(self, jti: str, expires_at: float) -> bool:
        """Record ``jti`` until ``expires_at``; True if it was already recorded."""
        ...


class ReplayCacheFull(Exception):
    """The cache cannot record another id without forgetting one that is still valid."""


class MemoryReplayCache:
    """A bounded, thread-safe in-process cache; right for a backend with one process."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, *, clock: Callable[[], float] = time.time) -> None:
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, jti: str, expires_at: float) -> bool:
        """Record ``jti`` until ``expires_at``; True if it was already recorded."""
        now = self._clock()
        with self._lock:
            self._purge(now)
            if jti in self._expiry:
                return True
            if len(self._expiry) >= self._max:
                # Forgetting a live id would let its token be replayed: refuse instead.
                raise ReplayCacheFull()
            self._expiry[jti] = expires_at
            heapq.heappush(self._heap, (expires_at, jti))
            return False

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            _, jti = heapq.heappop(self._heap)
            self._expiry.pop(jti, None)


class RedisReplayCache:
    """A cache shared by all replicas of a backend, on any redis-py style client."""

    def __init__(self, client: Any, *, prefix: str = "bastion:jti:", clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock

    def seen(self, jti: str, expires_at: float) -> bool:
        """Record ``jti`` until ``expires_at`` with SET NX; True if it was already recorded."""
        ttl = max(1, int(expires_at - self._clock()) + 1)
        created = self._client.set(self._prefix + jti, b"1", nx=True, ex=ttl)
        return not created
