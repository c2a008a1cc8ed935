"""Feed jobs: the event stream consumer, feeds ranked ahead, taste cohorts, clip embeddings, event
partitions."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import structlog
from saq import CronJob

from backend.cancel import raise_if_cancelled
from backend.db import Conn, transaction
from backend.worker import Resources, Task, resources
from feed import behaviour, cohorts, ready, service
from feed.ingest import HELP_BACKLOG, EventConsumer, keys

log = structlog.get_logger()


async def consume_events(res: Resources) -> None:
    """Runs for the life of a worker process (see BackgroundWorker ``loops``): several members of
    the consumer group, so that under a backlog PostgreSQL works on one batch while the next is
    read and its vectors computed (the helpers rest while the first keeps up), sharing as many
    lanes (parts of a batch by clip, see EventConsumer) so that they do not wait on each
    other's clip locks."""
    lanes = [asyncio.Lock() for _ in range(res.settings.events_consumers)]
    consumers = [
        EventConsumer(
            res.pool,
            res.redis,
            res.settings.redis_prefix,
            claim_idle_ms=res.settings.events_claim_idle_ms,
            lanes=lanes,
            helper=n > 0,  # the others read only when the stream falls behind
            prerank=_preranking(res),
        )
        for n in range(res.settings.events_consumers)
    ]
    async with asyncio.TaskGroup() as group:  # stopped, it returns once every member has
        for consumer in consumers:
            group.create_task(consumer.run())


def _preranking(res: Resources) -> bool:
    return bool(res.settings.feed_ready_s and res.settings.feed_ready_refresh_s)


async def prerank_feeds(res: Resources) -> None:
    """Runs for the life of a worker process: ranks a ready feed for viewers whose events
    arrived (the event consumer lists them) and whose ready feed is missing, older than
    ``feed_ready_refresh_s`` or half seen (:func:`feed.service.prerank`), so their next session
    opens without a ranking; ``feed_prerank_lanes`` at once, each taking the next viewer.
    Storing events comes first: the lanes wait while the stream is behind. Stopped, it returns
    once every lane has (asyncio.gather would return at the first, leaving a lane that missed
    its cancellation running on a closed pool)."""
    if not _preranking(res):
        return
    async with asyncio.TaskGroup() as group:
        for _ in range(res.settings.feed_prerank_lanes):
            group.create_task(_prerank_lane(res))


async def _prerank_lane(res: Resources) -> None:
    waiting, stream = ready.prerank_key(res.settings), keys(res.settings.redis_prefix)("events")
    backoff = 0.5
    while True:
        raise_if_cancelled()
        try:
            if await res.redis.xlen(stream) >= HELP_BACKLOG:
                await asyncio.sleep(0.5)
                continue
            popped: Any = await res.redis.zpopmin(waiting, 1)
            if not popped:
                await asyncio.sleep(1.0)
                continue
            await service.prerank(res.pool, res.redis, res.settings, int(popped[0][0]))
            backoff = 0.5
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # that viewer ranks with their next session instead
            log.warning("feed.prerank_failed", error=repr(exc), retry_in_s=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)


async def cohort_feeds(res: Resources) -> None:
    """Runs for the life of a worker process: groups viewers into taste cohorts and ranks their
    lists (:mod:`feed.cohorts`) when it starts and every ``feed_cohort_refresh_s`` after, one
    worker process at a time."""
    if not (res.settings.feed_cohorts and res.settings.feed_ready_s):
        return
    while True:
        raise_if_cancelled()
        try:
            built = await cohorts.build_if_due(
                res.pool, res.redis, res.settings, taste=service.taste_of, rank=service.rank_taste
            )
            if built is not None:
                log.info("feed.cohorts_built", **built.__dict__)
            pause = res.settings.feed_cohort_refresh_s / 4
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # sessions rank on the spot meanwhile
            log.warning("feed.cohorts_failed", error=repr(exc))
            pause = 10.0
        raise_if_cancelled()  # a cancellation lost in the build must not wait out the pause
        await asyncio.sleep(pause)


async def embed_clip(ctx: dict[str, Any], *, clip_id: int) -> None:
    res = resources(ctx)
    async with transaction(res.pool) as conn:
        await service.embed_clips(conn, res.encoder, [clip_id])


def _month(day: date, ahead: int) -> date:
    index = day.year * 12 + day.month - 1 + ahead
    return date(index // 12, index % 12 + 1, 1)


async def ensure_partitions(conn: Conn, *, months_ahead: int = 2) -> list[str]:
    """Monthly partitions of ``events`` from last month to ``months_ahead`` ahead (idempotent)."""
    today = datetime.now(UTC).date()
    made = []
    for ahead in range(-1, months_ahead + 1):
        start, end = _month(today, ahead), _month(today, ahead + 1)
        name = f"events_{start:%Y_%m}"
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name)
        if not exists:
            await conn.execute(
                f"CREATE TABLE {name} PARTITION OF events FOR VALUES FROM ('{start}') TO ('{end}')"
            )
            made.append(name)
    return made


async def event_partitions(ctx: dict[str, Any]) -> list[str]:
    async with transaction(resources(ctx).pool) as conn:
        made = await ensure_partitions(conn)
    if made:
        log.info("feed.partitions.created", partitions=made)
    return made


async def rebuild_behaviour(ctx: dict[str, Any]) -> dict[str, Any]:
    """Hourly: behaviour vectors and embeddings recomputed from co-engagement (feed.behaviour)."""
    res = resources(ctx)
    done = await behaviour.rebuild(res.pool, window_days=res.settings.feed_behaviour_window_days)
    return dict(done.__dict__)


TASKS: list[Task] = [embed_clip, event_partitions, rebuild_behaviour]
CRON: list[CronJob[Any]] = [
    CronJob(event_partitions, cron="7 3 * * *", unique=True),
    CronJob(rebuild_behaviour, cron="23 * * * *", unique=True, timeout=1800),
]
LOOPS = [consume_events, prerank_feeds, cohort_feeds]
