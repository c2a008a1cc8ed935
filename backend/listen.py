"""One connection per process that LISTENs for PostgreSQL notifications and hands them on.

What a process remembers between requests (authenticated sessions, the visibility of feed
sessions' clips) stays true because triggers send ``NOTIFY`` when what it depends on changes;
PostgreSQL delivers a notification when the change commits, never for one rolled back. A
:class:`Subscriber` may trust what it remembers only while it is *listening*: between
``started()`` and ``stopped()``. Before the first and after a lost connection, notifications
may have been missed, so it must fall back to asking PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, Protocol

import asyncpg
import structlog

from backend.cancel import raise_if_cancelled

log = structlog.get_logger()


class Subscriber(Protocol):
    def started(self) -> None:
        """Notifications arrive from now on."""

    def stopped(self) -> None:
        """Notifications may be missed from now on."""

    def notified(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        """asyncpg's listener callback."""


async def listen(database_url: str, subscribers: Mapping[str, Subscriber], *, check_s: float = 1.0) -> None:
    """Hold a connection of its own that LISTENs on each channel of ``subscribers``; runs until
    cancelled.

    Checks every ``check_s`` seconds that the connection is alive (its loss also stops the
    subscribers at once, through asyncpg's termination callback); while it is not, they are
    stopped, and the connection is opened again.
    """

    def stop(_conn: Any = None) -> None:
        for subscriber in subscribers.values():
            subscriber.stopped()

    conn: asyncpg.Connection[Any] | None = None
    try:
        while True:
            raise_if_cancelled()
            if conn is None or conn.is_closed():
                stop()
                conn = None
                try:
                    conn = await asyncpg.connect(
                        database_url, server_settings={"application_name": "riffle-listen"}
                    )
                    conn.add_termination_listener(stop)
                    for channel, subscriber in subscribers.items():
                        await conn.add_listener(channel, subscriber.notified)
                    for subscriber in subscribers.values():
                        subscriber.started()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("listen.failed", error=repr(exc))
                    if conn is not None:
                        conn.terminate()
                    conn = None
            await asyncio.sleep(check_s)
    finally:
        stop()
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=1)
            if not conn.is_closed():
                conn.terminate()
