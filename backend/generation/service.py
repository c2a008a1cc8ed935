"""Generation: jobs of several takes, the daily quota, and the take state machine.

The API side (:func:`create_generation`, :func:`cancel_generation`, reads) runs in the
request's transaction. The worker side (``tasks.py``) moves takes through
queued → submitted → in_progress → succeeded | failed | canceled with the ``mark_*`` functions
here, each one a guarded UPDATE so a late or duplicate delivery can never overwrite a take
that already finished (for instance one the user canceled meanwhile).
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg
import msgspec

from backend import idempotency, outbox
from backend.auth import Viewer
from backend.clips import service as clips
from backend.db import Conn
from backend.errors import Conflict, NotFound, RateLimited, ValidationFailed
from backend.generation import queries as q
from backend.generation.models import ModelSpec, ModelTable
from backend.generation.schemas import Generation, GenerationCreate, Take, TakeError, TakeScore, Usage
from backend.media import service as media
from backend.notifications import service as notifications
from backend.settings import Settings
from cameo import service as cameo
from moderation import screening

IDEMPOTENCY_SCOPE = "generation"
TERMINAL = frozenset({"succeeded", "failed", "canceled"})


def today() -> date:
    return datetime.now(UTC).date()


def quota_limit(settings: Settings, viewer: Viewer) -> int:
    return settings.generation_daily_seconds_teen if viewer.is_teen else settings.generation_daily_seconds


def _midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


# --- reads -----------------------------------------------------------------------------------


def _take(row: asyncpg.Record) -> Take:
    error = None
    if row["error_code"] and row["status"] in ("failed", "canceled", "queued"):
        error = TakeError(code=row["error_code"], message=row["error_message"] or "")
    return Take(
        id=row["id"],
        position=row["position"],
        status=row["status"],
        progress=row["progress"],
        model=row["model"],
        fallback_from=row["fallback_from"],
        provider=row["provider"],
        attempts=row["attempts"],
        error=error,
        cost_minor=row["cost_minor"],
        currency=row["currency"],
        clip_id=row["clip_id"],
        duration_ms=row["duration_ms"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        score=_score(row),
    )


def _score(row: asyncpg.Record) -> TakeScore | None:
    if row["overall"] is None:  # not judged yet
        return None
    return TakeScore(
        overall=row["overall"],
        realism=row["realism"],
        product_consistency=row["product_consistency"],
        voice_over=row["voice_over"],
        script_structure=row["script_structure"],
        judge=row["judge"],
    )


def _generation(row: asyncpg.Record, takes: list[Take]) -> Generation:
    return Generation(
        id=row["id"],
        status=row["status"],
        prompt=row["prompt"],
        model=row["model"],
        seconds=row["seconds"],
        size=f"{row['width']}x{row['height']}",
        takes_requested=row["takes_requested"],
        cameo_ids=list(row["cameo_ids"]),
        remix_of=row["remix_of"],
        product_id=row["product_id"],
        reference_image=row["reference_media_id"],
        cost_minor=sum(t.cost_minor for t in takes),
        currency=takes[0].currency if takes else "USD",
        takes=takes,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


async def _with_takes(conn: Conn, rows: list[asyncpg.Record]) -> list[Generation]:
    takes: dict[int, list[Take]] = {r["id"]: [] for r in rows}
    for take_row in await conn.fetch(q.TAKES_OF_JOBS, list(takes)):
        takes[take_row["job_id"]].append(_take(take_row))
    return [_generation(r, takes[r["id"]]) for r in rows]


async def get_generation(conn: Conn, *, user_id: int, job_id: int) -> Generation:
    row = await conn.fetchrow(q.JOB, job_id, user_id)
    if row is None:
        raise NotFound("no such generation")
    return (await _with_takes(conn, [row]))[0]


async def list_generations(
    conn: Conn, *, user_id: int, before_id: int | None, limit: int
) -> list[Generation]:
    return await _with_takes(conn, list(await conn.fetch(q.JOBS_PAGE, user_id, before_id, limit)))


async def usage(conn: Conn, *, viewer: Viewer, settings: Settings) -> Usage:
    day = today()
    reserved = await conn.fetchval(q.QUOTA_TODAY, viewer.user_id, day) or 0
    spend = await conn.fetchrow(q.SPEND, viewer.user_id, datetime.combine(day, time(0), tzinfo=UTC))
    assert spend is not None
    limit = quota_limit(settings, viewer)
    return Usage(
        day=day.isoformat(),
        limit_seconds=limit,
        reserved_seconds=reserved,
        remaining_seconds=max(limit - reserved, 0),
        resets_at=_midnight_after(day),
        spend_today_minor=spend["today"],
        spend_total_minor=spend["total"],
        currency="USD",
    )


# --- creating and canceling --------------------------------------------------------------------


async def _reserve_quota(conn: Conn, *, viewer: Viewer, seconds: int, settings: Settings) -> date:
    day = today()
    limit = quota_limit(settings, viewer)
    resets_at = _midnight_after(day)
    reserved = None
    if seconds <= limit:
        reserved = await conn.fetchval(q.RESERVE_QUOTA, viewer.user_id, day, seconds, limit)
    if reserved is None:
        retry_after = max(1, int((resets_at - datetime.now(UTC)).total_seconds()))
        raise RateLimited(
            f"this would pass your daily allowance of {limit} seconds of video; it resets at "
            f"{resets_at.isoformat()}",
            code="generation_quota_exceeded",
            headers={"Retry-After": str(retry_after)},
            extra={"resets_at": resets_at.isoformat(), "limit_seconds": limit},
        )
    return day


async def create_generation(
    conn: Conn,
    *,
    viewer: Viewer,
    data: GenerationCreate,
    idempotency_key: str,
    models: ModelTable,
    settings: Settings,
) -> tuple[Generation, bool]:
    """Accept a generation request: checks, quota, the job and its takes, and one queued run per
    take through the outbox. Returns the job and whether it was created now (False: replayed
    from the Idempotency-Key)."""
    fingerprint = idempotency.fingerprint(data)
    existing = await idempotency.claim(
        conn,
        user_id=viewer.user_id,
        scope=IDEMPOTENCY_SCOPE,
        key=idempotency_key,
        body_fingerprint=fingerprint,
    )
    if existing is not None:
        return await get_generation(conn, user_id=viewer.user_id, job_id=existing), False

    spec = models.get(data.model)
    width, height = spec.check(seconds=data.seconds, size=data.size)
    provider_prompt = data.prompt
    reference_media_id = data.reference_image
    cameo_ids = list(dict.fromkeys(data.cameo_ids))
    if data.reference_image is not None:
        await _check_reference_image(conn, viewer=viewer, media_id=data.reference_image)
        if data.product_id is None:
            # A picture of anyone could be uploaded; people appear only through verified cameos.
            raise ValidationFailed(
                "a reference image is taken only for a product shot (with product_id); to appear "
                "yourself, include your verified cameo",
                code="reference_not_allowed",
                field="reference_image",
            )
    if data.remix_of is not None:
        parent = await clips.check_remix_parent(conn, viewer_id=viewer.user_id, parent_id=data.remix_of)
        provider_prompt = f"{parent.prompt}\n\nRemix instruction: {data.prompt}"
        # The parent's poster seeds the picture for models that take an image.
        reference_media_id = reference_media_id or parent.poster_media_id
        # Whoever appears in the parent appears in the remix: authorised anew, against today's
        # consent, not the parent's.
        cameo_ids = list(dict.fromkeys([*cameo_ids, *parent.cameo_ids]))
    allowed = await cameo.authorize(
        conn, user_id=viewer.user_id, cameo_ids=cameo_ids, prompt=data.prompt, remix=data.remix_of is not None
    )
    if allowed.prompt_suffix:
        provider_prompt = f"{provider_prompt}\n\n{allowed.prompt_suffix}"
    # A cameo goes to the provider only as the reference of this one authorised generation.
    reference_media_id = reference_media_id or allowed.reference_media_id
    # Screened before anything is queued or charged; a real person named in the prompt must be
    # one of the verified cameos just authorised.
    verdict = await screening.classify(
        settings, data.prompt, teen=viewer.is_teen, prompt=True, people=allowed.people
    )
    if not verdict.allowed:
        raise ValidationFailed(
            verdict.reason or "this prompt can't be used",
            code="prompt_blocked",
            field="prompt",
            extra={"category": verdict.category},
        )
    if data.product_id is not None:
        await _check_product(conn, viewer=viewer, product_id=data.product_id)

    await _reserve_quota(conn, viewer=viewer, seconds=data.seconds * data.takes, settings=settings)
    job_id = await conn.fetchval(
        q.INSERT_JOB,
        viewer.user_id,
        data.prompt,
        provider_prompt,
        spec.id,
        data.seconds,
        width,
        height,
        data.takes,
        cameo_ids,
        data.remix_of,
        data.product_id,
        reference_media_id,
    )
    take_ids = [
        r["id"]
        for r in await conn.fetch(
            q.INSERT_TAKES,
            job_id,
            viewer.user_id,
            spec.id,
            data.seconds,
            spec.currency,
            secrets.randbelow(2**31),
            data.takes,
        )
    ]
    for take_id in take_ids:
        await outbox.add(conn, "run_take", {"take_id": take_id}, job_key=f"take:{take_id}:0")
    await idempotency.record(
        conn,
        user_id=viewer.user_id,
        scope=IDEMPOTENCY_SCOPE,
        key=idempotency_key,
        body_fingerprint=fingerprint,
        resource_id=job_id,
    )
    return await get_generation(conn, user_id=viewer.user_id, job_id=job_id), True


async def _check_reference_image(conn: Conn, *, viewer: Viewer, media_id: int) -> None:
    try:
        upload = await media.get_owned_upload(conn, owner_id=viewer.user_id, media_id=media_id)
    except NotFound:
        raise ValidationFailed(
            f"no upload {media_id} of yours", code="unknown_upload", field="reference_image"
        ) from None
    if upload.kind != "image":
        raise ValidationFailed(
            "a reference image must be an image upload", code="not_an_image", field="reference_image"
        )


async def _check_product(conn: Conn, *, viewer: Viewer, product_id: int) -> None:
    from backend.commerce import service as commerce

    if not await commerce.may_use_product(conn, user_id=viewer.user_id, product_id=product_id):
        raise ValidationFailed(f"unknown product {product_id}", code="unknown_product", field="product_id")


class CanceledTake(msgspec.Struct, kw_only=True):
    take_id: int
    provider: str | None
    provider_job_id: str | None


async def cancel_generation(conn: Conn, *, user_id: int, job_id: int) -> Generation:
    """Cancel every take that has not finished; their reserved seconds are given back and a job
    asks the providers to stop the ones already submitted."""
    job = await conn.fetchrow(q.JOB + " FOR UPDATE", job_id, user_id)
    if job is None:
        raise NotFound("no such generation")
    canceled = await conn.fetch(q.CANCEL_OPEN_TAKES, job_id)
    if not canceled:
        raise Conflict("every take of this generation has already finished", code="already_finished")
    await conn.execute(
        q.RELEASE_QUOTA,
        user_id,
        job["created_at"].astimezone(UTC).date(),
        sum(r["reserved_seconds"] for r in canceled),
    )
    for row in canceled:
        if row["provider_job_id"]:
            await outbox.add(
                conn,
                "cancel_provider_take",
                {"provider": row["provider"], "provider_job_id": row["provider_job_id"]},
            )
    await conn.fetchrow(q.REFRESH_JOB, job_id)
    return await get_generation(conn, user_id=user_id, job_id=job_id)


# --- the worker's transitions ------------------------------------------------------------------


class TakeRun(msgspec.Struct, kw_only=True):
    """Everything the worker needs to run one take."""

    take_id: int
    job_id: int
    user_id: int
    position: int
    status: str
    model: str
    provider: str | None
    provider_job_id: str | None
    attempts: int
    seconds: int
    width: int
    height: int
    seed: int | None
    provider_prompt: str
    prompt: str
    job_model: str
    cameo_ids: list[int]
    remix_of: int | None
    product_id: int | None
    reference_media_id: int | None
    reserved_seconds: int
    job_created_at: datetime

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


async def load_take_run(conn: Conn, take_id: int) -> TakeRun | None:
    row = await conn.fetchrow(q.TAKE_RUN, take_id)
    if row is None:
        return None
    return TakeRun(
        take_id=row["id"],
        job_id=row["job_id"],
        user_id=row["user_id"],
        position=row["position"],
        status=row["status"],
        model=row["model"],
        provider=row["provider"],
        provider_job_id=row["provider_job_id"],
        attempts=row["attempts"],
        seconds=row["job_seconds"],
        width=row["job_width"],
        height=row["job_height"],
        seed=row["seed"],
        provider_prompt=row["provider_prompt"],
        prompt=row["job_prompt"],
        job_model=row["job_model"],
        cameo_ids=list(row["cameo_ids"]),
        remix_of=row["remix_of"],
        product_id=row["product_id"],
        reference_media_id=row["reference_media_id"],
        reserved_seconds=row["reserved_seconds"],
        job_created_at=row["job_created_at"],
    )


async def mark_submitted(conn: Conn, *, take_id: int, provider: str, provider_job_id: str) -> bool:
    return await conn.fetchval(q.MARK_SUBMITTED, take_id, provider, provider_job_id) is not None


async def mark_progress(conn: Conn, *, take_id: int, progress: int) -> bool:
    return await conn.fetchval(q.MARK_PROGRESS, take_id, max(0, min(progress, 99))) is not None


async def touch(conn: Conn, *, take_id: int) -> None:
    await conn.execute(q.TOUCH, take_id)


async def mark_retry(
    conn: Conn,
    *,
    take_id: int,
    attempts: int,
    model: str,
    fallback_from: str | None,
    error_code: str,
    error_message: str,
) -> bool:
    row = await conn.fetchval(
        q.MARK_RETRY, take_id, attempts, model, fallback_from, error_code, error_message
    )
    return row is not None


async def mark_succeeded(
    conn: Conn,
    *,
    run: TakeRun,
    spec: ModelSpec,
    video_media_id: int,
    poster_media_id: int,
    duration_ms: int,
    width: int,
    height: int,
) -> int | None:
    """Record the finished take and write its draft clip; returns the clip id, or None when the
    take was canceled or finished by another delivery meanwhile (the caller discards its media)."""
    cost = spec.price_per_second_minor * run.seconds
    updated = await conn.fetchval(
        q.MARK_SUCCEEDED,
        run.take_id,
        video_media_id,
        poster_media_id,
        duration_ms,
        width,
        height,
        cost,
        spec.currency,
    )
    if updated is None:
        return None
    clip_id = await clips.create_draft(
        conn,
        clips.DraftInput(
            author_id=run.user_id,
            take_id=run.take_id,
            job_id=run.job_id,
            prompt=run.prompt,
            model=spec.id,
            provider=spec.provider,
            cost_minor=cost,
            currency=spec.currency,
            video_media_id=video_media_id,
            poster_media_id=poster_media_id,
            duration_ms=duration_ms,
            width=width,
            height=height,
            cameo_ids=run.cameo_ids,
            product_id=run.product_id,
            parent_id=run.remix_of,
            provenance=provenance(run, spec),
        ),
    )
    await conn.execute(q.SET_CLIP, run.take_id, clip_id)
    await _job_changed(conn, run.job_id)
    # The judge scores every finished take after commit (backend.commerce.studio_tasks).
    await outbox.add(conn, "score_take", {"take_id": run.take_id}, job_key=f"score:{run.take_id}")
    return clip_id


class FinishedTake(msgspec.Struct, kw_only=True):
    """A succeeded take as the judge sees it: what was asked for and what came back."""

    take_id: int
    user_id: int
    prompt: str
    provider_prompt: str
    product_id: int | None
    requested_seconds: int
    requested_width: int
    requested_height: int
    video_media_id: int
    poster_media_id: int
    duration_ms: int
    width: int
    height: int


async def finished_take(conn: Conn, take_id: int) -> FinishedTake | None:
    row = await conn.fetchrow(q.FINISHED_TAKE, take_id)
    if row is None:
        return None
    return FinishedTake(**dict(row))


def provenance(run: TakeRun, spec: ModelSpec) -> dict[str, Any]:
    return {
        "ai_generated": True,
        "prompt": run.prompt,
        "model": spec.id,
        "provider": spec.provider,
        "provider_model": spec.provider_model,
        "maker_id": run.user_id,
        "generated_at": datetime.now(UTC).isoformat(),
        "generation_id": run.job_id,
        "take_id": run.take_id,
        "cameo_ids": run.cameo_ids,
        "parent_clip_id": run.remix_of,
    }


async def mark_failed(conn: Conn, *, run: TakeRun, code: str, message: str) -> bool:
    """Fail the take and give its reserved seconds back: a failed take is never charged."""
    reserved = await conn.fetchval(q.MARK_FAILED, run.take_id, code, message)
    if reserved is None:
        return False
    await conn.execute(q.RELEASE_QUOTA, run.user_id, run.job_created_at.astimezone(UTC).date(), reserved)
    await _job_changed(conn, run.job_id)
    return True


async def _job_changed(conn: Conn, job_id: int) -> None:
    """Refresh the job's status; when it has just finished, tell its owner."""
    await conn.execute(q.LOCK_JOB, job_id)
    changed = await conn.fetchrow(q.REFRESH_JOB, job_id)
    if changed is None or changed["status"] in ("queued", "in_progress", "canceled"):
        return
    succeeded = changed["status"] in ("succeeded", "partial")
    await notifications.notify(
        conn,
        recipient_id=changed["user_id"],
        kind="generation_succeeded" if succeeded else "generation_failed",
        job_id=job_id,
        data={"status": changed["status"]},
    )


async def stalled_takes(conn: Conn, *, older_than_s: int) -> list[tuple[int, int]]:
    return [(r["id"], r["attempts"]) for r in await conn.fetch(q.STALLED_TAKES, older_than_s)]


async def take_for_provider_job(conn: Conn, *, provider: str, provider_job_id: str) -> int | None:
    take_id = await conn.fetchval(q.TAKE_BY_PROVIDER_JOB, provider, provider_job_id)
    return int(take_id) if take_id is not None else None
