"""Fixtures of the feed tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from backend import db
from backend.redis_pool import Redis, create_redis
from backend.runtime import runtime
from feed.visibility import VisibilityWatch


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[db.Pool]:
    """A pool of its own, for work that runs side by side (consumers, concurrent batches)."""
    p = await db.create_pool(database_url, min_size=1, max_size=4)
    yield p
    await p.close()


async def until(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.fixture
async def redis(settings) -> AsyncIterator[Redis]:
    """A client of the test's own (the app's runs on the test client's event loop)."""
    client = create_redis(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def watch(app, client) -> VisibilityWatch:
    """The app's watch, listening, with no margin for other hosts' clocks (one process here)."""
    rt = runtime(app.state)
    assert await until(lambda: rt.visibility.listening_since is not None)
    rt.visibility.margin_s = 0.0
    await asyncio.sleep(0.01)  # sessions ranked from now on are covered
    return rt.visibility
