"""Restoring pseudonyms in streamed answers, where a placeholder may arrive in pieces.

A provider may send ``<PER`` in one chunk and ``SON_1>`` in the next. The
restorer emits everything that cannot be part of a placeholder at once and
holds back only a tail that still could be one: a ``<`` followed by what might
become ``TYPE_N>``. That tail is never longer than the longest placeholder, so
the hold-back is bounded, and ``flush`` releases it when the stream ends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bastion.protect.vault import MAX_PLACEHOLDER_CHARS, restore_placeholders

# What a placeholder can look like before its closing ``>`` has arrived.
_PARTIAL = re.compile(r"<(?:[A-Z][A-Z0-9_]{0,63}(?:_[0-9]{0,9})?)?")


class StreamRestorer:
    """Feed answer chunks in order; get back text with known placeholders restored."""

    __slots__ = ("_values", "_pending", "_max_hold")

    def __init__(self, values: Mapping[str, str], *, max_hold: int = MAX_PLACEHOLDER_CHARS) -> None:
        self._values = values
        self._pending = ""
        self._max_hold = max_hold

    @property
    def held(self) -> int:
        """Characters held back waiting for the rest of a possible placeholder."""
        return len(self._pending)

    def feed(self, chunk: str) -> str:
        """Restore what can be restored now; hold back only a possible placeholder start."""
        if not self._values:
            return chunk
        buf = self._pending + chunk if self._pending else chunk
        cut = self._hold_from(buf)
        self._pending = buf[cut:]
        return restore_placeholders(buf[:cut], self._values)

    def flush(self) -> str:
        """Everything still held, at the end of the stream."""
        rest, self._pending = self._pending, ""
        return restore_placeholders(rest, self._values)

    def finish(self) -> str:
        """``flush``, under the name the output chain calls."""
        return self.flush()

    def _hold_from(self, buf: str) -> int:
        start = buf.rfind("<", max(0, len(buf) - self._max_hold))
        if start < 0:
            return len(buf)
        if _PARTIAL.fullmatch(buf, start) is None:
            return len(buf)
        return start


class ChoiceRestorers:
    """One restorer per choice index of a streamed completion (``n`` > 1 streams interleave)."""

    __slots__ = ("_values", "_restorers")

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values
        self._restorers: dict[int, StreamRestorer] = {}

    def feed(self, index: int, chunk: str) -> str:
        """Restore a content delta of choice ``index``."""
        restorer = self._restorers.get(index)
        if restorer is None:
            restorer = self._restorers[index] = StreamRestorer(self._values)
        return restorer.feed(chunk)

    def flush(self, index: int) -> str:
        """What choice ``index`` still holds (call when it finishes)."""
        restorer = self._restorers.pop(index, None)
        return restorer.flush() if restorer is not None else ""

    def flush_all(self) -> dict[int, str]:
        """What every unfinished choice still holds."""
        out = {i: r.flush() for i, r in self._restorers.items()}
        self._restorers.clear()
        return {i: text for i, text in out.items() if text}
