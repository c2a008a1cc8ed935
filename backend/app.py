"""The application factory: the one place that knows every domain's routes and tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar, Request, get
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from saq import CronJob

from backend import db
from backend.accounts import tasks as account_tasks
from backend.accounts.passwords import Passwords
from backend.accounts.routes import AccountController, SessionController, UserController
from backend.cursor import CursorCodec
from backend.errors import EXCEPTION_HANDLERS
from backend.health import healthz, readyz
from backend.observability import RequestContextMiddleware, configure_logging
from backend.ratelimit import Limiter
from backend.redis_pool import create_redis
from backend.runtime import DEPENDENCIES, Runtime
from backend.secrets_store import signing_key
from backend.settings import Settings, load_settings
from backend.worker import BackgroundWorker, Resources, Task, create_queue

log = structlog.get_logger()

ROUTES: list[Any] = [
    healthz,
    readyz,
    AccountController,
    SessionController,
    UserController,
]

WORKER_TASKS: list[Task] = [*account_tasks.TASKS]
WORKER_CRON: list[CronJob[Any]] = [*account_tasks.CRON]


def build_worker(res: Resources, settings: Settings) -> BackgroundWorker:
    return BackgroundWorker(
        res, tasks=WORKER_TASKS, cron=WORKER_CRON, concurrency=settings.worker_concurrency
    )


def create_app(settings: Settings) -> Litestar:
    if not settings.database_url or not settings.redis_url:
        raise ValueError("create_app needs database_url and redis_url; `riffle serve` fills them in")
    database_url, redis_url = settings.database_url, settings.redis_url

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        key = signing_key(settings)
        pool = await db.create_pool(
            database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        redis = create_redis(redis_url)
        queue = create_queue(settings, redis_url)
        await queue.connect()
        app.state.runtime = Runtime(
            settings=settings,
            pool=pool,
            redis=redis,
            queue=queue,
            limiter=Limiter(redis, settings.redis_prefix),
            cursors=CursorCodec(key),
            passwords=Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib),
            signing_key=key,
        )
        worker = None
        if settings.run_worker:
            res = Resources(settings=settings, pool=pool, redis=redis, queue=queue, signing_key=key)
            worker = build_worker(res, settings)
            await worker.start()
        try:
            yield
        finally:
            # Shut down every part even when one of them fails (say, Redis already gone).
            if worker is not None:
                await worker.stop()
            for close in (queue.disconnect, redis.aclose, pool.close):
                try:
                    await close()
                except Exception as exc:
                    log.warning("app.shutdown.step_failed", step=close.__qualname__, error=repr(exc))

    @get("/openapi.json", include_in_schema=False, media_type="application/json")
    async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
        schema: dict[str, Any] = request.app.openapi_schema.to_schema()
        return schema

    app = Litestar(
        route_handlers=[*ROUTES, openapi_json],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        cors_config=CORSConfig(
            allow_origins=["*"], allow_headers=["Authorization", "Content-Type", "Idempotency-Key"]
        ),
        openapi_config=OpenAPIConfig(
            title="Riffle API",
            version="0.1.0",
            description=(
                "The backend of an AI-native short-video community. Every error is "
                "`application/problem+json`; authenticate with `Authorization: Bearer <token>` "
                "from `POST /v1/sessions`."
            ),
            path="/docs",
            render_plugins=[ScalarRenderPlugin(path="/")],
        ),
        debug=False,
    )
    # Outermost, so that unmatched routes (404/405) get a request id and an access line too;
    # Litestar's own `middleware=` runs only for routes that matched.
    app.asgi_handler = RequestContextMiddleware(app.asgi_handler)
    return app


def create_app_from_env() -> Litestar:
    """Entry point for ASGI servers started with ``--factory`` (each worker process reads the
    environment that `riffle serve` prepared)."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
