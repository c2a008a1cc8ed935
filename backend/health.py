"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Response, get
from litestar.datastructures import State

from backend.errors import PROBLEM_JSON, problems
from backend.runtime import runtime


class Health(msgspec.Struct):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)


@get("/healthz", tags=["health"], summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@get("/readyz", tags=["health"], summary="PostgreSQL and Redis answer", responses=problems(503))
async def readyz(state: State) -> Response[Any]:
    rt = runtime(state)
    checks: dict[str, str] = {}

    async def database() -> None:
        async with rt.pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1", timeout=2)

    async def redis() -> None:
        await rt.redis.ping()

    for name, probe in (("postgres", database), ("redis", redis)):
        try:
            await asyncio.wait_for(probe(), timeout=3)
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; the reason goes in the body
            checks[name] = f"error: {type(exc).__name__}"
    if all(v == "ok" for v in checks.values()):
        return Response(Health(status="ready", checks=checks))
    body = {
        "type": "urn:riffle:problem:not_ready",
        "title": "Service unavailable",
        "status": 503,
        "code": "not_ready",
        "detail": "a dependency is not reachable",
        "checks": checks,
    }
    return Response(body, status_code=503, media_type=PROBLEM_JSON)
