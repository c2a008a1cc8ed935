"""Redis: one client per process, the key builder every domain uses for its keys, and Lua
scripts run by their digest."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from backend.redis_mux import Multiplexed

Redis = aioredis.Redis


def create_redis(url: str) -> Redis:
    return aioredis.Redis.from_url(url, decode_responses=False, health_check_interval=30)


class Keys:
    """Builds the keys of one domain under the configured prefix: ``riffle:<domain>:<part>:…``."""

    def __init__(self, prefix: str, domain: str) -> None:
        self._base = f"{prefix}{domain}:"

    def __call__(self, *parts: object) -> str:
        return self._base + ":".join(str(p) for p in parts)


class Script:
    """A Lua script run by its SHA-1, and loaded by the first call on a Redis that lacks it
    (a new or restarted server)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(
        self, redis: Redis | Multiplexed, keys_: Sequence[str], args: Sequence[str | int | float | bytes]
    ) -> object:
        try:
            return await redis.evalsha(self.sha, len(keys_), *keys_, *args)
        except redis_errors.NoScriptError:
            return await redis.eval(self.source, len(keys_), *keys_, *args)
