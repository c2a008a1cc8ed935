"""HTTP routes of the product studio: scripted generations for a product, breakdowns of clips."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from backend.commerce import studio
from backend.commerce.llm import ScriptWriter, build_writer
from backend.commerce.studio_schemas import (
    Breakdown,
    BreakdownCreate,
    ReplicateCreate,
    StudioCreate,
    StudioRun,
)
from backend.errors import problems
from backend.generation.routes import IdempotencyKey
from backend.idempotency import require_key
from backend.ratelimit import Rule, enforce
from backend.runtime import ConnDep, GenerationDep, LimiterDep, SettingsDep, ViewerDep
from backend.settings import Settings


@asynccontextmanager
async def _writer(settings: Settings) -> AsyncIterator[ScriptWriter]:
    writer = build_writer(settings)
    try:
        yield writer
    finally:
        await writer.aclose()


class StudioController(Controller):
    tags = ["studio"]

    @post(
        "/v1/products/{product_id:int}/studio",
        status_code=202,
        summary="Turn a product into scripted generations",
        description=(
            "Writes one script and storyboard per variant (hook, product demo, selling points, call "
            "to action) in the requested language, and creates one generation per variant carrying "
            "the product, so its drafts come back tagged with it. The caller must own the product's "
            "shop, or the shop must allow affiliates. Needs an `Idempotency-Key`."
        ),
        responses=problems(400, 401, 404, 422, 429),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        product_id: FromPath[int],
        data: JSONBody[StudioCreate],
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        limiter: LimiterDep,
        generation: GenerationDep,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[StudioRun]:
        key = require_key(idempotency_key)
        await enforce(
            request, limiter, Rule("generations", settings.generations_per_hour, 3600), str(viewer.user_id)
        )
        req = studio.RunRequest(product_id=product_id, breakdown_id=None, **_fields(data))
        async with _writer(settings) as writer:
            run, created = await studio.create_run(
                conn,
                viewer=viewer,
                req=req,
                idempotency_key=key,
                writer=writer,
                models=generation.models,
                settings=settings,
            )
        return Response(run, status_code=202 if created else 200)

    @get(
        "/v1/studio/{run_id:int}",
        summary="A studio run: its scripts, generations (takes best first) and drafts",
        responses=problems(401, 404),
    )
    async def get_one(self, conn: ConnDep, viewer: ViewerDep, run_id: FromPath[int]) -> StudioRun:
        return await studio.get_run(conn, user_id=viewer.user_id, run_id=run_id)


class BreakdownController(Controller):
    path = "/v1/breakdowns"
    tags = ["studio"]

    @post(
        "",
        status_code=201,
        summary="Break a published clip down into its structure and numbers",
        description=(
            "Hook, timed beats, pacing and call to action, with the clip's engagement. Any "
            "published clip the caller can see; the breakdown is the caller's own."
        ),
        responses=problems(400, 401, 404, 422),
    )
    async def create(self, data: JSONBody[BreakdownCreate], conn: ConnDep, viewer: ViewerDep) -> Breakdown:
        return await studio.create_breakdown(conn, viewer_id=viewer.user_id, clip_id=data.clip_id)

    @get("/{breakdown_id:int}", summary="One of your breakdowns", responses=problems(401, 404))
    async def get_one(self, conn: ConnDep, viewer: ViewerDep, breakdown_id: FromPath[int]) -> Breakdown:
        return await studio.get_breakdown(conn, user_id=viewer.user_id, breakdown_id=breakdown_id)

    @post(
        "/{breakdown_id:int}/replicate",
        status_code=202,
        summary="Replicate a breakdown's structure for your product",
        description=(
            "Runs the studio for `product_id` with scripts shaped like the studied clip: as many "
            "beats, the same share of time each, the same kind of hook. Needs an `Idempotency-Key`."
        ),
        responses=problems(400, 401, 404, 422, 429),
    )
    async def replicate(
        self,
        request: Request[Any, Any, Any],
        breakdown_id: FromPath[int],
        data: JSONBody[ReplicateCreate],
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        limiter: LimiterDep,
        generation: GenerationDep,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[StudioRun]:
        key = require_key(idempotency_key)
        breakdown = await studio.get_breakdown(conn, user_id=viewer.user_id, breakdown_id=breakdown_id)
        await enforce(
            request, limiter, Rule("generations", settings.generations_per_hour, 3600), str(viewer.user_id)
        )
        fields = _fields(data)
        if data.seconds is None:
            fields["seconds"] = studio.nearest_seconds(
                generation.models, data.model, breakdown.structure.duration_s
            )
        req = studio.RunRequest(product_id=data.product_id, breakdown_id=breakdown.id, **fields)
        async with _writer(settings) as writer:
            run, created = await studio.create_run(
                conn,
                viewer=viewer,
                req=req,
                idempotency_key=key,
                writer=writer,
                models=generation.models,
                settings=settings,
                shape=studio.script_shape(breakdown.structure),
                product_in_body=True,
            )
        return Response(run, status_code=202 if created else 200)


def _fields(data: StudioCreate | ReplicateCreate) -> dict[str, Any]:
    return {
        "goal": data.goal,
        "style": data.style,
        "language": data.language,
        "variants": data.variants,
        "seconds": data.seconds,
        "model": data.model,
        "size": data.size,
    }
