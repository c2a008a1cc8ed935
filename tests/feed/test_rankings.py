"""Feed rankings per process are bounded (RIFFLE_FEED_RANKINGS), and a first page waiting for
its turn holds no database connection: later pages, which need one briefly, never queue behind
rankings for the pool, and waiters never starve the ranking they wait for."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from backend.runtime import runtime
from feed import service
from tests.conftest import make_settings
from tests.feed.test_feed import COOKING, publish_all
from tests.live import Server


async def test_first_pages_wait_their_turn_to_rank_without_holding_a_connection(
    database_url, redis_url, tmp_path, client, users, conn, monkeypatch
):
    author = await users.make("author")
    viewers = [await users.make(f"viewer{i}") for i in range(4)]
    await publish_all(conn, client, author, COOKING)
    seen: dict[str, Any] = {"running": 0, "most": 0, "in_use": []}
    rank = service._rank

    async def observed(*args: Any, **kwargs: Any) -> Any:
        seen["running"] += 1
        seen["most"] = max(seen["most"], seen["running"])
        try:
            await asyncio.sleep(0.1)  # the other first pages arrive and wait for the slot meanwhile
            pool = seen["pool"]
            seen["in_use"].append(pool.get_size() - pool.get_idle_size())
            return await rank(*args, **kwargs)
        finally:
            seen["running"] -= 1

    monkeypatch.setattr(service, "_rank", observed)
    settings = make_settings(database_url, redis_url, tmp_path, db_pool_max=len(viewers), feed_rankings=1)
    with Server(settings) as server:  # on a socket: requests side by side, as in production
        seen["pool"] = runtime(server.server.config.app.state).pool
        # The process has never seen these viewers: each request takes a connection to learn
        # who is asking, then gives it back before it waits for the slot.
        async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
            pages = await asyncio.gather(*(http.get("/v1/feed/for-you", headers=v.headers) for v in viewers))
    assert [p.status_code for p in pages] == [200] * len(viewers)
    assert all(p.json()["items"] for p in pages)
    assert seen["most"] == 1
    assert len(seen["in_use"]) >= len(viewers)
    assert max(seen["in_use"]) == 1  # the ranking's own, and none held by a waiting page
