"""Faults, with real processes: each test breaks one thing while clients keep working, then
checks that nothing accepted was lost or doubled and that the service came back by itself.

The API runs as `riffle serve` (and `riffle worker` where the worker is the victim); clients
are plain HTTP and WebSocket clients that retry the way the app does (the same batch, the same
client event ids). Generations under a killed worker
are in tests/backend/generation/test_worker_crash.py; the consumer-group hand-over in unit form in
tests/feed/test_events.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from litestar.testing import AsyncTestClient
from redis.exceptions import ResponseError

from backend.app import create_app
from backend.embedded import EmbeddedRedis, free_port
from backend.redis_pool import create_redis
from feed import ingest
from tests.backend.generation.providers.fakes import FakeServer, Script, replicate_app
from tests.backend.generation.test_generations import key, wait_for
from tests.conftest import make_settings
from tests.factories import User, UserFactory, make_draft
from tests.live import Process, kill, next_event, serve, sign_up, stop, wait_ready, worker

# --- a live API and clients ----------------------------------------------------------------


class Api:
    def __init__(self, proc: Process, port: int) -> None:
        self.proc = proc
        self.port = port
        self.base = f"http://127.0.0.1:{port}"


@pytest.fixture
async def start_api(database_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[Process] = []

    async def start(redis_url: str, *args: str, port: int | None = None, **env: str) -> Api:
        port = port or free_port()
        proc = serve(database_url, redis_url, tmp_path, port, *args, **env)
        started.append(proc)
        await wait_ready(f"http://127.0.0.1:{port}", within_s=30)
        return Api(proc, port)

    yield start
    for proc in started:
        if proc.poll() is None:
            stop(proc)


async def published_clip(conn: asyncpg.Connection, base: str, handle: str) -> tuple[User, int]:
    user_id, token = await sign_up(base, handle)
    author = User(id=user_id, handle=handle, token=token)
    take_id, clip_id = await make_draft(conn, author)
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/v1/clips", json={"take_id": take_id}, headers=author.headers)
        assert r.status_code == 201, r.text
    return author, clip_id


def batch(user: str, n: int, clip_id: int, size: int = 100) -> dict[str, Any]:
    at = datetime.now(UTC).isoformat()
    return {
        "events": [
            {"client_event_id": f"{user}-{n}-{i}", "type": "impression", "clip_id": clip_id, "at": at}
            for i in range(size)
        ]
    }


class Poster:
    """Clients posting event batches; a batch answered 429 or 503, or not answered, is sent
    again, as the app does. Records which client event ids were accepted (202)."""

    def __init__(self, base: str, tokens: list[str], clip_id: int) -> None:
        self.base = base
        self.tokens = tokens
        self.clip_id = clip_id
        self.accepted: set[str] = set()
        self.statuses: dict[int, int] = {}
        self.sent = 0
        self.stopping = asyncio.Event()

    async def _client(self, index: int, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=self.base, headers=headers, timeout=10) as http:
            n = 0
            while not self.stopping.is_set():
                body = batch(f"u{index}", n, self.clip_id)
                while True:
                    try:
                        r = await http.post("/v1/events", json=body)
                    except httpx.TransportError:
                        await asyncio.sleep(0.2)
                        continue
                    self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
                    if r.status_code == 202:
                        self.accepted.update(e["client_event_id"] for e in body["events"])
                        break
                    # Never a 500, never a refusal of good input; the app waits and resends.
                    assert r.status_code in (429, 503), r.text
                    await asyncio.sleep(float(r.headers.get("retry-after", "0.2")))
                self.sent += 1
                if n % 3 == 0:  # the app resends a batch whose answer it missed: a duplicate
                    with contextlib.suppress(httpx.TransportError):
                        r = await http.post("/v1/events", json=body)
                        assert r.status_code in (202, 429, 503), r.text
                n += 1
                await asyncio.sleep(0.4)  # the per-user limit is 120 batches a minute

    async def run_until(self, condition: Callable[[], Any]) -> None:
        clients = [asyncio.create_task(self._client(i, t)) for i, t in enumerate(self.tokens)]
        try:
            await condition()
        finally:
            self.stopping.set()
            await asyncio.gather(*clients)


async def stored(conn: asyncpg.Connection, clip_id: int) -> tuple[int, int, int]:
    row = await conn.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT (user_id, client_event_id)) AS distinct_ids, "
        "(SELECT impressions FROM clip_stats WHERE clip_id = $1) AS impressions "
        "FROM events WHERE clip_id = $1",
        clip_id,
    )
    return row["n"], row["distinct_ids"], row["impressions"] or 0


async def until_stored(conn: asyncpg.Connection, clip_id: int, want: int, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if (await stored(conn, clip_id))[0] >= want:
            return
        await asyncio.sleep(0.2)


async def until_pending(redis_url: str, within_s: float) -> int:
    """How many stream entries a consumer has read and not acknowledged, once there are some."""
    redis = create_redis(redis_url)
    try:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            with contextlib.suppress(ResponseError):  # no group yet
                summary: Any = await redis.xpending(ingest.keys("riffle:")("events"), ingest.GROUP)
                if summary["pending"]:
                    return int(summary["pending"])
            await asyncio.sleep(0.002)
        return 0
    finally:
        await redis.aclose()


# --- the faults ------------------------------------------------------------------------------


async def test_killing_the_worker_mid_stream_loses_and_doubles_no_event(
    start_api, conn, database_url, redis_url, tmp_path
):
    """Broke: SIGKILL of the only worker while 8 clients post event batches (the dead worker
    holds read, unacknowledged stream entries). Checked: a new worker claims them; every
    accepted event is stored exactly once and counted once in the clip's statistics."""
    api = await start_api(redis_url, "--no-worker")
    _, clip_id = await published_clip(conn, api.base, "author")
    tokens = [(await sign_up(api.base, f"viewer{i}"))[1] for i in range(8)]
    poster = Poster(api.base, tokens, clip_id)
    first = worker(database_url, redis_url, tmp_path, RIFFLE_EVENTS_CLAIM_IDLE_MS="1000")
    second: Process | None = None
    held: list[int] = []  # entries the killed worker had read and not acknowledged

    async def fault() -> None:
        nonlocal second
        await until_stored(conn, clip_id, 2000, within_s=30)
        # Kill it between reading a batch and acknowledging it, when we can catch it there.
        held.append(await until_pending(redis_url, within_s=10))
        kill(first)
        await asyncio.sleep(1.0)  # batches keep arriving with nobody to store them
        second = worker(database_url, redis_url, tmp_path, RIFFLE_EVENTS_CLAIM_IDLE_MS="1000")
        await asyncio.sleep(1.5)

    try:
        await poster.run_until(fault)
        await until_stored(conn, clip_id, len(poster.accepted), within_s=30)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                stop(proc)
    assert poster.sent > 30
    assert held[0] > 0, "the worker was never caught holding a batch"
    assert await stored(conn, clip_id) == (len(poster.accepted),) * 3


async def test_restarting_redis_while_events_are_posted_loses_and_doubles_nothing(start_api, conn, tmp_path):
    """Broke: Redis stopped for two seconds and started again (same port, its append-only file
    kept) while 8 clients post, API and worker in one `riffle serve`. Checked: while it is down
    every batch is either stored by the API straight into PostgreSQL (202) or refused with 503
    and resent; afterwards the worker reconnects by itself, and every accepted event is stored
    once, including the ones that sat in the stream across the restart."""
    redis = EmbeddedRedis(tmp_path / "redis", durable=True)
    redis_url = redis.start()
    try:
        api = await start_api(redis_url)
        _, clip_id = await published_clip(conn, api.base, "author")
        tokens = [(await sign_up(api.base, f"viewer{i}"))[1] for i in range(8)]
        poster = Poster(api.base, tokens, clip_id)

        async def fault() -> None:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(redis.stop)
            await asyncio.sleep(2.0)
            await asyncio.to_thread(redis.start)
            await asyncio.sleep(2.0)

        await poster.run_until(fault)
        await until_stored(conn, clip_id, len(poster.accepted), within_s=30)
        assert poster.statuses.get(202, 0) > 20
        assert await stored(conn, clip_id) == (len(poster.accepted),) * 3
        # Recovered: a new batch goes through Redis and the worker again.
        async with httpx.AsyncClient(base_url=api.base) as http:
            r = await http.post(
                "/v1/events",
                json=batch("after", 0, clip_id, 10),
                headers={"Authorization": f"Bearer {tokens[0]}"},
            )
            assert r.status_code == 202
        await until_stored(conn, clip_id, len(poster.accepted) + 10, within_s=15)
        assert (await stored(conn, clip_id))[0] == len(poster.accepted) + 10
    finally:
        redis.stop()


async def test_dropped_postgresql_connections_under_load_lose_no_like_or_event(
    start_api, conn, redis_url, database_url
):
    """Broke: every PostgreSQL connection of the API and worker terminated, five times over
    three seconds, while 8 users like and unlike a clip and post events. Checked: no request
    is answered 500; every like the API confirmed is in the likes table and the clip's count
    agrees with it; every accepted event is stored once; then requests succeed again."""
    api = await start_api(redis_url)
    _, clip_id = await published_clip(conn, api.base, "author")
    users = [await sign_up(api.base, f"fan{i}") for i in range(8)]
    poster = Poster(api.base, [t for _, t in users[:3]], clip_id)
    liked: dict[int, bool] = {}  # the state each fan was last told
    statuses: dict[int, int] = {}
    stopping = asyncio.Event()

    async def fan(user_id: int, token: str) -> None:
        async with httpx.AsyncClient(
            base_url=api.base, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as http:
            want = True
            while not stopping.is_set():
                r = await (http.put if want else http.delete)(f"/v1/clips/{clip_id}/like")
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                assert r.status_code in (200, 204, 503), r.text
                if r.status_code != 503:
                    liked[user_id] = want
                    want = not want
                await asyncio.sleep(0.02)

    async def fault() -> None:
        fans = [asyncio.create_task(fan(u, t)) for u, t in users]
        try:
            killer = await asyncpg.connect(database_url)
            try:
                for _ in range(5):
                    await asyncio.sleep(0.6)
                    await killer.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> $1",
                        conn.get_server_pid(),  # the test's own connection
                    )
            finally:
                await killer.close()
            await asyncio.sleep(1.0)
        finally:
            stopping.set()
            await asyncio.gather(*fans)

    await poster.run_until(fault)
    await until_stored(conn, clip_id, len(poster.accepted), within_s=30)
    assert statuses.get(200, 0) > 20
    rows = {r["user_id"] for r in await conn.fetch("SELECT user_id FROM likes WHERE clip_id = $1", clip_id)}
    assert rows == {u for u, state in liked.items() if state}
    assert await conn.fetchval("SELECT like_count FROM clips WHERE id = $1", clip_id) == len(rows)
    assert await stored(conn, clip_id) == (len(poster.accepted),) * 3
    async with httpx.AsyncClient(base_url=api.base) as http:
        assert (await http.get("/readyz")).status_code == 200
        r = await http.put(f"/v1/clips/{clip_id}/like", headers={"Authorization": f"Bearer {users[0][1]}"})
        assert r.status_code == 200


async def test_restarting_an_api_process_with_open_websockets_loses_no_notification(
    start_api, conn, redis_url
):
    """Broke: the API process holding Alice's WebSocket killed (SIGKILL) and started again on
    the same port, while fans like her clips through another API process. Checked: her client
    reconnects with ``since`` = the last notification it saw and receives every notification
    made meanwhile exactly once, in order, then live ones."""
    holding = await start_api(redis_url)
    other = await start_api(redis_url)
    alice, _ = await published_clip(conn, other.base, "alice")
    clips = [(await published_clip_for(conn, other.base, alice)) for _ in range(6)]
    fans = [(await sign_up(other.base, f"fan{i}"))[1] for i in range(2)]
    ws = f"ws://127.0.0.1:{holding.port}/v1/stream"

    async def like(clip_id: int, token: str) -> None:
        async with httpx.AsyncClient(base_url=other.base) as http:
            r = await http.put(f"/v1/clips/{clip_id}/like", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text

    seen: list[int] = []
    async with websockets.connect(ws, subprotocols=["riffle.v1", f"bearer.{alice.token}"]) as socket:
        await next_event(socket, "ready", within_s=10)
        await like(clips[0], fans[0])
        seen.append((await next_event(socket, "notification", within_s=10))["notification"]["id"])
        kill(holding.proc)
        with pytest.raises(websockets.ConnectionClosed):
            await read_until_closed(socket)
    for clip_id in clips[1:4]:  # while Alice's process is down
        await like(clip_id, fans[1])
    await start_api(redis_url, port=holding.port)
    async with websockets.connect(
        f"{ws}?since={seen[-1]}", subprotocols=["riffle.v1", f"bearer.{alice.token}"]
    ) as socket:
        missed = [(await next_event(socket, "notification", within_s=10))["notification"] for _ in range(3)]
        await next_event(socket, "ready", within_s=10)
        await like(clips[4], fans[0])
        live = (await next_event(socket, "notification", within_s=10))["notification"]
    ids = [n["id"] for n in missed] + [live["id"]]
    assert ids == sorted(set(ids))
    assert ids[0] > seen[0]
    assert [n["clip_id"] for n in missed] == clips[1:4]
    assert live["clip_id"] == clips[4]


async def read_until_closed(socket: Any) -> None:
    while True:
        await asyncio.wait_for(socket.recv(), timeout=5)


async def published_clip_for(conn: asyncpg.Connection, base: str, author: User) -> int:
    take_id, clip_id = await make_draft(conn, author)
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/v1/clips", json={"take_id": take_id}, headers=author.headers)
        assert r.status_code == 201, r.text
    return clip_id


async def test_a_provider_that_times_out_then_recovers_gets_one_take_charged_once(
    database_url, redis_url, tmp_path, conn
):
    """Broke: the video gateway (a real HTTP server speaking Replicate's shape) stops answering
    status polls in time, after the prediction was created. Checked: the take is retried with
    backoff against the same prediction (never submitted twice, so never paid twice), and once
    the gateway answers again it is stored once, as one draft, charged once."""
    script = Script(polls_before_done=1, scenario="timeout")
    gateway = FakeServer(replicate_app(script)).start()
    settings = make_settings(
        database_url,
        redis_url,
        tmp_path,
        run_worker=True,
        replicate_api_token="r8_test",
        replicate_base_url=gateway.url,
        provider_timeout_s=0.5,
    )
    try:
        async with AsyncTestClient(app=create_app(settings)) as client:
            alice = await UserFactory(conn, client).make("alice")
            body = {"prompt": "a lighthouse in a storm", "model": "kling", "seconds": 5, "size": "720x1280"}
            r = await client.post("/v1/generations", json=body | {"takes": 1}, headers=alice.headers | key())
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            deadline = time.monotonic() + 30
            while script.polls < 2:  # two status calls that timed out
                assert time.monotonic() < deadline, "the gateway was never polled"
                await asyncio.sleep(0.1)
            script.scenario = "ok"  # the gateway recovers
            done = await wait_for(client, job_id, alice.headers, within_s=60)
    finally:
        gateway.stop()
    take = done["takes"][0]
    assert (done["status"], take["status"]) == ("succeeded", "succeeded")
    assert [kind for kind, _, _ in script.requests] == ["submit"]  # one prediction, never two
    assert await conn.fetchval("SELECT count(*) FROM clips WHERE job_id = $1", job_id) == 1
    assert await conn.fetchval("SELECT count(*) FROM media WHERE owner_id = $1", alice.id) == 2
    assert take["cost_minor"] == 5 * 28


async def test_dropped_postgresql_connections_while_orders_arrive_book_each_order_once(
    start_api, conn, redis_url, database_url
):
    """Broke: every PostgreSQL connection terminated, four times over two seconds, while a shop
    delivers 30 attributed orders (each delivery retried until it is not a 503, with the same
    Standard Webhooks id, as a shop's webhook sender does). Checked: no 500; every order is in
    the orders table once and booked in the ledger once; every ledger transaction sums to zero."""
    from standardwebhooks.webhooks import Webhook

    api = await start_api(redis_url)
    author, clip_id = await published_clip(conn, api.base, "creator")
    _, seller = await sign_up(api.base, "seller")
    buyer_id, buyer = await sign_up(api.base, "buyer")
    async with httpx.AsyncClient(base_url=api.base, timeout=10) as http:
        auth = {"Authorization": f"Bearer {seller}"}
        shop = (
            await http.post(
                "/v1/shops",
                json={"platform": "own_site", "external_id": "s1", "url": "https://shop.example.com",
                      "name": "Shop", "allow_affiliates": True},
                headers=auth,
            )
        ).json()  # fmt: skip
        product = (
            await http.post(
                f"/v1/shops/{shop['id']}/products",
                json={
                    "title": "Mug",
                    "url": "https://shop.example.com/mug",
                    "price_minor": 900,
                    "currency": "USD",
                },
                headers=auth,
            )
        ).json()
        r = await http.post(
            f"/v1/clips/{clip_id}/product-tags", json={"product_id": product["id"]}, headers=author.headers
        )
        tag_id = r.json()["product_tags"][0]["id"]
        r = await http.post(
            f"/v1/clips/{clip_id}/product-tags/{tag_id}/tap", headers={"Authorization": f"Bearer {buyer}"}
        )
        assert r.status_code == 200, r.text
    statuses: dict[int, int] = {}

    async def deliver(n: int) -> None:
        body = (
            f'{{"type": "order.placed", "order_id": "F-{n}", "product_id": {product["id"]}, '
            f'"amount_minor": 900, "currency": "USD", "buyer_id": {buyer_id}}}'
        )
        msg_id = f"msg_{n}"
        async with httpx.AsyncClient(base_url=api.base, timeout=10) as http:
            for _ in range(40):
                at = datetime.now(UTC)
                headers = {
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(int(at.timestamp())),
                    "webhook-signature": Webhook(shop["webhook_secret"]).sign(msg_id, at, body),
                    "content-type": "application/json",
                }
                try:
                    r = await http.post(f"/v1/commerce/webhooks/{shop['id']}", content=body, headers=headers)
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
                    continue
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                assert r.status_code in (200, 409, 503), r.text  # 409: an earlier try was booked
                if r.status_code != 503:
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(f"order F-{n} was never accepted")

    async def killer() -> None:
        connection = await asyncpg.connect(database_url)
        try:
            for _ in range(4):
                await asyncio.sleep(0.5)
                await connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> $1",
                    conn.get_server_pid(),
                )
        finally:
            await connection.close()

    async def orders() -> None:
        for start in range(0, 30, 5):
            await asyncio.gather(*[deliver(n) for n in range(start, start + 5)])
            await asyncio.sleep(0.2)

    await asyncio.gather(orders(), killer())
    assert 500 not in statuses
    assert await conn.fetchval("SELECT count(*) FROM orders") == 30
    assert await conn.fetchval("SELECT count(DISTINCT external_order_id) FROM orders") == 30
    assert await conn.fetchval("SELECT count(*) FROM ledger_transactions WHERE kind = 'order'") == 30
    unbalanced = await conn.fetchval(
        "SELECT count(*) FROM (SELECT transaction_id FROM ledger_entries GROUP BY transaction_id, currency "
        "HAVING sum(amount_minor) <> 0) x"
    )
    assert unbalanced == 0
    earned = await conn.fetchval(
        "SELECT sum(e.amount_minor) FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id "
        "WHERE a.kind = 'creator_earnings' AND a.owner_id = $1",
        author.id,
    )
    assert earned == 30 * 90  # 10% of 9.00 each, once
