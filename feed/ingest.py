"""Watch events: accepted by the API into a Redis stream, written to PostgreSQL by the worker.

Accepting is one Lua script per batch: each event's ``client_event_id`` is claimed with
``SET NX EX`` (a repeat is counted as a duplicate and dropped) and the new ones are appended
to the stream, all or nothing as far as another client can tell. A 202 therefore means the
event is in Redis (AOF-persisted in the embedded default) or, when Redis cannot be reached,
already committed to PostgreSQL by the API itself — never accepted and then lost.

The consumer reads the stream in a consumer group, stores a batch with
:func:`feed.store.store_events` in one transaction, and only then acknowledges and deletes the
entries. Entries a crashed consumer left pending are claimed by another (``XAUTOCLAIM``)
after :data:`CLAIM_IDLE_MS`; storing is idempotent, so a redelivered batch counts once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import structlog
from redis import exceptions as redis_errors

from backend.cancel import raise_if_cancelled
from backend.db import Conn, transaction
from backend.errors import ValidationFailed
from backend.redis_pool import Keys, Redis
from feed.schemas import EventIn, EventsAccepted
from feed.store import StoredEvent, store_events

log = structlog.get_logger()

GROUP = "store"
DEDUPE_TTL_S = 3 * 86400
CLAIM_IDLE_MS = 30_000
BATCH = 2000
# A helper consumer (every one of a process's consumers but the first) reads only while the
# stream holds at least this many entries, and a batch is split into lanes only from this size:
# under everyday traffic one consumer keeps up, and several side by side took PostgreSQL from
# the requests people are waiting on (mixed traffic: 371 requests/s with one, 283-317 with four
# always reading); under a backlog they all work (ingestion: 7,300-8,100 events/s against 4,858).
HELP_BACKLOG = 2 * BATCH
LANE_MIN = BATCH // 4
MAX_AGE = timedelta(days=7)
MAX_SKEW = timedelta(minutes=5)

_ACCEPT = """
local accepted = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
    accepted = accepted + 1
  end
end
return accepted
"""

# A batch's trending scores and seen clips in one call: KEYS are the hourly trending buckets
# (ARGV[1] of them, kept ARGV[2] seconds), then the viewers' seen sets (kept ARGV[3] seconds);
# ARGV[4] is a msgpack list with, for each of those keys, [clip, score, clip, score, …] or
# [clip, …]. With ARGV[5] (now) and ARGV[6] (a msgpack list of viewers), the last key is the
# set of viewers the worker ranks a feed ahead for (feed.ready), where a viewer already waiting
# keeps their place. As ~2,000 ZINCRBY, SADD and EXPIRE commands in a pipeline, a quarter of
# the process's time storing events went to redis-py packing and parsing them one by one.
_TREND = """
local buckets = tonumber(ARGV[1])
local lists = cmsgpack.unpack(ARGV[4])
for i = 1, #lists do
    local items = lists[i]
    if i <= buckets then
        for j = 1, #items, 2 do redis.call('ZINCRBY', KEYS[i], items[j + 1], items[j]) end
        redis.call('EXPIRE', KEYS[i], ARGV[2])
    else
        for j = 1, #items, 1000 do
            redis.call('SADD', KEYS[i], unpack(items, j, math.min(j + 999, #items)))
        end
        redis.call('EXPIRE', KEYS[i], ARGV[3])
    end
end
if ARGV[5] then
    local viewers = cmsgpack.unpack(ARGV[6])
    for j = 1, #viewers, 500 do
        local args = {}
        for v = j, math.min(j + 499, #viewers) do
            args[#args + 1] = ARGV[5]
            args[#args + 1] = viewers[v]
        end
        redis.call('ZADD', KEYS[#KEYS], 'NX', unpack(args))
    end
end
return #KEYS
"""

_encode = msgspec.msgpack.Encoder()
_decode = msgspec.msgpack.Decoder(StoredEvent)


def keys(prefix: str) -> Keys:
    return Keys(prefix, "feed")


async def _check(conn: Conn, events: Sequence[EventIn]) -> None:
    now = datetime.now(UTC)
    for index, event in enumerate(events):
        at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
        if not now - MAX_AGE <= at <= now + MAX_SKEW:
            raise ValidationFailed(
                "events must be from the last 7 days and not from the future",
                code="event_time_out_of_range",
                field=f"events[{index}].at",
            )
    wanted = sorted({e.clip_id for e in events})
    known = {r["id"] for r in await conn.fetch("SELECT id FROM clips WHERE id = ANY($1::bigint[])", wanted)}
    for index, event in enumerate(events):
        if event.clip_id not in known:
            raise ValidationFailed(
                f"no clip {event.clip_id}", code="unknown_clip", field=f"events[{index}].clip_id"
            )


async def accept(
    conn: Conn, redis: Redis, prefix: str, *, user_id: int, events: Sequence[EventIn]
) -> EventsAccepted:
    """Queue a batch durably; if Redis cannot take it, store it in PostgreSQL right away."""
    await _check(conn, events)
    stored = [
        StoredEvent(
            user_id=user_id,
            client_event_id=e.client_event_id,
            type=e.type,
            clip_id=e.clip_id,
            watch_ms=e.watch_ms,
            at=e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC),
        )
        for e in events
    ]
    k = keys(prefix)
    try:
        accepted = await redis.eval(
            _ACCEPT,
            1 + len(stored),
            k("events"),
            *[k("event-id", user_id, e.client_event_id) for e in stored],
            DEDUPE_TTL_S,
            *[_encode.encode(e) for e in stored],
        )
    except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
        log.warning("feed.events.redis_down", error=repr(exc), count=len(stored))
        new = await store_events(conn, stored)  # committed with the request, before the 202
        return EventsAccepted(accepted=new, duplicates=len(stored) - new)
    return EventsAccepted(accepted=int(accepted), duplicates=len(stored) - int(accepted))


TRENDING_WEIGHTS = {"impression": 0.05, "watch": 0.3, "complete": 1.0, "like": 2.0, "share": 3.0, "tap": 1.0}


class EventConsumer:
    """One member of the consumer group; run several (one per worker process) for throughput.

    ``lanes``, shared by the consumers of one process, split each batch by clip (``clip_id``
    modulo their number) into parts stored side by side, each in its own transaction, one
    part per lane at a time. Parts in different lanes never share a clip, so they never wait
    on each other's clip locks; when every consumer stored whole batches, two batches of
    random clips nearly always shared one, and one waited for the other's whole transaction
    (half the time of four consumers). A part that fails leaves the batch unacknowledged; the
    parts already stored are skipped as duplicates when it is delivered again.
    """

    def __init__(
        self,
        pool: Any,
        redis: Redis,
        prefix: str,
        *,
        name: str | None = None,
        claim_idle_ms: int = CLAIM_IDLE_MS,
        lanes: Sequence[asyncio.Lock] | None = None,
        helper: bool = False,
        prerank: bool = False,
    ) -> None:
        self.pool = pool
        self.helper = helper
        self.lanes = list(lanes) if lanes else [asyncio.Lock()]
        self.claim_idle_ms = claim_idle_ms
        self.redis = redis
        self.stream = keys(prefix)("events")
        self.trending = lambda hour: keys(prefix)("trending", hour)
        self.seen = lambda user_id: keys(prefix)("seen", user_id)  # what the feed leaves out
        # viewers to rank a feed ahead for (feed.ready.prerank_key)
        self.prerank = keys(prefix)("prerank") if prerank else None
        self._trend_script = redis.register_script(_TREND)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    async def ensure_group(self) -> None:
        with contextlib.suppress(redis_errors.ResponseError):  # BUSYGROUP: it exists
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self.ensure_group()
                while True:
                    raise_if_cancelled()
                    if self.helper and await self.redis.xlen(self.stream) < HELP_BACKLOG:
                        await asyncio.sleep(0.5)  # not behind: the first consumer keeps up
                        continue
                    await self.step(block_ms=1000)
                    backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or PostgreSQL away: keep the entries, try again
                log.warning("feed.events.consume_failed", error=repr(exc), retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def step(self, *, block_ms: int | None = None) -> int:
        """Store one batch: entries left pending by a dead consumer first, then new ones."""
        reply: Any = await self.redis.xautoclaim(
            self.stream, GROUP, self.name, min_idle_time=self.claim_idle_ms, start_id="0-0", count=BATCH
        )
        entries = list(reply[1])
        if not entries:
            response: Any = await self.redis.xreadgroup(
                GROUP, self.name, {self.stream: ">"}, count=BATCH, block=block_ms
            )
            entries = [entry for _, batch in response for entry in batch]
        entries = [(entry_id, fields) for entry_id, fields in entries if fields]  # deleted meanwhile
        if not entries:
            return 0
        events = [_decode.decode(fields[b"e"]) for _, fields in entries]
        if len(self.lanes) > 1 and len(events) >= LANE_MIN:
            parts: dict[int, list[StoredEvent]] = {}
            for event in events:
                parts.setdefault(event.clip_id % len(self.lanes), []).append(event)
            async with asyncio.TaskGroup() as group:  # one part failing cancels (rolls back) the rest
                stored = [group.create_task(self._store(lane, part)) for lane, part in parts.items()]
            new = sum(task.result() for task in stored)
        else:  # a small batch is one transaction (clips locked in id order: it waits, not deadlocks)
            async with transaction(self.pool) as conn:
                new = await store_events(conn, events)
        ids = [entry_id for entry_id, _ in entries]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            await pipe.execute()
        await self._trend(events)
        log.debug("feed.events.stored", received=len(events), new=new)
        return len(events)

    async def _store(self, lane: int, events: list[StoredEvent]) -> int:
        async with self.lanes[lane], transaction(self.pool) as conn:
            return await store_events(conn, events)

    async def _trend(self, events: Sequence[StoredEvent]) -> None:
        """Hourly buckets of engagement per clip (read back with decay by the feed), and each
        viewer's seen set. A redelivered batch may count twice in trending; it is a ranking
        hint, not a ledger."""
        buckets: dict[str, dict[int, float]] = {}
        seen: dict[int, set[int]] = {}
        for event in events:
            if event.type != "tap":
                seen.setdefault(event.user_id, set()).add(event.clip_id)
            weight = TRENDING_WEIGHTS.get(event.type, 0.0)
            if weight:
                scores = buckets.setdefault(self.trending(int(event.at.timestamp() // 3600)), {})
                scores[event.clip_id] = scores.get(event.clip_id, 0.0) + weight
        if not buckets and not seen:
            return
        lists = [[x for pair in scores.items() for x in pair] for scores in buckets.values()]
        lists += [list(clip_ids) for clip_ids in seen.values()]
        keys_ = [*buckets, *(self.seen(user_id) for user_id in seen)]
        args: list[Any] = [len(buckets), 26 * 3600, 7 * 86400, _encode.encode(lists)]
        if self.prerank is not None:
            keys_.append(self.prerank)
            args += [int(time.time()), _encode.encode(sorted({event.user_id for event in events}))]
        await self._trend_script(keys=keys_, args=args)
