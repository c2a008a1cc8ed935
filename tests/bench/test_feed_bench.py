"""The feed benchmarks at a tiny scale, so the scripts cannot rot between benchmark runs: the
seed fills a test database with consistent rows, the load generator's phases run against a
live server on it, and the mixed benchmark's count of a page's round trips counts them."""

from __future__ import annotations

import sys
from pathlib import Path
from unittest.mock import ANY

import asyncpg
import pytest

from tests.conftest import make_settings
from tests.live import Server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import common
import feed_load
import mixed_load
import seed

SIZES = {"n_clips": 500, "n_users": 50, "n_events": 5000, "seed": 3}


@pytest.fixture
async def seeded(database_url):
    result = await seed.seed_database(database_url, **SIZES, log=lambda _: None)
    return result


async def test_seed_fills_every_table_consistently(seeded, database_url):
    assert {k: seeded[k] for k in ("users", "clips", "takes", "generation_jobs", "media", "events")} == {
        "users": 50,
        "clips": 500,
        "takes": 500,
        "generation_jobs": 500,
        "media": 1000,
        "events": 5000,
    }
    assert seeded["clip_vectors"] == 500
    assert 0 < seeded["user_vectors"] <= 50
    assert seeded["likes"] > 0
    assert seeded["follows"] > 0
    conn = await asyncpg.connect(database_url)
    try:
        # Every clip published with its own take, job and media; the HNSW index rebuilt.
        assert (
            await conn.fetchval(
                """
            SELECT count(*) FROM clips c JOIN takes t ON t.id = c.take_id AND t.clip_id = c.id
            JOIN generation_jobs j ON j.id = c.job_id JOIN media v ON v.id = c.video_media_id
            WHERE c.status = 'published' AND v.kind = 'video'
            """
            )
            == 500
        )
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM pg_indexes WHERE tablename = 'clip_vectors' AND indexdef ILIKE '%hnsw%'"
            )
            == 1
        )
        # Engaged clips carry a behaviour vector, and their indexed embedding has left pure content.
        assert seeded["clip_behaviour"] > 100
        assert not await conn.fetchval("SELECT count(*) FROM clip_behaviour WHERE vector_norm(behaviour) = 0")
        assert await conn.fetchval("SELECT count(*) FROM clip_vectors WHERE embedding <> content") > 100
        assert await conn.fetchval("SELECT sum(impressions) FROM clip_stats") == await conn.fetchval(
            "SELECT count(*) FROM events WHERE type = 'impression'"
        )
        # Tastes are planted: a viewer's nearest clips share hashtags with what they liked.
        user_id = await conn.fetchval(
            "SELECT user_id FROM likes GROUP BY user_id ORDER BY count(*) DESC LIMIT 1"
        )
        liked = set(
            await conn.fetchval(
                "SELECT array_agg(DISTINCT h) FROM likes l JOIN clips c ON c.id = l.clip_id, "
                "unnest(c.hashtags) h WHERE l.user_id = $1",
                user_id,
            )
        )
        near = await conn.fetch(
            """
            SELECT c.hashtags FROM clip_vectors v JOIN clips c ON c.id = v.clip_id
            ORDER BY v.embedding <=> (SELECT interest FROM user_vectors WHERE user_id = $1) LIMIT 10
            """,
            user_id,
        )
        assert sum(bool(liked & set(r["hashtags"])) for r in near) >= 8
    finally:
        await conn.close()
    # A second seed of the same database is refused; the marker says what is there.
    found = await seed.check_seeded(database_url, *SIZES.values())
    assert found is not None
    assert found["clips"] == 500
    with pytest.raises(SystemExit):
        await seed.seed_database(database_url, **SIZES, log=lambda _: None)


async def test_feed_load_phases_run_against_a_live_server(seeded, database_url, redis_url, tmp_path):
    viewers = await feed_load.sign_in(database_url, 20)
    assert len(viewers) == 20
    warmed = await feed_load.warm_redis(database_url, redis_url, [u for u, _ in viewers])
    assert warmed["seen_sets"] > 0
    clips = await feed_load.some_clips(database_url, 10)
    # With its worker, as `riffle serve` runs: it stores the events and ranks feeds ahead.
    with Server(make_settings(database_url, redis_url, tmp_path, run_worker=True)) as server:
        result = await feed_load.client(
            {
                "base": server.http,
                "connections": 4,
                "seconds": 0.5,
                "viewers": viewers,
                "event_clips": clips,
                "redis_url": redis_url,
            }
        )
    phases = (
        "bare",
        "first_page",
        "later_page",
        "bare_beside",
        "first_page_ready",
        "first_page_ready_again",
        "session_first",
    )
    for phase in (*phases, "session_later"):
        assert result[phase]["requests"] > 0, phase
        assert result[phase]["errors"] == 0, phase
    assert result["prerank"] == {"events_refused": 0, "viewers_with_ready_feed": 20, "seconds": ANY}
    assert result["first_page"]["sessions_from_ready_feed"] == 0
    # (500 clips: some viewers have seen too much of theirs for a page, and are ranked again)
    assert result["first_page_ready"]["sessions_from_ready_feed"] > 0
    await feed_load.sign_out(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM sessions") == 0
    finally:
        await conn.close()


async def test_the_mixed_benchmark_counts_a_later_pages_round_trips(seeded, database_url, redis_url):
    viewers = await feed_load.sign_in(database_url, 3)
    try:
        servers = common.Servers(database_url=database_url, redis_url=redis_url)
        trips = await mixed_load.round_trips(servers, [token for _, token in viewers], pages=3)
    finally:
        await feed_load.sign_out(database_url)
    assert trips["pages"] == {"first": 3, "later": 6}
    # A later page of a session this process ranked: one Redis call (through the shared
    # connection, which the count once missed) and at most the query rendering the next page's
    # cards (none when the process holds them all); not the visibility check a process too new
    # to trust its watch makes.
    assert trips["later page"]["redis"] == 1.0
    assert trips["later page"]["postgresql"] <= 1.0
    assert trips["first page"]["redis"] >= 1.0
