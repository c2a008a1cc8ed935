"""The outbox and the background worker: a job written in a transaction runs once it commits,
and never if the transaction rolls back."""

from __future__ import annotations

import asyncio
from typing import Any

from backend import db, outbox
from backend.worker import BackgroundWorker, create_queue, open_resources

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
