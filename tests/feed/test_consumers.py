"""Consumers storing batches side by side, on the same clips, store every event once and count
each exactly once (no deadlock, no lost update)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from backend.redis_pool import create_redis
from feed import service
from feed.encoder import HashedEncoder
from feed.ingest import EventConsumer, keys
from feed.service import embed_clips
from tests.factories import make_clip


@pytest.mark.parametrize("lanes", [0, 2], ids=["whole-batches", "two-lanes"])
async def test_two_consumers_on_shared_clips_count_every_event_once(
    client, users, conn, settings, pool, monkeypatch, lanes
):
    alice = await users.make("alice")
    viewers = [await users.make(f"viewer{i}") for i in range(4)]
    clips = [await make_clip(conn, client, alice) for _ in range(3)]
    await embed_clips(conn, HashedEncoder(), [c["id"] for c in clips])
    sent = 0
    for round_ in range(6):
        for v, viewer in enumerate(viewers):
            batch = [
                {
                    "client_event_id": f"r{round_}-{i}",
                    "type": "like" if i % 5 == 0 else "impression",
                    "clip_id": clips[(i + v) % 3]["id"],
                    "at": datetime.now(UTC).isoformat(),
                }
                for i in range(20)
            ]
            r = await client.post("/v1/events", json={"events": batch}, headers=viewer.headers)
            assert r.status_code == 202, r.text
            sent += 20

    redis = create_redis(settings.redis_url)
    try:
        # As `riffle serve` runs them: sharing lanes, each batch split by clip between them.
        shared = [asyncio.Lock() for _ in range(lanes)]
        consumers = [
            EventConsumer(pool, redis, settings.redis_prefix, name=f"c{n}", lanes=shared) for n in range(2)
        ]
        await consumers[0].ensure_group()
        # Small batches, so both consumers hold several at once on the same three clips.
        monkeypatch.setattr("feed.ingest.BATCH", 10)
        monkeypatch.setattr("feed.ingest.LANE_MIN", 2)  # and split into lanes even so

        async def drain(consumer: EventConsumer) -> int:
            total = 0
            while stored := await consumer.step(block_ms=None):
                total += stored
            return total

        stored = await asyncio.gather(*(drain(c) for c in consumers))
    finally:
        await redis.aclose()

    assert sum(stored) == sent
    assert all(n > 0 for n in stored)  # both did part of the work
    assert await conn.fetchval("SELECT count(*) FROM events") == sent
    totals = await conn.fetchrow("SELECT sum(impressions) AS i, sum(likes) AS l FROM clip_stats")
    assert (totals["i"], totals["l"]) == (sent * 4 // 5, sent // 5)


async def test_a_batch_moves_trending_by_hour_and_each_viewers_seen_set(client, users, conn, settings, pool):
    alice, bob, carol = await users.make("alice"), await users.make("bob"), await users.make("carol")
    a, b, c = [await make_clip(conn, client, alice) for _ in range(3)]
    now = datetime.now(UTC)
    hour_ago = now - timedelta(hours=1)

    def event(n: int, kind: str, clip: dict, at: datetime, **extra: object) -> dict:
        return {"client_event_id": f"e{n}", "type": kind, "clip_id": clip["id"], "at": at.isoformat()} | extra

    bobs = [
        event(1, "impression", a, now),
        event(2, "watch", a, now, watch_ms=1000),
        event(3, "like", a, now),
        event(4, "tap", b, now),  # a tap counts for trending; what was tapped was seen already
        event(5, "skip", c, now),  # seen, and nothing for trending
        event(6, "share", c, hour_ago),
    ]
    carols = [event(1, "complete", b, now)]
    for viewer, batch in ((bob, bobs), (carol, carols)):
        r = await client.post("/v1/events", json={"events": batch}, headers=viewer.headers)
        assert r.status_code == 202, r.text

    redis = create_redis(settings.redis_url)
    try:
        consumer = EventConsumer(pool, redis, settings.redis_prefix, name="c")
        await consumer.ensure_group()
        assert await consumer.step(block_ms=None) == 7
        k = keys(settings.redis_prefix)
        this_hour, last_hour = (
            k("trending", int(now.timestamp() // 3600)),
            k("trending", int(hour_ago.timestamp() // 3600)),
        )
        assert await redis.zscore(this_hour, a["id"]) == pytest.approx(0.05 + 0.3 + 2.0)
        assert await redis.zscore(this_hour, b["id"]) == pytest.approx(1.0 + 1.0)
        assert await redis.zscore(this_hour, c["id"]) is None
        assert await redis.zrange(last_hour, 0, -1, withscores=True) == [(str(c["id"]).encode(), 3.0)]
        assert {int(m) for m in await redis.smembers(k("seen", bob.id))} == {a["id"], c["id"]}
        assert {int(m) for m in await redis.smembers(k("seen", carol.id))} == {b["id"]}
        for key in (this_hour, last_hour, k("seen", bob.id), k("seen", carol.id)):
            assert await redis.ttl(key) > 0
    finally:
        await redis.aclose()


async def test_trending_sums_the_top_of_each_hour_decayed_by_age_and_is_shared_for_a_while(
    redis, settings, monkeypatch
):
    k = keys(settings.redis_prefix)
    hour = int(datetime.now(UTC).timestamp() // 3600)
    await redis.zadd(k("trending", hour), {"1": 10.0, "2": 5.0})
    await redis.zadd(k("trending", hour - 1), {"3": 12.0, "2": 4.0})
    await redis.zadd(k("trending", hour - 30), {"4": 1000.0})  # older than a day: not counted
    # 3 scores 12 x 0.9 = 10.8; 2 counts only where it is among the top of its hour.
    monkeypatch.setattr(service, "TRENDING_PER_HOUR", 1)
    assert await service.trending_ids(redis, settings.redis_prefix, limit=10) == [3, 1]
    # The next 30 s every caller reads the same answer, whatever arrives meanwhile.
    await redis.zadd(k("trending", hour), {"5": 100.0})
    assert await service.trending_ids(redis, settings.redis_prefix, limit=1) == [3]
    await redis.delete(k("trending", "now"))
    monkeypatch.setattr(service, "TRENDING_PER_HOUR", 500)
    assert await service.trending_ids(redis, settings.redis_prefix, limit=10) == [5, 3, 1, 2]
    assert 0 < await redis.ttl(k("trending", "now")) <= 30
    # Nothing trending at all is remembered as such too.
    await redis.flushdb()
    assert await service.trending_ids(redis, settings.redis_prefix, limit=10) == []
    assert await redis.exists(k("trending", "now"))
