"""Behaviour vectors rebuilt from co-engagement: the periodic counterpart of feed.store's
incremental updates.

Between rebuilds, every new event nudges its viewer's interest and the clip's behaviour
(:mod:`feed.store`). That is cheap but drifts: a clip's behaviour keeps the taste its early
viewers had at the time, and nothing ever decays. The worker's hourly job recomputes both
sides from the events of the last ``RIFFLE_FEED_BEHAVIOUR_WINDOW_DAYS`` in one pass of sparse
linear algebra, in the same 256-dimensional space as the content vectors:

1. R: each (viewer, clip) pair's engagement, weighted as the store weighs events (likes,
   shares, completions, watch share; negative for skips and "not interested") and decayed
   with the same half-life;
2. U = R · C: each viewer's taste, the weighted sum of the content vectors of what they
   engaged with (the store's interest vector, recomputed without drift);
3. B = R⁺ᵀ · unit(U): each clip's behaviour, the sum of the tastes of the people who engaged
   with it positively. Two clips liked by the same people get the same behaviour even when
   their words share nothing: this is the co-engagement (item-to-item) signal;
4. the indexed embedding blends content and behaviour (:func:`feed.store.blend`), leaning on
   behaviour as a clip gathers engagement.

The same functions score the offline evaluation in bench/rec_quality.py, so what is measured
there is what the feed serves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import structlog
from scipy import sparse

from backend.db import Pool
from feed.store import BLEND_K, INTEREST_HALF_LIFE_DAYS, WEIGHTS

log = structlog.get_logger()

DIM = 256
DRIFT = 0.995  # cosine above which a clip's embedding is left alone (an HNSW rewrite costs)


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 1e-9, norms, 1.0)).astype(np.float32)


def engagement_matrix(
    users: Sequence[int] | np.ndarray,
    clips: Sequence[int] | np.ndarray,
    weights: Sequence[float] | np.ndarray,
    *,
    n_users: int,
    n_clips: int,
) -> sparse.csr_matrix:
    """R (viewers x clips), duplicates summed."""
    return sparse.csr_matrix(
        (np.asarray(weights, dtype=np.float32), (np.asarray(users), np.asarray(clips))),
        shape=(n_users, n_clips),
    )


def tastes(r: sparse.csr_matrix, content: np.ndarray) -> np.ndarray:
    """U = R · C, unit rows (a viewer with nothing positive or negative gets a zero row)."""
    return unit_rows(np.asarray(r @ content))


def behaviours(r: sparse.csr_matrix, user_tastes: np.ndarray) -> np.ndarray:
    """B = R⁺ᵀ · U (raw sums; :func:`embeddings` normalises them when blending)."""
    positive = r.multiply(r > 0).tocsr()
    return np.asarray(positive.T @ user_tastes, dtype=np.float32)


def embeddings(content: np.ndarray, behaviour: np.ndarray, engaged: np.ndarray) -> np.ndarray:
    """:func:`feed.store.blend` for every clip at once."""
    alpha = (BLEND_K / (BLEND_K + np.maximum(engaged, 0))).astype(np.float32)[:, None]
    b = unit_rows(behaviour)
    has = (np.linalg.norm(behaviour, axis=1) > 1e-9)[:, None]
    mixed = unit_rows(alpha * content + (1 - alpha) * b)
    return np.where(has, mixed, content).astype(np.float32)


def _weight_sql() -> str:
    """The store's event weights as SQL (watch scaled by the share watched), decayed by age."""
    cases = " ".join(f"WHEN '{kind}' THEN {weight}" for kind, weight in WEIGHTS.items() if weight)
    return f"""
        (CASE e.type {cases} ELSE 0 END)
        * CASE WHEN e.type = 'watch'
               THEN least(greatest(coalesce(e.watch_ms, 0)::float8 / nullif(c.duration_ms, 0), 0), 1.5)
               ELSE 1 END
        * power(0.5, extract(epoch FROM now() - e.at) / {INTEREST_HALF_LIFE_DAYS * 86400.0})
    """


_PAIRS = f"""
SELECT e.user_id, e.clip_id, sum({_weight_sql()})::float4 AS w
FROM events e JOIN clips c ON c.id = e.clip_id
WHERE e.at > now() - make_interval(days => $1) AND e.type <> 'impression'
GROUP BY 1, 2
"""

_VECTORS = """
SELECT v.clip_id, v.content, v.embedding, b.behaviour,
       coalesce(s.likes + s.completes + s.shares, 0)::bigint AS engaged
FROM clip_vectors v
LEFT JOIN clip_behaviour b ON b.clip_id = v.clip_id
LEFT JOIN clip_stats s ON s.clip_id = v.clip_id
"""

# Each moved clip's behaviour, and its embedding where that moved (else NULL).
_STAGE = """
CREATE TEMP TABLE behaviour_in (clip_id bigint, behaviour vector(256), embedding vector(256))
ON COMMIT DROP
"""

# Behaviour first, in clip id order, then the embeddings: the event consumer (feed.store) also
# writes a clip's behaviour row before its clip_vectors row, so the two cannot deadlock.
_APPLY_BEHAVIOUR = """
INSERT INTO clip_behaviour AS b (clip_id, behaviour)
SELECT clip_id, behaviour FROM behaviour_in ORDER BY clip_id
ON CONFLICT (clip_id) DO UPDATE SET behaviour = EXCLUDED.behaviour, updated_at = now()
"""

_APPLY_EMBEDDINGS = """
UPDATE clip_vectors v SET embedding = i.embedding, updated_at = now()
FROM behaviour_in i WHERE v.clip_id = i.clip_id AND i.embedding IS NOT NULL
"""


@dataclass(frozen=True)
class Rebuilt:
    pairs: int
    viewers: int
    clips: int
    updated: int
    seconds: float


async def rebuild(pool: Pool, *, window_days: int, chunk: int = 5_000) -> Rebuilt:
    """Recompute every clip's behaviour vector and embedding from the window's events; write
    the ones that moved (cosine below :data:`DRIFT`). Rows come ``chunk`` at a time: each
    fetch is decoded and gone through without a pause for anything else in the process."""
    started = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        users: list[int] = []
        clips: list[int] = []
        weights: list[float] = []
        async for row in conn.cursor(_PAIRS, window_days, prefetch=chunk):
            users.append(row["user_id"])
            clips.append(row["clip_id"])
            weights.append(row["w"])
        ids: list[int] = []
        content_rows: list[np.ndarray] = []
        old_rows: list[np.ndarray] = []
        old_behaviour: list[np.ndarray] = []
        engaged: list[int] = []
        async for row in conn.cursor(_VECTORS, prefetch=chunk):
            ids.append(row["clip_id"])
            content_rows.append(row["content"].to_numpy())
            old_rows.append(row["embedding"].to_numpy())
            old_behaviour.append(
                row["behaviour"].to_numpy() if row["behaviour"] is not None else np.zeros(DIM, np.float32)
            )
            engaged.append(row["engaged"])
    if not ids:
        return Rebuilt(len(weights), 0, 0, 0, time.perf_counter() - started)
    # Seconds of numpy and Python over every pair and clip: in a thread, so that an API served
    # by the same process (riffle serve) keeps answering meanwhile (the thread gives the event
    # loop the interpreter every few milliseconds; numpy's own loops let go of it).
    pairs, viewers, behaviour, new, e_moved, moved = await asyncio.to_thread(
        _recompute, ids, users, clips, weights, content_rows, old_rows, old_behaviour, engaged
    )
    if len(moved):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(_STAGE)
            await conn.copy_records_to_table(
                "behaviour_in",
                records=((ids[i], behaviour[i], new[i] if e_moved[i] else None) for i in moved),
                columns=("clip_id", "behaviour", "embedding"),
            )
            await conn.execute(_APPLY_BEHAVIOUR)
            await conn.execute(_APPLY_EMBEDDINGS)
    done = Rebuilt(pairs, viewers, len(ids), len(moved), round(time.perf_counter() - started, 2))
    log.info("feed.behaviour.rebuilt", **done.__dict__)
    return done


def _recompute(
    ids: list[int],
    users: list[int],
    clips: list[int],
    weights: list[float],
    content_rows: list[np.ndarray],
    old_rows: list[np.ndarray],
    old_behaviour: list[np.ndarray],
    engaged: list[int],
) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Behaviour vectors and embeddings from the pairs; how many pairs and viewers counted,
    the new behaviours and embeddings, which embeddings moved and which clips moved at all."""
    clip_index = {clip_id: i for i, clip_id in enumerate(ids)}
    user_ids = sorted(set(users))
    user_index = {user_id: i for i, user_id in enumerate(user_ids)}
    keep = [i for i, clip_id in enumerate(clips) if clip_id in clip_index]
    r = engagement_matrix(
        [user_index[users[i]] for i in keep],
        [clip_index[clips[i]] for i in keep],
        [weights[i] for i in keep],
        n_users=len(user_ids),
        n_clips=len(ids),
    )
    content = np.stack(content_rows).astype(np.float32)
    behaviour = behaviours(r, tastes(r, content))
    new = embeddings(content, behaviour, np.asarray(engaged))
    old = unit_rows(np.stack(old_rows))
    # Written where the embedding or the behaviour moved: behaviour (clip_behaviour) for each of
    # them, the embedding (clip_vectors, an HNSW insert) only where it moved itself.
    b_new, b_old = unit_rows(behaviour), unit_rows(np.stack(old_behaviour))
    b_moved = (np.einsum("ij,ij->i", b_new, b_old) < DRIFT) & (np.linalg.norm(behaviour, axis=1) > 1e-9)
    e_moved = np.einsum("ij,ij->i", new, old) < DRIFT
    return len(keep), len(user_ids), behaviour, new, e_moved, np.flatnonzero(e_moved | b_moved)
