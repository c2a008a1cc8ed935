"""Consumers storing batches side by side, on the same clips, store every event once and count
each exactly once (no deadlock, no lost update)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from backend.redis_pool import create_redis
from feed.encoder import HashedEncoder
from feed.ingest import EventConsumer
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
