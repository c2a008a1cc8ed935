"""Redis: one client per process, and the key builder every domain uses for its keys."""

from __future__ import annotations

import redis.asyncio as aioredis

Redis = aioredis.Redis


def create_redis(url: str) -> Redis:
    return aioredis.Redis.from_url(url, decode_responses=False, health_check_interval=30)


class Keys:
    """Builds the keys of one domain under the configured prefix: ``riffle:<domain>:<part>:…``."""

    def __init__(self, prefix: str, domain: str) -> None:
        self._base = f"{prefix}{domain}:"

    def __call__(self, *parts: object) -> str:
        return self._base + ":".join(str(p) for p in parts)
