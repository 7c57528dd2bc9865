"""Counting a streamed answer as it flows, so an over-budget stream can be ended cleanly."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bastion.context import Usage
from bastion.limits.estimate import chars_to_tokens

if TYPE_CHECKING:
    from bastion.limits.admission import Admission
    from bastion.limits.limiter import Limiter


class StreamMeter:
    """Counts completion tokens per chunk; reserves more as the answer grows, stops when refused.

    The gateway calls ``await meter.add(tokens=..., chars=...)`` for each chunk;
    when it returns False the budget is spent: the gateway ends the stream
    (finish_reason ``length``) and settles with ``meter.usage()``.
    """

    __slots__ = ("_limiter", "_admission", "_tokens", "_chars", "_exhausted")

    def __init__(self, limiter: Limiter, admission: Admission) -> None:
        self._limiter = limiter
        self._admission = admission
        self._tokens = 0
        self._chars = 0
        self._exhausted = False

    @property
    def completion_tokens(self) -> int:
        """Completion tokens counted so far (exact counts plus characters converted)."""
        return self._tokens + chars_to_tokens(self._chars, self._limiter.settings.chars_per_token)

    @property
    def exhausted(self) -> bool:
        """Whether a hard limit ended this stream."""
        return self._exhausted

    async def add(self, tokens: int = 0, chars: int = 0) -> bool:
        """Count one chunk; return whether the stream may go on."""
        if self._exhausted:
            return False
        self._tokens += max(0, tokens)
        self._chars += max(0, chars)
        adm = self._admission
        if not adm.metered:
            return True
        over = self.completion_tokens - adm.reserved_completion
        if over <= 0:
            return True
        # Reserve in steps so a long answer costs one backend round trip per step, not per chunk.
        step = max(over, self._limiter.settings.stream_reserve_tokens)
        if await self._limiter.extend(adm, step):
            return True
        if step > over and await self._limiter.extend(adm, over):
            return True
        self._exhausted = True
        return False

    def usage(self) -> Usage:
        """Usage to settle with if the provider reported none: estimated prompt, counted answer."""
        completion = self.completion_tokens
        prompt = self._admission.prompt_tokens
        return Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )
