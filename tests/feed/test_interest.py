"""A viewer's interest: the decayed, weighted sum of what they engaged with, added atomically."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest

from feed.encoder import HashedEncoder
from feed.service import embed_clips
from feed.store import WEIGHTS, StoredEvent, store_events
from tests.factories import make_clip


def _event(user_id: int, n: int, clip_id: int, kind: str) -> StoredEvent:
    return StoredEvent(user_id, f"i{n}", kind, clip_id, None, datetime.now(UTC))


async def _interest(conn, user_id: int) -> tuple[np.ndarray, float]:
    row = await conn.fetchrow("SELECT interest, weight FROM user_vectors WHERE user_id = $1", user_id)
    return row["interest"].to_numpy(), row["weight"]


async def test_interest_decays_by_age_and_adds_each_batch(client, users, conn):
    alice, viewer = await users.make("alice"), await users.make("viewer")
    cats = await make_clip(conn, client, alice, caption="a sleepy kitten naps in a box #cats")
    cooking = await make_clip(conn, client, alice, caption="ramen with garlic butter #cooking")
    await embed_clips(conn, HashedEncoder(), [cats["id"], cooking["id"]])
    content = {
        r["clip_id"]: r["content"].to_numpy()
        for r in await conn.fetch("SELECT clip_id, content FROM clip_vectors")
    }
    await store_events(conn, [_event(viewer.id, 1, cats["id"], "like")])
    first, weight = await _interest(conn, viewer.id)
    assert np.allclose(first, WEIGHTS["like"] * content[cats["id"]], atol=1e-6)
    assert weight == WEIGHTS["like"]
    # Two weeks later (one half-life), a share of the cooking clip.
    await conn.execute(
        "UPDATE user_vectors SET updated_at = now() - interval '14 days' WHERE user_id = $1", viewer.id
    )
    await store_events(conn, [_event(viewer.id, 2, cooking["id"], "share")])
    second, weight = await _interest(conn, viewer.id)
    expected = 0.5 * WEIGHTS["like"] * content[cats["id"]] + WEIGHTS["share"] * content[cooking["id"]]
    assert np.allclose(second, expected, atol=1e-4)
    assert abs(weight - (0.5 * WEIGHTS["like"] + WEIGHTS["share"])) < 1e-4


async def test_batches_side_by_side_both_land_in_the_interest(client, users, conn, pool):
    alice, viewer = await users.make("alice"), await users.make("viewer")
    clips = [await make_clip(conn, client, alice, caption=f"clip number {i} #n{i}") for i in range(6)]
    await embed_clips(conn, HashedEncoder(), [c["id"] for c in clips])
    batches = [
        [_event(viewer.id, 10 * b + i, clips[3 * b + i]["id"], "like") for i in range(3)] for b in range(2)
    ]

    async def store(batch):
        async with pool.acquire() as c, c.transaction():
            await store_events(c, batch)

    await asyncio.gather(*(store(b) for b in batches))  # no update lost without a row lock held
    _, weight = await _interest(conn, viewer.id)
    assert abs(weight - 6 * WEIGHTS["like"]) < 1e-6


async def test_a_batch_delivered_again_counts_only_what_is_new(client, users, conn):
    alice, viewer = await users.make("alice"), await users.make("viewer")
    cats = await make_clip(conn, client, alice, caption="a sleepy kitten naps in a box #cats")
    await embed_clips(conn, HashedEncoder(), [cats["id"]])
    first = [_event(viewer.id, 1, cats["id"], "like"), _event(viewer.id, 2, cats["id"], "impression")]
    assert await store_events(conn, first) == 2
    interest, weight = await _interest(conn, viewer.id)
    # Delivered again with one new event, which the batch also holds twice.
    again = [*first, _event(viewer.id, 3, cats["id"], "share")]
    assert await store_events(conn, [*again, again[-1]]) == 1
    stats = await conn.fetchrow(
        "SELECT impressions, likes, shares FROM clip_stats WHERE clip_id = $1", cats["id"]
    )
    assert tuple(stats) == (1, 1, 1)
    assert await conn.fetchval("SELECT count(*) FROM events WHERE user_id = $1", viewer.id) == 3
    moved, moved_weight = await _interest(conn, viewer.id)
    # The like and the impression counted once (the old weight decays by the milliseconds since).
    assert moved_weight == pytest.approx(weight + WEIGHTS["share"], rel=1e-6)
    assert not np.allclose(moved, interest)
    # Nothing left half-written by the attempt that found the repeats: the same batch once more
    # stores nothing and moves nothing.
    assert await store_events(conn, again) == 0
    assert tuple(
        await conn.fetchrow(
            "SELECT impressions, likes, shares FROM clip_stats WHERE clip_id = $1", cats["id"]
        )
    ) == (1, 1, 1)
