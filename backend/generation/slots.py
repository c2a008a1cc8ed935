"""Per-provider concurrency caps that hold across every worker process.

A cap is a Redis sorted set of leases (member: the take, score: when the lease lapses).
Acquiring drops lapsed leases and adds ours only while fewer than ``limit`` are held, all in
one Lua script, so two processes can never both take the last slot. A lease is renewed while
its take runs and lapses on its own if the worker holding it dies.
"""

from __future__ import annotations

import asyncio
import random
import time

from backend.redis_pool import Keys, Redis

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  return 1
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
  return 1
end
return 0
"""


class ProviderSlots:
    def __init__(self, redis: Redis, prefix: str, *, limit: int, lease_s: int) -> None:
        self._redis = redis
        self._keys = Keys(prefix, "gen")
        self._limit = limit
        self._lease_ms = lease_s * 1000
        self._acquire = redis.register_script(_ACQUIRE)

    async def acquire(self, provider: str, holder: str) -> bool:
        """Take (or renew) a slot for ``holder``; False when the provider is at its cap."""
        granted = await self._acquire(
            keys=[self._keys("slots", provider)], args=[holder, self._limit, self._lease_ms]
        )
        return bool(granted)

    async def acquire_within(self, provider: str, holder: str, *, within_s: float) -> bool:
        """Wait up to ``within_s`` for a slot: a slot freed a moment later is taken at once
        instead of after a round trip through the queue."""
        deadline = time.monotonic() + within_s
        while not await self.acquire(provider, holder):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(random.uniform(0.05, 0.2))  # noqa: S311 (jitter, not security)
        return True

    async def release(self, provider: str, holder: str) -> None:
        await self._redis.zrem(self._keys("slots", provider), holder)

    async def held(self, provider: str) -> int:
        return int(await self._redis.zcard(self._keys("slots", provider)))
