"""``/v1/stream`` over real sockets (uvicorn, the ``websockets`` client), real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from backend.embedded import free_port
from backend.realtime.service import publish
from backend.redis_pool import create_redis
from tests.conftest import make_settings
from tests.factories import make_draft
from tests.live import Server, next_event, serve, sign_up, stop, wait_ready


@pytest.fixture
def server(database_url, redis_url, tmp_path) -> Iterator[Server]:
    with Server(make_settings(database_url, redis_url, tmp_path, stream_ping_s=1)) as running:
        yield running


async def test_token_as_subprotocol_or_first_message(server):
    user_id, token = await sign_up(server.http, "alice")
    async with websockets.connect(server.ws, subprotocols=["riffle.v1", f"bearer.{token}"]) as socket:
        assert socket.subprotocol == "riffle.v1"
        assert (await next_event(socket, "ready"))["user_id"] == user_id
    async with websockets.connect(server.ws) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))
        assert (await next_event(socket, "ready"))["user_id"] == user_id


@pytest.mark.parametrize("how", ["no-token", "bad-subprotocol", "bad-message"])
async def test_sockets_without_a_valid_token_are_closed(server, how):
    protocols = ["riffle.v1", "bearer.rf_forged"] if how == "bad-subprotocol" else None
    async with websockets.connect(server.ws, subprotocols=protocols) as socket:
        if how == "bad-message":
            await socket.send(json.dumps({"type": "auth", "token": "rf_forged"}))
        elif how == "no-token":
            await socket.send("hello")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), timeout=5)
    assert closed.value.rcvd.code == 4401


async def test_events_reach_their_user_only(server, redis_url):
    alice_id, alice = await sign_up(server.http, "alice")
    _bob_id, bob = await sign_up(server.http, "bob")
    redis = create_redis(redis_url)
    try:
        async with (
            websockets.connect(server.ws, subprotocols=["riffle.v1", f"bearer.{alice}"]) as a,
            websockets.connect(server.ws, subprotocols=["riffle.v1", f"bearer.{bob}"]) as b,
        ):
            await next_event(a, "ready")
            await next_event(b, "ready")
            await publish(redis, "riffle:", alice_id, {"type": "generation.progress", "progress": 40})
            assert (await next_event(a, "generation.progress"))["progress"] == 40
            with pytest.raises(TimeoutError):
                await next_event(b, "generation.progress", within_s=0.5)
    finally:
        await redis.aclose()


async def test_since_replays_missed_notifications_then_goes_live(server, conn, redis_url):
    alice_id, alice = await sign_up(server.http, "alice")
    bob_id, _ = await sign_up(server.http, "bob")
    ids = [
        await conn.fetchval(
            "INSERT INTO notifications (recipient_id, actor_id, kind) VALUES ($1, $2, 'follow') RETURNING id",
            alice_id,
            bob_id,
        )
        for _ in range(3)
    ]
    redis = create_redis(redis_url)
    try:
        async with websockets.connect(f"{server.ws}?since={ids[0]}") as socket:
            await socket.send(json.dumps({"type": "auth", "token": alice}))
            replayed = [(await next_event(socket, "notification"))["notification"]["id"] for _ in range(2)]
            assert replayed == ids[1:]
            await next_event(socket, "ready")
            await publish(redis, "riffle:", alice_id, {"type": "notification", "notification": {"id": 99}})
            assert (await next_event(socket, "notification"))["notification"]["id"] == 99
    finally:
        await redis.aclose()


async def test_a_revoked_session_closes_its_socket(server):
    _, token = await sign_up(server.http, "alice")
    async with websockets.connect(server.ws, subprotocols=["riffle.v1", f"bearer.{token}"]) as socket:
        await next_event(socket, "ready")
        async with httpx.AsyncClient(base_url=server.http) as http:
            r = await http.delete("/v1/sessions/current", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            await drain(socket)
    assert closed.value.rcvd.code == 4401


async def drain(socket) -> None:
    """Read until the server closes the socket (pings keep arriving until then)."""
    while True:
        await asyncio.wait_for(socket.recv(), timeout=5)


async def test_an_event_raised_in_one_process_reaches_a_socket_on_another(
    database_url, redis_url, tmp_path, conn
):
    ports = [free_port(), free_port()]
    procs = [serve(database_url, redis_url, tmp_path, port) for port in ports]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base in bases:
            await wait_ready(base)
        alice_id, alice = await sign_up(bases[0], "alice")
        _, bob = await sign_up(bases[0], "bob")

        class Author:
            id = alice_id

        take_id, clip_id = await make_draft(conn, Author())  # type: ignore[arg-type]
        async with httpx.AsyncClient() as http:
            published = await http.post(
                f"{bases[0]}/v1/clips",
                json={"take_id": take_id},
                headers={"Authorization": f"Bearer {alice}"},
            )
            assert published.status_code == 201, published.text
        # Alice listens on process 2; Bob likes her clip through process 1.
        async with websockets.connect(
            f"ws://127.0.0.1:{ports[1]}/v1/stream", subprotocols=["riffle.v1", f"bearer.{alice}"]
        ) as socket:
            await next_event(socket, "ready")
            async with httpx.AsyncClient() as http:
                liked = await http.put(
                    f"{bases[0]}/v1/clips/{clip_id}/like", headers={"Authorization": f"Bearer {bob}"}
                )
                assert liked.status_code == 200
            event = await next_event(socket, "notification", within_s=15)
            assert (event["notification"]["kind"], event["notification"]["clip_id"]) == ("like", clip_id)
            assert event["notification"]["actor"]["handle"] == "bob"
    finally:
        for proc in procs:
            stop(proc)


async def test_a_slow_socket_loses_its_oldest_events_not_the_process_memory(redis_url):
    from backend.realtime.hub import Hub

    redis = create_redis(redis_url)
    hub = Hub(redis, "riffle:", backlog=2)
    await hub.start()
    try:
        await asyncio.wait_for(hub.listening.wait(), timeout=5)
        async with hub.subscribe(7) as queue:
            for n in range(5):
                await publish(redis, "riffle:", 7, {"type": "n", "n": n})
            for _ in range(50):
                if hub.dropped == 3:
                    break
                await asyncio.sleep(0.05)
            assert [json.loads(queue.get_nowait())["n"] for _ in range(2)] == [3, 4]
            assert hub.dropped == 3
    finally:
        await hub.stop()
        await redis.aclose()
