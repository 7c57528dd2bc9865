"""Counters in Redis, shared by every replica: each batch is one atomic Lua script.

The scripts mirror ``bastion.limits.backend`` line for line. Time comes from the
Redis server (``TIME``) so replicas with skewed clocks still agree; tests may
inject a clock instead. Every key carries a TTL: rolling counters expire once
their debt has drained, calendar counters an hour after their window ends.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bastion.errors import LimitsUnavailable
from bastion.limits.backend import US, Charge, ChargeResult

#: Calendar counters outlive their window by this much, so late settlements still land.
CALENDAR_GRACE_MS = 3600 * 1000
# ARGV: now_us (0 = server time), then per key: rolling, hard, limit, cost, window_us.
# Returns: admitted, then per key: allowed, remaining, reset_us, retry_us.
_CHARGE_LUA = """
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local n = #KEYS
local admitted = 1
local out = {}
local pending = {}
for i = 1, n do
  local b = 1 + (i - 1) * 5
  local rolling = ARGV[b + 1] == '1'
  local hard = ARGV[b + 2] == '1'
  local limit = tonumber(ARGV[b + 3])
  local cost = tonumber(ARGV[b + 4])
  local window = tonumber(ARGV[b + 5])
  local allowed, remaining, reset, retry, value
  if rolling then
    local cell = redis.call('HMGET', KEYS[i], 'd', 't')
    local debt = tonumber(cell[1]) or 0
    local last = tonumber(cell[2]) or now
    local step = window / limit
    local slack = step / 2
    debt = math.max(0, debt - (now - last))
    local nd = debt + cost * step
    if nd <= window + slack then
      allowed = 1
      remaining = math.max(0, math.floor((window + slack - nd) / step))
      reset = nd
      retry = 0
      value = nd
    else
      allowed = 0
      remaining = math.max(0, math.floor((window + slack - debt) / step))
      reset = debt
      retry = nd - window
    end
  else
    local used = tonumber(redis.call('GET', KEYS[i])) or 0
    local total = used + cost
    reset = window
    if total <= limit then
      allowed = 1
      remaining = limit - total
      retry = 0
      value = total
    else
      allowed = 0
      remaining = math.max(0, limit - used)
      retry = window
    end
  end
  if allowed == 1 then
    pending[#pending + 1] = {i, rolling, value, window}
  elseif hard then
    admitted = 0
  end
  out[#out + 1] = allowed
  out[#out + 1] = remaining
  out[#out + 1] = math.ceil(reset)
  out[#out + 1] = math.ceil(retry)
end
if admitted == 1 then
  for _, p in ipairs(pending) do
    local key = KEYS[p[1]]
    if p[2] then
      redis.call('HSET', key, 'd', string.format('%.17g', p[3]), 't', string.format('%d', now))
      redis.call('PEXPIRE', key, math.ceil(p[3] / 1000) + 1000)
    else
      redis.call('SET', key, string.format('%d', p[3]), 'PX', math.ceil(p[4] / 1000) + %(grace)d)
    end
  end
end
table.insert(out, 1, admitted)
return out
""".replace("%(grace)d", str(CALENDAR_GRACE_MS))

# ARGV: now_us (0 = server time), then per key: rolling, hard (unused), limit, delta, window_us.
_ADJUST_LUA = """
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
for i = 1, #KEYS do
  local b = 1 + (i - 1) * 5
  local rolling = ARGV[b + 1] == '1'
  local limit = tonumber(ARGV[b + 3])
  local delta = tonumber(ARGV[b + 4])
  local window = tonumber(ARGV[b + 5])
  if rolling then
    local cell = redis.call('HMGET', KEYS[i], 'd', 't')
    local debt = tonumber(cell[1]) or 0
    local last = tonumber(cell[2]) or now
    debt = math.max(0, math.max(0, debt - (now - last)) + delta * (window / limit))
    redis.call('HSET', KEYS[i], 'd', string.format('%.17g', debt), 't', string.format('%d', now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(debt / 1000) + 1000)
  else
    local used = tonumber(redis.call('GET', KEYS[i])) or 0
    local total = math.max(0, used + delta)
    local ttl = math.ceil(window / 1000) + %(grace)d
    redis.call('SET', KEYS[i], string.format('%d', total), 'PX', ttl)
  end
end
return 1
""".replace("%(grace)d", str(CALENDAR_GRACE_MS))


def _args(charges: Sequence[Charge], now_us: int) -> list[Any]:
    args: list[Any] = [now_us]
    for c in charges:
        args += [1 if c.rolling else 0, 1 if c.hard else 0, c.limit, c.cost, c.window_us]
    return args


class RedisBackend:
    """Counters in one Redis primary; exact across any number of replicas."""

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 0.5,
        max_connections: int = 50,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._timeout = timeout_seconds
        self._clock = clock
        # A blocking pool: a burst waits (within the timeout) for a connection instead of
        # failing outright, and the number of sockets per replica stays bounded.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            health_check_interval=30,
            # No silent retries: a script that timed out may have run, and running it again
            # would count the same request twice.
            retry=Retry(NoBackoff(), 0),
        )
        self._client: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        self._charge = self._client.register_script(_CHARGE_LUA)
        self._adjust = self._client.register_script(_ADJUST_LUA)

    def _now_us(self) -> int:
        return 0 if self._clock is None else int(self._clock() * US)

    async def _run(self, call: Any) -> Any:
        try:
            return await asyncio.wait_for(call, self._timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            raise LimitsUnavailable("The usage counters could not be reached.") from exc

    async def charge(self, charges: Sequence[Charge]) -> tuple[bool, list[ChargeResult]]:
        """Apply a batch atomically in one script run."""
        if not charges:
            return True, []
        keys = [c.key for c in charges]
        raw = await self._run(self._charge(keys=keys, args=_args(charges, self._now_us())))
        admitted = int(raw[0]) == 1
        results = []
        for i in range(len(charges)):
            allowed, remaining, reset_us, retry_us = (int(v) for v in raw[1 + 4 * i : 5 + 4 * i])
            results.append(
                ChargeResult(allowed == 1, remaining, reset_us / US, math.ceil(retry_us) / US)
            )
        return admitted, results

    async def adjust(self, charges: Sequence[Charge]) -> None:
        """Add signed corrections in one script run."""
        if charges:
            keys = [c.key for c in charges]
            await self._run(self._adjust(keys=keys, args=_args(charges, self._now_us())))

    async def ping(self) -> None:
        """Raise LimitsUnavailable unless Redis answers in time."""
        await self._run(self._client.ping())

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose(close_connection_pool=True)
