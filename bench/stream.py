"""Realtime stream benchmark: many WebSockets on one API process, events fanned out through Redis.

Starts an embedded PostgreSQL and Redis and one `riffle serve` process, signs up USERS users,
opens SOCKETS sockets spread over them (the token as a subprotocol), then publishes ROUNDS
rounds of one event per user through `realtime.publish` (as the worker does) and measures,
per delivered event, the time from publish to the client receiving it. Reports delivery
latency p50/p99/max, deliveries lost, and the server's resident memory per socket.

Run: `.venv/bin/python bench/stream.py [--sockets 2000] [--users 200] [--rounds 10]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend import db  # noqa: E402
from backend.embedded import EmbeddedPostgres, EmbeddedRedis, free_port  # noqa: E402
from backend.realtime.service import publish  # noqa: E402
from backend.redis_pool import create_redis  # noqa: E402

PASSWORD = "bench-password-123"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(
    base: str, ws_url: str, redis_url: str, pid: int, sockets: int, users: int, rounds: int
) -> dict:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        accounts = []
        for i in range(users):
            body = {"handle": f"s{i:05d}", "email": f"s{i}@bench.example", "password": PASSWORD}
            user_id = (await http.post("/v1/accounts", json=body)).json()["id"]
            token = (
                await http.post("/v1/sessions", json={"login": f"s{i:05d}", "password": PASSWORD})
            ).json()["token"]
            accounts.append((user_id, token))
    rss_before = rss_kib(pid)
    received: list[float] = []
    ready = 0

    async def hold(index: int, stop: asyncio.Event) -> None:
        nonlocal ready
        _, token = accounts[index % users]
        async with websockets.connect(
            ws_url, subprotocols=["riffle.v1", f"bearer.{token}"], max_queue=None
        ) as ws:
            while json.loads(await ws.recv())["type"] != "ready":
                pass
            ready += 1
            reader = asyncio.create_task(read(ws))
            await stop.wait()
            reader.cancel()

    async def read(ws: websockets.ClientConnection) -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "bench":
                received.append(time.time() - message["sent"])

    stop = asyncio.Event()
    holders = []
    for i in range(sockets):
        holders.append(asyncio.create_task(hold(i, stop)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)  # do not stampede the accept queue
    while ready < sockets:  # noqa: ASYNC110 (polling a counter the socket tasks bump)
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    rss_after = rss_kib(pid)
    redis = create_redis(redis_url)
    listeners = 0
    for _ in range(rounds):
        for user_id, _ in accounts:
            listeners += await publish(redis, "riffle:", user_id, {"type": "bench", "sent": time.time()})
        await asyncio.sleep(0.5)
    expected = rounds * sockets
    deadline = time.monotonic() + 30
    while len(received) < expected and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*holders, return_exceptions=True)
    await redis.aclose()
    return {
        "sockets": sockets,
        "users": users,
        "events_published": rounds * users,
        "deliveries_expected": expected,
        "deliveries_received": len(received),
        "publishes_heard": listeners,
        "latency_p50_ms": round(1000 * percentile(received, 0.5), 1),
        "latency_p99_ms": round(1000 * percentile(received, 0.99), 1),
        "latency_max_ms": round(1000 * max(received), 1),
        "server_rss_before_mib": round(rss_before / 1024, 1),
        "server_rss_with_sockets_mib": round(rss_after / 1024, 1),
        "memory_per_socket_kib": round((rss_after - rss_before) / sockets, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.sockets + 1024)), hard))

    folder = Path(tempfile.mkdtemp(prefix="riffle-bench-stream-"))
    pg, redis = EmbeddedPostgres(folder / "pg"), EmbeddedRedis(folder / "redis", durable=False)
    database_url, redis_url = pg.start(), redis.start()
    asyncio.run(db.migrate_url(database_url))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RIFFLE_")},
        "RIFFLE_DATABASE_URL": database_url,
        "RIFFLE_REDIS_URL": redis_url,
        "RIFFLE_DATA_DIR": str(folder / "data"),
        "RIFFLE_LOG_LEVEL": "WARNING",
        "RIFFLE_ARGON2_MEMORY_KIB": "64",
        "RIFFLE_ARGON2_TIME_COST": "1",
        "RIFFLE_SIGNUP_LIMIT_PER_IP": "1000000",
        "RIFFLE_LOGIN_LIMIT_PER_IP": "1000000",
        "RIFFLE_DB_POOL_MAX": "40",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        result = asyncio.run(
            run(
                base,
                f"ws://127.0.0.1:{port}/v1/stream",
                redis_url,
                proc.pid,
                args.sockets,
                args.users,
                args.rounds,
            )
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        redis.stop()
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
