"""The per-process fan-out of realtime events to the sockets it holds.

One Redis connection per process is pattern-subscribed (``PSUBSCRIBE riffle:rt:user:*``) once
at start and read by one task; sockets register a bounded queue for their user. Nothing else
ever touches that connection, so subscribing sockets never race the reader.

Litestar's channels plugin was tried first: under many sockets connecting at once some of them
went quiet (``bench/stream.py`` showed it). The cause was redis-py's pub/sub object opening its
connection lazily on the first SUBSCRIBE, so concurrent first subscriptions raced; one
subscription made at start avoids the race by construction. Receiving every user's events in
every process costs bandwidth at very large scale; sharding users across processes by pattern
is the next step then, not a different design. A socket that reads too slowly loses its oldest
events (counted in ``dropped``) and catches up with ``since``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog

from backend.realtime.service import keys
from backend.redis_pool import Redis

log = structlog.get_logger()

POLL_S = 1.0  # how long one read waits for a message; bounds how long stop() takes


class Hub:
    def __init__(self, redis: Redis, prefix: str, *, backlog: int) -> None:
        self._redis = redis
        self._pattern = keys(prefix)("user", "*")
        self._prefix_len = len(self._pattern) - 1
        self._backlog = backlog
        self._queues: dict[int, set[asyncio.Queue[bytes]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.dropped = 0  # events dropped from slow sockets' queues (oldest first)
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="realtime-hub")

    async def stop(self) -> None:
        """Ask the reader to finish, and cancel it only if it does not within a few seconds.

        The reader polls with a timeout rather than blocking in ``listen()``: redis-py 8 can
        swallow the cancellation of a pub/sub read blocked without a timeout, which left
        shutdown waiting forever."""
        if self._task is None:
            return
        self._stopping.set()
        with contextlib.suppress(Exception):  # wakes the reader now; other hubs ignore it
            await self._redis.publish(self._pattern[:-1] + "wake", b"")
        done, _ = await asyncio.wait({self._task}, timeout=POLL_S * 3)
        if not done:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=POLL_S)

    @contextlib.asynccontextmanager
    async def subscribe(self, user_id: int) -> AsyncIterator[asyncio.Queue[bytes]]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=self._backlog)
        self._queues.setdefault(user_id, set()).add(queue)
        try:
            yield queue
        finally:
            held = self._queues.get(user_id)
            if held is not None:
                held.discard(queue)
                if not held:
                    del self._queues[user_id]

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        try:
            user_id = int(channel[self._prefix_len :])
        except ValueError:
            return
        for queue in self._queues.get(user_id, ()):
            if queue.full():  # a slow socket loses its oldest event, never the process's memory
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(data)

    async def _run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            pubsub: Any = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self._pattern)
                self.listening.set()
                backoff = 0.5
                while not self._stopping.is_set():
                    message = await pubsub.get_message(timeout=POLL_S)
                    if message is not None and message["type"] == "pmessage":
                        self._dispatch(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarted: resubscribe; clients catch up with `since`
                self.listening.clear()
                log.warning("realtime.hub.reconnecting", error=repr(exc), retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
