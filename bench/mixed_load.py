"""Mixed traffic against Riffle run the way production runs it, from locust in its own process:
70% For You pages, 20% event batches, 10% likes and comments (bench/locust_mixed.py).

The server: `riffle serve --workers N --no-worker` (N API processes behind one port) and a
separate `riffle worker` (jobs, the event consumer, taste cohorts), on the seeded data set
(bench/seed.py), the viewers being seeded users with sessions and the Redis state the consumer
would have left (bench/feed_load.py prepares both); the load starts once the worker has built
the taste cohorts. The load: `locust --headless` with 64 users, each a
keep-alive connection in a closed loop. Reported per route: requests per second and p50 / p99 /
p99.9 latency (locust's own percentiles), failures; then, measured in-process on the same
database by a process that has been up long enough to trust what it heard of visibility
changes, the PostgreSQL queries and Redis commands one feed page costs, the cards it has
rendered ahead included (first page and later pages; a Redis pipeline counts as one round
trip).

Run: `.venv/bin/python bench/mixed_load.py [--users 64] [--seconds 30] [--api-processes 2]`.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, Servers, machine, prewarm, server_env, servers
from feed_load import cohorts_built, sign_in, sign_out, warm_redis
from seed import ensure_seeded

from backend.embedded import free_port

LOCUSTFILE = Path(__file__).resolve().parent / "locust_mixed.py"


@contextmanager
def production(svc: Servers, api_processes: int) -> Iterator[str]:
    """N API processes (no worker inside) and one standalone worker; yields the base URL."""
    data_dir = Path(tempfile.mkdtemp(prefix="riffle-bench-mixed-"))
    port = free_port()
    # Real people do not post 120 comments a minute; the bench's viewers share the limits.
    env = server_env(svc, data_dir, RIFFLE_COMMENTS_PER_MINUTE="100000")
    logs = [(data_dir / "api.log").open("w"), (data_dir / "worker.log").open("w")]
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backend.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(api_processes),
            "--no-worker",
        ],
        env=env,
        stdout=logs[0],
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "worker"],
        env=env,
        stdout=logs[1],
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, api, data_dir / "api.log")
        yield base
    finally:
        for proc in (api, worker):
            proc.terminate()
        for proc in (api, worker):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the API exited:\n" + log.read_text())
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("the API did not become ready")


def locust(base: str, tokens: list[str], users: int, seconds: int) -> list[dict[str, Any]]:
    """Run locust headless in its own process; its per-route rows from the stats CSV."""
    folder = Path(tempfile.mkdtemp(prefix="riffle-locust-"))
    config = folder / "config.json"
    config.write_text(json.dumps({"viewers": tokens}))
    binary = shutil.which("locust", path=str(Path(sys.executable).parent)) or "locust"
    done = subprocess.run(
        [
            binary,
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            base,
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--only-summary",
            "--csv",
            str(folder / "mixed"),
            "--loglevel",
            "WARNING",
        ],
        env={**os.environ, "RIFFLE_MIXED_CONFIG": str(config), "RIFFLE_MIXED_USERS": str(users)},
        capture_output=True,
        text=True,
        check=False,
    )
    stats = folder / "mixed_stats.csv"
    if not stats.exists():
        raise SystemExit(f"locust failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    with stats.open() as f:
        return list(csv.DictReader(f))


# --- round trips per feed page, counted in-process -------------------------------------------


@contextmanager
def counting() -> Iterator[Counter[str]]:
    """Count PostgreSQL queries (asyncpg calls that reach the server) and Redis round trips
    (redis-py's, and the shared connection's that feed pages use, backend.redis_mux)."""
    import asyncpg
    from redis.asyncio.client import Pipeline, Redis

    from backend.redis_mux import Multiplexed

    counts: Counter[str] = Counter()
    originals: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, kind: str, skip: Any = None) -> None:
        original = getattr(owner, name)

        async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            if skip is None or not skip(self):
                counts[kind] += 1
            return await original(self, *args, **kwargs)

        originals.append((owner, name, original))
        setattr(owner, name, counted)

    conn_cls = asyncpg.connection.Connection
    for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval", "copy_records_to_table"):
        wrap(conn_cls, name, "postgresql")
    wrap(Redis, "execute_command", "redis", skip=lambda self: isinstance(self, Pipeline))
    wrap(Pipeline, "execute", "redis")
    wrap(Multiplexed, "execute", "redis")
    try:
        yield counts
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


async def round_trips(svc: Servers, tokens: list[str], pages: int = 10) -> dict[str, dict[str, float]]:
    from litestar.testing import AsyncTestClient

    from backend.app import create_app
    from backend.runtime import runtime
    from backend.settings import load_settings

    settings = load_settings(
        {},
        database_url=svc.database_url,
        redis_url=svc.redis_url,
        data_dir=tempfile.mkdtemp(prefix="riffle-bench-trips-"),
        run_worker=False,
        secret_key="bench-secret-key-that-is-long-enough-0123456789",
        log_level="WARNING",
    )
    first: list[Counter[str]] = []
    later: list[Counter[str]] = []
    async with AsyncTestClient(app=create_app(settings)) as client:
        rt = runtime(client.app.state)
        # Counted as a process that has been up a while: until it has listened for visibility
        # changes long enough to trust a session ranked now, every later page asks PostgreSQL
        # about its clips (feed.visibility).
        deadline = time.monotonic() + 30
        while not rt.visibility.covers(time.time()) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        if not rt.visibility.covers(time.time()):
            print(
                "the process is not listening for visibility changes: counts are a new process's",
                file=sys.stderr,
            )
        for token in tokens:
            headers = {"Authorization": f"Bearer {token}"}
            cursor = None
            for n in range(pages):
                params = {"limit": "10"} | ({"cursor": cursor} if cursor else {})
                with counting() as counts:
                    r = await client.get("/v1/feed/for-you", params=params, headers=headers)
                    # The cards it asked for ahead (the next page's) count as this page's.
                    while not rt.loader.idle:  # noqa: ASYNC110 (the loader has no event to wait on)
                        await asyncio.sleep(0.005)
                assert r.status_code == 200, r.text
                (first if n == 0 else later).append(counts)
                cursor = r.json()["next_cursor"]
                if cursor is None:
                    break

    def mean(samples: list[Counter[str]]) -> dict[str, float]:
        return {
            k: round(sum(c[k] for c in samples) / max(len(samples), 1), 1) for k in ("postgresql", "redis")
        }

    return {
        "first page": mean(first),
        "later page": mean(later),
        "pages": {"first": len(first), "later": len(later)},
    }


def table(rows: list[dict[str, Any]], seconds: int) -> str:
    lines = [
        "| route | requests | req/s | p50 ms | p99 ms | p99.9 ms | failures |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['Name']} | {row['Request Count']} | {float(row['Requests/s']):.0f} | {row['50%']} | "
            f"{row['99%']} | {row['99.9%']} | {row['Failure Count']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=64, help="locust users (connections)")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--viewers", type=int, default=2048)
    args = parser.parse_args()

    before = machine()
    with servers(durable_redis=True) as svc:
        seeded = ensure_seeded(svc.database_url, admin_url=svc.admin_url)
        viewers = asyncio.run(sign_in(svc.database_url, args.viewers))
        asyncio.run(warm_redis(svc.database_url, svc.redis_url, [u for u, _ in viewers]))
        prewarm(svc.database_url)
        tokens = [t for _, t in viewers]
        try:
            with production(svc, args.api_processes) as base:
                # The load starts once the worker has done what it does as it starts (taste
                # cohorts, feed.cohorts), as in a deployment that has been up a while.
                built = asyncio.run(cohorts_built(svc.redis_url))
                rows = locust(base, tokens, args.users, args.seconds)
            trips = asyncio.run(round_trips(svc, tokens[:20]))
        finally:
            asyncio.run(sign_out(svc.database_url))
    per_route = [r for r in rows if r["Name"] != "Aggregated"]
    total = next(r for r in rows if r["Name"] == "Aggregated")
    print(f"machine: {before}")
    print(
        f"data set: {seeded['clips']} clips, {seeded['users']} users, {seeded['events']} events; "
        f"{len(tokens)} signed-in viewers; {args.users} locust users for {args.seconds} s; "
        f"{args.api_processes} API processes + 1 worker process; "
        f"taste cohorts: {built.get('cohorts', 0)} for {built.get('viewers', 0)} viewers"
    )
    print()
    print(table([*per_route, total], args.seconds))
    print()
    print("round trips per feed page (mean, in-process, same database):")
    for name in ("first page", "later page"):
        pg, redis = trips[name]["postgresql"], trips[name]["redis"]
        print(f"  {name}: {pg} PostgreSQL queries, {redis} Redis round trips")
    print(f"  over {trips['pages']['first']} first and {trips['pages']['later']} later pages")


if __name__ == "__main__":
    main()
