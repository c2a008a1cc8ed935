"""The background worker: SAQ on Redis, plus the outbox relay.

SAQ was chosen over arq and taskiq because it is asyncio-native, actively maintained, keeps
job state in Redis with heartbeats and a sweeper that re-queues jobs whose worker died
(at-least-once delivery), de-duplicates by job key, retries with backoff and runs cron jobs,
all in one small dependency. Tasks are ``async def task(ctx, **kwargs)``; ``ctx["riffle"]``
holds the process's shared resources.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from saq import CronJob, Queue, Worker

from backend import db, outbox
from backend.db import Pool
from backend.generation.engine import GenerationEngine, build_engine
from backend.media.storage import Storage, build_storage
from backend.redis_pool import Redis, create_redis
from backend.secrets_store import signing_key
from backend.settings import Settings
from feed.encoder import Encoder, build_encoder

log = structlog.get_logger()

STOP_WAIT_S = 5.0

Task = Callable[..., Awaitable[Any]]


@dataclass
class Resources:
    """What a task may use; built once per process and handed to every task in ``ctx``."""

    settings: Settings
    pool: Pool
    redis: Redis
    queue: Queue
    signing_key: bytes
    storage: Storage
    generation: GenerationEngine
    encoder: Encoder


@contextlib.asynccontextmanager
async def open_resources(settings: Settings, *, warm: Sequence[db.Warm] = ()) -> AsyncIterator[Resources]:
    """Connect everything a process needs, and close every part even when one fails; ``warm``:
    statements each database connection prepares as it opens (backend.db.create_pool)."""
    if not settings.database_url or not settings.redis_url:
        raise ValueError("database_url and redis_url must be set; `riffle serve` fills them in")
    key = signing_key(settings)
    pool = await db.create_pool(
        settings.database_url,
        # A fixed size by default: a connection opened under load made the requests waiting on
        # it pay for it (and for preparing the warm statements on it).
        min_size=settings.db_pool_max if settings.db_pool_min is None else settings.db_pool_min,
        max_size=settings.db_pool_max,
        warm=warm,
    )
    redis = create_redis(settings.redis_url)
    queue = create_queue(settings, settings.redis_url)
    storage = build_storage(settings)
    engine = build_engine(settings, redis)
    encoder = build_encoder(settings)
    try:
        await queue.connect()
        yield Resources(
            settings=settings,
            pool=pool,
            redis=redis,
            queue=queue,
            signing_key=key,
            storage=storage,
            generation=engine,
            encoder=encoder,
        )
    finally:
        for close in (
            encoder.aclose,
            engine.aclose,
            storage.aclose,
            queue.disconnect,
            redis.aclose,
            pool.close,
        ):
            try:
                await close()
            except Exception as exc:
                log.warning("resources.close_failed", step=close.__qualname__, error=repr(exc))


def create_queue(settings: Settings, redis_url: str) -> Queue:
    return Queue.from_url(redis_url, name=f"{settings.redis_prefix}jobs")


def resources(ctx: dict[str, Any]) -> Resources:
    res: Resources = ctx["riffle"]
    return res


class BackgroundWorker:
    """Runs a SAQ worker and the outbox relay as tasks of the current event loop."""

    def __init__(
        self,
        res: Resources,
        *,
        tasks: Sequence[Task],
        cron: Sequence[CronJob[Any]] = (),
        concurrency: int = 16,
        job_options: Mapping[str, Mapping[str, Any]] | None = None,
        loops: Sequence[Callable[[Resources], Coroutine[Any, Any, None]]] = (),
    ) -> None:
        async def startup(ctx: dict[str, Any]) -> None:
            ctx["riffle"] = res

        self.res = res
        self.job_options = job_options or {}
        self.loops = list(loops)  # long-running consumers (e.g. the event stream), restarted by themselves
        self.worker = Worker(
            res.queue,
            functions=list(tasks),
            cron_jobs=list(cron),
            concurrency=concurrency,
            startup=startup,
            timers={"sweep": 15, "schedule": 1, "abort": 1, "worker_info": 10},
        )
        # SAQ would install its own SIGINT/SIGTERM handlers on the loop, replacing the ASGI
        # server's; the process owner (uvicorn or `riffle worker`) handles signals and calls stop().
        self.worker.SIGNALS = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.worker.start(), name="saq-worker"),
            asyncio.create_task(
                outbox.run_relay(self.res.pool, self.res.queue, job_options=self.job_options),
                name="outbox-relay",
            ),
            *(asyncio.create_task(loop(self.res), name=loop.__name__) for loop in self.loops),
        ]
        log.info("worker.started", queue=self.res.queue.name)

    async def stop(self) -> None:
        """Stop SAQ, then the relay and the loops; each part is given ``STOP_WAIT_S``.

        On Python 3.11 a cancellation can be lost inside a Redis call (see backend.cancel):
        our loops check for it once a round, but SAQ's upkeep loops then sleep out their
        timer (up to 15 s) before they notice the stop, and the process is ending either way."""
        saq = asyncio.create_task(self.worker.stop(), name="saq-stop")
        if not (await asyncio.wait({saq}, timeout=STOP_WAIT_S))[0]:
            log.warning("worker.saq_stop_slow", waited_s=STOP_WAIT_S)
        elif not saq.cancelled() and saq.exception() is not None:
            log.warning("worker.saq_stop_failed", error=repr(saq.exception()))
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, running = await asyncio.wait(self._tasks, timeout=STOP_WAIT_S)
            if running:
                log.warning("worker.tasks_still_running", tasks=sorted(t.get_name() for t in running))
        self._tasks = []
        log.info("worker.stopped")
