"""A viewer's ranked feed, kept ready for their next sessions.

Ranking a For You session costs tens of milliseconds of PostgreSQL (the HNSW walks and the
candidate query) and Python; pages read from a session cost a fraction of a millisecond. So a
ranking is kept per viewer (``feed:ready:<viewer>:<teen>``, a Redis list: the wall-clock time
it was ranked, then the entries as the session holds them) for ``RIFFLE_FEED_READY_S``, and a
new session opens from it: the entries the viewer has seen since (their seen set, which every
served page adds to) left out, the rest copied into the session in one Lua call. The worker
ranks ahead for viewers whose events arrive (:func:`feed.service.prerank`), once their ready
feed is ``RIFFLE_FEED_READY_REFRESH_S`` old, so an active viewer's next session reflects what
they just watched without waiting for a ranking.

What a session opened this way may show is checked as for any later page: it is served as
ranked unless something that could hide a clip changed since (``feed.visibility``). What the
viewer changes about their own feed (steering, follows, blocks, mutes, hidden creators, not
interested) voids it instead (:func:`forget`): the next session is ranked afresh.
"""

from __future__ import annotations

import time

import msgspec
import structlog
from redis import exceptions as redis_errors

from backend.redis_mux import Multiplexed
from backend.redis_pool import Redis, Script
from backend.settings import Settings
from feed.ingest import keys

log = structlog.get_logger()

# A change is written to PostgreSQL and committed after :func:`forget` runs (in the same
# request): a ranking that starts before the commit may read the old state, so rankings
# started this long after the void are not trusted either.
VOID_GRACE_S = 1.0


# A ready feed is a Redis list: a head, msgpack [ranking time as text, [clip id, …]], then the
# entries as a session holds them, in the same order. The ids in the head let a script ask
# the seen set about all of them in one SMISMEMBER: decoding each entry in Lua and asking one
# by one took Redis 0.4 of a core at 800 sessions opened per second. Both scripts that read
# one start here, with KEYS = ready feed, seen set, void stamp, …
_HEAD = """
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then return false end
head = cmsgpack.unpack(head)
if #head[2] == 0 then return false end
local void = redis.call('GET', KEYS[3])
if void and tonumber(void) >= tonumber(head[1]) then return false end
local seen = redis.call('SMISMEMBER', KEYS[2], unpack(head[2]))
"""

# Open a session from a ready feed and take its first page, as the session's later pages are
# taken (feed.service._TAKE_PAGE: the page's clips join the seen set), in one round trip:
# KEYS = ready feed, seen set, void stamp, new session; ARGV = fewest unseen entries worth a
# session, session lifetime, page size, seen set lifetime. Answers {ranking time, first page},
# or nothing (no ready feed, voided since it was ranked, or too little of it left unseen).
_OPEN = Script(
    _HEAD
    + """
local raw = redis.call('LRANGE', KEYS[1], 1, -1)
local fresh, ids = {}, {}
for i = 1, #raw do
    if seen[i] == 0 then
        fresh[#fresh + 1] = raw[i]
        ids[#ids + 1] = head[2][i]
    end
end
if #fresh < tonumber(ARGV[1]) then return false end
for i = 1, #fresh, 1000 do
    redis.call('RPUSH', KEYS[4], unpack(fresh, i, math.min(i + 999, #fresh)))
end
redis.call('EXPIRE', KEYS[4], ARGV[2])
local take = math.min(tonumber(ARGV[3]), #fresh)
redis.call('SADD', KEYS[2], unpack(ids, 1, take))
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {head[1], {unpack(fresh, 1, take)}}
"""
)


def ready_key(settings: Settings, viewer_id: int, teen: bool) -> str:
    return keys(settings.redis_prefix)("ready", viewer_id, int(teen))


def _void_key(settings: Settings, viewer_id: int) -> str:
    return keys(settings.redis_prefix)("ready-void", viewer_id)


def prerank_key(settings: Settings) -> str:
    """The viewers the worker should rank ahead for (score: when their events arrived)."""
    return keys(settings.redis_prefix)("prerank")


async def open_session(
    redis: Redis | Multiplexed,
    settings: Settings,
    *,
    viewer_id: int,
    teen: bool,
    session: str,
    seen: str,
    page: int,
    seen_ttl_s: int,
) -> tuple[float, list[bytes]] | None:
    """Fill ``session`` from the viewer's ready feed (if at least ``page`` of it is unseen) and
    take its first ``page`` entries; when it was ranked and those entries, or None."""
    opened = await _OPEN(
        redis,
        [ready_key(settings, viewer_id, teen), seen, _void_key(settings, viewer_id), session],
        [page, settings.feed_session_ttl_s, page, seen_ttl_s],
    )
    if not isinstance(opened, list):
        return None
    ranked_at, first = opened
    return float(ranked_at), list(first)


async def keep(
    redis: Redis,
    settings: Settings,
    *,
    viewer_id: int,
    teen: bool,
    ranked_at: float,
    clip_ids: list[int],
    entries: list[bytes],
) -> None:
    """Keep a ranking (its entries, and their clips in the same order) as the viewer's ready
    feed, replacing the one before."""
    key = ready_key(settings, viewer_id, teen)
    head = msgspec.msgpack.encode([f"{ranked_at:.3f}", clip_ids])
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.rpush(key, head, *entries)
        pipe.expire(key, settings.feed_ready_s)
        await pipe.execute()


# How a viewer's ready feed stands: KEYS = ready feed, seen set, void stamp. Answers
# {ranking time, entries not seen since, entries}, or nothing (none, or voided since it was ranked).
_STATE = Script(
    _HEAD
    + """
local unseen = 0
for i = 1, #seen do unseen = unseen + 1 - seen[i] end
return {head[1], unseen, #seen}
"""
)


async def state(
    redis: Redis, settings: Settings, *, viewer_id: int, teen: bool, seen: str
) -> tuple[float, int, int] | None:
    """When the viewer's ready feed was ranked, how many of its entries they have not seen, and
    how many it holds; None when there is none or it was voided since."""
    found = await _STATE(
        redis, [ready_key(settings, viewer_id, teen), seen, _void_key(settings, viewer_id)], []
    )
    if not isinstance(found, list):
        return None
    return float(found[0]), int(found[1]), int(found[2])


async def forget(redis: Redis, settings: Settings, viewer_id: int) -> None:
    """The viewer changed what their feed is made of: no ranking from before now opens a
    session for them. Call it with the change, before it commits (see VOID_GRACE_S). With
    Redis away the change still stands; a ready feed there then lives out its time."""
    if not settings.feed_ready_s:
        return
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(
                _void_key(settings, viewer_id),
                f"{time.time() + VOID_GRACE_S:.3f}",
                # outlives every ready feed it voids (kept up to a ranking's length later)
                ex=settings.feed_ready_s + 60,
            )
            pipe.delete(ready_key(settings, viewer_id, False), ready_key(settings, viewer_id, True))
            await pipe.execute()
    except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
        log.warning("feed.ready.forget_failed", viewer_id=viewer_id, error=repr(exc))
