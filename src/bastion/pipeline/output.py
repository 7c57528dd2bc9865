"""Extension point for the output side: filters that see the answer as it flows back.

An output stage opens one filter per answer. The filter is fed the answer's text
as it arrives (the whole text at once for a non-streamed answer) and returns the
text to release; it may hold text back (for values split across chunks) and
must release what it holds when finished. It raises a BastionError to stop the
answer (for instance when a secret would leak).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bastion.context import RequestContext


class OutputFilter(Protocol):
    """Transforms one answer's text incrementally."""

    def feed(self, text: str) -> str:
        """Take the next piece of the answer; return what may be released now."""
        ...

    def finish(self) -> str:
        """The answer is complete; return whatever was held back."""
        ...


class Drainable(Protocol):
    """A filter that batches its work may release early when the provider has nothing more ready."""

    def drain(self) -> str:
        """Nothing more has arrived: return what was only waiting to be batched."""
        ...


class OutputStage(Protocol):
    """Builds an output filter for a request, or None when it has nothing to do."""

    name: str

    def open(self, ctx: RequestContext) -> OutputFilter | None:
        """A filter for this request's answer."""
        ...


class OutputChain:
    """The filters of every output stage, applied in order to one answer."""

    __slots__ = ("_filters",)

    def __init__(self, stages: Sequence[OutputStage], ctx: RequestContext) -> None:
        filters = (s.open(ctx) for s in stages)
        self._filters: tuple[OutputFilter, ...] = tuple(f for f in filters if f is not None)

    def __bool__(self) -> bool:
        return bool(self._filters)

    def feed(self, text: str) -> str:
        """Pass a piece of the answer through every filter."""
        for f in self._filters:
            text = f.feed(text)
        return text

    def finish(self) -> str:
        """Flush every filter, each flush passing through the filters after it."""
        out = ""
        for i, f in enumerate(self._filters):
            tail = f.finish()
            for later in self._filters[i + 1 :]:
                tail = later.feed(tail)
            out += tail
        return out

    def drain(self) -> str:
        """Ask every filter for what it only held to batch; each release passes the filters after it."""
        out = ""
        for i, f in enumerate(self._filters):
            drain = getattr(f, "drain", None)
            if drain is None:
                continue
            text = drain()
            if text:
                for later in self._filters[i + 1 :]:
                    text = later.feed(text)
                out += text
        return out

    def whole(self, text: str) -> str:
        """Filter a complete, non-streamed answer."""
        return self.feed(text) + self.finish()
