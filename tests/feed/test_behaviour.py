"""Behaviour vectors from co-engagement: the math on planted tastes, and the worker's rebuild
on real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from feed import behaviour
from feed.encoder import HashedEncoder
from feed.service import embed_clips
from feed.store import StoredEvent, store_events
from tests.factories import make_clip


def _topic(rng: np.random.Generator, centre: np.ndarray, n: int) -> np.ndarray:
    return behaviour.unit_rows(centre + 0.3 * rng.standard_normal((n, 256)))


def test_clips_liked_by_the_same_people_move_together_whatever_their_words():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(256), rng.standard_normal(256)
    content = np.vstack([_topic(rng, a, 10), _topic(rng, b, 10)])  # clips 0-9: topic A, 10-19: B
    # Clip 19 is worded like B, but only the A people love it.
    users, clips, weights = [], [], []
    for user in range(20):
        fans_of_a = user < 10
        for clip in range(0, 10) if fans_of_a else range(10, 19):
            users.append(user)
            clips.append(clip)
            weights.append(2.0)
        if fans_of_a:
            users.append(user)
            clips.append(19)
            weights.append(2.5)
    r = behaviour.engagement_matrix(users, clips, weights, n_users=20, n_clips=20)
    b_vectors = behaviour.unit_rows(behaviour.behaviours(r, behaviour.tastes(r, content)))
    to_a = float(b_vectors[19] @ b_vectors[0])
    to_b = float(b_vectors[19] @ b_vectors[10])
    assert to_a > 0.95 > to_b  # its behaviour says A though its words say B
    blended = behaviour.embeddings(content, b_vectors, np.full(20, 40))
    assert float(blended[19] @ content[0]) > float(content[19] @ content[0]) + 0.2
    fresh = behaviour.embeddings(content, np.zeros_like(content), np.zeros(20))
    assert np.allclose(fresh, content, atol=1e-6)  # nothing learned: content alone


async def test_the_rebuild_writes_behaviour_and_leaves_unmoved_clips_alone(client, users, conn, database_url):
    from backend import db

    author = await users.make("author")
    cooking = [
        (await make_clip(conn, client, author, caption="#cooking pasta ramen dumplings"))["id"]
        for _ in range(4)
    ]
    cats = [
        (await make_clip(conn, client, author, caption="#cats kitten purring nap"))["id"] for _ in range(4)
    ]
    await embed_clips(conn, HashedEncoder(), cooking + cats)
    viewers = [await users.make(f"viewer{i}") for i in range(6)]
    now = datetime.now(UTC)
    events = [
        StoredEvent(v.id, f"{v.id}-{c}", "like", c, None, now - timedelta(hours=1))
        for i, v in enumerate(viewers)
        for c in (cooking if i < 3 else cats) + ([cats[0]] if i < 3 else [])
    ]
    await store_events(conn, events)
    # As if never learned.
    await conn.execute("DELETE FROM clip_behaviour")
    await conn.execute("UPDATE clip_vectors SET embedding = content")

    pool = await db.create_pool(database_url, min_size=1, max_size=2)
    try:
        first = await behaviour.rebuild(pool, window_days=30)
        second = await behaviour.rebuild(pool, window_days=30)
    finally:
        await pool.close()
    assert (first.viewers, first.clips) == (6, 8)
    assert first.updated == 8
    assert second.updated == 0  # nothing moved since
    assert await conn.fetchval("SELECT count(*) FROM clip_behaviour") == 8
    rows = {
        r["clip_id"]: (r["content"].to_numpy(), r["embedding"].to_numpy())
        for r in await conn.fetch("SELECT clip_id, content, embedding FROM clip_vectors")
    }
    # The cat clip the cooking fans love now sits nearer the cooking clips than its words put it.
    content_sim = float(rows[cats[0]][0] @ rows[cooking[0]][0])
    learned_sim = float(rows[cats[0]][1] @ rows[cooking[0]][1])
    assert learned_sim > content_sim + 0.1
