"""``riffle``: serve the API (with the embedded servers when no URLs are set), run a worker,
apply migrations."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog

from backend import db
from backend.embedded import EmbeddedPostgres, EmbeddedRedis
from backend.observability import configure_logging
from backend.secrets_store import signing_key
from backend.settings import Settings, SettingsError, env_name, load_settings, settings_fields

log = structlog.get_logger()

EMBEDDED_DATABASE = "riffle"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@dataclass
class Services:
    """The PostgreSQL and Redis a command uses: configured URLs, or servers it started itself."""

    database_url: str
    redis_url: str | None
    started: list[Any] = field(default_factory=list)


@contextlib.contextmanager
def services(settings: Settings, *, need_redis: bool = True) -> Iterator[Services]:
    started: list[Any] = []
    try:
        database_url = settings.database_url
        if not database_url:
            pg = EmbeddedPostgres(Path(settings.data_dir) / "pg")
            admin_url = pg.start()
            started.append(pg)
            asyncio.run(db.ensure_database(admin_url, EMBEDDED_DATABASE))
            database_url = _with_database(admin_url, EMBEDDED_DATABASE)
        redis_url = settings.redis_url
        if need_redis and not redis_url:
            redis = EmbeddedRedis(Path(settings.data_dir) / "redis")
            redis_url = redis.start()
            started.append(redis)
        yield Services(database_url=database_url, redis_url=redis_url, started=started)
    finally:
        for server in reversed(started):
            with contextlib.suppress(Exception):
                server.stop()


def _export(settings: Settings) -> None:
    """Put the resolved settings in the environment, for worker processes the server spawns."""
    for name in settings_fields():
        value = getattr(settings, name)
        key = env_name(name)
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = str(value).lower() if isinstance(value, bool) else str(value)


def cmd_serve(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir", "workers"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.no_worker:
        overrides["run_worker"] = False
    settings = load_settings(**overrides)
    configure_logging(settings.log_level)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    signing_key(settings)  # create it once here, before worker processes race for it
    with services(settings) as svc:
        applied = asyncio.run(db.migrate_url(svc.database_url))
        settings = load_settings(**overrides, database_url=svc.database_url, redis_url=svc.redis_url)
        _export(settings)
        import uvicorn

        from backend.app import create_app

        print(f"Riffle API      {settings.base_url}", flush=True)
        print(f"OpenAPI (docs)  {settings.base_url}/docs", flush=True)
        print(f"OpenAPI (json)  {settings.base_url}/openapi.json", flush=True)
        if applied:
            print(f"applied migrations: {', '.join(applied)}", flush=True)
        common: dict[str, Any] = {
            "host": settings.host,
            "port": settings.port,
            "log_config": None,
            "access_log": False,
            "proxy_headers": settings.trust_forwarded_for,
            "timeout_graceful_shutdown": 10,
        }
        # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the handler
        # it found. The default one ends the process on the spot, before `services` stops the
        # embedded PostgreSQL (a daemon of its own, left running) and Redis; this one unwinds.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        if settings.workers == 1:
            uvicorn.run(create_app(settings), **common)
        else:
            _share_metrics(Path(settings.data_dir) / "metrics")
            uvicorn.run("backend.app:create_app_from_env", factory=True, workers=settings.workers, **common)
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _share_metrics(folder: Path) -> None:
    """Prometheus counters of several API processes, summed by whichever process is scraped
    (prometheus_client's multiprocess mode; the folder is emptied at each start)."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def cmd_worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    if not settings.database_url or not settings.redis_url:
        print(
            "riffle worker joins a running deployment: set RIFFLE_DATABASE_URL and RIFFLE_REDIS_URL "
            "(`riffle serve` already runs a worker inside the API process)",
            file=sys.stderr,
        )
        return 2
    asyncio.run(_run_worker(settings))
    return 0


async def _run_worker(settings: Settings) -> None:
    from backend.app import build_worker
    from backend.worker import open_resources
    from moderation import screening

    screening.configure(settings)
    async with open_resources(settings) as res:
        worker = build_worker(res, settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await worker.start()
        print("Riffle worker running; Ctrl-C stops it", flush=True)
        try:
            await stop.wait()
        finally:
            await worker.stop()


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    configure_logging(settings.log_level)
    with services(settings, need_redis=False) as svc:
        applied = asyncio.run(db.migrate_url(svc.database_url))
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="riffle", description="Riffle: the AI-native short-video backend.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the API and the background worker",
        description="Run the API and the background worker. Without RIFFLE_DATABASE_URL / RIFFLE_REDIS_URL "
        "it starts an embedded PostgreSQL (with pgvector) and a Redis server under the data dir.",
    )
    serve.add_argument("--host", help="address to listen on (RIFFLE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (RIFFLE_PORT, default 8000)")
    serve.add_argument(
        "--data-dir", help="data folder for embedded servers and media (RIFFLE_DATA_DIR, default .riffle)"
    )
    serve.add_argument("--workers", type=int, help="API processes (RIFFLE_WORKERS, default 1)")
    serve.add_argument(
        "--no-worker", action="store_true", help="do not run the background worker in the API processes"
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a standalone background worker against configured URLs")
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--data-dir", help="data folder of the embedded PostgreSQL (when no URL is set)")
    migrate.set_defaults(func=cmd_migrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except SettingsError as exc:
        print(f"riffle: {exc}", file=sys.stderr)
        return 2
    except db.MigrationError as exc:
        print(f"riffle: migrations: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
