"""The stage protocol and the frozen chain that runs stages in order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from bastion.context import RequestContext


@runtime_checkable
class Stage(Protocol):
    """One step of the request path. It reads and adds to the context, or raises a BastionError."""

    name: str

    async def __call__(self, ctx: RequestContext) -> None:
        """Run the stage on one request."""
        ...


class Chain:
    """An ordered, immutable sequence of stages built once at start-up."""

    __slots__ = ("_stages",)

    def __init__(self, stages: Sequence[Stage]) -> None:
        self._stages: tuple[Stage, ...] = tuple(stages)

    @property
    def names(self) -> tuple[str, ...]:
        """The stage names, in order."""
        return tuple(s.name for s in self._stages)

    async def __call__(self, ctx: RequestContext) -> None:
        """Run every stage; the first error stops the chain."""
        for stage in self._stages:
            await stage(ctx)
