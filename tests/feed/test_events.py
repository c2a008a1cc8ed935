"""Watch events: accepted once, stored once, moving statistics and tastes; never lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.redis_pool import create_redis
from feed import ingest
from feed.encoder import HashedEncoder
from feed.ingest import EventConsumer
from feed.schemas import EventIn
from feed.service import embed_clips
from tests.factories import make_clip


def event(n: int, clip_id: int, kind: str = "impression", **extra):
    return {
        "client_event_id": f"e{n}",
        "type": kind,
        "clip_id": clip_id,
        "at": datetime.now(UTC).isoformat(),
    } | extra


async def drain(settings, pool) -> int:
    redis = create_redis(settings.redis_url)
    try:
        consumer = EventConsumer(pool, redis, settings.redis_prefix, name="test")
        await consumer.ensure_group()
        total = 0
        while stored := await consumer.step(block_ms=None):
            total += stored
        return total
    finally:
        await redis.aclose()


async def test_events_are_stored_once_and_move_stats_and_taste(client, users, conn, settings, pool):
    alice, bob = await users.make("alice"), await users.make("bob")
    clip = await make_clip(conn, client, alice)
    await embed_clips(conn, HashedEncoder(), [clip["id"]])
    batch = [
        event(1, clip["id"]),
        event(2, clip["id"], "watch", watch_ms=1500),
        event(3, clip["id"], "complete"),
        event(4, clip["id"], "like"),
        event(1, clip["id"]),  # the same id twice in one batch
    ]
    r = await client.post("/v1/events", json={"events": batch}, headers=bob.headers)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 4, "duplicates": 1}
    again = await client.post("/v1/events", json={"events": batch[:2]}, headers=bob.headers)
    assert again.json() == {"accepted": 0, "duplicates": 2}

    assert await drain(settings, pool) == 4
    assert await conn.fetchval("SELECT count(*) FROM events") == 4
    stats = await conn.fetchrow("SELECT * FROM clip_stats WHERE clip_id = $1", clip["id"])
    assert (stats["impressions"], stats["watches"], stats["completes"], stats["likes"]) == (1, 1, 1, 1)
    assert stats["watch_ms"] == 1500
    assert (await client.get(f"/v1/clips/{clip['id']}")).json()["counts"]["views"] == 1
    taste = await conn.fetchrow("SELECT interest, weight FROM user_vectors WHERE user_id = $1", bob.id)
    content = await conn.fetchval("SELECT content FROM clip_vectors WHERE clip_id = $1", clip["id"])
    assert taste["weight"] > 0
    assert float(taste["interest"].to_numpy() @ content.to_numpy()) > 0.9  # bob now leans towards it
    assert await conn.fetchval("SELECT count(*) FROM clip_behaviour WHERE clip_id = $1", clip["id"]) == 1


async def test_bad_batches_are_refused_whole(client, users, conn):
    alice = await users.make("alice")
    clip = await make_clip(conn, client, alice)
    cases = [
        ([event(1, 999_999)], "unknown_clip", "events[0].clip_id"),
        (
            [event(1, clip["id"]), event(2, clip["id"], at="2001-01-01T00:00:00Z")],
            "event_time_out_of_range",
            "events[1].at",
        ),
        (
            [event(1, clip["id"], at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())],
            "event_time_out_of_range",
            "events[0].at",
        ),
        ([event(i, clip["id"]) for i in range(101)], "too_many_events", "events"),
    ]
    for batch, code, field in cases:
        r = await client.post("/v1/events", json={"events": batch}, headers=alice.headers)
        assert r.status_code == 422, r.text
        assert (r.json()["code"], r.json()["field"]) == (code, field)
    for body in (
        {"events": []},
        {"events": [event(1, clip["id"], "teleport")]},
        {"events": [event(1, clip["id"]) | {"x": 1}]},
    ):
        assert (await client.post("/v1/events", json=body, headers=alice.headers)).status_code in (400, 422)
    assert (await client.post("/v1/events", json={"events": [event(1, clip["id"])]})).status_code == 401
    redis = create_redis(await _redis_url(client))
    try:
        assert await redis.xlen("riffle:feed:events") == 0
    finally:
        await redis.aclose()


async def _redis_url(client) -> str:
    return client.app.state.runtime.settings.redis_url


async def test_with_redis_down_events_go_straight_to_postgresql(client, users, conn, settings):
    """accept() against a Redis nobody listens on: the batch is committed with the request."""
    alice = await users.make("alice")
    clip = await make_clip(conn, client, alice)
    dead = create_redis("redis://127.0.0.1:1/0")
    events = [
        EventIn(client_event_id=f"d{i}", type="impression", clip_id=clip["id"], at=datetime.now(UTC))
        for i in range(3)
    ]
    try:
        async with conn.transaction():
            result = await ingest.accept(conn, dead, settings.redis_prefix, user_id=alice.id, events=events)
    finally:
        await dead.aclose()
    assert (result.accepted, result.duplicates) == (3, 0)
    assert await conn.fetchval("SELECT count(*) FROM events") == 3
    assert await conn.fetchval("SELECT impressions FROM clip_stats WHERE clip_id = $1", clip["id"]) == 3


async def test_a_crashed_consumers_entries_are_claimed_by_another(client, users, conn, settings, pool):
    alice = await users.make("alice")
    clip = await make_clip(conn, client, alice)
    await client.post(
        "/v1/events", json={"events": [event(i, clip["id"]) for i in range(5)]}, headers=alice.headers
    )
    redis = create_redis(settings.redis_url)
    try:
        dead = EventConsumer(pool, redis, settings.redis_prefix, name="dead")
        await dead.ensure_group()
        # The dead consumer read the entries and never acknowledged them.
        await redis.xreadgroup(ingest.GROUP, "dead", {dead.stream: ">"}, count=100)
        assert await conn.fetchval("SELECT count(*) FROM events") == 0
        alive = EventConsumer(pool, redis, settings.redis_prefix, name="alive", claim_idle_ms=0)
        assert await alive.step(block_ms=None) == 5
        assert await alive.step(block_ms=None) == 0
        assert await redis.xlen(dead.stream) == 0
    finally:
        await redis.aclose()
    assert await conn.fetchval("SELECT count(*) FROM events") == 5
    assert await conn.fetchval("SELECT impressions FROM clip_stats WHERE clip_id = $1", clip["id"]) == 5


async def test_the_worker_stores_events_within_seconds(database_url, redis_url, tmp_path, conn):
    import asyncio

    from litestar.testing import AsyncTestClient

    from backend.app import create_app
    from tests.conftest import make_settings
    from tests.factories import UserFactory

    settings = make_settings(database_url, redis_url, tmp_path, run_worker=True)
    async with AsyncTestClient(app=create_app(settings)) as live:
        users = UserFactory(conn, live)
        alice = await users.make("alice")
        clip = await make_clip(conn, live, alice)
        r = await live.post(
            "/v1/events", json={"events": [event(1, clip["id"], "like")]}, headers=alice.headers
        )
        assert r.status_code == 202
        for _ in range(50):
            if await conn.fetchval("SELECT count(*) FROM events") == 1:
                break
            await asyncio.sleep(0.1)
        assert await conn.fetchval("SELECT count(*) FROM events") == 1
        for _ in range(50):  # the publish's embed job ran too
            if await conn.fetchval("SELECT count(*) FROM clip_vectors"):
                break
            await asyncio.sleep(0.1)
        assert await conn.fetchval("SELECT count(*) FROM clip_vectors WHERE clip_id = $1", clip["id"]) == 1
