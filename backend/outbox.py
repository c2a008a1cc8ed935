"""The transactional outbox: jobs are written beside the rows they act on and queued after commit.

A service calls :func:`add` inside the request's transaction. ``pg_notify`` fires only when that
transaction commits, waking the relay in the worker, which moves rows to the Redis job queue and
deletes them in one transaction. A periodic sweep catches anything a missed notification left, so
a job is never lost; it may be delivered twice, which is why every task is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import asyncpg
import structlog
from saq import Queue

from backend.cancel import raise_if_cancelled
from backend.db import Conn, Pool

log = structlog.get_logger()

CHANNEL = "riffle_outbox"


async def add(conn: Conn, task: str, payload: dict[str, Any], *, job_key: str | None = None) -> None:
    """Queue ``task(**payload)`` to run once the caller's transaction commits."""
    await conn.execute(
        "INSERT INTO outbox (task, payload, job_key) VALUES ($1, $2, $3)", task, payload, job_key
    )
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)


# SAQ's own defaults (a 10 s timeout, one attempt) suit no task of ours; tasks that need more
# say so in their domain's job_options(), which the app passes here.
DEFAULT_JOB_OPTIONS: dict[str, Any] = {"timeout": 60, "retries": 3, "retry_backoff": True}


async def relay(
    pool: Pool, queue: Queue, *, batch: int = 200, job_options: Mapping[str, Mapping[str, Any]] | None = None
) -> int:
    """Move committed outbox rows to the job queue; returns how many moved."""
    moved = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """
                SELECT id, task, payload, job_key FROM outbox
                ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
                """,
                batch,
            )
            if not rows:
                return moved
            for row in rows:
                kwargs: dict[str, Any] = dict(row["payload"])
                options = {**DEFAULT_JOB_OPTIONS, **(job_options or {}).get(row["task"], {})}
                await queue.enqueue(
                    row["task"], key=row["job_key"] or f"outbox:{row['id']}", **options, **kwargs
                )
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
            moved += len(rows)


async def run_relay(
    pool: Pool,
    queue: Queue,
    *,
    sweep_s: float = 5.0,
    job_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Relay on every commit notification, and every ``sweep_s`` seconds regardless."""
    wake = asyncio.Event()
    listener: Any = None  # a pool connection held for LISTEN

    def _notified(*_: object) -> None:
        wake.set()

    try:
        while True:
            if listener is None or listener.is_closed():
                try:
                    listener = await pool.acquire()
                    await listener.add_listener(CHANNEL, _notified)
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("outbox.listen.failed", error=repr(exc))
                    listener = None
            try:
                await relay(pool, queue, job_options=job_options)
            except Exception as exc:  # keep relaying after a passing fault; rows stay in the outbox
                log.warning("outbox.relay.failed", error=repr(exc))
            raise_if_cancelled()  # before waiting up to sweep_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=sweep_s)
            wake.clear()
    finally:
        if listener is not None and not listener.is_closed():
            with contextlib.suppress(Exception):
                await listener.remove_listener(CHANNEL, _notified)
            await pool.release(listener)
