"""Generation pipeline benchmark: 200 concurrent local-model generations through the real server.

Starts an embedded PostgreSQL and Redis, then `riffle serve` (API and worker in one process,
as `make run` does) on them, signs up users, submits every generation at once over HTTP and
waits for all of them. Reports:

- submit latency (client side, POST /v1/generations): first 20 one at a time (uncontended),
  then the rest all at once (a burst: its p99 is mostly the time to drain the burst),
- end-to-end throughput, and pipeline-overhead throughput with render time excluded:
  N / (wall - sum(render) / cores), where sum(render)/cores is the least wall time the renders
  alone need on this machine; what remains is queueing, database, storage and probing,
- that no take was lost or duplicated (every job succeeded; exactly one clip, one video and
  one poster per take; no take submitted twice).

Run: `.venv/bin/python bench/generation.py [--jobs 200] [--users 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend import db  # noqa: E402
from backend.embedded import EmbeddedPostgres, EmbeddedRedis, free_port  # noqa: E402

PASSWORD = "bench-password-123"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit("the server exited:\n" + (proc.stdout.read() if proc.stdout else ""))
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the server did not become ready")


async def sign_up(http: httpx.AsyncClient, handle: str) -> dict[str, str]:
    body = {"handle": handle, "email": f"{handle}@bench.example", "password": PASSWORD}
    (await http.post("/v1/accounts", json=body)).raise_for_status()
    token = (await http.post("/v1/sessions", json={"login": handle, "password": PASSWORD})).json()["token"]
    return {"Authorization": f"Bearer {token}"}


async def run(
    jobs: int, users: int, base: str, database_url: str, data_dir: Path, serial_jobs: int = 20
) -> dict[str, object]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        accounts = [await sign_up(http, f"bench{i}") for i in range(users)]
        body = {"prompt": "a paper boat on a rainy street", "model": "local", "seconds": 2, "size": "144x256"}

        async def submit(i: int) -> tuple[float, int]:
            headers = accounts[i % users] | {"Idempotency-Key": uuid.uuid4().hex}
            started = time.perf_counter()
            r = await http.post("/v1/generations", json=body | {"takes": 1}, headers=headers)
            elapsed = time.perf_counter() - started
            if r.status_code != 202:
                raise SystemExit(f"submit failed: {r.status_code} {r.text}")
            return elapsed, r.json()["id"]

        # Uncontended first: one request at a time, before the burst (these jobs are counted too).
        wall_start = time.perf_counter()
        serial = [await submit(i) for i in range(serial_jobs)]
        serial_s = [s for s, _ in serial]
        submitted = await asyncio.gather(*(submit(i) for i in range(serial_jobs, jobs)))
        submit_s = [s for s, _ in submitted]

    pool = await db.create_pool(database_url, min_size=1, max_size=2)
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            open_jobs = await pool.fetchval(
                "SELECT count(*) FROM generation_jobs WHERE status IN ('queued', 'in_progress')"
            )
            if open_jobs == 0:
                break
            await asyncio.sleep(0.2)
        wall = time.perf_counter() - wall_start
        statuses = dict(await pool.fetch("SELECT status, count(*) FROM generation_jobs GROUP BY status"))
        takes = await pool.fetchval("SELECT count(*) FROM takes")
        clips = await pool.fetchval("SELECT count(*) FROM clips")
        clip_takes = await pool.fetchval("SELECT count(DISTINCT take_id) FROM clips")
        live_media = "SELECT count(*) FROM media WHERE kind = $1 AND deleted_at IS NULL"
        videos = await pool.fetchval(live_media, "video")
        posters = await pool.fetchval(live_media, "poster")
        provider_jobs = await pool.fetchval("SELECT count(DISTINCT provider_job_id) FROM takes")
    finally:
        await pool.close()

    timings = (data_dir / "work" / "local").glob("*/render.json")
    renders = [json.loads(path.read_text())["render_cpu_s"] for path in timings]
    cores = os.cpu_count() or 1
    render_floor = sum(renders) / cores
    succeeded = statuses.get("succeeded", 0)
    return {
        "jobs": jobs,
        "users": users,
        "succeeded": succeeded,
        "lost": jobs - succeeded,
        "duplicated": (clips - clip_takes) + (videos - takes) + (posters - takes),
        "renders": len(renders),
        "provider_jobs": provider_jobs,
        "serial_submit_p50_ms": round(1000 * percentile(serial_s, 0.50), 1),
        "serial_submit_p99_ms": round(1000 * percentile(serial_s, 0.99), 1),
        "submit_p50_ms": round(1000 * percentile(submit_s, 0.50), 1),
        "submit_p99_ms": round(1000 * percentile(submit_s, 0.99), 1),
        "submit_max_ms": round(1000 * max(submit_s), 1),
        "wall_s": round(wall, 2),
        "end_to_end_jobs_per_s": round(jobs / wall, 1),
        "render_cpu_mean_ms": round(1000 * statistics.fmean(renders), 1) if renders else None,
        "render_floor_s": round(render_floor, 2),
        "overhead_jobs_per_s": round(jobs / max(wall - render_floor, 1e-9), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="riffle-bench-gen-"))
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
        "RIFFLE_GENERATION_DAILY_SECONDS": "1000000",
        "RIFFLE_GENERATIONS_PER_HOUR": "1000000",
        "RIFFLE_SIGNUP_LIMIT_PER_IP": "1000000",
        "RIFFLE_LOGIN_LIMIT_PER_IP": "1000000",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(wait_ready(base, proc))
        result = asyncio.run(run(args.jobs, args.users, base, database_url, folder / "data"))
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
    if result["lost"] or result["duplicated"]:
        raise SystemExit("takes were lost or duplicated")


if __name__ == "__main__":
    main()
