"""The feeds: For You (vector retrieval, ranking, sessions), Following, and steering.

For You, first page: candidates are gathered from five sources (nearest clips to each of the
viewer's interests through the HNSW index, followed creators, trending, remixes of clips they
liked, and fresh clips that still need impressions), filtered in one query (seen, blocked,
muted, hidden creators, not interested, not visible), scored, spread across authors and
topics, and stored as a *feed session* in Redis behind a signed cursor. Later pages read the
session and refill it when it runs low, so nothing repeats within a session. A signed-in
viewer's first page usually ranks nothing: it opens from their ready feed (feed.ready), or
from their taste cohort's list (feed.cohorts).
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
import numpy as np
from prometheus_client import Counter

from backend.auth import is_teen
from backend.clips import service as clips
from backend.clips.cards import CardCache, CardLoader
from backend.clips.queries import VISIBLE
from backend.clips.service import Signer
from backend.cursor import CursorCodec
from backend.db import Conn, LazyConn, Pool, transaction
from backend.errors import BadRequest, NotFound
from backend.redis_mux import Multiplexed
from backend.redis_pool import Redis, Script
from backend.settings import Settings
from feed import cohorts, ready
from feed import queries as q
from feed.encoder import Encoder
from feed.ingest import keys
from feed.schemas import Preferences, PreferencesIn, RenderedItem, RenderedPage
from feed.store import StoredEvent, blend, store_events, unit
from feed.visibility import VisibilityWatch
from moderation.screening import screen_text

SEEN_TTL_S = 7 * 86400
CARDS = Counter(
    "riffle_feed_cards",
    "For You cards served, by where they came from (process cache or database)",
    ["source"],
)
_CARDS_FROM_PROCESS, _CARDS_FROM_DATABASE = CARDS.labels("process"), CARDS.labels("database")
SESSIONS = Counter(
    "riffle_feed_sessions",
    "For You sessions opened, by how: from the viewer's ready feed, from their taste cohort's, or "
    "ranked on the spot",
    ["source"],
)
_SESSIONS_READY, _SESSIONS_COHORT, _SESSIONS_RANKED = (
    SESSIONS.labels("ready"),
    SESSIONS.labels("cohort"),
    SESSIONS.labels("ranked"),
)
TRENDING_HOURS = 24
TRENDING_DECAY = 0.9  # per hour
SOURCE_LIMIT = 150
# HNSW candidate list size for each interest query; recall@100 against exact search is measured
# by bench/ann_recall.py (docs/BENCHMARKS.md).
EF_SEARCH = 100
# Interests: the viewer's recent positive engagements, clustered, each asked of the index on its
# own (see interest_queries).
INTEREST_EVENTS = 100
MAX_INTERESTS = 3
INTEREST_MERGE_COSINE = 0.8  # two interests this alike are one
INTEREST_MIN_SHARE = 0.15  # a cluster with less of the weight is stray engagement, not an interest
STEER_PLUS = 0.7
STEER_MINUS = 0.5
AUTHOR_REPEAT_PENALTY = 0.25  # the same author twice in a row
AUTHOR_NEARBY_PENALTY = 0.1  # the same author within three places
TOPIC_REPEAT_PENALTY = 0.05  # per hashtag shared with the last two clips


# --- embeddings -----------------------------------------------------------------------------


def clip_text(prompt: str, caption: str, hashtags: list[str]) -> str:
    return "\n".join([prompt, caption, " ".join(f"#{tag}" for tag in hashtags)])


async def embed_clips(conn: Conn, encoder: Encoder, clip_ids: list[int]) -> int:
    """Compute content vectors for clips (on publish and on caption edits)."""
    rows = await conn.fetch(q.CLIP_TEXT, clip_ids)
    if not rows:
        return 0
    vectors = await encoder.encode([clip_text(r["prompt"], r["caption"], list(r["hashtags"])) for r in rows])
    for row, content in zip(rows, vectors, strict=True):
        behaviour = row["behaviour"].to_numpy() if row["behaviour"] is not None else None
        embedding = blend(content, behaviour, int(row["engaged"]))
        teen_safe = screen_text(f"{row['prompt']} {row['caption']}", teen=True).allowed
        await conn.execute(q.SAVE_CONTENT, row["id"], content, embedding, teen_safe)
    return len(rows)


# --- steering -------------------------------------------------------------------------------

_NEGATIVE = re.compile(r"^(?:fewer|less|no|not|without|stop|avoid|never)\b\s*", re.IGNORECASE)
_POSITIVE = re.compile(r"^(?:more|show me|i like|i love|lots of)\b\s*", re.IGNORECASE)


def split_steering(text: str) -> tuple[list[str], list[str]]:
    """ "more cooking, fewer pranks" → (["cooking"], ["pranks"])."""
    plus, minus = [], []
    for clause in re.split(r"[,;\n]|\band\b|\bbut\b", text):
        clause = clause.strip(" .!")
        if not clause:
            continue
        if _NEGATIVE.match(clause):
            minus.append(_NEGATIVE.sub("", clause))
        else:
            plus.append(_POSITIVE.sub("", clause))
    return [p for p in plus if p], [m for m in minus if m]


async def set_preferences(conn: Conn, encoder: Encoder, *, user_id: int, data: PreferencesIn) -> Preferences:
    plus, minus = split_steering(data.text)
    plus += data.more
    minus += data.fewer
    vectors = await encoder.encode([" ".join(plus), " ".join(minus)])
    steer_plus = vectors[0] if plus else None
    steer_minus = vectors[1] if minus else None
    await conn.execute(q.SAVE_PREFERENCES, user_id, data.text, data.more, data.fewer)
    await conn.execute(q.SAVE_STEERING, user_id, steer_plus, steer_minus)
    return await preferences(conn, user_id=user_id)


async def preferences(conn: Conn, *, user_id: int) -> Preferences:
    row = await conn.fetchrow(q.PREFERENCES, user_id)
    if row is None:
        return Preferences(text="", more=[], fewer=[], updated_at=None)
    return Preferences(
        text=row["text"], more=list(row["more"]), fewer=list(row["fewer"]), updated_at=row["updated_at"]
    )


async def reset_preferences(conn: Conn, *, user_id: int) -> None:
    await conn.execute(q.DELETE_PREFERENCES, user_id)
    await conn.execute(q.SAVE_STEERING, user_id, None, None)


async def not_interested(conn: Conn, *, user_id: int, clip_id: int, on: bool, signer: Signer) -> None:
    if on:
        clip = await clips.get_clip(conn, viewer_id=user_id, clip_id=clip_id, signer=signer)
        await conn.execute(q.NOT_INTERESTED, user_id, clip.id)
        # Also a signal, so the viewer's taste moves away from it at once.
        await store_events(conn, [_signal(user_id, "not_interested", clip_id)])
    elif await conn.fetchval(q.UNDO_NOT_INTERESTED, user_id, clip_id) is None:
        raise NotFound(f"clip {clip_id} was not marked not interested", code="not_marked")


async def hide_creator(conn: Conn, *, user_id: int, creator_id: int, on: bool) -> None:
    if creator_id == user_id:
        raise BadRequest("you cannot hide yourself", code="self")
    if on:
        await conn.execute(q.HIDE_CREATOR, user_id, creator_id)
    elif await conn.fetchval(q.UNHIDE_CREATOR, user_id, creator_id) is None:
        raise NotFound("this creator was not hidden", code="not_hidden")


def _signal(user_id: int, kind: str, clip_id: int) -> StoredEvent:
    return StoredEvent(
        user_id=user_id,
        client_event_id=f"server:{kind}:{clip_id}:{int(time.time())}",
        type=kind,
        clip_id=clip_id,
        watch_ms=None,
        at=datetime.now(UTC),
    )


# --- trending -------------------------------------------------------------------------------


TRENDING_PER_HOUR = 500  # the top of each hourly bucket that counts towards trending
TRENDING_KEPT = 1000  # how many trending clips the shared cache holds


async def trending_ids(redis: Redis, prefix: str, *, limit: int) -> list[int]:
    """Clips by time-decayed engagement: the top ``TRENDING_PER_HOUR`` of each hourly bucket,
    summed with weights 0.9^age, kept ``TRENDING_KEPT`` deep in a cache all processes share
    for 30 s. A clip outside the top 500 of every one of the last 24 hours is not trending.

    Summed here, not with ZUNIONSTORE over the whole buckets: on the benchmark's data (25
    buckets, 196,000 members in all) that one command took Redis 200-280 ms, and Redis answers
    nothing else meanwhile, so every request in flight waited that long, every 30 s; reading
    the buckets' tops is a few milliseconds of the caller's time and no long command."""
    k = keys(prefix)
    cache = k("trending", "now")
    members: Any = await redis.zrevrange(cache, 0, limit - 1)
    if not members and not await redis.exists(cache):
        hour = int(time.time() // 3600)
        async with redis.pipeline(transaction=False) as pipe:
            for age in range(TRENDING_HOURS):
                pipe.zrevrange(k("trending", hour - age), 0, TRENDING_PER_HOUR - 1, withscores=True)
            tops: list[Any] = await pipe.execute()
        scores: dict[bytes, float] = {}
        for age, top in enumerate(tops):
            weight = TRENDING_DECAY**age
            for member, score in top:
                scores[member] = scores.get(member, 0.0) + weight * float(score)
        best = dict(sorted(scores.items(), key=lambda item: item[1], reverse=True)[:TRENDING_KEPT])
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(cache)
            if best:
                pipe.zadd(cache, best)
            else:  # nothing trending: remember that for 30 s too
                pipe.zadd(cache, {b"": 0.0})
            pipe.expire(cache, 30)
            await pipe.execute()
        members = list(best)[:limit]  # best first, as it was built
    return [int(member) for member in members if member]


# --- For You --------------------------------------------------------------------------------


@dataclass(eq=False)  # compared by identity: `remaining.remove(...)` must not compare every field
class Candidate:
    clip_id: int
    reasons: set[str] = field(default_factory=set)
    similarity: float = 0.0
    score: float = 0.0
    author_id: int = 0
    hashtags: tuple[str, ...] = ()
    liked_near: str | None = None
    cameos: bool = False  # appears with a cameo (whose consent can change)


def taste_of(row: Any) -> np.ndarray | None:
    """Interest, nudged by steering: towards what they asked for, away from what they did not."""
    total = np.zeros(256, dtype=np.float32)
    if row["interest"] is not None and (interest := unit(row["interest"].to_numpy())) is not None:
        total += interest
    if row["steer_plus"] is not None:
        total += STEER_PLUS * row["steer_plus"].to_numpy()
    if row["steer_minus"] is not None:
        total -= STEER_MINUS * row["steer_minus"].to_numpy()
    return unit(total)


def interests(vectors: np.ndarray, weights: np.ndarray, *, k: int = MAX_INTERESTS) -> list[np.ndarray]:
    """Up to ``k`` unit centroids of ``vectors`` (weighted spherical k-means, deterministic:
    seeded with the heaviest vector, then each next seed the one least like those chosen), with
    centroids more alike than INTEREST_MERGE_COSINE merged and clusters with less than
    INTEREST_MIN_SHARE of the weight left out (their centroid averages stray clips from unrelated
    topics: a query between clusters again), heaviest first."""
    units = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    seeds = [int(np.argmax(weights))]
    while len(seeds) < min(k, len(units)):
        closest = np.max(units @ units[seeds].T, axis=1)
        seeds.append(int(np.argmin(closest)))
    centroids = units[seeds].copy()
    for _ in range(10):
        nearest = np.argmax(units @ centroids.T, axis=1)
        for j in range(len(centroids)):
            members = nearest == j
            if not members.any():
                continue
            if (c := unit((units[members] * weights[members, None]).sum(axis=0))) is not None:
                centroids[j] = c
    nearest = np.argmax(units @ centroids.T, axis=1)
    mass = np.array([weights[nearest == j].sum() for j in range(len(centroids))])
    kept: list[tuple[np.ndarray, float]] = []
    for j in np.argsort(-mass):
        if mass[j] <= 0:
            continue
        for i, (centroid, weight) in enumerate(kept):
            if float(centroid @ centroids[j]) > INTEREST_MERGE_COSINE:
                merged = unit(weight * centroid + mass[j] * centroids[j])
                kept[i] = (merged if merged is not None else centroid, weight + float(mass[j]))
                break
        else:
            kept.append((centroids[j], float(mass[j])))
    floor = INTEREST_MIN_SHARE * sum(weight for _, weight in kept)
    return [centroid for i, (centroid, weight) in enumerate(kept) if i == 0 or weight >= floor]


async def interest_queries(conn: Conn, user_id: int) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """The viewer's taste (for ranking) and the vectors retrieval asks the index about.

    A taste vector that mixes several interests points between them, where the nearest clips
    are mediocre for each and where HNSW's greedy walk misses most of the true neighbours
    (recall@100 0.87 on the seeded data, docs/BENCHMARKS.md). So each interest, a cluster of
    what the viewer recently liked, shared or finished, is a query of its own, pushed away
    from what they steered against; what they steered towards is one more. Before they have
    liked, shared or finished anything, the taste vector is the one query.
    """
    row = await conn.fetchrow(q.USER_VECTORS, user_id)
    if row is None:
        return None, []
    taste = taste_of(row)
    recent = await conn.fetch(q.RECENT_POSITIVE, user_id, INTEREST_EVENTS)
    if not recent:
        return taste, [taste] if taste is not None else []
    found = interests(
        np.array([r["content"].to_numpy() for r in recent], dtype=np.float32),
        np.array([r["weight"] for r in recent], dtype=np.float32),
    )
    if row["steer_minus"] is not None:
        found = [c - STEER_MINUS * row["steer_minus"].to_numpy() for c in found]
    queries = [v for c in found if (v := unit(c)) is not None]
    if row["steer_plus"] is not None:
        queries.append(row["steer_plus"].to_numpy())
    return taste, queries


async def _gather(
    conn: Conn, redis: Redis, settings: Settings, viewer_id: int | None, taste: np.ndarray | None = None
) -> tuple[dict[int, Candidate], np.ndarray | None]:
    """Candidates from every source, and the viewer's taste (None when they have none; for no
    viewer, ``taste`` when given: a taste cohort's, feed.cohorts)."""
    found: dict[int, Candidate] = {}

    def add(clip_id: int, reason: str) -> None:
        cand = found.get(clip_id)
        if cand is None:  # (setdefault built a Candidate per call: 9% of a first page's CPU)
            cand = found[clip_id] = Candidate(clip_id)
        cand.reasons.add(reason)

    if viewer_id is not None:
        taste, queries = await interest_queries(conn, viewer_id)
    else:
        queries = [taste] if taste is not None else []
    if queries:
        await conn.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")
        await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        for query in queries:
            # Similarity to the taste, not to this interest, is what ranking scores: the
            # candidate features query computes it for every candidate.
            for row in await conn.fetch(q.NEAREST, viewer_id, query, SOURCE_LIMIT // len(queries)):
                add(row["clip_id"], "taste")
    if viewer_id is not None:
        for row in await conn.fetch(q.FOLLOWED_RECENT, viewer_id, SOURCE_LIMIT):
            add(row["id"], "following")
        for row in await conn.fetch(q.REMIXES_OF_LIKED, viewer_id, 50):
            add(row["id"], "remix")
    for clip_id in await trending_ids(redis, settings.redis_prefix, limit=SOURCE_LIMIT):
        add(clip_id, "trending")
    for row in await conn.fetch(q.FRESH, SOURCE_LIMIT):
        add(row["id"], "new")
    return found, taste


def _score(cand: Candidate, row: Any, settings: Settings, now: float) -> float:
    impressions = row["impressions"] or 0
    positive = 2 * (row["likes"] or 0) + (row["completes"] or 0) + 3 * (row["shares"] or 0)
    negative = 0.5 * (row["skips"] or 0) + 3 * (row["negatives"] or 0)
    engagement = (positive - negative + 2.0) / (impressions + 10.0)  # smoothed towards a small prior
    age_h = max(0.0, (now - row["published_at"].timestamp()) / 3600.0)
    freshness = math.pow(0.5, age_h / settings.feed_freshness_half_life_h)
    bonus = 0.25 if "following" in cand.reasons else 0.0
    return (
        settings.feed_weight_similarity * cand.similarity
        + settings.feed_weight_engagement * engagement
        + settings.feed_weight_freshness * freshness
        + bonus
    )


def _reason(cand: Candidate) -> str:
    if "following" in cand.reasons:
        return "from someone you follow"
    if "remix" in cand.reasons:
        return "a remix of a clip you liked"
    if "taste" in cand.reasons:
        return f"because you liked “{cand.liked_near}”" if cand.liked_near else "picked for your tastes"
    if "trending" in cand.reasons:
        return "trending"
    return "new"


def spread(
    ranked: list[Candidate], *, exploration: float, rng: random.Random, limit: int | None = None
) -> list[Candidate]:
    """Order for the session: best first, with variety (soft penalties for an author or topics
    repeating nearby); an ``exploration`` share of places (every n-th) goes to a random
    candidate outside the viewer's known tastes (new or trending, low similarity). ``ranked``
    must be best first; at most ``limit`` are placed."""
    explore_pool = [c for c in ranked if c.similarity < 0.2 and c.reasons & {"new", "trending"}]
    rng.shuffle(explore_pool)
    every = round(1 / exploration) if exploration > 0 else 0  # every n-th place explores
    remaining = list(ranked)
    out: list[Candidate] = []
    while remaining and (limit is None or len(out) < limit):
        if explore_pool and every and (len(out) + 1) % every == 0:
            pick = explore_pool.pop()
            if pick in remaining:
                remaining.remove(pick)
                pick.reasons.add("explore")
                out.append(pick)
                continue
        previous_author = out[-1].author_id if out else None
        recent_authors = {c.author_id for c in out[-3:]}
        recent_tags = {t for c in out[-2:] for t in c.hashtags}
        best, best_value = None, -math.inf
        for cand in remaining[:50]:
            if cand.score <= best_value:
                break  # best first and penalties only subtract: nothing further can do better
            # Soft penalties: a much better clip still comes next, a near tie goes to variety.
            value = cand.score - (
                AUTHOR_REPEAT_PENALTY
                if cand.author_id == previous_author
                else AUTHOR_NEARBY_PENALTY
                if cand.author_id in recent_authors
                else 0.0
            )
            value -= TOPIC_REPEAT_PENALTY * len(recent_tags.intersection(cand.hashtags))
            if value > best_value:
                best, best_value = cand, value
        assert best is not None
        remaining.remove(best)
        out.append(best)
    return out


_FEATURES = q.CANDIDATE_FEATURES.format(visible=VISIBLE)


async def _rank(
    conn: Conn,
    redis: Redis,
    settings: Settings,
    viewer_id: int | None,
    exclude: set[int],
    teen: bool = True,
    taste: np.ndarray | None = None,
) -> list[Candidate]:
    found, taste = await _gather(conn, redis, settings, viewer_id, taste)
    seen: set[int] = set()
    if viewer_id is not None:
        seen = {int(m) for m in await redis.smembers(_seen_key(settings, viewer_id))}
    ids = [c for c in found if c not in exclude and c not in seen]
    from_index = [c for c in ids if "taste" in found[c].reasons]
    rows = await conn.fetch(_FEATURES, viewer_id, ids, teen, taste, from_index)
    now = time.time()
    ranked = []
    for row in rows:
        cand = found[row["id"]]
        cand.author_id = row["author_id"]
        cand.hashtags = tuple(row["hashtags"])
        cand.cameos = row["cameos"]
        cand.similarity = float(row["similarity"]) if row["similarity"] is not None else 0.0
        cand.score = _score(cand, row, settings, now)
        if row["liked_near"]:
            cand.liked_near = row["liked_near"][:40]
        ranked.append(cand)
    ranked.sort(key=lambda c: c.score, reverse=True)
    rng = random.Random(secrets.randbits(32))  # noqa: S311 (exploration, not security)
    return spread(ranked, exploration=settings.feed_exploration, rng=rng, limit=settings.feed_session_size)


class _Entry(msgspec.Struct, array_like=True):
    """A ranked clip in a feed session (a msgpack array in a Redis list)."""

    clip_id: int
    reason: str
    author_id: int | None = None  # None: ranked before entries carried it, checked in SQL
    cameos: bool = False


# A page of a feed session in one round trip: keep the session alive, take the page (leaving
# out clips the viewer has seen since the session was filled: sessions opened from a ready feed
# hold them, feed.ready), add its clips to the viewer's seen set (KEYS[2], absent for
# signed-out viewers). ARGV = offset, page size, session lifetime, seen set lifetime. Answers
# {session alive, entries, where the next page starts, the clip ids from there on}. In Redis
# Cluster both keys must share a slot (a hash tag).
_TAKE_PAGE = Script(
    ready.TAKE
    + """
local alive = redis.call('EXPIRE', KEYS[1], ARGV[3])
local page, ids, offset = take(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
if #ids > 0 then
    redis.call('SADD', KEYS[2], unpack(ids))
    redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return {alive, page, offset, ahead(KEYS[1], offset, tonumber(ARGV[2]))}
"""
)


async def _take_page(
    mux: Multiplexed, keys_: list[str], args: list[int]
) -> tuple[int, list[bytes], int, list[int]]:
    alive, raw, offset, ahead = cast(
        tuple[int, list[bytes], int, list[bytes]], await _TAKE_PAGE(mux, keys_, args)
    )
    return int(alive), list(raw), int(offset), [int(i) for i in ahead]


def _session_key(settings: Settings, session_id: str) -> str:
    return keys(settings.redis_prefix)("session", session_id)


def _seen_key(settings: Settings, viewer_id: int) -> str:
    """What the viewer has been shown or watched (the event consumer's ``seen`` sets)."""
    return keys(settings.redis_prefix)("seen", viewer_id)


@dataclass
class FeedRuntime:
    """What a For You page needs of its process: a connection only when it must ask PostgreSQL
    (ranking, or a clip whose visibility may have changed), given back once answered (the
    route is read-only: its statements need not share a snapshot), Redis for the session, the
    process's rendered cards and what it has heard of visibility changes."""

    conn: LazyConn
    redis: Redis
    mux: Multiplexed  # the session's pages: one pipelined connection the process's pages share
    settings: Settings
    cursors: CursorCodec
    cards: CardCache
    loader: CardLoader
    watch: VisibilityWatch
    signer: Signer
    rankings: asyncio.Semaphore
    cohort_heads: cohorts.Heads


async def for_you(
    rt: FeedRuntime, *, viewer_id: int | None, cursor: str | None, limit: int, teen: bool = True
) -> RenderedPage:
    """A page of the For You feed. ``teen``: only teen-safe clips (teen viewers, and anyone
    signed out, whose age is unknown).

    Ranking (a first page, or a session run dry) waits for one of the process's
    ``rankings`` slots with no connection held: a ranking keeps a connection busy for tens of
    milliseconds, and with every connection held by one, later pages (one short query, when
    any) queued behind them for the pool (p99 828 ms on bench/feed_load.py's mixed phase, 48 ms
    with four slots, for the same throughput).

    A signed-in viewer's new session opens from their ready feed when they have one
    (:mod:`feed.ready`); otherwise it is ranked, and the ranking kept as their ready feed.

    The cursor carries the session, the place in it and when it was ranked. A later page
    serves each clip as ranked (its card from the process's cache) unless something that
    could hide it changed since then (:mod:`feed.visibility`); those clips, and any card the
    process does not hold, are read with the visibility rules in one query.
    """
    kind = f"feed:{viewer_id or 'anonymous'}"
    if cursor:
        try:
            position = rt.cursors.decode(kind, cursor)
            session_id, offset = str(position[0]), int(position[1])
            ranked_at = float(position[2]) if len(position) > 2 else None
        except (BadRequest, IndexError, TypeError, ValueError):
            raise BadRequest(
                "this feed cursor is not valid here", code="bad_cursor", field="query.cursor"
            ) from None
    settings = rt.settings
    seen = _seen_key(settings, viewer_id) if viewer_id is not None else None
    first: list[bytes] | None = None  # a new session's first page, when it opened from a ready feed
    ahead: list[int] = []  # the clips after this page's
    if not cursor:
        session_id = secrets.token_urlsafe(12)
        opened = await _open(rt, session_id, viewer_id=viewer_id, seen=seen, teen=teen, limit=limit)
        if opened is None:
            # Taken before ranking reads anything: a change committed after is noticed.
            ranked_at, offset = round(time.time(), 3), 0
        else:
            ranked_at, first, offset, ahead = opened.ranked_at, opened.first, opened.offset, opened.ahead
    # This request ranks a new session: keep it as the viewer's ready feed.
    keep_ready = not cursor and first is None and viewer_id is not None and settings.feed_ready_s > 0
    key = _session_key(settings, session_id)
    items: list[RenderedItem] = []
    taken: list[int] = []  # the clips of this page's entries
    while len(items) < limit:
        if first is not None:
            alive, raw, first = 1, first, None
        else:
            # One round trip reads the page, keeps the session alive and marks the page seen;
            # EXPIRE answers 0 when the session is gone, which for a cursor means it expired.
            alive, raw, offset, ahead = await _take_page(
                rt.mux,
                [key, seen] if seen else [key],
                [offset, limit - len(items), settings.feed_session_ttl_s, SEEN_TTL_S],
            )
        if cursor and not alive:
            raise BadRequest(
                "this feed session has expired; start again without a cursor", code="feed_expired"
            )
        if not raw:
            async with rt.rankings:
                refilled = await _refill(await rt.conn(), rt.redis, settings, key, viewer_id, teen=teen)
                await rt.conn.release()
            if not refilled:
                break
            if keep_ready and viewer_id is not None and ranked_at is not None:
                await _keep_ready(rt.redis, settings, viewer_id, teen, ranked_at, refilled)
                keep_ready = False
            continue
        entries = [msgspec.msgpack.decode(r, type=_Entry) for r in raw]
        taken += [e.clip_id for e in entries]
        items += await _render(rt, entries, viewer_id=viewer_id, ranked_at=ranked_at)
    more = bool(items) and len(items) == limit
    if wanted := rt.cards.wanted([*taken, *ahead] if more else taken):
        # Rendered while the viewer watches this page: the next page's cards, and this page's
        # that are about to expire (so that the next viewer shown them finds them rendered).
        rt.loader.prefetch(wanted)
    return RenderedPage(
        items=items,
        next_cursor=rt.cursors.encode(kind, [session_id, offset, ranked_at]) if more else None,
    )


async def _open(
    rt: FeedRuntime, session_id: str, *, viewer_id: int | None, seen: str | None, teen: bool, limit: int
) -> ready.Opened | None:
    """Open a new session with its first page: from the viewer's ready feed when they have
    one, else from their taste cohort's (:mod:`feed.cohorts`) when they have one; None when it
    is to be ranked."""
    settings = rt.settings
    if viewer_id is not None and seen is not None and settings.feed_ready_s:
        new = ready.Opening(viewer_id, teen, _session_key(settings, session_id), seen, limit, SEEN_TTL_S)
        # Without a ready feed of their own, the same round trip answers the viewer's cohort.
        members = cohorts.members_key(settings) if settings.feed_cohorts else None
        opened = await ready.open_session(rt.mux, settings, new, cohorts=members)
        if isinstance(opened, ready.Opened):
            _SESSIONS_READY.inc()
            return opened
        if opened is not None:
            from_cohort = await cohorts.open_session(rt.mux, rt.conn, settings, rt.cohort_heads, new, opened)
            if from_cohort is not None:
                _SESSIONS_COHORT.inc()
                return from_cohort
    _SESSIONS_RANKED.inc()
    return None


async def _render(
    rt: FeedRuntime, entries: list[_Entry], *, viewer_id: int | None, ranked_at: float | None
) -> list[RenderedItem]:
    """The entries the viewer may still see, as cards: from the process's cards when nothing
    that could hide them changed since ranking (rendered for many pages at once by the
    process's card loader when it lacks them), the rest read again with the visibility rules."""
    shown: dict[int, msgspec.Raw] = {}
    missing: list[int] = []  # nothing could have hidden them: only their cards are needed
    ask: list[int] = []  # visibility to be checked again
    covered = rt.watch.covers(ranked_at)
    for entry in entries:
        if covered and entry.author_id is not None:
            assert ranked_at is not None
            if rt.watch.unchanged(
                ranked_at, clip=entry.clip_id, author=entry.author_id, viewer=viewer_id, cameos=entry.cameos
            ):
                card = rt.cards.get(entry.clip_id)
                if card is None:
                    missing.append(entry.clip_id)
                else:
                    # Ranking leaves out the viewer's own clips and the ones they liked.
                    shown[entry.clip_id] = card.raw(liked=False, is_author=False)
                continue
        ask.append(entry.clip_id)
    _CARDS_FROM_PROCESS.inc(len(shown))
    if missing:
        _CARDS_FROM_DATABASE.inc(len(missing))
        for clip_id, card in (await rt.loader.load(missing)).items():
            shown[clip_id] = card.raw(liked=False, is_author=False)
    if ask:
        _CARDS_FROM_DATABASE.inc(len(ask))
        found = await clips.cards(await rt.conn(), viewer_id=viewer_id, clip_ids=ask, signer=rt.signer)
        await rt.conn.release()
        for clip in found.values():
            card = rt.cards.put(clip)
            shown[clip.id] = card.raw(liked=clip.viewer.liked, is_author=clip.viewer.is_author)
    return [RenderedItem(clip=shown[e.clip_id], reason=e.reason) for e in entries if e.clip_id in shown]


async def _refill(
    conn: Conn, redis: Redis, settings: Settings, key: str, viewer_id: int | None, *, teen: bool
) -> list[Candidate]:
    """Rank more candidates into the session, leaving out everything it already holds; those
    added (none: nothing left to show)."""
    raw = await redis.lrange(key, 0, -1)
    held = {msgspec.msgpack.decode(cast(bytes, r), type=_Entry).clip_id for r in raw}
    # Its own transaction (a savepoint inside the request's, if there is one): ranking sets
    # the HNSW search options with SET LOCAL.
    async with conn.transaction():
        ranked = await _rank(conn, redis, settings, viewer_id, exclude=held, teen=teen)
    if ranked:
        await redis.rpush(key, *_entries(ranked))
        await redis.expire(key, settings.feed_session_ttl_s)
    return ranked


def _entries(ranked: list[Candidate]) -> list[bytes]:
    return [msgspec.msgpack.encode(_Entry(c.clip_id, _reason(c), c.author_id, c.cameos)) for c in ranked]


async def _keep_ready(
    redis: Redis, settings: Settings, viewer_id: int, teen: bool, ranked_at: float, ranked: list[Candidate]
) -> None:
    await ready.keep(
        redis,
        settings,
        viewer_id=viewer_id,
        teen=teen,
        ranked_at=ranked_at,
        clip_ids=[c.clip_id for c in ranked],
        entries=_entries(ranked),
    )


async def rank_taste(
    conn: Conn, redis: Redis, settings: Settings, taste: np.ndarray, teen: bool
) -> list[tuple[int, int, bytes]]:
    """A session's ranking for a taste and no viewer (a taste cohort's, feed.cohorts): clips
    anyone may see, as a session holds them; (clip id, author id, entry) each, in order."""
    async with conn.transaction():  # ranking sets the HNSW search options with SET LOCAL
        ranked = await _rank(conn, redis, settings, None, exclude=set(), teen=teen, taste=taste)
    return [(c.clip_id, c.author_id, entry) for c, entry in zip(ranked, _entries(ranked), strict=True)]


async def prerank(pool: Pool, redis: Redis, settings: Settings, viewer_id: int) -> bool:
    """Rank a viewer's next feed ahead of their next session (the worker does, as their events
    arrive), unless their ready feed is younger than ``feed_ready_refresh_s`` and they have
    seen less than half of it; whether it ranked. A viewer who is gone or cannot sign in gets
    none."""
    viewer = await pool.fetchrow(q.ACTIVE_VIEWER, viewer_id)
    if viewer is None:
        return False
    teen = is_teen(viewer["birth_year"])
    seen = _seen_key(settings, viewer_id)
    before = await ready.state(redis, settings, viewer_id=viewer_id, teen=teen, seen=seen)
    if before is not None:
        at, unseen, held = before
        if time.time() - at < settings.feed_ready_refresh_s and 2 * unseen >= held:
            return False
    ranked_at = round(time.time(), 3)  # before ranking reads anything, as for a session
    async with transaction(pool) as conn:
        ranked = await _rank(conn, redis, settings, viewer_id, exclude=set(), teen=teen)
    if ranked:
        await _keep_ready(redis, settings, viewer_id, teen, ranked_at, ranked)
    return bool(ranked)


async def following(
    conn: Conn, *, viewer_id: int, before: tuple[datetime, int] | None, limit: int, signer: Signer
) -> list[Any]:
    at, last_id = before or (None, None)
    ids = [
        r["id"]
        for r in await conn.fetch(q.FOLLOWING_PAGE.format(visible=VISIBLE), viewer_id, at, last_id, limit)
    ]
    shown = await clips.cards(conn, viewer_id=viewer_id, clip_ids=ids, signer=signer)
    return [shown[i] for i in ids if i in shown]


# --- statistics for other domains -------------------------------------------------------------


class ClipStats(msgspec.Struct, kw_only=True, frozen=True):
    impressions: int = 0
    watches: int = 0
    completes: int = 0
    skips: int = 0
    likes: int = 0
    shares: int = 0
    watch_ms: int = 0


async def clip_stats(conn: Conn, clip_id: int) -> ClipStats:
    """What viewers did with a clip, as the event pipeline has counted it (zeros before any)."""
    row = await conn.fetchrow(
        "SELECT impressions, watches, completes, skips, likes, shares, watch_ms FROM clip_stats "
        "WHERE clip_id = $1",
        clip_id,
    )
    return ClipStats(**dict(row)) if row is not None else ClipStats()
