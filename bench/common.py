"""What the feed benchmarks share: the seeded database they run against, the server they load,
and how they report.

The seeded database lives in its own PostgreSQL data folder, ``.riffle/bench/pg`` (database
``riffle_bench``), so `bench/seed.py` fills it once and `bench/feed_load.py`, `bench/ingest.py`
and `bench/ann_recall.py` find it on later runs. ``RIFFLE_BENCH_DIR`` moves that folder;
``RIFFLE_DATABASE_URL`` / ``RIFFLE_REDIS_URL`` replace the embedded servers altogether (the
database must then be a throwaway one: the benchmarks write to it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from backend import db  # noqa: E402
from backend.embedded import EmbeddedPostgres, EmbeddedRedis, free_port  # noqa: E402
from backend.observability import configure_logging  # noqa: E402

configure_logging("WARNING")

BENCH_DIR = Path(os.environ.get("RIFFLE_BENCH_DIR", ROOT / ".riffle" / "bench"))
DATABASE = "riffle_bench"

# The bench cluster is ours alone, so it gets settings for a 24 GiB machine rather than the
# wheel's defaults (128 MB of shared buffers would not hold the HNSW index). Durability stays
# on: fsync and synchronous_commit are PostgreSQL's defaults, as in production.
SERVER_SETTINGS = {
    "shared_buffers": "2GB",
    "effective_cache_size": "8GB",
    "maintenance_work_mem": "1GB",
    "work_mem": "16MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "max_connections": "200",
}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> float:
    return round(1000 * seconds, 1)


def cpu_probe() -> float:
    """Seconds a fixed pure-Python loop takes: the same sandbox has run at very different speeds
    from one session to the next (0.5 s and 1.5 s), so figures carry this to be compared."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return round(time.perf_counter() - started, 2)


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average before the run {load}, a 10-million-step Python loop in {cpu_probe()} s"
    )


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@dataclass
class Servers:
    database_url: str
    redis_url: str
    admin_url: str | None = None
    started: list[Any] = field(default_factory=list)


async def _tune(admin_url: str) -> bool:
    """Apply SERVER_SETTINGS; True when PostgreSQL must restart for some to take effect."""
    conn = await db.asyncpg.connect(admin_url)
    try:
        for name, value in SERVER_SETTINGS.items():
            await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        await conn.execute("SELECT pg_reload_conf()")
        await asyncio.sleep(0.2)  # the reload is asynchronous
        return bool(await conn.fetchval("SELECT count(*) FROM pg_settings WHERE pending_restart"))
    finally:
        await conn.close()


@contextlib.contextmanager
def servers(
    *, database: str = DATABASE, durable_redis: bool = True, need_redis: bool = True
) -> Iterator[Servers]:
    """PostgreSQL holding the bench database (created if missing, migrations applied) and a fresh
    Redis; the configured ones when RIFFLE_DATABASE_URL / RIFFLE_REDIS_URL are set."""
    started: list[Any] = []
    try:
        configured = os.environ.get("RIFFLE_DATABASE_URL")
        admin_url = None
        if configured:
            database_url = configured
        else:
            pg = EmbeddedPostgres(BENCH_DIR / "pg")
            admin_url = pg.start()
            started.append(pg)
            if asyncio.run(_tune(admin_url)):
                pg.stop()
                started.remove(pg)
                pg = EmbeddedPostgres(BENCH_DIR / "pg")
                admin_url = pg.start()
                started.append(pg)
            asyncio.run(db.ensure_database(admin_url, database))
            database_url = with_database(admin_url, database)
        asyncio.run(db.migrate_url(database_url))
        redis_url = os.environ.get("RIFFLE_REDIS_URL", "")
        if need_redis and not redis_url:
            redis = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="riffle-bench-redis-")), durable=durable_redis)
            redis_url = redis.start()
            started.append(redis)
        yield Servers(database_url=database_url, redis_url=redis_url, admin_url=admin_url, started=started)
    finally:
        for server in reversed(started):
            with contextlib.suppress(Exception):
                server.stop()


# What a feed page reads, loaded into shared buffers before a run. A server that has been up
# for a while holds them there already; a freshly started one copies each 8 kB page in from the
# OS cache on first touch, which made the first ~10 s of first pages measure that copy (a cold
# HNSW walk cost 20-40 ms against 5 ms warm). Production does the same with pg_prewarm's
# autoprewarm worker (docs/OPERATIONS.md). And the behaviour vectors (clip_behaviour), which the
# event consumer reads and rewrites for every batch under mixed traffic.
PREWARM = (
    "clip_vectors_hnsw_idx", "clip_vectors", "clip_vectors_pkey", "clips", "clips_pkey",
    "clip_stats", "clip_stats_pkey", "users", "users_pkey", "follows", "likes", "sessions",
    "clip_behaviour", "clip_behaviour_pkey",
)  # fmt: skip


async def _prewarm(database_url: str) -> dict[str, int]:
    conn = await db.asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        return {name: await conn.fetchval("SELECT pg_prewarm($1::regclass)", name) for name in PREWARM}
    finally:
        await conn.close()


def prewarm(database_url: str) -> dict[str, int]:
    """Load the feed's tables and indexes into shared buffers; pages loaded per relation."""
    return asyncio.run(_prewarm(database_url))


@dataclass
class Server:
    """One `riffle serve` process (uvicorn, one worker process, API and background worker)."""

    proc: subprocess.Popen[str]
    base: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def server_env(servers: Servers, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("RIFFLE_")},
        "RIFFLE_DATABASE_URL": servers.database_url,
        "RIFFLE_REDIS_URL": servers.redis_url,
        "RIFFLE_DATA_DIR": str(data_dir),
        "RIFFLE_LOG_LEVEL": "WARNING",
        "RIFFLE_SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
        **extra,
    }


@contextlib.contextmanager
def serve(servers: Servers, **extra_env: str) -> Iterator[Server]:
    data_dir = Path(tempfile.mkdtemp(prefix="riffle-bench-data-"))
    port = free_port()
    log_path = data_dir / "server.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
            env=server_env(servers, data_dir, **extra_env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        server = Server(proc=proc, base=f"http://127.0.0.1:{port}", log_path=log_path)
        try:
            asyncio.run(wait_ready(server))
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def wait_ready(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=2) as http:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise SystemExit("the server exited:\n" + server.log_path.read_text())
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise SystemExit("the server did not become ready")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (from /proc, Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_pids(servers: Servers) -> dict[str, int]:
    """The postmaster (its backends are its children) and Redis of this run, when we started them."""
    pids: dict[str, int] = {}
    pidfile = BENCH_DIR / "pg" / "postmaster.pid"
    if servers.admin_url is not None and pidfile.exists():
        pids["postmaster"] = int(pidfile.read_text().split()[0])
    for server in servers.started:
        proc = getattr(server, "_proc", None)
        if isinstance(server, EmbeddedRedis) and proc is not None:
            pids["redis"] = proc.pid
    return pids


def cpu_by_process(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by this run's PostgreSQL (postmaster and every backend), Redis
    and API server (``pids``: postmaster, redis, server); other processes on the machine (other
    sessions' databases) are left out. And the machine's idle and stolen core seconds."""
    totals = {name: 0.0 for name in pids if name != "postmaster"}
    if "postmaster" in pids:
        totals["postgres"] = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        pid, ppid = int(entry.name), int(fields[1])
        used = (int(fields[11]) + int(fields[12])) / tick
        if "postmaster" in pids and pids["postmaster"] in (pid, ppid):
            totals["postgres"] += used
        for name, wanted in pids.items():
            if name != "postmaster" and pid == wanted:
                totals[name] += used
    # The whole machine's idle time and the time the hypervisor gave its cores to others
    # (steal): a phase slow with its processes idle waited on something outside them.
    cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    totals["machine_idle"] = (int(cpu[4]) + int(cpu[5])) / tick  # idle + iowait
    totals["machine_steal"] = int(cpu[8]) / tick
    return totals


def cores_used(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    """Average cores each process group used between two cpu_by_process() readings."""
    return {name: round((after[name] - before.get(name, 0.0)) / wall, 2) for name in after}
