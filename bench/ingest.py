"""Event ingestion end to end: POST /v1/events → Redis stream → worker → PostgreSQL.

Runs on a copy of the seeded database (`riffle_bench_ingest`, made from `riffle_bench` as a
template and dropped afterwards, so the seed stays as seeded), with a durable Redis
(append-only file, fsync every second, as `riffle serve` starts it) and one `riffle serve`
process, which runs the API and the background worker whose stream consumer writes the
events into the partitioned `events` table (and moves clip statistics and user and clip
vectors as it does). Once the worker has built the taste cohorts it builds as it starts, a
separate client process sends batches of 100 events (impressions, watches, completions, skips,
likes, shares on random seeded clips) for USERS signed-in viewers over CONNECTIONS concurrent
connections until EVENTS events are sent.

While it runs, the events stored and the stream's backlog are sampled from the stream every
second (every 100 ms while it drains); the run's rows in PostgreSQL are counted at the end.
Reports: events accepted (202) and the API's acceptance rate; the stored rate over the whole
run (first request to last event stored) and over the steady part; the largest backlog; and
that nothing was lost or doubled: rows in PostgreSQL = events accepted.

Run: `.venv/bin/python bench/ingest.py [--events 300000] [--connections 32] [--users 256]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    DATABASE,
    Servers,
    bench_pids,
    cores_used,
    cpu_by_process,
    machine,
    ms,
    percentile,
    prewarm,
    serve,
    servers,
    with_database,
)
from feed_load import cohorts_built, sign_in
from redis import exceptions as redis_errors
from seed import ensure_seeded

from backend.redis_pool import create_redis
from feed.ingest import keys

COPY = "riffle_bench_ingest"
BATCH = 100
TYPES = ["impression"] * 4 + ["watch"] * 2 + ["complete"] * 2 + ["skip", "like", "share"]


async def copy_database(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{COPY}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{COPY}" TEMPLATE "{DATABASE}" STRATEGY FILE_COPY')
    finally:
        await conn.close()


async def drop_copy(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{COPY}" WITH (FORCE)')
    finally:
        await conn.close()


# --- the load generator (runs in its own process) -------------------------------------------


async def client(config: dict[str, Any]) -> dict[str, Any]:
    base, total, connections = config["base"], config["events"], config["connections"]
    tokens: list[str] = [token for _, token in config["viewers"]]
    low, high = config["clip_ids"]
    run = config["run"]
    rng = random.Random(run)
    sent = accepted = duplicates = errors = 0
    latencies: list[float] = []
    counter = iter(range(10**12))
    encode = msgspec.json.Encoder().encode
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def loop() -> None:
            nonlocal sent, accepted, duplicates, errors
            while sent < total:
                n = next(counter)
                sent += BATCH
                at = datetime.now(UTC).isoformat()
                events = []
                for i in range(BATCH):
                    kind = rng.choice(TYPES)
                    event: dict[str, Any] = {
                        "client_event_id": f"{run}-{n}-{i}",
                        "type": kind,
                        "clip_id": rng.randint(low, high),
                        "at": at,
                    }
                    if kind == "watch":
                        event["watch_ms"] = rng.randint(500, 9000)
                    events.append(event)
                headers = {
                    "Authorization": f"Bearer {tokens[n % len(tokens)]}",
                    "Content-Type": "application/json",
                }
                started = time.perf_counter()
                async with http.post(
                    f"{base}/v1/events", data=encode({"events": events}), headers=headers
                ) as r:
                    body = await r.read()
                latencies.append(time.perf_counter() - started)
                if r.status != 202:
                    errors += 1
                    if errors <= 3:
                        print(f"{r.status} {body[:300]!r}", file=sys.stderr)
                    continue
                answer = json.loads(body)
                accepted += answer["accepted"]
                duplicates += answer["duplicates"]

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(connections)))
        wall = time.perf_counter() - started
    return {
        "events_sent": sent,
        "events_accepted": accepted,
        "duplicates": duplicates,
        "request_errors": errors,
        "send_wall_s": round(wall, 2),
        "accept_rate_events_per_s": round(accepted / wall, 1),
        "request_p50_ms": ms(percentile(latencies, 0.5)),
        "request_p99_ms": ms(percentile(latencies, 0.99)),
    }


# --- the run --------------------------------------------------------------------------------


async def entries_added(redis: Any, stream: str) -> int:
    """Entries ever added to the stream (Redis 7), 0 before it exists."""
    try:
        info = await redis.xinfo_stream(stream)
    except redis_errors.ResponseError:  # no such key yet
        return 0
    return int(info["entries-added"])


async def progress(redis: Any, stream: str, added_before: int) -> tuple[int, int]:
    """(events stored so far, the stream's backlog)."""
    backlog = int(await redis.xlen(stream))
    return await entries_added(redis, stream) - added_before - backlog, backlog


async def measure(
    svc: Servers, base: str, server_pid: int, viewers: list[tuple[int, str]], events: int, connections: int
) -> dict:
    run = f"ld{int(time.time())}"
    users = [u for u, _ in viewers]
    conn = await asyncpg.connect(svc.database_url)
    redis = create_redis(svc.redis_url)
    stream = keys("riffle:")("events")
    # Progress comes from the stream: an entry is acknowledged and deleted only after the
    # transaction that stored it commits, so entries added less entries left is what is stored.
    # (Counting the run's rows in PostgreSQL every 100 ms took a sixth of PostgreSQL's time
    # from the consumer it measures; the rows are counted once, at the end.)
    added_before = await entries_added(redis, stream)
    try:
        clip_ids = tuple(await conn.fetchrow("SELECT min(id), max(id) FROM clips WHERE status = 'published'"))
        config = {
            "base": base,
            "events": events,
            "connections": connections,
            "viewers": viewers,
            "clip_ids": clip_ids,
            "run": run,
        }
        pids = bench_pids(svc) | {"server": server_pid}
        cpu_start = cpu_by_process(pids)
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--client",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(config).encode())
        proc.stdin.close()
        timeline: list[tuple[float, int, int]] = []  # (seconds, stored, backlog)
        wait = asyncio.ensure_future(proc.communicate())
        while not wait.done():
            await asyncio.sleep(1.0)
            timeline.append((time.perf_counter() - started, *await progress(redis, stream, added_before)))
        out, err = await wait
        if proc.returncode != 0:
            raise SystemExit(f"the load client failed:\n{err.decode()}")
        if err:
            print(err.decode(), file=sys.stderr)
        sent = json.loads(out)
        sent_at = time.perf_counter() - started
        cpu_sent = cpu_by_process(pids)
        # Drain: wait until every accepted event is in PostgreSQL (or nothing moves for 60 s).
        stored, last_move = 0, time.perf_counter()
        while True:
            now_stored, backlog = await progress(redis, stream, added_before)
            if now_stored != stored:
                stored, last_move = now_stored, time.perf_counter()
                timeline.append((time.perf_counter() - started, stored, backlog))
            if stored >= sent["events_accepted"] or time.perf_counter() - last_move > 60:
                break
            await asyncio.sleep(0.1)
        done_at = timeline[-1][0] if timeline else sent_at
        cpu_done = cpu_by_process(pids)
        stored, distinct = await conn.fetchrow(
            "SELECT count(*), count(DISTINCT (user_id, client_event_id)) FROM events "
            "WHERE user_id = ANY($1::bigint[]) AND client_event_id LIKE $2",
            users,
            f"{run}-%",
        )
    finally:
        await redis.aclose()
        await conn.close()
    # The steady part: between 20% and 80% of the events stored.
    accepted = sent["events_accepted"]
    lo = next((t for t in timeline if t[1] >= 0.2 * accepted), None)
    hi = next((t for t in timeline if t[1] >= 0.8 * accepted), None)
    steady = round((hi[1] - lo[1]) / (hi[0] - lo[0]), 1) if lo and hi and hi[0] > lo[0] else None
    return sent | {
        "events_stored": stored,
        "lost": accepted - stored,
        "doubled": stored - distinct,
        "first_request_to_all_stored_s": round(done_at, 2),
        "end_to_end_events_per_s": round(stored / done_at, 1) if done_at else None,
        "steady_stored_events_per_s": steady,
        "max_stream_backlog": max((t[2] for t in timeline), default=0),
        "drain_after_last_request_s": round(max(0.0, done_at - sent_at), 2),
        "cores_used_while_sending": cores_used(cpu_start, cpu_sent, sent_at),
        "cores_used_while_draining": cores_used(cpu_sent, cpu_done, max(done_at - sent_at, 1e-9)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--users", type=int, default=256)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(client(json.loads(sys.stdin.read())))))
        return

    before = machine()
    with servers(durable_redis=True) as svc:
        seeded = ensure_seeded(svc.database_url, admin_url=svc.admin_url)
        if svc.admin_url is not None:
            asyncio.run(copy_database(svc.admin_url))
            svc = Servers(with_database(svc.admin_url, COPY), svc.redis_url, svc.admin_url, svc.started)
        # The copy starts with nothing in shared buffers; a server that has been up a while
        # holds what the consumer reads (the first run read 65,000 pages from the OS cache).
        prewarm(svc.database_url)
        try:
            viewers = asyncio.run(sign_in(svc.database_url, args.users))
            with serve(svc) as server:
                # As the other feed benchmarks do, the load starts once the worker has done what
                # it does as it starts (taste cohorts, feed.cohorts: 3-5 s of PostgreSQL, again
                # every RIFFLE_FEED_COHORT_REFRESH_S), as in a deployment that has been up a while.
                built = asyncio.run(cohorts_built(svc.redis_url))
                result = asyncio.run(
                    measure(svc, server.base, server.pid, viewers, args.events, args.connections)
                )
        finally:
            if svc.admin_url is not None:
                asyncio.run(drop_copy(svc.admin_url))
    report = {
        "data_set": {k: seeded[k] for k in ("clips", "users", "events")},
        "viewers": len(viewers),
        "cohorts": built,
        "connections": args.connections,
        "batch": BATCH,
        **result,
        "target_10000_events_per_s": bool(result["end_to_end_events_per_s"])
        and result["end_to_end_events_per_s"] >= 10_000,
        "machine": before,
    }
    print(json.dumps(report, indent=2))
    if result["lost"] or result["doubled"]:
        raise SystemExit("events were lost or doubled")


if __name__ == "__main__":
    main()
