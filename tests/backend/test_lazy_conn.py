"""LazyConn: a pooled connection taken on first use and given back on release, so that a
read-only route (the For You feed) holds one only while PostgreSQL answers it."""

from __future__ import annotations

import asyncio

from backend import db


async def test_takes_on_first_use_and_gives_back_on_release(database_url):
    pool = await db.create_pool(database_url, min_size=1, max_size=1)
    try:
        async with db.LazyConn(pool) as lazy:
            await lazy.release()  # nothing taken yet: nothing to give back
            assert pool.get_idle_size() == 1
            assert await (await lazy()).fetchval("SELECT 1") == 1
            assert pool.get_idle_size() == 0
            await lazy.release()
            # The pool's only connection is free for another request at once ...
            async with asyncio.timeout(2):
                async with pool.acquire() as other:
                    assert await other.fetchval("SELECT 2") == 2
            # ... and the next use takes one again.
            assert await (await lazy()).fetchval("SELECT 3") == 3
        assert pool.get_idle_size() == 1  # the `async with` gave the last one back
    finally:
        await pool.close()
