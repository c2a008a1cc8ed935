"""Structured JSON logs, the request id that ties a request's log lines together, and the
Prometheus metrics (request counts and latencies per route template, at ``/metrics``)."""

from __future__ import annotations

import hmac
import logging
import re
import sys
import time
import uuid
from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from backend.errors import Unauthorized

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
log = structlog.get_logger()


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stdout for our own events and for the libraries' (uvicorn, saq, asyncpg)."""
    numeric = logging.getLevelName(level)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # One line per job and per HTTP call of our own clients is noise at INFO.
    for name in ("saq", "httpx"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))


class RequestContextMiddleware:
    """Gives every HTTP request and WebSocket an id (the client's ``X-Request-ID`` when it is
    sane), binds it to the log context, echoes it in the response and logs one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                decision = scope["state"].get("ratelimit")
                if decision is not None:
                    existing = {k.lower() for k, _ in headers}
                    for name, value in decision.headers().items():
                        if name.lower().encode() not in existing:
                            headers.append((name.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if scope["type"] == "http":  # type: ignore[comparison-overlap]
                    log.info(
                        "http.request",
                        method=scope.get("method"),
                        path=scope.get("path"),
                        status=status,
                        ms=round((time.perf_counter() - started) * 1000, 2),
                    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            try:
                return str(value.decode("latin-1"))
            except UnicodeDecodeError:
                return None
    return None


# Paths are grouped by route template (/v1/clips/{clip_id:int}), so ids never become labels.
METRICS = PrometheusConfig(
    app_name="riffle",
    prefix="riffle",
    group_path=True,
    exclude_unhandled_paths=True,
    exclude=["^/metrics$", "^/healthz$", "^/readyz$"],
)


def metrics_controller(token: str | None) -> type[PrometheusController]:
    """``GET /metrics`` in Prometheus text format; with ``token`` set, only for a scraper that
    sends it as a bearer token. With several API processes, ``riffle serve`` points
    ``PROMETHEUS_MULTIPROC_DIR`` at a shared folder so any process answers for all."""

    def scraper_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if token is None:
            return
        sent = connection.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            raise Unauthorized("/metrics needs the metrics token")

    class Metrics(PrometheusController):
        include_in_schema = False
        guards = [scraper_only]

    return Metrics
