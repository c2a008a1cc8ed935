"""The Redis rate limiter holds across processes that share one Redis."""

from __future__ import annotations

import asyncio

from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.ratelimit import Limiter, Rule
from backend.redis_pool import create_redis
from tests.conftest import make_settings


async def test_gcra_allows_the_limit_then_refuses(redis_url):
    redis = create_redis(redis_url)
    limiter = Limiter(redis, "t:")
    rule = Rule("demo", limit=5, period_s=60)
    decisions = [await limiter.hit(rule, "k") for _ in range(6)]
    await redis.aclose()
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[-1].retry_after_s >= 1
    assert decisions[-1].headers()["Retry-After"] == str(decisions[-1].retry_after_s)


async def test_concurrent_hits_never_exceed_the_limit(redis_url):
    redis = create_redis(redis_url)
    limiter = Limiter(redis, "t:")
    rule = Rule("burst", limit=10, period_s=60)
    decisions = await asyncio.gather(*[limiter.hit(rule, "k") for _ in range(50)])
    await redis.aclose()
    assert sum(d.allowed for d in decisions) == 10


async def test_limit_is_shared_by_two_app_instances(database_url, redis_url, tmp_path):
    """Two separate apps (as two API processes would be) share one Redis: 3 log-in attempts in
    total are allowed, however they are spread."""
    settings = make_settings(database_url, redis_url, tmp_path, login_limit_per_account=3)
    async with (
        AsyncTestClient(app=create_app(settings)) as one,
        AsyncTestClient(app=create_app(settings)) as two,
    ):
        codes = []
        for client in (one, two, one, two, one):
            r = await client.post("/v1/sessions", json={"login": "alice", "password": "wrong password"})
            codes.append(r.status_code)
    assert codes == [401, 401, 401, 429, 429]
