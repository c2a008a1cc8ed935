"""``/v1/stream``: a WebSocket carrying the signed-in user's notifications and generation
progress, fed by Redis pub/sub so an event raised in any process reaches a socket held by any
other.

Protocol (JSON text frames):

- Authenticate without putting the token in a URL: offer the subprotocols
  ``riffle.v1, bearer.<token>`` (the server answers ``riffle.v1``), or send
  ``{"type": "auth", "token": "rf_…", "since": 123}`` as the first message within 10 s.
- ``since`` (a notification id; also accepted as a query parameter) replays the notifications
  after it, oldest first, at most ``RIFFLE_STREAM_BACKLOG``, before live events; a client may
  see a notification both replayed and live and should de-duplicate by its id.
- The server sends ``{"type": "ready", "user_id": …}``, then events
  (``notification``, ``generation.progress``, ``generation.take.succeeded``, …), and
  ``{"type": "ping"}`` every ``RIFFLE_STREAM_PING_S``; at each ping the session is checked.
- Close codes: 4401 no valid token (or the session was revoked), 4408 no auth message in
  time, 1000 normal.

Each process holds one Redis pub/sub connection for all its sockets (:mod:`.hub`); a
socket's queue is bounded (``RIFFLE_STREAM_BACKLOG``) and drops its oldest events when the
client is slow.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from backend.accounts import service as accounts
from backend.auth import Viewer
from backend.cancel import raise_if_cancelled
from backend.notifications import service as notifications
from backend.runtime import runtime

log = structlog.get_logger()

SUBPROTOCOL = "riffle.v1"
AUTH_TIMEOUT_S = 10.0
CLOSE_UNAUTHORISED, CLOSE_AUTH_TIMEOUT = 4401, 4408


async def _authenticate(socket: WebSocket[Any, Any, Any]) -> tuple[Viewer, int | None, str] | None:
    """Accept the socket and find who is on it; None (after closing it) when nobody valid is."""
    rt = runtime(socket.app.state)
    offered = list(socket.scope.get("subprotocols") or [])
    token = next((p.removeprefix("bearer.") for p in offered if p.startswith("bearer.")), None)
    since = socket.query_params.get("since")
    await socket.accept(subprotocols=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    if token is None:
        try:
            first = msgspec.json.decode(await asyncio.wait_for(socket.receive_text(), timeout=AUTH_TIMEOUT_S))
        except TimeoutError:
            await socket.close(code=CLOSE_AUTH_TIMEOUT, reason="send an auth message first")
            return None
        except (msgspec.DecodeError, WebSocketDisconnect):
            first = {}
        if isinstance(first, dict) and first.get("type") == "auth":
            token = str(first.get("token") or "")
            since = first.get("since", since)
    viewer = await _check(rt, token)
    if viewer is None or token is None:
        await socket.close(code=CLOSE_UNAUTHORISED, reason="a valid token is required")
        return None
    try:
        since_id = int(since) if since is not None else None
    except (TypeError, ValueError):
        since_id = None
    return viewer, since_id, token


async def _check(rt: Any, token: str | None) -> Viewer | None:
    if not token:
        return None
    async with rt.pool.acquire() as conn:
        viewer: Viewer | None = await accounts.authenticate(
            conn, token, ttl_days=rt.settings.session_ttl_days
        )
    return viewer


@websocket("/v1/stream")
async def stream(socket: WebSocket[Any, Any, Any]) -> None:
    """Notifications and generation progress for the signed-in user (see the module doc)."""
    who = await _authenticate(socket)
    if who is None:
        return
    viewer, since, token = who
    rt = runtime(socket.app.state)
    async with rt.hub.subscribe(viewer.user_id) as events:
        if since is not None:
            async with rt.pool.acquire() as conn:
                missed = await notifications.page(
                    conn,
                    user_id=viewer.user_id,
                    before_id=None,
                    limit=rt.settings.stream_backlog,
                    after_id=since,
                )
            for item in reversed(missed):
                await socket.send_text(
                    msgspec.json.encode({"type": "notification", "notification": item}).decode()
                )
        await socket.send_text(msgspec.json.encode({"type": "ready", "user_id": viewer.user_id}).decode())

        async def forward() -> None:
            while True:
                await socket.send_text((await events.get()).decode())

        async def keep_alive() -> None:
            while True:
                raise_if_cancelled()
                await asyncio.sleep(rt.settings.stream_ping_s)
                if await _check(rt, token) is None:
                    await socket.close(code=CLOSE_UNAUTHORISED, reason="the session was revoked")
                    return
                await socket.send_text('{"type":"ping"}')

        async def listen() -> None:
            while True:
                await socket.receive_text()  # clients may send pongs; a disconnect ends the loop

        tasks = [asyncio.create_task(job()) for job in (forward, keep_alive, listen)]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
    with contextlib.suppress(Exception):
        await socket.close()
