"""Taste cohorts: a ready feed shared by viewers of like taste, for a first session with
nothing ranked ahead.

A signed-in viewer's session opens from their own ready feed when they have one
(:mod:`feed.ready`); without one it would be ranked on the spot, about 15 ms of PostgreSQL and
10-15 of Python, and 64 viewers arriving at once then wait on each other for well over a second
(bench/feed_load.py, first pages). So the worker groups viewers by taste every
``RIFFLE_FEED_COHORT_REFRESH_S``: spherical k-means of their taste vectors (interest nudged by
steering, as ranking uses it) into up to ``RIFFLE_FEED_COHORTS`` cohorts; each cohort's centroid
is ranked as a taste with no viewer (clips anyone may see: one list for teens, one for adults,
each only where the cohort has such members), kept in a ready feed's form, and each viewer's
cohort is noted (``feed:cohort-of``, a hash).

A session of a viewer without a ready feed then opens from their cohort's list as from a ready
feed (the same script: a server-side copy, what they have seen skipped), less what this viewer
must not get, found in one query: their own clips, clips they liked or marked not interested,
creators they hid or muted, and anyone either of them blocked. Visibility changes since the
list was ranked are checked as for every session (:mod:`feed.visibility`). Their events then
rank them a ready feed of their own (the worker's prerank), so only a first session comes from
the cohort.

Such a session costs two Redis round trips: the script that tries the viewer's ready feed
answers their cohort when there is none, and each API process keeps the lists' heads
(:class:`Heads`, read when it starts), so the session opens from the list at once. Reading the
cohort and the head each in a call of its own made four, and 64 viewers arriving at a process
at once waited on each other's (bench/feed_load.py, first pages).

A viewer whose feed changed since the list was ranked (steering, follows, blocks…: the ready
feed's void stamp) is ranked on the spot: their taste may have moved. Viewers with no taste
vector yet (nothing watched, no steering) have no cohort and are ranked on the spot too (no
index walks: follows, trending, fresh).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import structlog

from backend.auth import is_teen
from backend.db import Conn, LazyConn, Pool, id_array
from backend.redis_mux import Multiplexed
from backend.redis_pool import Redis
from backend.settings import Settings
from feed import queries as q
from feed import ready
from feed.ingest import keys

log = structlog.get_logger()

SAMPLE = 20_000  # viewers whose tastes the centroids are computed from
BATCH = 5_000  # viewers assigned to a cohort per query
ROUNDS = 15  # k-means iterations

Taste = Callable[[Any], "np.ndarray | None"]  # a user_vectors row -> their taste (feed.service.taste_of)
# a taste ranked for no viewer, teen or not -> (clip id, author id, session entry) each, in order
Rank = Callable[[Conn, Redis, Settings, np.ndarray, bool], Awaitable[list[tuple[int, int, bytes]]]]


def cohort_key(settings: Settings, cohort: int, teen: bool) -> str:
    return keys(settings.redis_prefix)("cohort", cohort, int(teen))


def members_key(settings: Settings) -> str:
    """Viewer id -> their cohort."""
    return keys(settings.redis_prefix)("cohort-of")


def built_key(settings: Settings) -> str:
    """What the last build made (JSON of :class:`Built`), for operators and benchmarks."""
    return keys(settings.redis_prefix)("cohort-built")


def _lock_key(settings: Settings) -> str:
    return keys(settings.redis_prefix)("cohort-lock")


def centroids_of(units: np.ndarray, k: int, rng: np.random.Generator, rounds: int = ROUNDS) -> np.ndarray:
    """Up to ``k`` unit centroids of the unit rows ``units`` (spherical k-means, seeded the
    k-means++ way: each next seed drawn with probability growing with its distance from those
    chosen)."""
    k = min(k, len(units))
    centroids = np.empty((k, units.shape[1]), dtype=np.float32)
    centroids[0] = units[rng.integers(len(units))]
    distance = np.maximum(1.0 - units @ centroids[0], 0.0)
    for j in range(1, k):
        weights = distance**2
        total = float(weights.sum())
        pick = rng.choice(len(units), p=weights / total) if total > 0 else rng.integers(len(units))
        centroids[j] = units[pick]
        distance = np.minimum(distance, np.maximum(1.0 - units @ centroids[j], 0.0))
    for _ in range(rounds):
        nearest = _nearest(units, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, nearest, units)
        norms = np.linalg.norm(sums, axis=1)
        live = norms > 1e-9
        centroids[live] = sums[live] / norms[live, None]
    return centroids


def _nearest(units: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return np.argmax(units @ centroids.T, axis=1)


def _units(rows: list[Any], taste: Taste) -> tuple[list[Any], np.ndarray]:
    """The rows with a taste, and their tastes as unit rows."""
    kept, vectors = [], []
    for row in rows:
        if (vector := taste(row)) is not None:
            kept.append(row)
            vectors.append(vector)
    return kept, np.array(vectors, dtype=np.float32) if vectors else np.empty((0, 0), dtype=np.float32)


@dataclass
class Built:
    viewers: int = 0
    cohorts: int = 0
    lists: int = 0
    seconds: float = 0.0


async def build(pool: Pool, redis: Redis, settings: Settings, *, taste: Taste, rank: Rank) -> Built:
    """Group the viewers into cohorts, rank each cohort's lists, note each viewer's cohort."""
    started, done = time.monotonic(), Built()
    ttl_s = 3 * settings.feed_cohort_refresh_s  # outlives a missed build or two, not more
    _, sample = _units(await pool.fetch(q.TASTE_SAMPLE, SAMPLE), taste)
    if not len(sample):
        return done
    # numpy's products let go of the interpreter: in a thread, the process's API keeps answering
    # (20,000 tastes into 64 cohorts: seconds of a slow core).
    centroids = await asyncio.to_thread(
        centroids_of, sample, settings.feed_cohorts, np.random.default_rng(len(sample))
    )
    done.cohorts = len(centroids)
    wanted: set[tuple[int, bool]] = set()  # (cohort, teen) pairs with members
    after = 0
    while rows := await pool.fetch(q.TASTES_AFTER, after, BATCH):
        after = rows[-1]["user_id"]
        kept, units = _units(rows, taste)
        if not kept:
            continue
        nearest = [int(c) for c in await asyncio.to_thread(_nearest, units, centroids)]
        of = {row["user_id"]: c for row, c in zip(kept, nearest, strict=True)}
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hset(members_key(settings), mapping=of)
            pipe.expire(members_key(settings), ttl_s)
            await pipe.execute()
        wanted.update((c, is_teen(r["birth_year"])) for r, c in zip(kept, nearest, strict=True))
        done.viewers += len(kept)
    for cohort, teen in sorted(wanted):
        ranked_at = round(time.time(), 3)  # before ranking reads anything, as for a session
        async with pool.acquire() as conn:
            ranked = await rank(conn, redis, settings, centroids[cohort], teen)
        if ranked:
            clip_ids, authors, entries = (list(column) for column in zip(*ranked, strict=True))
            head = [f"{ranked_at:.3f}", clip_ids, authors]
            await ready.store(redis, cohort_key(settings, cohort, teen), head, entries, ttl_s)
            done.lists += 1
    done.seconds = round(time.monotonic() - started, 2)
    await redis.set(built_key(settings), msgspec.json.encode(done), ex=ttl_s)
    return done


async def build_if_due(
    pool: Pool, redis: Redis, settings: Settings, *, taste: Taste, rank: Rank
) -> Built | None:
    """Build, unless another worker process did within ``feed_cohort_refresh_s``. A build that
    fails gives the turn back, so the next attempt (the worker retries in seconds) builds."""
    if not await redis.set(_lock_key(settings), "1", nx=True, ex=settings.feed_cohort_refresh_s):
        return None
    try:
        return await build(pool, redis, settings, taste=taste, rank=rank)
    except Exception:
        await redis.delete(_lock_key(settings))
        raise


class _Head(msgspec.Struct, array_like=True):
    ranked: str
    clip_ids: list[int]
    authors: list[int]


@dataclass(frozen=True)
class Head:
    """A cohort list's head as a process keeps it: when it was ranked, and its clips and their
    authors in order (the clips also as the array literal the exclusion query takes)."""

    ranked: str
    clip_ids: list[int]
    authors: list[int]
    clip_array: str


class Heads:
    """The cohort lists' heads, kept by each API process: a list changes only when the worker
    builds the cohorts again (every ``RIFFLE_FEED_COHORT_REFRESH_S``), so a first session
    opened from one needs no round trip to read it, and the 300 ids are decoded once. A head
    kept from before a build is found out when a session opens from it (the script compares
    the ranking times) and read again."""

    def __init__(self) -> None:
        self._heads: dict[tuple[int, bool], Head] = {}

    async def get(self, redis: Multiplexed, settings: Settings, cohort: int, teen: bool) -> Head | None:
        head = self._heads.get((cohort, teen))
        if head is None:
            head = await self._read(redis, settings, cohort, teen)
        return head

    def forget(self, cohort: int, teen: bool) -> None:
        self._heads.pop((cohort, teen), None)

    async def load(self, redis: Multiplexed, settings: Settings) -> int:
        """Read every list the last build made (when a process starts, so that the first
        viewers it serves do not each wait for their cohort's); how many there were."""
        raw = await redis.execute("GET", built_key(settings))
        if raw is None:
            return 0
        built = msgspec.json.decode(raw, type=Built)
        found = await asyncio.gather(
            *(
                self._read(redis, settings, cohort, teen)
                for cohort in range(built.cohorts)
                for teen in (False, True)
            )
        )
        return sum(head is not None for head in found)

    async def _read(self, redis: Multiplexed, settings: Settings, cohort: int, teen: bool) -> Head | None:
        raw = await redis.execute("LINDEX", cohort_key(settings, cohort, teen), 0)
        if raw is None:
            return None
        decoded = msgspec.msgpack.decode(raw, type=_Head)
        head = Head(decoded.ranked, decoded.clip_ids, decoded.authors, id_array(decoded.clip_ids))
        self._heads[(cohort, teen)] = head
        return head


async def open_session(
    redis: Multiplexed, conn: LazyConn, settings: Settings, heads: Heads, new: ready.Opening, cohort: int
) -> ready.Opened | None:
    """Open the session from the list of the viewer's cohort (``cohort``, as
    :func:`feed.ready.open_session` found it), less what they must not get (see the module's
    text), and take its first page, as :func:`feed.ready.open_list` does; None when the
    cohort has no list for them or too little of it is left unseen."""
    source = cohort_key(settings, cohort, new.teen)
    for _ in range(2):  # a second time when the list was built again since the process read it
        head = await heads.get(redis, settings, cohort, new.teen)
        if head is None:
            return None
        row = await (await conn()).fetchrow(q.NOT_FOR_VIEWER, new.viewer_id, head.clip_array)
        await conn.release()
        assert row is not None
        authors, clips = {new.viewer_id, *row["authors"]}, set(row["clips"])
        drop = [
            place
            for place, (clip, author) in enumerate(zip(head.clip_ids, head.authors, strict=True))
            if clip in clips or author in authors
        ]
        try:
            return await ready.open_list(redis, settings, new, source, ranked=head.ranked, drop=drop)
        except ready.Reranked:
            heads.forget(cohort, new.teen)
    return None
