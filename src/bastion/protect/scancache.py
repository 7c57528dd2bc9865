"""Remembered scan results, so a chat history resent every turn is scanned once.

Chat clients send the whole conversation with every request: all but the newest
message were scanned before. The scanner keeps the findings of recent texts,
keyed by a keyed BLAKE2 digest of the exact text and the tenant (the only inputs
of a scan besides the scanner's own settings, and every scanner has its own
cache). The text itself is never kept, only the findings' types, offsets, scores
and explanations.

The cache is a segmented LRU: a text enters a probation segment and moves to the
protected one when it is seen again, so a stream of texts seen once (answers
scanned window by window) cannot push out the history that repeats.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict

from bastion.context import Finding

#: Share of the entries kept for texts seen at least twice.
PROTECTED_SHARE = 0.8
#: Results with more findings than this are not kept (they are rare and large).
MAX_FINDINGS_KEPT = 256

#: A finding as kept: type, start, end, score, detector, data classes, explanation.
_Kept = tuple[str, int, int, float, str, tuple[str, ...], str]


class ScanCache:
    """A bounded, thread-safe map from (text, tenant) to the findings of its scan."""

    def __init__(self, entries: int) -> None:
        self._protected_max = int(entries * PROTECTED_SHARE)
        self._probation_max = max(1, entries - self._protected_max)
        self._probation: OrderedDict[tuple[bytes, str | None], tuple[_Kept, ...]] = OrderedDict()
        self._protected: OrderedDict[tuple[bytes, str | None], tuple[_Kept, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self._key = os.urandom(16)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._probation) + len(self._protected)

    def key(self, text: str, tenant: str | None) -> tuple[bytes, str | None]:
        """The cache key of a text scanned for a tenant."""
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), key=self._key, digest_size=16).digest()
        return digest, tenant

    def get(self, key: tuple[bytes, str | None]) -> list[Finding] | None:
        """Fresh findings of an earlier scan of the same text for the same tenant, or None."""
        with self._lock:
            kept = self._protected.get(key)
            if kept is not None:
                self._protected.move_to_end(key)
            else:
                kept = self._probation.pop(key, None)
                if kept is None:
                    self.misses += 1
                    return None
                # Seen a second time: worth protecting from texts seen once.
                self._protected[key] = kept
                if len(self._protected) > self._protected_max:
                    old, value = self._protected.popitem(last=False)
                    self._admit(old, value)
            self.hits += 1
        # Callers may change the findings they get (offsets, location): each gets its own.
        return [Finding(t, s, e, sc, d, c, x) for t, s, e, sc, d, c, x in kept]

    def put(self, key: tuple[bytes, str | None], findings: list[Finding]) -> None:
        """Remember the findings of a scan (a copy: later changes to them are not seen)."""
        if len(findings) > MAX_FINDINGS_KEPT:
            return
        kept = tuple([(f.type, f.start, f.end, f.score, f.detector, f.data_classes, f.explanation) for f in findings])
        with self._lock:
            if key in self._protected:
                self._protected[key] = kept
                return
            self._admit(key, kept)

    def _admit(self, key: tuple[bytes, str | None], kept: tuple[_Kept, ...]) -> None:
        self._probation[key] = kept
        self._probation.move_to_end(key)
        while len(self._probation) > self._probation_max:
            self._probation.popitem(last=False)
