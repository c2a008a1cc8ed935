"""HTTP routes of generation: models, jobs and takes, usage, and the gateway's webhook."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, HeaderParameter, JSONBody

from backend.errors import BadRequest, problems
from backend.generation import service
from backend.generation.schemas import Generation, GenerationCreate, Model, Usage
from backend.idempotency import require_key
from backend.pagination import CursorParam, Limit, Page
from backend.ratelimit import Rule, enforce
from backend.redis_pool import Keys
from backend.runtime import ConnDep, CursorsDep, GenerationDep, LimiterDep, RedisDep, SettingsDep, ViewerDep

log = structlog.get_logger()

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description="Required. A retry with the same key and body returns the same generation.",
    ),
]


class ModelController(Controller):
    path = "/v1/models"
    tags = ["generation"]

    @get("", summary="The video models this server offers")
    async def list_models(self, generation: GenerationDep) -> list[Model]:
        return [
            Model(
                id=m.id,
                label=m.label,
                provider=m.provider,
                seconds=m.seconds,
                sizes=m.sizes,
                default_size=m.default_size or m.sizes[0],
                price_per_second_minor=m.price_per_second_minor,
                currency=m.currency,
                fallbacks=m.fallbacks,
            )
            for m in generation.models.available()
        ]


class GenerationController(Controller):
    path = "/v1/generations"
    tags = ["generation"]

    @post(
        "",
        status_code=202,
        summary="Generate takes from a prompt",
        description=(
            "Screens the prompt, checks cameo consent and the remix parent, reserves the daily "
            "allowance and queues one job per take. Needs an `Idempotency-Key`: the same key and "
            "body return the same generation (200), the same key with another body is a 422."
        ),
        responses=problems(400, 401, 403, 404, 422, 429),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[GenerationCreate],
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        limiter: LimiterDep,
        generation: GenerationDep,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Generation]:
        key = require_key(idempotency_key)
        await enforce(
            request, limiter, Rule("generations", settings.generations_per_hour, 3600), str(viewer.user_id)
        )
        job, created = await service.create_generation(
            conn, viewer=viewer, data=data, idempotency_key=key, models=generation.models, settings=settings
        )
        return Response(job, status_code=202 if created else 200)

    @get("", summary="Your generations, newest first", responses=problems(400, 401))
    async def list_generations(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Generation]:
        before = int(cursors.decode("generations", cursor)[0]) if cursor else None
        items = await service.list_generations(conn, user_id=viewer.user_id, before_id=before, limit=limit)
        next_cursor = cursors.encode("generations", [items[-1].id]) if len(items) == limit else None
        return Page(items=items, next_cursor=next_cursor)

    @get("/usage", summary="Today's allowance and your spend", responses=problems(401))
    async def usage(self, conn: ConnDep, viewer: ViewerDep, settings: SettingsDep) -> Usage:
        return await service.usage(conn, viewer=viewer, settings=settings)

    @get("/{generation_id:int}", summary="A generation with each take's state", responses=problems(401, 404))
    async def get_one(self, conn: ConnDep, viewer: ViewerDep, generation_id: FromPath[int]) -> Generation:
        return await service.get_generation(conn, user_id=viewer.user_id, job_id=generation_id)

    @delete(
        "/{generation_id:int}",
        status_code=200,
        summary="Cancel the takes that have not finished",
        description="Their reserved seconds are given back; finished takes are kept.",
        responses=problems(401, 404, 409),
    )
    async def cancel(self, conn: ConnDep, viewer: ViewerDep, generation_id: FromPath[int]) -> Generation:
        return await service.cancel_generation(conn, user_id=viewer.user_id, job_id=generation_id)


class ProviderWebhookController(Controller):
    path = "/v1/generation/webhooks"
    tags = ["generation"]

    @post(
        "/replicate",
        status_code=204,
        summary="Replicate's prediction webhook (Standard Webhooks signed)",
        description=(
            "Verified against RIFFLE_REPLICATE_WEBHOOK_SECRET; replays and stale timestamps are refused."
        ),
        responses=problems(400, 404),
    )
    async def replicate(
        self, request: Request[Any, Any, Any], conn: ConnDep, settings: SettingsDep, redis: RedisDep
    ) -> None:
        from backend.webhooks import WebhookRefused, verify_standard_webhook

        if not settings.replicate_webhook_secret:
            raise BadRequest("webhooks are not configured here", code="webhooks_disabled")
        body = await request.body()
        try:
            webhook_id, payload = verify_standard_webhook(
                settings.replicate_webhook_secret, dict(request.headers), body
            )
        except WebhookRefused as exc:
            raise BadRequest(f"webhook refused: {exc}", code="bad_webhook") from None
        seen = Keys(settings.redis_prefix, "gen")("webhook", webhook_id)
        if not await redis.set(seen, b"1", nx=True, ex=600):
            raise BadRequest("this webhook was already delivered", code="webhook_replayed")
        prediction_id = str(payload.get("id", ""))
        take_id = await service.take_for_provider_job(
            conn, provider="replicate", provider_job_id=prediction_id
        )
        if take_id is None:
            log.info("generation.webhook.unknown", prediction_id=prediction_id)
            return
        # The webhook only wakes the take up; run_take reads the prediction itself, so a forged
        # or reordered body could not change what is stored.
        from backend import outbox

        await outbox.add(conn, "run_take", {"take_id": take_id}, job_key=f"take:{take_id}:hook:{webhook_id}")
