"""The outbox and the background worker: a job written in a transaction runs once it commits,
and never if the transaction rolls back; stopped, the worker's loops all stop."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from backend import db, outbox
from backend.worker import BackgroundWorker, create_queue, open_resources
from feed import tasks as feed_tasks
from tests.feed.conftest import until

ran: list[dict[str, Any]] = []
done = asyncio.Event()


async def record_it(ctx: dict[str, Any], *, label: str) -> None:
    """SAQ finds tasks by qualified name, so the test task lives at module level."""
    ran.append({"label": label, "has_resources": "riffle" in ctx})
    done.set()


async def test_outbox_jobs_run_after_commit_and_not_after_rollback(settings):
    ran.clear()
    done.clear()

    async with open_resources(settings) as res:
        worker = BackgroundWorker(res, tasks=[record_it], concurrency=2)
        await worker.start()
        try:
            async with res.pool.acquire() as conn:
                tx = conn.transaction()
                await tx.start()
                await outbox.add(conn, "record_it", {"label": "rolled back"})
                await tx.rollback()
                async with conn.transaction():
                    await outbox.add(conn, "record_it", {"label": "committed"})
            await asyncio.wait_for(done.wait(), timeout=10)
            await asyncio.sleep(0.3)
            assert ran == [{"label": "committed", "has_resources": True}]
            async with res.pool.acquire() as conn:
                assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        finally:
            await worker.stop()


async def test_relay_sweeps_rows_left_without_a_notification(settings, conn):
    """A row whose notification was missed (say the worker was down) is picked up by the sweep."""
    assert settings.redis_url
    await conn.execute("INSERT INTO outbox (task, payload) VALUES ('record_it', '{\"label\": \"late\"}')")
    assert settings.database_url
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
    queue = create_queue(settings, settings.redis_url)
    await queue.connect()
    try:
        assert await outbox.relay(pool, queue) == 1
        assert await outbox.relay(pool, queue) == 0
        info = await queue.info(jobs=True)
        assert [j["function"] for j in info["jobs"]] == ["record_it"]
    finally:
        await queue.disconnect()
        await pool.close()


class SwallowsCancellation:
    """Calls that hold their caller until it is cancelled, then finish and return normally, as
    redis-py's commands do on Python 3.11 when the cancellation lands while the command is
    written (asyncio.wait_for, CPython gh-86296). Later calls of a task already cancelled go
    straight through."""

    def __init__(self) -> None:
        self.held: set[asyncio.Task[Any]] = set()
        self.swallowed: set[asyncio.Task[Any]] = set()

    async def hold(self, call: Awaitable[Any]) -> Any:
        task = asyncio.current_task()
        assert task is not None
        if not task.cancelling():
            self.held.add(task)
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.swallowed.add(task)
        return await call

    def wrap(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def held(*args: Any, **kwargs: Any) -> Any:
            result = call(*args, **kwargs)
            return self.hold(result) if inspect.isawaitable(result) else result

        return held


class RedisSwallowingCancellation:
    def __init__(self, redis: Any, swallow: SwallowsCancellation) -> None:
        self._redis, self._swallow = redis, swallow

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._redis, name)
        return self._swallow.wrap(attr) if callable(attr) else attr


async def test_stopped_the_worker_s_loops_all_stop_even_when_a_call_swallowed_the_cancellation(
    settings, monkeypatch
):
    """Every loop (event consumers, ranking-ahead lanes, the cohort builder, the outbox relay) is
    stopped while in a call that swallows the cancellation; stop() still returns, and none of
    them runs on."""
    swallow = SwallowsCancellation()
    monkeypatch.setattr(outbox, "relay", swallow.wrap(outbox.relay))
    async with open_resources(settings) as real:
        res = dataclasses.replace(real, redis=RedisSwallowingCancellation(real.redis, swallow))
        worker = BackgroundWorker(res, tasks=[record_it], loops=feed_tasks.LOOPS)
        await worker.start()
        # and the taste cohorts' builder, and the relay
        expected = settings.events_consumers + settings.feed_prerank_lanes + 1 + 1
        try:
            assert await until(lambda: len(swallow.held) == expected), swallow.held
        finally:
            await worker.stop()
        try:
            assert swallow.swallowed == swallow.held
            assert all(task.done() for task in swallow.held)
        finally:  # a failure must not leave loops running on into other tests
            for _ in range(5):
                if running := {task for task in swallow.held if not task.done()}:
                    for task in running:
                        task.cancel()
                    await asyncio.wait(running, timeout=1)
