"""Writing events to PostgreSQL, and what they move: clip statistics, user and clip vectors.

:func:`store_events` is the one way events reach the database: the stream consumer calls it
with a batch read from Redis, and the API calls it directly when Redis is down. Inserting is
idempotent (the primary key is the user and their client event id), and only events inserted
now move statistics and vectors, so a batch delivered twice counts once.

The vector model, all in one 256-dimensional space:

- a clip's *content* vector comes from the Encoder (prompt, caption, hashtags);
- a viewer's *interest* vector is a decayed, weighted sum of the vectors of clips they
  engaged with (negative for skips and "not interested");
- a clip's *behaviour* vector is a decayed sum of the interest vectors of the people who
  engaged with it (item-to-item signal: clips liked by the same people move together);
- the *embedding* the HNSW index serves blends content and behaviour, shifting towards
  behaviour as a clip gathers engagement.

Content and embedding are kept in ``clip_vectors`` (the HNSW index is on embedding), behaviour
in ``clip_behaviour`` (rewritten for every clip a batch engages with, so kept in narrow rows of
its own), interest in ``user_vectors``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import msgspec
import numpy as np
from pgvector import Vector

from backend.db import Conn

WEIGHTS: dict[str, float] = {
    "impression": 0.0,
    "watch": 0.6,  # scaled by the share of the clip watched
    "complete": 1.0,
    "like": 2.0,
    "share": 2.5,
    "tap": 1.0,
    "skip": -0.6,
    "not_interested": -3.0,
    "hide_creator": -3.0,
}
INTEREST_HALF_LIFE_DAYS = 14.0
BLEND_K = 20.0  # engagements at which content and behaviour weigh the same
# The indexed embedding is rewritten only once the blend has drifted this far (1 - cosine, about
# 8 degrees) from what the index holds: each rewrite is an insert into the HNSW graph (~2.5 ms on
# 200,000 clips). At 0.002 rewrites were 30% of storing a batch; at 0.01 event ingestion went
# from 3,167 to 4,858 events/s (bench/ingest.py, one consumer). Behaviour is always saved, so
# nothing is lost, and the hourly rebuild writes every embedding afresh.
EMBEDDING_DRIFT = 0.01


class StoredEvent(msgspec.Struct, array_like=True, frozen=True):
    """One event as it travels through the Redis stream (compact) and into the table."""

    user_id: int
    client_event_id: str
    type: str
    clip_id: int
    watch_ms: int | None
    at: datetime


_COLUMNS = ("user_id", "client_event_id", "type", "clip_id", "watch_ms", "at")

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS events_in (
    user_id bigint, client_event_id text, type text, clip_id bigint, watch_ms integer, at timestamptz
) ON COMMIT DELETE ROWS
"""

# A batch delivered again (a consumer died before acknowledging it) holds events stored already:
# those are skipped, and so is a second copy of one event within the batch.
_INSERT_NEW = """
INSERT INTO events (user_id, client_event_id, type, clip_id, watch_ms, at)
SELECT DISTINCT ON (user_id, client_event_id, at) user_id, client_event_id, type, clip_id, watch_ms, at
FROM events_in
ON CONFLICT DO NOTHING
RETURNING user_id, client_event_id, type, clip_id, watch_ms, at
"""

# The batch's first write, and its clip lock: every clip a batch touches gets its statistics row
# upserted here, in clip id order (the ids come sorted), and that row stays locked until the
# commit. A batch stored side by side (by another worker process, or unsplit in this one) that
# shares a clip waits here, before it has read or written anything else of that clip, so the
# read-modify-writes that follow (behaviour, embedding) never lose an update and never deadlock.
# (A separate SELECT … FOR UPDATE on `clips` did the same for 13% of a batch's time.)
_BUMP_STATS = """
INSERT INTO clip_stats AS s
    (clip_id, impressions, watches, completes, skips, likes, shares, negatives, watch_ms)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
                     $7::bigint[], $8::bigint[], $9::bigint[])
ON CONFLICT (clip_id) DO UPDATE SET
    impressions = s.impressions + EXCLUDED.impressions,
    watches = s.watches + EXCLUDED.watches,
    completes = s.completes + EXCLUDED.completes,
    skips = s.skips + EXCLUDED.skips,
    likes = s.likes + EXCLUDED.likes,
    shares = s.shares + EXCLUDED.shares,
    negatives = s.negatives + EXCLUDED.negatives,
    watch_ms = s.watch_ms + EXCLUDED.watch_ms,
    updated_at = now()
"""

# What the consumer needs of a batch's clips in Python: their content (what a viewer's interest
# moves towards) and length (how much of it a watch saw). Behaviour and the indexed embedding
# stay in PostgreSQL (_PULL_CLIPS): shipping three vectors per clip to Python and back made
# PostgreSQL wait on the consumer to read them.
_CLIPS = """
SELECT c.id, c.duration_ms, v.content
FROM clips c
LEFT JOIN clip_vectors v ON v.clip_id = c.id
WHERE c.id = ANY($1::bigint[])
ORDER BY c.id
"""

# Read without a lock: what it is used for (the taste each viewer brings to the clips they
# engaged with) tolerates another consumer's batch landing meanwhile.
_USERS = """
SELECT user_id, interest, updated_at FROM user_vectors WHERE user_id = ANY($1::bigint[])
"""

# Each viewer's interest decays by its age and takes this batch's engagement, in one atomic
# statement on the row as it is now and as the batch's last write, so a viewer's row is locked
# only from there to the commit (with FOR UPDATE at the read it was locked for the whole batch,
# and batches of the same viewers stored side by side waited on each other). Rows are written
# in user id order, after the batch's clips (locked in id order first): no deadlock.
_ADD_TO_USERS = """
INSERT INTO user_vectors AS u (user_id, interest, weight, updated_at)
SELECT d.user_id, d.delta, d.weight, now()
FROM unnest($1::bigint[], $2::vector(256)[], $3::float8[]) AS d (user_id, delta, weight)
ORDER BY d.user_id
ON CONFLICT (user_id) DO UPDATE SET
    interest = CASE WHEN u.interest IS NULL THEN EXCLUDED.interest ELSE
        u.interest * array_fill(
            power(0.5, extract(epoch FROM now() - u.updated_at)::float8 / $4::float8)::real, ARRAY[256]
        )::vector(256) + EXCLUDED.interest END,
    weight = CASE WHEN u.interest IS NULL THEN EXCLUDED.weight ELSE
        u.weight * power(0.5, extract(epoch FROM now() - u.updated_at)::float8 / $4::float8)
        + EXCLUDED.weight END,
    updated_at = now()
"""

# Each clip's behaviour takes the batch's pull, and its indexed embedding is re-blended (the
# same formula as blend(): content, tending to behaviour as the clip gathers engagement, with
# BLEND_K as $4). One statement for the whole batch; statistics already include the batch.
# Behaviour lives in clip_behaviour, a narrow table of its own (migration 0019 says why): it is
# upserted for every clip, in id order, and clip_vectors is written only where the re-blend
# drifted more than EMBEDDING_DRIFT ($3) from what the index holds. The re-blend reads what the
# upsert returns, so a clip's behaviour row is written before its clip_vectors row, the order
# the hourly rebuild (feed.behaviour) writes them in: the two cannot deadlock.
_PULL_CLIPS = """
WITH pulled AS (
    SELECT d.clip_id, v.content, v.embedding,
           coalesce(b.behaviour, array_fill(0::real, ARRAY[256])::vector(256)) + d.pull AS behaviour,
           $4::float8 / ($4::float8 + greatest(coalesce(s.likes + s.completes + s.shares, 0), 0)) AS alpha
    FROM unnest($1::bigint[], $2::vector(256)[]) AS d (clip_id, pull)
    JOIN clip_vectors v ON v.clip_id = d.clip_id
    LEFT JOIN clip_behaviour b ON b.clip_id = d.clip_id
    LEFT JOIN clip_stats s ON s.clip_id = d.clip_id
), saved AS (
    INSERT INTO clip_behaviour AS b (clip_id, behaviour)
    SELECT clip_id, behaviour FROM pulled ORDER BY clip_id
    ON CONFLICT (clip_id) DO UPDATE SET behaviour = EXCLUDED.behaviour, updated_at = now()
    RETURNING b.clip_id, b.behaviour
), blended AS (
    SELECT p.clip_id, p.embedding,
           CASE WHEN vector_norm(s.behaviour) <= 1e-9 THEN p.content ELSE l2_normalize(
               p.content * array_fill(p.alpha::real, ARRAY[256])::vector(256)
               + l2_normalize(s.behaviour) * array_fill((1 - p.alpha)::real, ARRAY[256])::vector(256)
           ) END AS blend
    FROM pulled p JOIN saved s ON s.clip_id = p.clip_id
)
UPDATE clip_vectors v
SET embedding = b.blend, updated_at = now()
FROM blended b
WHERE v.clip_id = b.clip_id AND (b.embedding <=> b.blend) > $3
"""


def unit(vector: np.ndarray) -> np.ndarray | None:
    """``vector`` scaled to length 1, or None for a zero vector."""
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 1e-9 else None


def _decay(age_s: float, half_life_days: float) -> float:
    return math.pow(0.5, max(age_s, 0.0) / (half_life_days * 86400.0))


def event_weight(event_type: str, watch_ms: int | None, duration_ms: int | None) -> float:
    weight = WEIGHTS.get(event_type, 0.0)
    if event_type == "watch":
        ratio = (watch_ms or 0) / duration_ms if duration_ms else 0.0
        weight *= min(max(ratio, 0.0), 1.5)
    return weight


def blend(content: np.ndarray, behaviour: np.ndarray | None, engaged: int) -> np.ndarray:
    """The indexed embedding: all content for a new clip, tending to behaviour with engagement."""
    if behaviour is None:
        return content
    b = unit(behaviour)
    if b is None:
        return content
    alpha = BLEND_K / (BLEND_K + max(engaged, 0))
    mixed = unit(alpha * content + (1 - alpha) * b)
    return mixed if mixed is not None else content


async def store_events(conn: Conn, events: Sequence[StoredEvent]) -> int:
    """Insert ``events`` (skipping ones already stored) and apply the new ones; returns how many
    were new. Runs inside the caller's transaction."""
    if not events:
        return 0
    if not conn.is_in_transaction():  # the staging table lives until commit
        async with conn.transaction():
            return await store_events(conn, events)
    new = await _insert(conn, events)
    if not new:
        return 0
    await _bump_stats(conn, new)  # first: it locks the batch's clips (see _BUMP_STATS)
    await _move_vectors(conn, new)
    return len(new)


async def _insert(conn: Conn, events: Sequence[StoredEvent]) -> Sequence[StoredEvent]:
    """The events not stored before, now stored.

    Nearly every batch is new (the API drops a client's repeats before they reach the stream),
    so it is copied straight into the table, in a savepoint. Only when that finds an event
    stored already (a batch delivered again) does the batch go through a staging table that
    leaves those out: staging, de-duplicating and inserting with ON CONFLICT took a sixth of
    PostgreSQL's time storing events.
    """
    records = [msgspec.structs.astuple(e) for e in events]
    try:
        async with conn.transaction():
            await conn.copy_records_to_table("events", records=records, columns=_COLUMNS)
        return events
    except asyncpg.UniqueViolationError:
        await conn.execute(_STAGE)
        await conn.copy_records_to_table("events_in", records=records, columns=_COLUMNS)
        return [StoredEvent(**row) for row in await conn.fetch(_INSERT_NEW)]


async def _bump_stats(conn: Conn, new: Sequence[StoredEvent]) -> None:
    per_clip: dict[int, list[int]] = defaultdict(lambda: [0] * 8)
    column = {"impression": 0, "watch": 1, "complete": 2, "skip": 3, "like": 4, "share": 5}
    for event in new:
        counts = per_clip[event.clip_id]
        if event.type in column:
            counts[column[event.type]] += 1
        elif event.type in ("not_interested", "hide_creator"):
            counts[6] += 1
        if event.watch_ms:
            counts[7] += event.watch_ms
    ids = sorted(per_clip)
    columns = list(zip(*(per_clip[i] for i in ids), strict=True))
    await conn.execute(_BUMP_STATS, ids, *[list(c) for c in columns])  # (a clip's views: impressions)


def _group_sum(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``keys`` (ascending) and, for each, the sum of its rows of ``values``."""
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return keys[starts], np.add.reduceat(values[order], starts, axis=0)


async def _move_vectors(conn: Conn, new: Sequence[StoredEvent]) -> None:
    # Impressions move no vector: reading their clips' vectors was a third of the
    # reads for nothing.
    new = [event for event in new if WEIGHTS.get(event.type, 0.0)]
    if not new:
        return
    clip_ids = sorted({event.clip_id for event in new})
    clips = {r["id"]: r for r in await conn.fetch(_CLIPS, clip_ids) if r["content"] is not None}
    # Each engagement as (viewer, clip, weight), clips as rows of one matrix: the sums below are
    # numpy over the batch rather than a vector allocated per event (which was most of the
    # consumer's own time).
    engaged = [
        (event.user_id, event.clip_id, w)
        for event in new
        if (clip := clips.get(event.clip_id)) is not None
        and (w := event_weight(event.type, event.watch_ms, clip["duration_ms"]))
    ]
    if not engaged:
        return
    clip_order = np.fromiter(clips, dtype=np.int64, count=len(clips))  # ascending (_CLIPS)
    content = np.stack([clip["content"].to_numpy() for clip in clips.values()])
    users = np.array([u for u, _, _ in engaged], dtype=np.int64)
    clip_row = np.searchsorted(clip_order, [c for _, c, _ in engaged])
    weights = np.array([w for _, _, w in engaged], dtype=np.float64)  # (vectors stay float32)

    # Viewers first: what the batch adds to each one's interest, and their new interest (as a
    # unit vector) that they bring to the clips they engaged with.
    user_ids, deltas = _group_sum(users, weights[:, None].astype(np.float32) * content[clip_row])
    _, delta_weights = _group_sum(users, np.abs(weights))
    rows = {r["user_id"]: r for r in await conn.fetch(_USERS, user_ids.tolist())}
    now = datetime.now(UTC)
    interests = deltas.copy()
    for i, user_id in enumerate(user_ids.tolist()):
        row = rows.get(user_id)
        if row is not None and row["interest"] is not None:
            age = (now - row["updated_at"]).total_seconds()
            interests[i] += row["interest"].to_numpy() * _decay(age, INTEREST_HALF_LIFE_DAYS)
    norms = np.linalg.norm(interests, axis=1)
    has_taste = norms > 1e-9
    tastes = interests / np.where(has_taste, norms, 1.0)[:, None]

    # Then the clips: each positive engagement pulls the clip's behaviour towards its viewer.
    viewer = np.searchsorted(user_ids, users)
    pulling = (weights > 0) & has_taste[viewer]
    if pulling.any():
        rows_pulled, pulls = _group_sum(clip_row[pulling], weights[pulling, None] * tastes[viewer[pulling]])
        await conn.execute(
            _PULL_CLIPS,
            clip_order[rows_pulled].tolist(),
            [Vector(p) for p in pulls.astype(np.float32)],  # (an ndarray would read as 2-D)
            EMBEDDING_DRIFT,
            BLEND_K,
        )
    # Last: the viewers' rows stay locked only until the commit that follows.
    await conn.execute(
        _ADD_TO_USERS,
        user_ids.tolist(),
        [Vector(d) for d in deltas.astype(np.float32)],  # (an ndarray would read as a row of a 2-D array)
        delta_weights.tolist(),
        INTEREST_HALF_LIFE_DAYS * 86400.0,
    )
