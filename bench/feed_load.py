"""For You under load: 64 concurrent connections on one `riffle serve` process, against the
seeded data set (bench/seed.py), compared with a bare JSON route on the same server.

One server process (uvicorn, API and background worker, as `riffle serve` runs by default) on
the seeded database; the load comes from a separate client process (aiohttp, 64 keep-alive
connections, each sending its next request when the previous answer arrives). Signed-in
viewers are seeded users with a session row inserted directly (the token's SHA-256, as
sign-in stores it); their seen sets and the trending buckets are loaded into Redis from the
seeded events, as the event consumer would have left them. Phases, in order:

1. bare: `GET /healthz` (no I/O), the ceiling for this server, client and machine;
2. first pages: every connection opens new feed sessions (`GET /v1/feed/for-you`, no cursor)
   for viewers who have no ready feed of their own yet: each opens from their taste cohort's
   ranking (feed.cohorts; the benchmark waits for the worker to build the cohorts, which it
   does as it starts), or with `--no-cohorts` (RIFFLE_FEED_COHORTS=0) is ranked on the spot;
3. later pages: every connection pages through sessions opened in phase 2 (`?cursor=`), at
   most 25 pages per session, so no session needs a refill; in slices of a second, each
   followed by a second of the bare route (`bare_beside`), whose share is reported beside the
   share of phase 1's;
4. viewers come back: each sends a batch of events (one impression, as the app does while
   they watch), and the server's worker ranks their next feed ahead (feed.ready); the time it
   took is reported, then first pages again, every viewer in turn, twice, now opened from what
   the worker ranked (the share is counted from the server's riffle_feed_sessions_total; in
   the first round most viewers are new to the server process: their token is not in its
   session cache yet);
5. sessions: every connection plays a viewer: a first page, then nine later pages.

Targets: later pages p99 <= 50 ms and at least 35% of the bare route's requests per second;
first page p99 <= 150 ms.

Run: `.venv/bin/python bench/feed_load.py [--connections 64] [--seconds 15] [--viewers 2048]`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_pids, cores_used, cpu_by_process, machine, ms, percentile, prewarm, serve, servers
from seed import ensure_seeded

from backend.redis_pool import create_redis
from feed.ingest import TRENDING_WEIGHTS, keys
from feed.service import SEEN_TTL_S

PREFIX = "riffle:"
AGENT = "riffle-bench"
PAGE = 10
# Later pages and the bare route beside them alternate in slices this long. On this sandbox,
# idle, a fixed Python loop of 0.1-0.2 s took 130-243 ms from one half-second to the next
# (2026-12-04): the machine's speed moves within seconds, and slices this short see about the
# same machine.
SLICE_S = 1.0
MAX_PAGES = 25  # a session holds 300 candidates: 30 pages of 10 before it must refill


# --- preparing viewers ----------------------------------------------------------------------


async def sign_in(database_url: str, count: int, seed: int = 11) -> list[tuple[int, str]]:
    """Sessions for ``count`` seeded users with tastes, inserted in one COPY: (user id, token)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM sessions WHERE user_agent = $1", AGENT)
        await conn.execute("SELECT setseed($1)", (seed % 1000) / 1000)
        users = [
            r["user_id"]
            for r in await conn.fetch(
                "SELECT user_id FROM user_vectors WHERE interest IS NOT NULL ORDER BY random() LIMIT $1",
                count,
            )
        ]
        tokens = ["rf_" + secrets.token_urlsafe(32) for _ in users]
        expires = datetime.now(UTC) + timedelta(days=30)
        await conn.copy_records_to_table(
            "sessions",
            records=[
                (u, hashlib.sha256(t.encode()).digest(), AGENT, "127.0.0.1", expires)
                for u, t in zip(users, tokens, strict=True)
            ],
            columns=("user_id", "token_hash", "user_agent", "ip", "expires_at"),
        )
        return list(zip(users, tokens, strict=True))
    finally:
        await conn.close()


async def some_clips(database_url: str, count: int) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id FROM clips WHERE status = 'published' ORDER BY random() LIMIT $1", count
        )
        return [r["id"] for r in rows]
    finally:
        await conn.close()


async def sign_out(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM sessions WHERE user_agent = $1", AGENT)
    finally:
        await conn.close()


async def cohorts_built(redis_url: str, seconds: float = 180.0) -> dict[str, Any]:
    """Wait for the server's worker to group the viewers into taste cohorts (feed.cohorts: it
    does when it starts); what it built, or {} if it did not within ``seconds``."""
    redis = create_redis(redis_url)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if (built := await redis.get(keys(PREFIX)("cohort-built"))) is not None:
                return dict(json.loads(built))
            await asyncio.sleep(0.5)
        return {}
    finally:
        await redis.aclose()


async def warm_redis(database_url: str, redis_url: str, user_ids: list[int]) -> dict[str, int]:
    """The Redis state the event consumer keeps (seen sets, hourly trending buckets), rebuilt
    from the events in PostgreSQL."""
    k = keys(PREFIX)
    conn = await asyncpg.connect(database_url)
    redis = create_redis(redis_url)
    try:
        seen = await conn.fetch(
            """
            SELECT user_id, array_agg(DISTINCT clip_id) AS clips FROM events
            WHERE user_id = ANY($1::bigint[]) AND at > now() - interval '7 days' AND type <> 'tap'
            GROUP BY user_id
            """,
            user_ids,
        )
        weights = " ".join(f"WHEN '{t}' THEN {w}" for t, w in TRENDING_WEIGHTS.items())
        trending = await conn.fetch(
            f"""
            SELECT floor(extract(epoch FROM at) / 3600)::bigint AS hour, clip_id,
                   sum(CASE type {weights} ELSE 0 END) AS score
            FROM events WHERE at > now() - interval '24 hours'
            GROUP BY 1, 2 HAVING sum(CASE type {weights} ELSE 0 END) > 0
            """
        )
        async with redis.pipeline(transaction=False) as pipe:
            for row in seen:
                pipe.sadd(k("seen", row["user_id"]), *row["clips"])
                pipe.expire(k("seen", row["user_id"]), SEEN_TTL_S)
            for row in trending:
                pipe.zincrby(k("trending", row["hour"]), float(row["score"]), row["clip_id"])
            await pipe.execute()
        for hour in {row["hour"] for row in trending}:
            await redis.expire(k("trending", hour), 26 * 3600)
        return {"seen_sets": len(seen), "trending_entries": len(trending)}
    finally:
        await redis.aclose()
        await conn.close()


# --- the load generator (runs in its own process) -------------------------------------------


def tenths(values: list[float]) -> list[list[float]]:
    """The values in ten parts, in order (none when there are fewer than 100)."""
    if len(values) < 100:
        return []
    return [values[i * len(values) // 10 : (i + 1) * len(values) // 10] for i in range(10)]


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: collections.Counter[str] = collections.Counter()

    def summary(self, name: str, wall: float) -> dict[str, Any]:
        values = self.latencies[name]
        return {
            "requests": len(values),
            "errors": self.errors[name],
            "rps": round(len(values) / wall, 1) if wall else 0.0,
            "p50_ms": ms(percentile(values, 0.5)),
            "p90_ms": ms(percentile(values, 0.9)),
            "p99_ms": ms(percentile(values, 0.99)),
            "max_ms": ms(max(values)) if values else None,
            # p99 of each tenth of the phase's answers in the order they came: a phase's first
            # tenth also pays for what a process does the first time (caches empty, tokens and
            # statements new), the rest is the steady state
            "p99_by_tenth": [ms(percentile(part, 0.99)) for part in tenths(values)],
        }


async def fetch(
    http: aiohttp.ClientSession, rec: Recorder, name: str, url: str, token: str | None = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.perf_counter()
    async with http.get(url, headers=headers) as response:
        body = await response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            rec.errors[name] += 1
            if rec.errors[name] <= 3:
                print(f"{name}: {response.status} {body[:300]!r}", file=sys.stderr)
            return None
    rec.latencies[name].append(elapsed)
    return body


async def run_for(connections: int, seconds: float, work: Callable[[], Awaitable[bool]]) -> float:
    """``connections`` loops calling ``work`` until time is up or it returns False; the wall time."""
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        while time.perf_counter() < deadline and await work():
            pass

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(connections)))
    return time.perf_counter() - started


class _Cursor(msgspec.Struct):
    next_cursor: str | None = None


# The client reads only the cursor: msgspec skips the rest of a page without building it, so
# the client's CPU (which shares the machine with the server) goes to sending requests.
_page = msgspec.json.Decoder(_Cursor)


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def client(config: dict[str, Any]) -> dict[str, Any]:
    base, connections, seconds = config["base"], config["connections"], config["seconds"]
    viewers: list[str] = [token for _, token in config["viewers"]]
    feed = f"{base}/v1/feed/for-you?limit={PAGE}"
    rec = Recorder()
    out: dict[str, Any] = {}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    server_pid = config.get("server_pid")
    pids: dict[str, int] = config.get("pids", {}) | ({"server": server_pid} if server_pid else {})
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def bare() -> bool:
            await fetch(http, rec, "bare", f"{base}/healthz")
            return True

        await run_for(connections, min(2.0, seconds), bare)  # warm-up: connections, caches
        rec.latencies.clear()

        spies: list[subprocess.Popen[bytes]] = []

        def profile(name: str) -> None:
            """py-spy on the server through the next phase (``--profile DIR``), to find hot spots;
            stopped when the phase ends (a phase can end early: later pages, when the sessions
            run out), so that the next phase does not show in it."""
            if config.get("profile") and server_pid:
                spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
                spies.append(subprocess.Popen(
                    [spy, "record", "--pid", str(server_pid), "--duration", str(int(seconds) + 5),
                     "--format", "raw", "--nonblocking", "--output", f"{config['profile']}/{name}.txt"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ))  # fmt: skip

        def profiled() -> None:
            while spies:
                spy = spies.pop()
                spy.send_signal(signal.SIGINT)  # py-spy writes what it has recorded and exits
                spy.wait(30)

        async def by_source(counter: str) -> dict[str, float]:
            """A counter of the server's by source: riffle_feed_cards_total (For You cards from
            the process or the database), riffle_feed_sessions_total (sessions from a ready
            feed or ranked)."""
            async with http.get(f"{base}/metrics") as response:
                text = await response.text()
            found = re.findall(rf'^{counter}\{{source="(\w+)"\}} (\S+)$', text, re.MULTILINE)
            return {source: float(value) for source, value in found}

        async def cards_served() -> dict[str, float]:
            return await by_source("riffle_feed_cards_total")

        async def sessions_opened() -> dict[str, float]:
            return await by_source("riffle_feed_sessions_total")

        def ready_share(name: str, before: dict[str, float], after: dict[str, float]) -> None:
            opened = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
            if total := sum(opened.values()):
                out[name]["sessions_from_ready_feed"] = round(opened.get("ready", 0.0) / total, 3)
                out[name]["sessions_from_cohort"] = round(opened.get("cohort", 0.0) / total, 3)

        def cpu_now() -> dict[str, float]:
            return cpu_by_process(pids) | {"client": client_cpu()}

        def measured(name: str, wall: float, cpu_before: dict[str, float] | None) -> None:
            profiled()
            out[name] = rec.summary(name, wall)
            if cpu_before is not None:
                used = cores_used(cpu_before, cpu_now(), wall)
                out[name]["cores_used"] = used

        def card_share(name: str, before: dict[str, float], after: dict[str, float]) -> None:
            served = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
            if total := sum(served.values()):
                out[name]["cards_from_process_cache"] = round(served.get("process", 0.0) / total, 3)

        profile("bare")
        cpu = cpu_now()
        measured("bare", await run_for(connections, seconds, bare), cpu)

        # First pages: each connection opens sessions for viewers taken in turn.
        queue = collections.deque(viewers)
        sessions: collections.deque[tuple[str, str, int]] = collections.deque()

        def opener(name: str) -> Callable[[], Awaitable[bool]]:
            async def first() -> bool:
                if not queue:
                    return False
                token = queue.popleft()
                body = await fetch(http, rec, name, feed, token)
                if body is not None and (cursor := _page.decode(body).next_cursor):
                    sessions.append((token, cursor, 1))
                return True

            return first

        profile("first_page")
        opened = await sessions_opened()
        cpu = cpu_now()
        measured("first_page", await run_for(connections, seconds, opener("first_page")), cpu)
        ready_share("first_page", opened, await sessions_opened())

        async def later() -> bool:
            if not sessions:
                return False
            token, cursor, pages = sessions.popleft()
            body = await fetch(http, rec, "later_page", f"{feed}&cursor={cursor}", token)
            if body is not None and pages + 1 < MAX_PAGES and (cursor := _page.decode(body).next_cursor):
                sessions.append((token, cursor, pages + 1))
            return True

        async def bare_beside() -> bool:
            await fetch(http, rec, "bare_beside", f"{base}/healthz")
            return True

        # Later pages in slices of SLICE_S, each followed by one of the bare route: the
        # machine's speed swings by up to 1.9x from one second to the next (see SLICE_S), so
        # later pages' share of the bare phase, measured 15 s earlier, moved with the machine
        # as much as with the route. Both shares are reported.
        profile("later_page")
        cards = await cards_served()
        walls = {"later_page": 0.0, "bare_beside": 0.0}
        spent: dict[str, collections.Counter[str]] = {name: collections.Counter() for name in walls}
        while walls["later_page"] < seconds and sessions:
            for name, work in (("later_page", later), ("bare_beside", bare_beside)):
                cpu = cpu_now()
                walls[name] += await run_for(connections, min(SLICE_S, seconds), work)
                spent[name].update({k: v - cpu[k] for k, v in cpu_now().items()})
        for name, wall in walls.items():
            measured(name, wall, None)
            out[name]["cores_used"] = cores_used({}, dict(spent[name]), wall)
        card_share("later_page", cards, await cards_served())

        # Viewers come back: their events arrive, the worker ranks each a ready feed. Then
        # every viewer opens a session, twice: the first time most of them are new to this
        # process (their token is not in its session cache, fewer of their cards are).
        out["prerank"] = await come_back(http, config)
        sessions.clear()
        for name in ("first_page_ready", "first_page_ready_again"):
            queue.clear()
            queue.extend(viewers)
            profile(name)
            cards, opened = await cards_served(), await sessions_opened()
            cpu = cpu_now()
            measured(name, await run_for(connections, seconds, opener(name)), cpu)
            ready_share(name, opened, await sessions_opened())
            card_share(name, cards, await cards_served())

        # Viewers: a first page, then nine more, again and again.
        turn = iter(range(10**9))

        async def viewer() -> bool:
            token = viewers[next(turn) % len(viewers)]
            body = await fetch(http, rec, "session_first", feed, token)
            for _ in range(9):
                cursor = _page.decode(body).next_cursor if body is not None else None
                if not cursor:
                    break
                body = await fetch(http, rec, "session_later", f"{feed}&cursor={cursor}", token)
            return True

        cards, opened = await cards_served(), await sessions_opened()
        cpu = cpu_now()
        wall = await run_for(connections, seconds, viewer)
        measured("session_first", wall, cpu)
        measured("session_later", wall, None)
        card_share("session_later", cards, await cards_served())
        ready_share("session_first", opened, await sessions_opened())
        out["session_all_rps"] = round(
            (out["session_first"]["requests"] + out["session_later"]["requests"]) / wall, 1
        )
    after = resource.getrusage(resource.RUSAGE_SELF)
    out["client_cpu_s"] = round(after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime, 1)
    return out


async def come_back(http: aiohttp.ClientSession, config: dict[str, Any]) -> dict[str, Any]:
    """Every viewer sends a batch of events (one impression), then wait until the server's
    worker has ranked a ready feed for them (or stopped making progress for 10 s). Progress is
    the worker's list of viewers shrinking as well as ready feeds appearing: the viewers whose
    events came first are the ones the first-page phase ranked, their ready feeds now half
    seen, and ranking those again adds no new ready feed (waiting on that alone gave up after
    10 s in one run of three, and the next phases then measured rankings on the spot)."""
    base, viewers, clips = config["base"], config["viewers"], config["event_clips"]
    sent = collections.deque(enumerate(viewers))
    refused = 0

    async def post() -> bool:
        nonlocal refused
        if not sent:
            return False
        n, (_, token) = sent.popleft()
        event = {
            "client_event_id": secrets.token_hex(8),
            "type": "impression",
            "clip_id": clips[n % len(clips)],
            "at": datetime.now(UTC).isoformat(),
        }
        async with http.post(
            f"{base}/v1/events", json={"events": [event]}, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            refused += response.status != 202
        return True

    started = time.perf_counter()
    await run_for(64, 120, post)
    redis = create_redis(config["redis_url"])
    k = keys(PREFIX)
    try:
        done, last, stalled = 0, None, time.perf_counter()
        while time.perf_counter() - stalled < 10:
            async with redis.pipeline(transaction=False) as pipe:
                for user_id, _ in viewers:
                    pipe.exists(k("ready", user_id, 0), k("ready", user_id, 1))
                done = sum(1 for found in await pipe.execute() if found)
            waiting = await redis.zcard(k("prerank"))
            if (done, waiting) != last:
                last, stalled = (done, waiting), time.perf_counter()
            if not waiting and done == len(viewers):
                break
            await asyncio.sleep(0.5)
    finally:
        await redis.aclose()
    took = time.perf_counter() - started
    return {"events_refused": refused, "viewers_with_ready_feed": done, "seconds": round(took, 1)}


def run_client(config: dict[str, Any]) -> dict[str, Any]:
    """The load generator in its own process, so it does not share an interpreter with anything."""
    done = subprocess.run(
        [sys.executable, __file__, "--client"],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the load client failed:\n{done.stderr}")
    if done.stderr:
        print(done.stderr, file=sys.stderr)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    bare, beside = result["bare"]["rps"], result["bare_beside"]["rps"]
    later = result["later_page"]
    return {
        "later_page_p99_ms<=50": later["p99_ms"] <= 50,
        "later_page_rps_share_of_bare": round(later["rps"] / bare, 2) if bare else None,
        "later_page_rps>=35%_of_bare (bare phase)": bool(bare) and later["rps"] >= 0.35 * bare,
        "later_page_rps_share_of_bare_beside": round(later["rps"] / beside, 2) if beside else None,
        "later_page_rps>=35%_of_bare (slices beside)": bool(beside) and later["rps"] >= 0.35 * beside,
        "first_page_p99_ms<=150 (first-page phase, ranked)": result["first_page"]["p99_ms"] <= 150,
        "first_page_p99_ms<=150 (viewers back, ranked ahead)": result["first_page_ready"]["p99_ms"] <= 150,
        "first_page_p99_ms<=150 (viewers back, second session)": result["first_page_ready_again"]["p99_ms"]
        <= 150,
        "first_page_p99_ms<=150 (sessions phase)": result["session_first"]["p99_ms"] <= 150,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--viewers", type=int, default=2048)
    parser.add_argument(
        "--no-cohorts", action="store_true", help="no taste cohorts: first pages are ranked on the spot"
    )
    parser.add_argument("--profile", help="record py-spy profiles of the server per phase into this folder")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(client(json.loads(sys.stdin.read())))))
        return
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)

    before = machine()
    with servers(durable_redis=False) as svc:
        seeded = ensure_seeded(svc.database_url, admin_url=svc.admin_url)
        viewers = asyncio.run(sign_in(svc.database_url, args.viewers))
        warmed = asyncio.run(warm_redis(svc.database_url, svc.redis_url, [u for u, _ in viewers]))
        warmed["postgres_pages_prewarmed"] = sum(prewarm(svc.database_url).values())
        event_clips = asyncio.run(some_clips(svc.database_url, 256))
        try:
            with serve(svc, **({"RIFFLE_FEED_COHORTS": "0"} if args.no_cohorts else {})) as server:
                built = {} if args.no_cohorts else asyncio.run(cohorts_built(svc.redis_url))
                result = run_client(
                    {
                        "base": server.base,
                        "connections": args.connections,
                        "seconds": args.seconds,
                        "viewers": viewers,
                        "event_clips": event_clips,
                        "redis_url": svc.redis_url,
                        "server_pid": server.pid,
                        "pids": bench_pids(svc),
                        "profile": str(Path(args.profile).resolve()) if args.profile else None,
                    }
                )
        finally:
            asyncio.run(sign_out(svc.database_url))
    report = {
        "data_set": {k: seeded[k] for k in ("clips", "users", "events")},
        "viewers": len(viewers),
        "cohorts": built,
        "redis": warmed,
        "connections": args.connections,
        "seconds_per_phase": args.seconds,
        **result,
        "targets": verdict(result),
        "machine": before,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
