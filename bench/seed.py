"""Seed a realistic feed data set: 200,000 clips, 20,000 users, 2,000,000 watch events.

Tastes are planted, so the feed and its benchmarks have something true to find: every user has
1-3 favourite topics (popular topics are more often favourites); a fifth of users are creators
with a main topic, and 85% of their clips are about it. Each topic has its own prompt, caption
and hashtag vocabulary (some topics in Chinese or Japanese). 80% of a user's events are on
clips of their favourite topics (popular clips more often), where they watch, complete, like
and share; the rest are random clips, mostly skipped. Likes, shares, not-interested marks,
follows (mostly of creators in one's topics) and remixes (of clips in the same topic) follow.

Everything a real clip has is there: the generation job, its take, the video and poster media
rows, the clip (published, public), its content vector from the built-in encoder, its
statistics; each user's interest vector is the decayed, weighted sum the event consumer would
have computed (`feed.store`), and so is each engaged clip's behaviour vector (the sum of its
engaged viewers' unit tastes, in `clip_behaviour`) and the indexed embedding blended from
content and behaviour.

Fast because everything goes in with COPY (ids assigned here, sequences moved after), the
HNSW index is rebuilt once at the end instead of updated 200,000 times, and the encoder runs
in two processes while PostgreSQL loads the other tables. About 5 minutes on the 2-core
machine.

Reusable: a marker row (`bench_seed`) records what was seeded; a second run with the same sizes
finds it and does nothing, so `make bench` seeds once. The data lives in `.riffle/bench/pg`
(database `riffle_bench`; `RIFFLE_BENCH_DIR` moves it, `make clean` deletes it).

Run: `.venv/bin/python bench/seed.py [--clips 200000] [--users 20000] [--events 2000000]
[--seed 7] [--fresh] [--database-url URL]`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import machine, servers

from backend import db
from feed.encoder import HashedEncoder
from feed.service import clip_text
from feed.store import BLEND_K, INTEREST_HALF_LIFE_DAYS, WEIGHTS
from moderation.screening import screen_text

# 2: long-tail detail words in every prompt and caption; 3: behaviour vectors and blended embeddings
SEED_VERSION = 3
PASSWORD = "seed-password-123"
DAY = 86400.0

# (name, popularity, hashtags, subjects, actions, settings) — the words a topic's prompts,
# captions and hashtags are made of. Popularity weighs how often it is someone's favourite.
TOPICS: list[tuple[str, float, list[str], list[str], list[str], list[str]]] = [
    (
        "cooking",
        3.0,
        ["cooking", "recipe", "foodie", "homecooking"],
        ["chef", "dumplings", "ramen", "pasta", "sourdough", "wok", "garlic butter", "spice rub"],
        ["folds", "simmers", "sears", "kneads", "plates", "tastes"],
        ["a tiny kitchen", "a night market stall", "grandma's stove", "a sunny countertop"],
    ),
    (
        "中餐",
        1.5,
        ["中餐", "家常菜", "美食"],
        ["红烧肉", "小笼包", "麻婆豆腐", "炒饭", "饺子"],
        ["慢慢炖", "大火爆炒", "包好", "出锅"],
        ["在家里的厨房", "夜市", "老街小店"],
    ),
    (
        "ramen_jp",
        1.0,
        ["ラーメン", "料理", "グルメ"],
        ["ラーメン", "味噌", "とんこつ", "餃子", "寿司"],
        ["を作る", "を食べる", "を煮込む"],
        ["東京の屋台", "家のキッチン", "深夜の食堂"],
    ),
    (
        "cats",
        3.0,
        ["cats", "catsoftiktok", "kitten", "pets"],
        ["a ginger cat", "a sleepy kitten", "a fluffy tabby", "two cats", "a black cat"],
        ["knocks a glass over", "chases a laser", "naps in a box", "stares at the rain", "purrs"],
        ["a cozy sofa", "a sunny window", "a cardboard fort", "a bookshelf"],
    ),
    (
        "猫",
        1.0,
        ["猫", "ねこ", "かわいい"],
        ["子猫", "三毛猫", "黒猫", "ねこ"],
        ["が寝ている", "が遊ぶ", "がこたつで丸くなる"],
        ["日本の家", "縁側", "窓辺"],
    ),
    (
        "dogs",
        2.5,
        ["dogs", "puppy", "doglife"],
        ["a golden retriever", "a corgi", "a husky", "a rescue puppy"],
        ["catches a frisbee", "zooms around", "howls along", "learns a trick"],
        ["a beach", "the park", "a snowy yard", "a living room"],
    ),
    (
        "travel",
        2.0,
        ["travel", "wanderlust", "roadtrip"],
        ["a drone", "a backpacker", "a night train", "an old ferry"],
        ["glides over", "wanders through", "arrives at", "looks out over"],
        ["Kyoto temples", "the Amalfi coast", "Patagonia", "Iceland's black beaches", "Marrakech souks"],
    ),
    (
        "fitness",
        2.0,
        ["fitness", "workout", "gym", "gains"],
        ["a sprinter", "a kettlebell", "a yoga flow", "a climber"],
        ["pushes through", "holds a plank", "deadlifts", "stretches"],
        ["a sunrise track", "a garage gym", "a rooftop", "a bouldering wall"],
    ),
    (
        "gaming",
        2.5,
        ["gaming", "speedrun", "retrogaming", "esports"],
        ["a pixel knight", "a racing kart", "a boss fight", "a speedrunner"],
        ["clips through a wall", "lands a combo", "respawns", "finds a secret"],
        ["a neon arcade", "a retro console", "an 8-bit castle", "a cyberpunk city"],
    ),
    (
        "music",
        2.0,
        ["music", "cover", "guitar", "beats"],
        ["a busker", "a lo-fi beat", "a violinist", "a drummer", "a choir"],
        ["plays", "loops", "improvises", "remixes"],
        ["a subway station", "a bedroom studio", "a rainy street", "a rooftop at dusk"],
    ),
    (
        "diy",
        1.5,
        ["diy", "woodworking", "crafts", "makers"],
        ["a walnut table", "an epoxy river", "a clay pot", "a knitted scarf"],
        ["is sanded", "gets glued", "is thrown on the wheel", "is stitched"],
        ["a workshop", "a garden shed", "a craft table"],
    ),
    (
        "space",
        1.5,
        ["space", "astronomy", "nasa", "cosmos"],
        ["a nebula", "a rocket launch", "Saturn's rings", "an astronaut", "the aurora"],
        ["drifts past", "lifts off", "glows over", "floats above"],
        ["deep space", "low orbit", "the night sky", "a lunar base"],
    ),
    (
        "fashion",
        1.5,
        ["fashion", "ootd", "streetwear", "style"],
        ["a trench coat", "sneakers", "a vintage jacket", "a silk dress"],
        ["twirls", "struts", "gets styled", "is thrifted"],
        ["a Paris street", "a runway", "a thrift shop", "Harajuku"],
    ),
    (
        "pranks",
        1.0,
        ["pranks", "funny", "comedy", "lol"],
        ["a rubber spider", "a fake lottery ticket", "a whoopee cushion", "a roommate"],
        ["scares", "fools", "surprises", "startles"],
        ["an office", "a dorm room", "a family dinner"],
    ),
    (
        "science",
        1.2,
        ["science", "experiment", "physics", "chemistry"],
        ["a tesla coil", "liquid nitrogen", "a slow-motion splash", "a magnet"],
        ["sparks", "freezes", "explodes", "levitates"],
        ["a lab", "a kitchen table", "a classroom"],
    ),
    (
        "anime",
        1.5,
        ["anime", "アニメ", "manga", "cosplay"],
        ["魔法少女", "a mecha", "a samurai", "a sky whale"],
        ["が空を飛ぶ", "transforms", "draws a sword", "races the wind"],
        ["桜の公園", "a floating city", "a neon Tokyo alley"],
    ),
]
STYLES = [
    "cinematic",
    "handheld",
    "slow motion",
    "timelapse",
    "close-up",
    "aerial",
    "vertical 9:16",
    "golden hour",
]
# The long tail every real caption has (names, places, things): 4,352 made-up words, drawn
# Zipf-like. Without it every clip of a topic was a permutation of some twenty words, and the
# clips formed tight clumps of near-duplicates that no real catalogue has (version 1 of the seed).
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ren",
    "to",
    "sa",
    "vi",
    "nu",
    "el",
    "dor",
    "pa",
    "qu",
    "zi",
    "bo",
    "ta",
    "ri",
]
DETAILS = [a + b for a in _SYLLABLES for b in _SYLLABLES] + [
    a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES
]
GENERIC = ["wow", "today", "vibes", "new", "watch this", "part 2", "so good", "pov", "again", "finally"]

# Event types on clips of one's tastes and on the rest, with probabilities.
ON_TASTE = {"impression": 0.35, "watch": 0.25, "complete": 0.2, "like": 0.1, "share": 0.03, "skip": 0.07}
OFF_TASTE = {
    "impression": 0.4,
    "watch": 0.15,
    "complete": 0.05,
    "like": 0.025,
    "share": 0.005,
    "skip": 0.36,
    "not_interested": 0.01,
}
TYPES = sorted(set(ON_TASTE) | set(OFF_TASTE))

MARKER = """
CREATE TABLE IF NOT EXISTS bench_seed (
    version integer NOT NULL, clips integer NOT NULL, users integer NOT NULL, events bigint NOT NULL,
    seed integer NOT NULL, seconds double precision NOT NULL, finished_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass
class Plan:
    """Everything generated before the database is touched (numpy arrays, index = id - 1)."""

    now: float
    favs: np.ndarray  # users x 3 topic indexes, -1 past the user's count
    fav_count: np.ndarray
    author: np.ndarray  # clip -> user index
    topic: np.ndarray  # clip -> topic
    published: np.ndarray  # clip -> unix time
    duration_ms: np.ndarray
    parent: np.ndarray  # clip -> parent clip index, -1 for none
    texts: list[tuple[str, str, list[str]]]  # prompt, caption, hashtags
    ev_user: np.ndarray
    ev_clip: np.ndarray
    ev_type: np.ndarray  # index into TYPES
    ev_watch: np.ndarray  # -1 for none
    ev_at: np.ndarray
    follows: np.ndarray  # pairs (follower, followee) user indexes


def plan(n_clips: int, n_users: int, n_events: int, seed: int) -> Plan:
    rng = np.random.default_rng(seed)
    text_rng = random.Random(seed)
    now = time.time()
    n_topics = len(TOPICS)
    popularity = np.array([t[1] for t in TOPICS])

    # Favourite topics: a weighted sample without replacement (Gumbel top-k) per user.
    keys = -np.log(rng.random((n_users, n_topics))) / popularity
    favs = np.argsort(keys, axis=1)[:, :3]
    fav_count = rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25], size=n_users)
    favs = np.where(np.arange(3)[None, :] < fav_count[:, None], favs, -1)

    # Creators and their clips: a few creators make many clips (Zipf-like).
    n_creators = max(1, n_users // 5)
    creators = rng.choice(n_users, size=n_creators, replace=False)
    creator_weight = 1.0 / np.arange(1, n_creators + 1) ** 0.8
    author_of = rng.choice(n_creators, size=n_clips, p=creator_weight / creator_weight.sum())
    author = creators[author_of]
    topic = np.where(rng.random(n_clips) < 0.85, favs[author, 0], rng.integers(0, n_topics, n_clips))

    # Published over the last 30 days, in id order (a remix comes after its parent).
    span = 30 * DAY
    published = now - span + np.sort(rng.random(n_clips)) * (span - 600)
    duration_ms = rng.integers(4, 16, n_clips) * 1000

    # Remixes: 5% of clips remix an earlier, original clip of the same topic.
    parent = np.full(n_clips, -1)
    is_remix = rng.random(n_clips) < 0.05
    originals = [np.flatnonzero((topic == t) & ~is_remix) for t in range(n_topics)]
    for i in np.flatnonzero(is_remix):
        pool = originals[topic[i]]
        upto = int(np.searchsorted(pool, i))
        if upto:
            parent[i] = pool[int(rng.integers(0, upto))]

    zipf = 1.0 / np.arange(1, len(DETAILS) + 1)
    details = rng.choice(len(DETAILS), size=(n_clips, 3), p=zipf / zipf.sum()).tolist()
    texts = []
    for i in range(n_clips):
        _, _, tags, subjects, actions, places = TOPICS[topic[i]]
        a, b, c = (DETAILS[d] for d in details[i])
        prompt = (
            f"{text_rng.choice(STYLES)}: {text_rng.choice(subjects)} {text_rng.choice(actions)} "
            f"in {text_rng.choice(places)} with {a} and {b}, {text_rng.choice(STYLES)}"
        )
        caption = f"{text_rng.choice(subjects)} {c} {text_rng.choice(GENERIC)}"
        hashtags = text_rng.sample(tags, k=min(len(tags), text_rng.randint(2, 3)))
        if text_rng.random() < 0.2:
            hashtags.append(text_rng.choice(["fyp", "viral", "ai", "aivideo"]))
        texts.append((prompt, caption, hashtags))

    # Events: active users do more (log-normal activity), grouped by user.
    activity = rng.lognormal(0.0, 1.0, n_users)
    ev_user = np.sort(rng.choice(n_users, size=n_events, p=activity / activity.sum()))
    on = rng.random(n_events) < 0.8
    pick = (rng.random(n_events) * fav_count[ev_user]).astype(np.int64)
    ev_topic = favs[ev_user, pick]
    by_topic = np.argsort(topic, kind="stable")
    starts = np.searchsorted(topic[by_topic], np.arange(n_topics))
    sizes = np.bincount(topic, minlength=n_topics)
    # Within a topic, popularity falls off (the square of a uniform draw favours low ranks).
    rank = (rng.random(n_events) ** 2 * sizes[ev_topic]).astype(np.int64)
    on &= sizes[ev_topic] > 0
    on_clip = by_topic[np.minimum(starts[ev_topic] + rank, n_clips - 1)]
    ev_clip = np.where(on, on_clip, rng.integers(0, n_clips, n_events))
    on &= topic[ev_clip] == ev_topic

    ev_type = np.empty(n_events, dtype=np.int64)
    for mask, table in ((on, ON_TASTE), (~on, OFF_TASTE)):
        names = list(table)
        probs = np.array([table[n] for n in names])
        chosen = rng.choice(len(names), size=int(mask.sum()), p=probs / probs.sum())
        ev_type[mask] = np.array([TYPES.index(n) for n in names])[chosen]
    duration = duration_ms[ev_clip]
    ev_watch = np.full(n_events, -1, dtype=np.int64)
    watch = ev_type == TYPES.index("watch")
    ev_watch[watch] = (duration[watch] * rng.uniform(0.1, 0.95, int(watch.sum()))).astype(np.int64)
    complete = ev_type == TYPES.index("complete")
    ev_watch[complete] = duration[complete]
    since = np.maximum(published[ev_clip], now - 14 * DAY)
    ev_at = since + rng.random(n_events) * (now - 60 - since)

    # Follows: ~8 per user, mostly creators of one's favourite topics.
    per_user = 1 + rng.poisson(7, n_users)
    follower = np.repeat(np.arange(n_users), per_user)
    creator_topic = favs[creators, 0]
    by_creator_topic = [creators[creator_topic == t] for t in range(n_topics)]
    wanted = favs[follower, (rng.random(len(follower)) * fav_count[follower]).astype(np.int64)]
    followee = creators[rng.integers(0, n_creators, len(follower))]  # anyone, by default
    for t in range(n_topics):
        mask = (wanted == t) & (rng.random(len(follower)) < 0.8)
        if len(by_creator_topic[t]) and mask.any():
            followee[mask] = rng.choice(by_creator_topic[t], size=int(mask.sum()))
    pairs = np.unique(follower * n_users + followee)
    follows = np.stack([pairs // n_users, pairs % n_users], axis=1)
    follows = follows[follows[:, 0] != follows[:, 1]]

    return Plan(
        now=now,
        favs=favs,
        fav_count=fav_count,
        author=author,
        topic=topic,
        published=published,
        duration_ms=duration_ms,
        parent=parent,
        texts=texts,
        ev_user=ev_user,
        ev_clip=ev_clip,
        ev_type=ev_type,
        ev_watch=ev_watch,
        ev_at=ev_at,
        follows=follows,
    )


def encode_chunk(texts: Sequence[tuple[str, str, list[str]]]) -> np.ndarray:
    """Content vectors, exactly as feed.service.embed_clips computes them (run in a process)."""
    return HashedEncoder().encode_matrix([clip_text(p, c, h) for p, c, h in texts])


def interest_vectors(p: Plan, content: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Each user's interest and weight as feed.store would hold them now: the weighted sum of
    the content vectors of what they engaged with, each event decayed by its age."""
    base = np.array([WEIGHTS.get(t, 0.0) for t in TYPES])[p.ev_type]
    ratio = np.clip(np.where(p.ev_watch >= 0, p.ev_watch, 0) / p.duration_ms[p.ev_clip], 0.0, 1.5)
    weight = np.where(p.ev_type == TYPES.index("watch"), base * ratio, base)
    weight *= 0.5 ** ((p.now - p.ev_at) / (INTEREST_HALF_LIFE_DAYS * DAY))
    interest = np.zeros((n_users, content.shape[1]), dtype=np.float64)
    totals = np.bincount(p.ev_user, weights=np.abs(weight), minlength=n_users)
    chunk = 200_000
    for start in range(0, len(weight), chunk):
        users = p.ev_user[start : start + chunk]
        rows = weight[start : start + chunk, None] * content[p.ev_clip[start : start + chunk]]
        # ev_user is sorted: sum each user's run of rows at once.
        firsts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        interest[users[firsts]] += np.add.reduceat(rows, firsts, axis=0)
    return interest.astype(np.float32), totals


def behaviour_vectors(p: Plan, interest: np.ndarray, content: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each clip's behaviour (positive engagements pull it towards the viewer's unit taste, as
    feed.store does) and the embedding the index serves, blended as feed.store.blend does."""
    base = np.array([WEIGHTS.get(t, 0.0) for t in TYPES])[p.ev_type]
    ratio = np.clip(np.where(p.ev_watch >= 0, p.ev_watch, 0) / p.duration_ms[p.ev_clip], 0.0, 1.5)
    weight = np.where(p.ev_type == TYPES.index("watch"), base * ratio, base)
    norms = np.linalg.norm(interest, axis=1, keepdims=True)
    taste = interest / np.where(norms > 1e-9, norms, 1.0)
    positive = np.flatnonzero((weight > 0) & (norms[p.ev_user, 0] > 1e-9))
    order = positive[np.argsort(p.ev_clip[positive], kind="stable")]
    behaviour = np.zeros_like(content)
    for start in range(0, len(order), 200_000):
        part = order[start : start + 200_000]
        clips = p.ev_clip[part]
        rows = weight[part, None] * taste[p.ev_user[part]]
        firsts = np.flatnonzero(np.r_[True, clips[1:] != clips[:-1]])
        behaviour[clips[firsts]] += np.add.reduceat(rows, firsts, axis=0)
    engaged_types = [TYPES.index(t) for t in ("like", "complete", "share")]
    engaged = np.bincount(p.ev_clip[np.isin(p.ev_type, engaged_types)], minlength=len(content))
    b_norms = np.linalg.norm(behaviour, axis=1, keepdims=True)
    has = b_norms[:, 0] > 1e-9
    alpha = (BLEND_K / (BLEND_K + engaged))[:, None]
    mixed = alpha * content + (1 - alpha) * behaviour / np.where(has[:, None], b_norms, 1.0)
    m_norms = np.linalg.norm(mixed, axis=1, keepdims=True)
    embedding = np.where(
        has[:, None] & (m_norms > 1e-9), mixed / np.where(m_norms > 1e-9, m_norms, 1.0), content
    )
    return behaviour.astype(np.float32), embedding.astype(np.float32)


def ts(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


async def copy(conn: Any, table: str, columns: Sequence[str], records: list[tuple[Any, ...]]) -> None:
    for start in range(0, len(records), 100_000):
        await conn.copy_records_to_table(table, records=records[start : start + 100_000], columns=columns)


async def existing(conn: Any) -> dict[str, Any] | None:
    """The marker of the last finished seed, if any."""
    if not await conn.fetchval("SELECT to_regclass('bench_seed') IS NOT NULL"):
        return None
    row = await conn.fetchrow("SELECT * FROM bench_seed ORDER BY finished_at DESC LIMIT 1")
    if row is None:
        return None
    return dict(row)


async def id_base(conn: Any, table: str) -> int:
    return int(await conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {table}"))


async def seed_database(
    url: str, *, n_clips: int, n_users: int, n_events: int, seed: int = 7, log: Any = print
) -> dict[str, Any]:
    """Fill the database at ``url`` (migrated, without a seed) and return what it holds."""
    started = time.perf_counter()

    def step(what: str) -> None:
        log(f"[{time.perf_counter() - started:6.1f} s] {what}")

    conn = await asyncpg.connect(url)
    from pgvector.asyncpg import register_vector

    await register_vector(conn)
    try:
        await conn.execute(MARKER)
        found = await existing(conn)
        if found is not None:
            raise SystemExit(f"this database was seeded already ({found}); use --fresh to start again")
        step("planning")
        p = plan(n_clips, n_users, n_events, seed)
        loop = asyncio.get_running_loop()
        executor = ProcessPoolExecutor(max_workers=2)
        chunk = max(1, -(-n_clips // 8))
        encoding = [
            loop.run_in_executor(executor, encode_chunk, p.texts[i : i + chunk])
            for i in range(0, n_clips, chunk)
        ]
        step("encoding clip texts (in the background); loading users, media, jobs, takes, clips")

        user0, media0, job0, take0, clip0 = [
            await id_base(conn, t) for t in ("users", "media", "generation_jobs", "takes", "clips")
        ]
        user_id = user0 + 1 + np.arange(n_users)
        from backend.accounts.passwords import Passwords

        password_hash = await Passwords(time_cost=2, memory_kib=19456).hash(PASSWORD)
        locales = ["en", "en", "en", "zh", "ja", "es"]
        await copy(
            conn,
            "users",
            ("id", "handle", "email", "password_hash", "display_name", "locale", "created_at"),
            [
                (
                    int(uid),
                    f"seed_{uid}",
                    f"seed_{uid}@seed.example",
                    password_hash,
                    f"Seed user {uid}",
                    locales[uid % len(locales)],
                    ts(p.now - 60 * DAY),
                )
                for uid in user_id.tolist()
            ],
        )

        author_id = user_id[p.author].tolist()
        published = [ts(x) for x in p.published.tolist()]
        durations = p.duration_ms.tolist()
        media = []
        for i in range(n_clips):
            video, poster = media0 + 2 * i + 1, media0 + 2 * i + 2
            for mid, kind, ctype, size in (
                (video, "video", "video/mp4", 900_000),
                (poster, "poster", "image/jpeg", 40_000),
            ):
                key = f"seed/{clip0 + i + 1}/{kind}"
                media.append(
                    (mid, author_id[i], kind, key, ctype, size, hashlib.sha256(key.encode()).digest(),
                     720, 1280, durations[i] if kind == "video" else None, published[i])
                )  # fmt: skip
        await copy(
            conn,
            "media",
            ("id", "owner_id", "kind", "storage_key", "content_type", "bytes", "sha256", "width", "height",
             "duration_ms", "created_at"),
            media,
        )  # fmt: skip
        del media
        await copy(
            conn,
            "generation_jobs",
            ("id", "user_id", "prompt", "provider_prompt", "model", "seconds", "width", "height",
             "takes_requested", "status", "created_at", "updated_at", "finished_at"),
            [
                (job0 + i + 1, author_id[i], p.texts[i][0], p.texts[i][0], "local", durations[i] // 1000,
                 720, 1280, 1, "succeeded", published[i], published[i], published[i])
                for i in range(n_clips)
            ],
        )  # fmt: skip
        await copy(
            conn,
            "takes",
            ("id", "job_id", "user_id", "position", "status", "model", "provider", "progress",
             "reserved_seconds", "video_media_id", "poster_media_id", "duration_ms", "width", "height",
             "created_at", "finished_at", "clip_id"),
            [
                (take0 + i + 1, job0 + i + 1, author_id[i], 0, "succeeded", "local", "local", 100,
                 durations[i] // 1000, media0 + 2 * i + 1, media0 + 2 * i + 2, durations[i], 720, 1280,
                 published[i], published[i], clip0 + i + 1)
                for i in range(n_clips)
            ],
        )  # fmt: skip
        parents = p.parent.tolist()
        clips = []
        for i in range(n_clips):
            prompt, caption, hashtags = p.texts[i]
            parent = clip0 + parents[i] + 1 if parents[i] >= 0 else None
            provenance = json.dumps({"model": "local", "provider": "local", "seeded": True})
            clips.append(
                (clip0 + i + 1, author_id[i], take0 + i + 1, job0 + i + 1, "published", caption, hashtags,
                 "public", prompt, "local", "local", media0 + 2 * i + 1, media0 + 2 * i + 2, durations[i],
                 720, 1280, parent, parent, 1 if parent else 0, provenance, published[i], published[i],
                 published[i])
            )  # fmt: skip
        await copy(
            conn,
            "clips",
            ("id", "author_id", "take_id", "job_id", "status", "caption", "hashtags", "visibility", "prompt",
             "model", "provider", "video_media_id", "poster_media_id", "duration_ms", "width", "height",
             "parent_id", "root_id", "depth", "provenance", "created_at", "updated_at", "published_at"),
            clips,
        )  # fmt: skip
        del clips

        step("loading events")
        clip_id = clip0 + 1 + p.ev_clip
        ev_user_id = user_id[p.ev_user]
        watch = p.ev_watch.tolist()
        names = [TYPES[t] for t in range(len(TYPES))]
        chunk_e = 200_000
        for start in range(0, n_events, chunk_e):
            end = min(n_events, start + chunk_e)
            records = [
                (u, f"seed-{start + k}", names[t], c, w if w >= 0 else None, ts(a), ts(a))
                for k, (u, t, c, w, a) in enumerate(
                    zip(
                        ev_user_id[start:end].tolist(),
                        p.ev_type[start:end].tolist(),
                        clip_id[start:end].tolist(),
                        watch[start:end],
                        p.ev_at[start:end].tolist(),
                        strict=True,
                    )
                )
            ]
            await conn.copy_records_to_table(
                "events",
                records=records,
                columns=("user_id", "client_event_id", "type", "clip_id", "watch_ms", "at", "received_at"),
            )

        step("likes, shares, not-interested marks, follows, statistics")
        # What the API would have written alongside the events, derived from them in SQL.
        await conn.execute(
            "INSERT INTO likes (user_id, clip_id, created_at) SELECT user_id, clip_id, min(at) FROM events "
            "WHERE type = 'like' AND client_event_id LIKE 'seed-%' GROUP BY user_id, clip_id "
            "ON CONFLICT DO NOTHING"
        )
        await conn.execute(
            "INSERT INTO shares (clip_id, user_id, channel, created_at) SELECT clip_id, user_id, 'link', at "
            "FROM events WHERE type = 'share' AND client_event_id LIKE 'seed-%'"
        )
        await conn.execute(
            "INSERT INTO not_interested (user_id, clip_id, created_at) SELECT user_id, clip_id, min(at) "
            "FROM events WHERE type = 'not_interested' AND client_event_id LIKE 'seed-%' "
            "GROUP BY user_id, clip_id ON CONFLICT DO NOTHING"
        )
        await conn.copy_records_to_table(
            "follows",
            records=[(int(user_id[a]), int(user_id[b])) for a, b in p.follows.tolist()],
            columns=("follower_id", "followee_id"),
        )
        await conn.execute(
            """
            INSERT INTO clip_stats (clip_id, impressions, watches, completes, skips, likes, shares, negatives,
                                    watch_ms)
            SELECT clip_id, count(*) FILTER (WHERE type = 'impression'),
                   count(*) FILTER (WHERE type = 'watch'),
                   count(*) FILTER (WHERE type = 'complete'), count(*) FILTER (WHERE type = 'skip'),
                   count(*) FILTER (WHERE type = 'like'), count(*) FILTER (WHERE type = 'share'),
                   count(*) FILTER (WHERE type IN ('not_interested', 'hide_creator')),
                   coalesce(sum(watch_ms), 0)
            FROM events WHERE clip_id BETWEEN $1 AND $2 GROUP BY clip_id
            """,
            clip0 + 1,
            clip0 + n_clips,
        )
        await conn.execute(
            """
            UPDATE clips c SET like_count = s.likes, share_count = s.shares
            FROM clip_stats s WHERE s.clip_id = c.id AND c.id BETWEEN $1 AND $2
            """,
            clip0 + 1,
            clip0 + n_clips,
        )
        await conn.execute(
            """
            UPDATE clips c SET remix_count = r.n
            FROM (SELECT parent_id, count(*) AS n FROM clips WHERE parent_id BETWEEN $1 AND $2
                  GROUP BY parent_id) r
            WHERE c.id = r.parent_id
            """,
            clip0 + 1,
            clip0 + n_clips,
        )
        await conn.execute(
            """
            UPDATE users u SET follower_count = f.followers, following_count = f.following
            FROM (SELECT id, (SELECT count(*) FROM follows WHERE followee_id = id) AS followers,
                         (SELECT count(*) FROM follows WHERE follower_id = id) AS following
                  FROM users WHERE id BETWEEN $1 AND $2) f
            WHERE u.id = f.id
            """,
            user0 + 1,
            user0 + n_users,
        )

        step("waiting for the encoder; loading clip vectors")
        content = np.concatenate([await part for part in encoding]) if encoding else np.zeros((0, 256))
        executor.shutdown()
        # One HNSW build at the end beats 200,000 inserts into the graph by an order of magnitude.
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'clip_vectors' "
            "AND indexdef ILIKE '%USING hnsw%'"
        )
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        step("user interest and clip behaviour vectors")
        interest, totals = interest_vectors(p, content, n_users)
        behaviour, embedding = behaviour_vectors(p, interest, content)
        engaged = np.linalg.norm(behaviour, axis=1) > 1e-9
        # As feed.service.embed_clips decides it: do the clip's words pass the teen screening?
        teen_safe = [
            screen_text(f"{p.texts[i][0]} {p.texts[i][1]}", teen=True).allowed for i in range(n_clips)
        ]
        await copy(
            conn,
            "clip_vectors",
            ("clip_id", "content", "embedding", "teen_safe"),
            [(clip0 + i + 1, content[i], embedding[i], teen_safe[i]) for i in range(n_clips)],
        )
        await copy(
            conn,
            "clip_behaviour",
            ("clip_id", "behaviour"),
            [(clip0 + i + 1, behaviour[i]) for i in np.flatnonzero(engaged).tolist()],
        )
        now = ts(p.now)
        await copy(
            conn,
            "user_vectors",
            ("user_id", "interest", "weight", "updated_at"),
            [(int(user_id[u]), interest[u], float(totals[u]), now) for u in range(n_users) if totals[u] > 0],
        )

        step(f"building {len(indexes)} HNSW index(es)")
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 1")
        for index in indexes:
            await conn.execute(index["indexdef"])

        for table in ("users", "media", "generation_jobs", "takes", "clips", "shares"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT greatest(coalesce(max(id), 0), 1) FROM {table}))"
            )
        step("analyze")
        await conn.execute("ANALYZE")
        seconds = time.perf_counter() - started
        await conn.execute(
            "INSERT INTO bench_seed (version, clips, users, events, seed, seconds) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            SEED_VERSION,
            n_clips,
            n_users,
            n_events,
            seed,
            seconds,
        )
        step("done")
        return await counts(conn) | {"seconds": round(seconds, 1)}
    finally:
        await conn.close()


async def counts(conn: Any) -> dict[str, Any]:
    tables = ("users", "clips", "takes", "generation_jobs", "media", "events", "likes", "follows",
              "clip_vectors", "clip_behaviour", "user_vectors", "clip_stats")  # fmt: skip
    return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in tables}


async def check_seeded(
    url: str, n_clips: int, n_users: int, n_events: int, seed: int
) -> dict[str, Any] | None:
    """The marker row when the database holds exactly this seed, else None."""
    conn = await asyncpg.connect(url)
    try:
        found = await existing(conn)
        if found is None:
            return None
        if (found["version"], found["clips"], found["users"], found["events"], found["seed"]) != (
            SEED_VERSION,
            n_clips,
            n_users,
            n_events,
            seed,
        ):
            return {"mismatch": found}
        return found
    finally:
        await conn.close()


async def recreate(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


DEFAULT_SIZES = {"n_clips": 200_000, "n_users": 20_000, "n_events": 2_000_000, "seed": 7}


def ensure_seeded(
    database_url: str, *, admin_url: str | None, fresh: bool = False, **sizes: int
) -> dict[str, Any]:
    """Seed unless the database already holds this seed; what it holds (``reused`` if it did)."""
    sizes = DEFAULT_SIZES | sizes
    found = asyncio.run(check_seeded(database_url, *sizes.values()))
    if found is not None and "mismatch" not in found and not fresh:
        return {"reused": True, "seeded_at": str(found["finished_at"])} | asyncio.run(_counts(database_url))
    if admin_url is not None:
        # The bench database is ours alone: another seed, or one that stopped half-way, is
        # dropped and made again.
        name = urlsplit(database_url).path.lstrip("/")
        asyncio.run(recreate(admin_url, name))
        asyncio.run(db.migrate_url(database_url))
    elif found is not None:
        raise SystemExit(f"RIFFLE_DATABASE_URL holds another seed ({found}); empty it first")
    return asyncio.run(seed_database(database_url, **sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=DEFAULT_SIZES["n_clips"])
    parser.add_argument("--users", type=int, default=DEFAULT_SIZES["n_users"])
    parser.add_argument("--events", type=int, default=DEFAULT_SIZES["n_events"])
    parser.add_argument("--seed", type=int, default=DEFAULT_SIZES["seed"])
    parser.add_argument("--fresh", action="store_true", help="drop the bench database and seed again")
    parser.add_argument("--database-url", help="seed this (migrated, empty) database instead")
    args = parser.parse_args()
    sizes = {"n_clips": args.clips, "n_users": args.users, "n_events": args.events, "seed": args.seed}

    if args.database_url:
        asyncio.run(db.migrate_url(args.database_url))
        result = asyncio.run(seed_database(args.database_url, **sizes))
        print(json.dumps(result, indent=2))
        return
    with servers(need_redis=False) as svc:
        result = ensure_seeded(svc.database_url, admin_url=svc.admin_url, fresh=args.fresh, **sizes)
    result["machine"] = machine()
    print(json.dumps(result, indent=2))


async def _counts(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        return await counts(conn)
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
