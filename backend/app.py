"""The application factory: the one place that knows every domain's routes and tasks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar, Request, get
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from redis import exceptions as redis_errors
from saq import CronJob

from backend import openapi
from backend.accounts import queries as account_queries
from backend.accounts import session_cache
from backend.accounts import tasks as account_tasks
from backend.accounts.passwords import Passwords
from backend.accounts.routes import AccountController, SessionController, UserController
from backend.accounts.session_cache import SessionCache
from backend.clips import queries as clip_queries
from backend.clips import tasks as clip_tasks
from backend.clips.cards import CardCache, CardLoader
from backend.clips.routes import (
    ClipController,
    CommentController,
    DraftController,
    UserClipsController,
    shared_clip,
)
from backend.clips.service import ARRAY_PLAN_SIZE, Signer
from backend.commerce import studio_tasks
from backend.commerce import tasks as commerce_tasks
from backend.commerce.routes import (
    CampaignController,
    CommerceWebhookController,
    EarningsController,
    ProductController,
    ProductTagController,
    ShopController,
    tracked_redirect,
)
from backend.commerce.studio_routes import BreakdownController, StudioController
from backend.cursor import CursorCodec
from backend.db import Warm
from backend.errors import EXCEPTION_HANDLERS
from backend.generation import tasks as generation_tasks
from backend.generation.routes import GenerationController, ModelController, ProviderWebhookController
from backend.health import healthz, readyz
from backend.listen import listen
from backend.media import tasks as media_tasks
from backend.media.routes import MediaController, UploadController
from backend.notifications import tasks as notification_tasks
from backend.notifications.routes import NotificationController
from backend.observability import (
    RequestContextMiddleware,
    RequestMetrics,
    configure_logging,
    metrics_controller,
)
from backend.ratelimit import Limiter
from backend.realtime.hub import Hub
from backend.realtime.routes import stream
from backend.redis_mux import Multiplexed
from backend.runtime import DEPENDENCIES, Runtime
from backend.settings import Settings, load_settings
from backend.worker import BackgroundWorker, Resources, Task, open_resources
from cameo.routes import CameoController
from feed import cohorts as feed_cohorts
from feed import queries as feed_queries
from feed import tasks as feed_tasks
from feed import visibility as feed_visibility
from feed.routes import EventController, FeedController, FeedSignalController
from feed.visibility import VisibilityWatch
from moderation import screening
from moderation import tasks as moderation_tasks
from moderation.routes import AppealController, ModerationController, ProvenanceController, ReportController

log = structlog.get_logger()

YOUNG_COLLECTION_THRESHOLD = 20_000  # net new containers between young collections (CPython: 700)

ROUTES: list[Any] = [
    healthz,
    readyz,
    AccountController,
    SessionController,
    UserController,
    MediaController,
    UploadController,
    ModelController,
    GenerationController,
    ProviderWebhookController,
    DraftController,
    ClipController,
    CommentController,
    UserClipsController,
    shared_clip,
    NotificationController,
    EventController,
    FeedController,
    FeedSignalController,
    CameoController,
    StudioController,
    BreakdownController,
    ShopController,
    ProductController,
    ProductTagController,
    tracked_redirect,
    CommerceWebhookController,
    EarningsController,
    CampaignController,
    ReportController,
    AppealController,
    ModerationController,
    ProvenanceController,
    stream,
]

WORKER_TASKS: list[Task] = [
    *account_tasks.TASKS,
    *media_tasks.TASKS,
    *generation_tasks.TASKS,
    *notification_tasks.TASKS,
    *clip_tasks.TASKS,
    *feed_tasks.TASKS,
    *studio_tasks.TASKS,
    *commerce_tasks.TASKS,
    *moderation_tasks.TASKS,
]
WORKER_CRON: list[CronJob[Any]] = [
    *account_tasks.CRON,
    *media_tasks.CRON,
    *generation_tasks.CRON,
    *feed_tasks.CRON,
    *commerce_tasks.CRON,
]


def job_options(settings: Settings) -> dict[str, dict[str, Any]]:
    """Queue options per task where SAQ's defaults do not fit (see outbox.DEFAULT_JOB_OPTIONS)."""
    return {**generation_tasks.job_options(settings)}


def build_worker(res: Resources, settings: Settings) -> BackgroundWorker:
    return BackgroundWorker(
        res,
        tasks=WORKER_TASKS,
        cron=WORKER_CRON,
        concurrency=settings.worker_concurrency,
        job_options=job_options(settings),
        loops=feed_tasks.LOOPS,
    )


# What a For You page may ask PostgreSQL, prepared by every connection as it opens: signing in
# a token the process has not seen, what a viewer must not get from their taste cohort's list,
# cards rendered for anyone (the card loader) and for a viewer.
WARM_STATEMENTS: tuple[Warm, ...] = (
    (account_queries.AUTHENTICATE, (bytes(32), 1)),
    (feed_queries.NOT_FOR_VIEWER, (0, "{}")),
    (clip_queries.PUBLISHED, (None, [0] * ARRAY_PLAN_SIZE)),
    (clip_queries.MANY, (None, [0] * ARRAY_PLAN_SIZE)),
)


async def _load_cohort_heads(heads: feed_cohorts.Heads, mux: Multiplexed, settings: Settings) -> None:
    """Read the taste cohorts' lists' heads before the process takes traffic; without them
    (Redis away, no build yet) each is read when a first session first needs it."""
    try:
        log.info("feed.cohorts.heads_loaded", lists=await heads.load(mux, settings))
    except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
        log.warning("feed.cohorts.heads_not_loaded", error=repr(exc))


def create_app(settings: Settings) -> Litestar:
    if not settings.database_url or not settings.redis_url:
        raise ValueError("create_app needs database_url and redis_url; `riffle serve` fills them in")
    database_url, redis_url = settings.database_url, settings.redis_url

    screening.configure(settings)  # the deployment's term lists, before anything is screened

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_resources(settings, warm=WARM_STATEMENTS) as res:
            hub = Hub(res.redis, settings.redis_prefix, backlog=settings.stream_backlog)
            await hub.start()
            sessions = SessionCache(settings.auth_cache_s)
            visibility = VisibilityWatch()
            mux = Multiplexed(redis_url)
            cohort_heads = feed_cohorts.Heads()
            if settings.feed_cohorts:
                await _load_cohort_heads(cohort_heads, mux, settings)
            cards = CardCache(min(settings.card_cache_s, settings.media_url_ttl_s / 10))
            listener = asyncio.create_task(
                listen(database_url, {session_cache.CHANNEL: sessions, feed_visibility.CHANNEL: visibility}),
                name="listener",
            )
            app.state.runtime = Runtime(
                settings=settings,
                pool=res.pool,
                redis=res.redis,
                mux=mux,
                queue=res.queue,
                limiter=Limiter(res.redis, settings.redis_prefix),
                cursors=CursorCodec(res.signing_key),
                passwords=Passwords(
                    time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
                ),
                signing_key=res.signing_key,
                storage=res.storage,
                generation=res.generation,
                encoder=res.encoder,
                hub=hub,
                sessions=sessions,
                cards=cards,
                loader=CardLoader(cards, res.pool, Signer(settings, res.signing_key)),
                visibility=visibility,
                rankings=asyncio.Semaphore(settings.feed_rankings),
                cohort_heads=cohort_heads,
            )
            worker = build_worker(res, settings) if settings.run_worker else None
            if worker is not None:
                await worker.start()
            # What start-up built (routes, schemas, the pool) lives as long as the process:
            # moved out of the collector's reach, a full collection no longer walks it, which
            # took tens of milliseconds from whichever requests were in flight.
            gc.collect()
            gc.freeze()
            # A young collection every 700 net new containers (CPython's default) ran over a
            # hundred times a second under load; each promoted what the requests in flight
            # held, which then died old and brought a full collection every second or two,
            # 15-47 ms with every request waiting (bench/feed_load.py: 3-10% of the process's
            # time in the collector, by phase; 0.05 s in a whole run with this threshold).
            # Reference counting frees almost all a request allocates; the collector is only
            # needed for cycles.
            gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 10, 10)
            try:
                yield
            finally:
                if worker is not None:
                    await worker.stop()
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
                await hub.stop()
                await mux.aclose()

    @get("/openapi.json", include_in_schema=False, media_type="application/json")
    async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
        schema: dict[str, Any] = openapi.complete(request.app.openapi_schema.to_schema())
        return schema

    app = Litestar(
        route_handlers=[*ROUTES, openapi_json, metrics_controller(settings.metrics_token)],
        middleware=[RequestMetrics],
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
            render_plugins=[ScalarRenderPlugin(path="/"), openapi.CompleteJsonRenderPlugin()],
        ),
        debug=False,
        # Logging is ours (observability.configure_logging); Litestar's default would start a
        # queue-listener thread per app and never stop it.
        logging_config=None,
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
