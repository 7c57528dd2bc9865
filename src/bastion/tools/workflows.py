"""Caps on one workflow's tool calls: how many, and for how long, so a runaway agent stops.

A workflow is one agent run, named by the caller (``X-Bastion-Workflow-Id``) and always
counted within its user, so one user's id never uses up another's. Counted in memory per
replica by default; with ``limits.backend: redis`` the counts live in Redis and every
replica sees the same ones (one atomic script per call, timed by the Redis server's clock).
When Redis cannot answer, the call is refused (``limits.on_backend_error: fail_closed``, the
default) or counted in memory on this replica (``fail_open``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from bastion.context import Principal
from bastion.errors import LimitsUnavailable, PermissionDenied, RateLimited

log = logging.getLogger("bastion.tools")

#: Longest workflow id accepted.
MAX_WORKFLOW_ID_CHARS = 128
#: Header naming the workflow (an agent run) a call belongs to.
WORKFLOW_HEADER = "x-bastion-workflow-id"

# KEYS: start, calls. ARGV: max calls, max seconds, seconds to keep the keys.
# Returns the call's number, -1 past the time cap, -2 past the call cap.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local start = tonumber(redis.call('GET', KEYS[1]))
if not start then
  start = now
  redis.call('SET', KEYS[1], string.format('%.6f', now), 'EX', ARGV[3])
end
if now - start > tonumber(ARGV[2]) then
  return -1
end
local calls = tonumber(redis.call('GET', KEYS[2])) or 0
if calls >= tonumber(ARGV[1]) then
  return -2
end
redis.call('SET', KEYS[2], calls + 1, 'EX', ARGV[3])
return calls + 1
"""


class RedisWorkflowCounter:
    """Workflow counts in Redis, shared by every replica."""

    def __init__(self, url: str, *, prefix: str, timeout_seconds: float, max_connections: int) -> None:
        import redis.asyncio as aioredis

        self._client: Any = aioredis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds,
            max_connections=max_connections,
        )
        self._script = self._client.register_script(_SCRIPT)
        self._prefix = prefix

    async def count(self, subject: str, workflow_id: str, max_calls: int, max_seconds: float) -> int:
        """This call's number in its workflow, or -1 (time cap passed) or -2 (call cap reached)."""
        digest = hashlib.sha256(f"{subject}\n{workflow_id}".encode()).hexdigest()[:32]
        base = f"{self._prefix}:workflow:{digest}"
        keep = math.ceil(max_seconds) * 2 + 60  # long enough to keep refusing a run past its time
        return int(await self._script(keys=[base + ":start", base + ":calls"], args=[max_calls, max_seconds, keep]))

    async def aclose(self) -> None:
        """Release the connections."""
        await self._client.aclose()


class WorkflowLimits:
    """Caps on calls and time per workflow (per user and workflow id)."""

    def __init__(self, *, max_calls: int, max_seconds: float, max_tracked: int,
                 clock: Callable[[], float] = time.monotonic, shared: RedisWorkflowCounter | None = None,
                 fail_open: bool = False) -> None:
        self._max_calls = max_calls
        self._max_seconds = max_seconds
        self._max_tracked = max_tracked
        self._clock = clock
        self._shared = shared
        self._fail_open = fail_open
        self._runs: OrderedDict[tuple[str, str], list[float]] = OrderedDict()

    async def admit(self, principal: Principal, workflow_id: str | None) -> None:
        """Count one call of ``workflow_id`` (scoped to its user); refuse past a cap."""
        if workflow_id is None:
            return
        if not workflow_id or len(workflow_id) > MAX_WORKFLOW_ID_CHARS or not workflow_id.isprintable():
            raise PermissionDenied("The workflow id is empty, too long or not printable.", code="invalid_workflow")
        if self._shared is not None:
            try:
                n = await self._shared.count(principal.subject, workflow_id, self._max_calls, self._max_seconds)
            except Exception as exc:  # noqa: BLE001 - any failure of the store is an outage of it
                log.error("workflow counts unavailable: %s", type(exc).__name__)
                if not self._fail_open:
                    raise LimitsUnavailable() from None
            else:
                self._verdict(n == -1, n == -2)
                return
        self._count_here(principal, workflow_id)

    def _count_here(self, principal: Principal, workflow_id: str) -> None:
        key = (principal.subject, workflow_id)
        now = self._clock()
        run = self._runs.get(key)
        if run is None:
            run = [now, 0.0]
            self._runs[key] = run
            while len(self._runs) > self._max_tracked:
                self._runs.popitem(last=False)
        self._verdict(now - run[0] > self._max_seconds, run[1] >= self._max_calls)
        run[1] += 1

    @staticmethod
    def _verdict(too_long: bool, too_many: bool) -> None:
        if too_long:
            raise RateLimited("This workflow has run longer than allowed.", code="workflow_time_exceeded")
        if too_many:
            raise RateLimited("This workflow has made as many tool calls as allowed.", code="workflow_calls_exceeded")

    async def aclose(self) -> None:
        """Release the shared store's connections."""
        if self._shared is not None:
            await self._shared.aclose()
