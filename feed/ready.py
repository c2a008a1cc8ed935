"""A viewer's ranked feed, kept ready for their next sessions.

Ranking a For You session costs tens of milliseconds of PostgreSQL (the HNSW walks and the
candidate query) and Python; pages read from a session cost a fraction of a millisecond. So a
ranking is kept per viewer (``feed:ready:<viewer>:<teen>``, a Redis list: the wall-clock time
it was ranked, then the entries as the session holds them) for ``RIFFLE_FEED_READY_S``, and a
new session opens from it: a copy of it, whose pages leave out what the viewer has seen since
(their seen set, which every served page adds to) as they are taken. The worker
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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


# Take up to `want` entries of a session list from `offset` on, leaving out clips in the seen
# set `seen` (nil for a signed-out viewer): the entries, their clip ids, and where the next page
# starts. Entries are msgpack arrays [clip id, reason, ...]. It reads as many entries as the
# page still lacks, four times as many after a read that were all seen. And `ahead`: the clip
# ids of the `want` entries from `offset` on, seen or not (the next page's, mostly), whose
# cards the process renders before that page is asked for (backend.clips.cards.CardLoader).
# Shared by a session's first page (below) and its later ones (feed.service._TAKE_PAGE).
TAKE = """
local function ahead(session, offset, want)
    local raw = redis.call('LRANGE', session, offset, offset + want - 1)
    local ids = {}
    for i = 1, #raw do ids[i] = (cmsgpack.unpack(raw[i]))[1] end
    return ids
end

local function take(session, seen, offset, want)
    local out, ids = {}, {}
    local window = want
    while #out < want do
        local raw = redis.call('LRANGE', session, offset, offset + window - 1)
        if #raw == 0 then break end
        local before = #out
        if seen then
            local clip = {}
            for i = 1, #raw do clip[i] = (cmsgpack.unpack(raw[i]))[1] end
            local found = redis.call('SMISMEMBER', seen, unpack(clip))
            for i = 1, #raw do
                offset = offset + 1
                if found[i] == 0 then
                    out[#out + 1] = raw[i]
                    ids[#ids + 1] = clip[i]
                    if #out == want then break end
                end
            end
        else
            for i = 1, #raw do out[#out + 1] = raw[i] end
            offset = offset + #raw
        end
        if #out == before then window = math.min(window * 4, 1000) else window = want - #out end
    end
    return out, ids, offset
end
"""

# A ready feed is a Redis list: a head, msgpack [ranking time as text, [clip id, …]], then the
# entries as a session holds them, in the same order. Both scripts that read one start here,
# with KEYS = ready feed, seen set, void stamp, …
_HEAD = """
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then return false end
head = cmsgpack.unpack(head)
if #head[2] == 0 then return false end
local void = redis.call('GET', KEYS[3])
if void and tonumber(void) >= tonumber(head[1]) then return false end
"""

# Open a session from a ready feed and take its first page, as the session's later pages are
# taken (the page's clips join the seen set), in one round trip: KEYS = ready feed, seen set,
# void stamp, new session, and optionally the taste cohorts' members (feed.cohorts); ARGV =
# fewest unseen entries worth a session, session lifetime, page size, seen set lifetime, the
# ranking time the caller read ('' for any), the places (from 0, head not counted, msgpack) of
# entries this viewer must not get (a taste cohort's list, feed.cohorts: their own clips, the
# ones they liked, authors they blocked…), and the viewer. The session is a server-side COPY of
# the ready feed less its head and those entries, seen entries included: its pages skip them
# as they are taken, and its first page starts after the run of seen entries the ready feed
# begins with (what the viewer's last session from it showed), found by asking the seen set
# about the head's ids 10, 40, 160… at a time. Filtering every entry here instead (the seen
# set asked about all of them, the rest pushed into the session) cost Redis 480-530 µs of CPU
# a session from a ready feed of 420; at 800 sessions opened a second, 0.4 of a core.
# Answers {ranking time, first page, where the next page starts, the clip ids from there on};
# or 'reranked' when the list was ranked again since the caller read it; otherwise (no ready
# feed, voided since it was ranked, too little of it left unseen) the viewer's taste cohort
# when the members were named (so that a first session opens from it without another round
# trip), else nothing.
_OPEN = Script(
    TAKE
    + "local function open()\n"
    + _HEAD
    + """
if ARGV[5] ~= '' and head[1] ~= ARGV[5] then return 'reranked' end
redis.call('COPY', KEYS[1], KEYS[4], 'REPLACE')
redis.call('LPOP', KEYS[4])
local ids = head[2]
local places = cmsgpack.unpack(ARGV[6])
if #places > 0 then
    local drop = {}
    for i = 1, #places do
        drop[places[i]] = true
        redis.call('LSET', KEYS[4], places[i], '')  -- no entry is empty
    end
    redis.call('LREM', KEYS[4], 0, '')
    local kept = {}
    for i = 1, #ids do
        if not drop[i - 1] then kept[#kept + 1] = ids[i] end
    end
    ids = kept
end
local start, window = 0, 10
while start < #ids do
    local found = redis.call('SMISMEMBER', KEYS[2], unpack(ids, start + 1, math.min(start + window, #ids)))
    local i = 1
    while i <= #found and found[i] == 1 do i = i + 1 end
    start = start + i - 1
    if i <= #found then break end
    window = window * 4
end
local first, taken, offset = take(KEYS[4], KEYS[2], start, tonumber(ARGV[3]))
if #first < tonumber(ARGV[1]) then
    redis.call('DEL', KEYS[4])
    return false
end
redis.call('EXPIRE', KEYS[4], ARGV[2])
redis.call('SADD', KEYS[2], unpack(taken))
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {head[1], first, offset, ahead(KEYS[4], offset, tonumber(ARGV[3]))}
end

local opened = open()
if opened or not KEYS[5] then return opened end
local cohort = redis.call('HGET', KEYS[5], ARGV[7])
return cohort and tonumber(cohort)
"""
)


class Reranked(Exception):
    """The list a session was to open from was ranked again since the caller read its head."""


def ready_key(settings: Settings, viewer_id: int, teen: bool) -> str:
    return keys(settings.redis_prefix)("ready", viewer_id, int(teen))


def _void_key(settings: Settings, viewer_id: int) -> str:
    return keys(settings.redis_prefix)("ready-void", viewer_id)


def prerank_key(settings: Settings) -> str:
    """The viewers the worker should rank ahead for (score: when their events arrived)."""
    return keys(settings.redis_prefix)("prerank")


@dataclass(frozen=True)
class Opened:
    """A session opened from a ready feed (or a list in its form) with its first page taken."""

    ranked_at: float
    first: list[bytes]  # the first page's entries
    offset: int  # where the next page starts
    ahead: list[int]  # the clips from there on (the next page's, unless seen)


@dataclass(frozen=True)
class Opening:
    """A new session to open: whose, where, what they have seen, its first page's size."""

    viewer_id: int
    teen: bool
    session: str  # its key
    seen: str  # the viewer's seen set
    page: int
    seen_ttl_s: int


async def open_session(
    redis: Redis | Multiplexed, settings: Settings, new: Opening, *, cohorts: str | None = None
) -> Opened | int | None:
    """Open the session from the viewer's ready feed, if at least a page of it is unseen, and
    take its first page of unseen entries. When it does not open: the viewer's cohort, if
    ``cohorts`` names the cohorts' members and they are in one; otherwise None."""
    opened = await _open(redis, settings, new, ready_key(settings, new.viewer_id, new.teen), cohorts=cohorts)
    return opened if isinstance(opened, Opened | int) else None


async def open_list(
    redis: Redis | Multiplexed,
    settings: Settings,
    new: Opening,
    source: str,
    *,
    ranked: str,
    drop: Sequence[int],
) -> Opened | None:
    """Open the session from ``source``, another list in a ready feed's form (a taste cohort's,
    whose head the caller read ranked at ``ranked``), less the entries at the places ``drop``,
    as :func:`open_session` does; None when too little of it is unseen. Raises
    :class:`Reranked` when it was ranked again since ``ranked``."""
    opened = await _open(redis, settings, new, source, ranked=ranked, drop=drop)
    if opened == b"reranked":
        raise Reranked(source)
    return opened if isinstance(opened, Opened) else None


async def _open(
    redis: Redis | Multiplexed,
    settings: Settings,
    new: Opening,
    source: str,
    *,
    ranked: str = "",
    drop: Sequence[int] = (),
    cohorts: str | None = None,
) -> object:
    """What _OPEN answers, an opened session as :class:`Opened`."""
    keys_ = [source, new.seen, _void_key(settings, new.viewer_id), new.session]
    if cohorts is not None:
        keys_.append(cohorts)
    opened = await _OPEN(
        redis,
        keys_,
        [
            new.page,
            settings.feed_session_ttl_s,
            new.page,
            new.seen_ttl_s,
            ranked,
            msgspec.msgpack.encode(drop),
            new.viewer_id,
        ],
    )
    if isinstance(opened, list):
        ranked_at, first, offset, ahead = opened
        return Opened(float(ranked_at), list(first), int(offset), [int(i) for i in ahead])
    return opened


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
    await store(redis, key, [f"{ranked_at:.3f}", clip_ids], entries, settings.feed_ready_s)


async def store(redis: Redis, key: str, head: list[Any], entries: list[bytes], ttl_s: int) -> None:
    """Write a list in a ready feed's form (``head`` first: ranking time as text, clip ids, …),
    replacing what ``key`` held."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.rpush(key, msgspec.msgpack.encode(head), *entries)
        pipe.expire(key, ttl_s)
        await pipe.execute()


# How a viewer's ready feed stands: KEYS = ready feed, seen set, void stamp. Answers
# {ranking time, entries not seen since, entries}, or nothing (none, or voided since it was ranked).
_STATE = Script(
    _HEAD
    + """
local seen = redis.call('SMISMEMBER', KEYS[2], unpack(head[2]))
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
