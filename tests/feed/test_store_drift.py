"""The indexed embedding follows behaviour within EMBEDDING_DRIFT: a big move rewrites it (and so
the HNSW index), a small nudge saves behaviour alone (its clip_behaviour row; clip_vectors is not
written)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from feed.encoder import HashedEncoder
from feed.service import embed_clips
from feed.store import EMBEDDING_DRIFT, StoredEvent, blend, store_events
from tests.factories import make_clip


def _event(user_id: int, n: int, clip_id: int, kind: str, watch_ms: int | None = None) -> StoredEvent:
    return StoredEvent(
        user_id=user_id, client_event_id=f"d{n}", type=kind, clip_id=clip_id, watch_ms=watch_ms,
        at=datetime.now(UTC),
    )  # fmt: skip


async def _vectors(conn, clip_id: int):
    row = await conn.fetchrow(
        """
        SELECT v.content, b.behaviour, v.embedding
        FROM clip_vectors v LEFT JOIN clip_behaviour b ON b.clip_id = v.clip_id
        WHERE v.clip_id = $1
        """,
        clip_id,
    )
    return {k: (v.to_numpy() if v is not None else None) for k, v in row.items()}


async def test_a_big_move_rewrites_the_embedding_and_a_nudge_saves_behaviour_only(client, users, conn):
    alice, carol = await users.make("alice"), await users.make("carol")
    cats = await make_clip(conn, client, alice, caption="a sleepy kitten naps in a box #cats")
    cooking = await make_clip(conn, client, alice, caption="ramen with garlic butter #cooking #recipe")
    await embed_clips(conn, HashedEncoder(), [cats["id"], cooking["id"]])

    # Four cooks, who have liked, shared and finished the cooking clip again and again, each like
    # the cat clip: its behaviour leans towards cooking, far enough to move the indexed embedding.
    cooks = [await users.make(f"cook{i}") for i in range(4)]
    n = iter(range(1, 1000))
    await store_events(
        conn,
        [
            _event(cook.id, next(n), cooking["id"], kind)
            for cook in cooks
            for kind in ("like", "share", "complete", "complete", "complete", "complete")
        ],
    )
    await store_events(conn, [_event(cook.id, next(n), cats["id"], "like") for cook in cooks])
    moved = await _vectors(conn, cats["id"])
    assert moved["behaviour"] is not None
    assert 1.0 - float(moved["embedding"] @ moved["content"]) > EMBEDDING_DRIFT
    # PostgreSQL re-blends it with the same formula as the rest of the feed (feed.store.blend).
    engaged = await conn.fetchval(
        "SELECT likes + completes + shares FROM clip_stats WHERE clip_id = $1", cats["id"]
    )
    assert np.allclose(moved["embedding"], blend(moved["content"], moved["behaviour"], engaged), atol=1e-5)

    # Carol barely watches it: behaviour moves, the indexed embedding stays where it was.
    await store_events(conn, [_event(carol.id, next(n), cats["id"], "watch", watch_ms=1)])
    nudged = await _vectors(conn, cats["id"])
    assert not np.allclose(nudged["behaviour"], moved["behaviour"])
    assert np.array_equal(nudged["embedding"], moved["embedding"])


async def test_engagement_that_does_not_drift_writes_behaviour_only(client, users, conn):
    alice, bob, carol = await users.make("alice"), await users.make("bob"), await users.make("carol")
    clip = await make_clip(conn, client, alice, caption="a sleepy kitten naps in a box #cats")
    await embed_clips(conn, HashedEncoder(), [clip["id"]])
    vectors_sql = "SELECT xmin::text AS xmin, updated_at FROM clip_vectors WHERE clip_id = $1"
    behaviour_sql = "SELECT xmin::text AS xmin, updated_at, behaviour FROM clip_behaviour WHERE clip_id = $1"
    vectors = await conn.fetchrow(vectors_sql, clip["id"])
    assert await conn.fetchrow(behaviour_sql, clip["id"]) is None  # nothing learned yet

    # Bob's first like: the clip gets a behaviour row. His taste is this clip's own content, so
    # the blend stays where the index has it and clip_vectors is not written at all.
    await store_events(conn, [_event(bob.id, 1, clip["id"], "like")])
    first = await conn.fetchrow(behaviour_sql, clip["id"])
    assert first is not None
    assert await conn.fetchrow(vectors_sql, clip["id"]) == vectors

    # Carol watches a little: the behaviour row moves, clip_vectors still untouched.
    await store_events(conn, [_event(carol.id, 2, clip["id"], "watch", watch_ms=500)])
    second = await conn.fetchrow(behaviour_sql, clip["id"])
    assert second["xmin"] != first["xmin"]
    assert not np.allclose(second["behaviour"].to_numpy(), first["behaviour"].to_numpy())
    assert await conn.fetchrow(vectors_sql, clip["id"]) == vectors
