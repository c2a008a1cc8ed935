"""Worker tasks of generation: run a take, watch for stalled takes, cancel at the provider.

``run_take`` is safe to deliver more than once: a Redis lock keeps two workers off the same
take, every state change is a guarded UPDATE, and a take that already has a provider job is
polled, never submitted again. Long provider jobs do not hold a worker: after a polling budget
the task re-enqueues itself for later. Errors are retried with exponential backoff and jitter
(``rate_limited``, ``transient``), then the model's fallbacks are tried; a policy refusal is
final at once. A failed take is never charged.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from saq import CronJob

from backend.cancel import raise_if_cancelled
from backend.db import transaction
from backend.generation import service
from backend.generation.engine import GenerationEngine
from backend.generation.models import ModelSpec
from backend.generation.providers.base import ProviderError, TakeRequest, TakeState, TakeStatus, VideoProvider
from backend.media import service as media
from backend.media.video import InvalidVideo, extract_poster, probe_video
from backend.realtime import service as realtime
from backend.redis_pool import Keys
from backend.settings import Settings
from backend.worker import Resources, Task, resources

log = structlog.get_logger()

POLL_BUDGET_S = 30.0  # how long one delivery polls before handing the take back to the queue
LOCAL_POLL_S = 0.1
SLOT_WAIT_S = 5.0  # how long a delivery waits for a provider slot before going back to the queue
TOUCH_EVERY_S = 5.0  # how often an unchanged take tells the watchdog it is still alive
REMOTE_POLL_S = 3.0
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 120.0


def _backoff(attempt: int, retry_after_s: float | None) -> float:
    if retry_after_s is not None:
        return max(retry_after_s, 1.0)
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(attempt - 1, 0))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not security)


def job_options(settings: Settings) -> dict[str, dict[str, Any]]:
    """Queue options of this domain's tasks.

    A delivery polls for POLL_BUDGET_S and beats its heartbeat while it does, so a worker that
    dies mid-take is noticed by SAQ's sweep after the heartbeat lapses and the job runs again
    elsewhere, once the take's lock (two heartbeats long) has lapsed too.
    """
    return {
        "run_take": {
            "timeout": int(POLL_BUDGET_S * 6),
            "heartbeat": settings.take_heartbeat_s,
            "retries": 10,
        },
    }


def _lock_s(settings: Settings) -> int:
    return 2 * settings.take_heartbeat_s


async def _enqueue(res: Resources, take_id: int, *, delay_s: float, reason: str) -> None:
    # A fresh key per hand-back: SAQ keeps finished jobs' keys for a while and would drop a
    # re-enqueue that reused one.
    await res.queue.enqueue(
        "run_take",
        take_id=take_id,
        key=f"take:{take_id}:{reason}:{time.time_ns()}",
        scheduled=int(time.time() + delay_s),
        **job_options(res.settings)["run_take"],
    )


async def _publish(res: Resources, user_id: int, event: dict[str, Any]) -> None:
    try:
        await realtime.publish(res.redis, res.settings.redis_prefix, user_id, event)
    except Exception as exc:  # progress is a courtesy; the durable state is in PostgreSQL
        log.warning("generation.progress.publish_failed", error=repr(exc))


async def run_take(ctx: dict[str, Any], *, take_id: int) -> None:
    res = resources(ctx)
    lock_key = Keys(res.settings.redis_prefix, "gen")("take-lock", take_id)
    token = str(time.time_ns())
    lock_s = _lock_s(res.settings)
    if not await res.redis.set(lock_key, token, nx=True, ex=lock_s):
        # Another delivery holds the take, or held it and died: look again once its lock
        # would have lapsed, so a killed worker delays a take but never strands it.
        log.info("generation.take.busy", take_id=take_id)
        await _enqueue(res, take_id, delay_s=lock_s / 2, reason="busy")
        return
    job = ctx.get("job")

    beat_every = max(0.5, res.settings.take_heartbeat_s / 3)
    last_beat = time.monotonic()

    async def heartbeat() -> None:
        nonlocal last_beat
        if time.monotonic() - last_beat < beat_every:
            return
        last_beat = time.monotonic()
        await res.redis.expire(lock_key, lock_s)
        if job is not None:
            await job.update()

    try:
        await _run(res, take_id, heartbeat)
    finally:
        # Release only our own lock (it may have lapsed and been taken by another worker).
        if (await res.redis.get(lock_key)) == token.encode():
            await res.redis.delete(lock_key)


async def _run(res: Resources, take_id: int, heartbeat: Callable[[], Awaitable[None]]) -> None:
    engine = res.generation
    async with transaction(res.pool) as conn:
        run = await service.load_take_run(conn, take_id)
    if run is None or run.finished:
        return
    spec = engine.models.get(run.model)
    provider = engine.providers[spec.provider]
    holder = f"take:{take_id}"
    if not await engine.slots.acquire_within(provider.name, holder, within_s=SLOT_WAIT_S):
        await _enqueue(res, take_id, delay_s=random.uniform(1.0, 3.0), reason="cap")  # noqa: S311
        return
    release_slot = True
    try:
        provider_job_id = run.provider_job_id
        if provider_job_id is None:
            try:
                provider_job_id = await provider.submit(await _request(res, run, spec))
            except ProviderError as err:
                await _handle_error(res, run, spec, err)
                return
            async with transaction(res.pool) as conn:
                if not await service.mark_submitted(
                    conn, take_id=take_id, provider=provider.name, provider_job_id=provider_job_id
                ):
                    await provider.cancel(provider_job_id)  # canceled while we submitted
                    return
            log.info("generation.take.submitted", take_id=take_id, provider=provider.name, model=spec.id)
        finished = await _poll_until_done(res, run, spec, provider, provider_job_id, heartbeat)
        release_slot = finished
    finally:
        if release_slot:
            await engine.slots.release(provider.name, holder)


async def _poll_until_done(
    res: Resources,
    run: service.TakeRun,
    spec: ModelSpec,
    provider: VideoProvider,
    provider_job_id: str,
    heartbeat: Callable[[], Awaitable[None]],
) -> bool:
    """Poll within this delivery's budget; True when the take reached an end."""
    deadline = time.monotonic() + POLL_BUDGET_S
    interval = LOCAL_POLL_S if provider.name == "local" else REMOTE_POLL_S
    last_progress = -1
    last_touch = time.monotonic()
    while True:
        raise_if_cancelled()
        try:
            status = await provider.poll(provider_job_id)
        except ProviderError as err:
            if not err.retryable:
                await _handle_error(res, run, spec, err)
                return True
            # The call failed, not the take: the provider job is still running (and paid for).
            # Ask again later; submitting anew would start, and pay for, a second one. A
            # provider that stays silent is bounded by the watchdog's stall timeout.
            delay = _backoff(2, err.retry_after_s)
            log.info(
                "generation.take.poll_failed", take_id=run.take_id, kind=err.kind, delay_s=round(delay, 1)
            )
            await _enqueue(res, run.take_id, delay_s=delay, reason="poll-retry")
            return False
        if status.state == TakeState.SUCCEEDED:
            await _finish(res, run, spec, provider, status)
            return True
        if status.state in (TakeState.FAILED, TakeState.CANCELED):
            stopped = status.error or ProviderError("fatal", "the video service stopped this take")
            await _handle_error(res, run, spec, stopped)
            return True
        progress = status.progress or 0
        still_open = True
        if progress != last_progress:
            async with transaction(res.pool) as conn:
                still_open = await service.mark_progress(conn, take_id=run.take_id, progress=progress)
            last_touch = time.monotonic()
        elif time.monotonic() - last_touch > TOUCH_EVERY_S:
            async with transaction(res.pool) as conn:
                await service.touch(conn, take_id=run.take_id)
            last_touch = time.monotonic()
        if not still_open:  # canceled meanwhile
            await provider.cancel(provider_job_id)
            return True
        if progress != last_progress:
            last_progress = progress
            await _publish(
                res,
                run.user_id,
                {
                    "type": "generation.progress",
                    "generation_id": run.job_id,
                    "take_id": run.take_id,
                    "progress": progress,
                },
            )
        await heartbeat()
        if time.monotonic() > deadline:
            await _enqueue(res, run.take_id, delay_s=interval, reason="poll")
            return False
        await asyncio.sleep(interval)


async def _request(res: Resources, run: service.TakeRun, spec: ModelSpec) -> TakeRequest:
    reference: bytes | None = None
    reference_type: str | None = None
    if run.reference_media_id is not None:
        async with transaction(res.pool) as conn:
            upload = await media.get_media(conn, run.reference_media_id)
        if upload is not None:
            reference = await media.read_bytes(res.storage, upload)
            reference_type = upload.content_type
    return TakeRequest(
        prompt=run.provider_prompt,
        model=spec.provider_model,
        seconds=run.seconds,
        width=run.width,
        height=run.height,
        seed=run.seed,
        reference_image=reference,
        reference_image_type=reference_type,
        webhook_url=_webhook_url(res, spec),
        extra_input=dict(spec.extra_input),
    )


def _webhook_url(res: Resources, spec: ModelSpec) -> str | None:
    if spec.provider == "replicate" and res.settings.replicate_webhook_secret:
        return f"{res.settings.base_url}/v1/generation/webhooks/replicate"
    return None


async def _finish(
    res: Resources, run: service.TakeRun, spec: ModelSpec, provider: VideoProvider, status: TakeStatus
) -> None:
    """Download, check and store the video and its poster, then record the take and its draft."""
    engine = res.generation
    folder = engine.work_dir / f"take-{run.take_id}-{time.time_ns()}"
    folder.mkdir(parents=True)
    try:
        video_path, poster_path = folder / "video.mp4", folder / "poster.jpg"
        try:
            await provider.download(status, video_path)
            info = await asyncio.to_thread(probe_video, video_path)
            poster_w, poster_h = await asyncio.to_thread(extract_poster, video_path, poster_path)
        except ProviderError as err:
            await _handle_error(res, run, spec, err)
            return
        except InvalidVideo as exc:
            await _handle_error(
                res, run, spec, ProviderError("transient", f"the video came back unusable: {exc}")
            )
            return
        async with transaction(res.pool) as conn:
            video = await media.store_file(
                conn,
                res.storage,
                owner_id=run.user_id,
                kind="video",
                source=video_path,
                content_type="video/mp4",
                width=info.width,
                height=info.height,
                duration_ms=info.duration_ms,
            )
            poster = await media.store_file(
                conn,
                res.storage,
                owner_id=run.user_id,
                kind="poster",
                source=poster_path,
                content_type="image/jpeg",
                width=poster_w,
                height=poster_h,
            )
            clip_id = await service.mark_succeeded(
                conn,
                run=run,
                spec=spec,
                video_media_id=video.id,
                poster_media_id=poster.id,
                duration_ms=info.duration_ms,
                width=info.width,
                height=info.height,
            )
            if clip_id is None:  # canceled or finished elsewhere: keep nothing
                await media.delete_media(conn, [video.id, poster.id])
                return
        log.info("generation.take.stored", take_id=run.take_id, clip_id=clip_id, model=spec.id)
        await _publish(
            res,
            run.user_id,
            {
                "type": "generation.take.succeeded",
                "generation_id": run.job_id,
                "take_id": run.take_id,
                "clip_id": clip_id,
            },
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _handle_error(res: Resources, run: service.TakeRun, spec: ModelSpec, err: ProviderError) -> None:
    engine = res.generation
    attempts = run.attempts + 1
    if err.retryable and attempts < res.settings.take_max_attempts:
        async with transaction(res.pool) as conn:
            requeued = await service.mark_retry(
                conn,
                take_id=run.take_id,
                attempts=attempts,
                model=spec.id,
                fallback_from=None,
                error_code=err.code,
                error_message=err.message,
            )
        if requeued:
            delay = _backoff(attempts, err.retry_after_s)
            log.info(
                "generation.take.retry",
                take_id=run.take_id,
                attempt=attempts,
                delay_s=round(delay, 1),
                kind=err.kind,
            )
            await _enqueue(res, run.take_id, delay_s=delay, reason=f"retry{attempts}")
        return
    if err.kind != "policy":
        fallback = _next_fallback(engine, run, spec)
        if fallback is not None:
            async with transaction(res.pool) as conn:
                moved = await service.mark_retry(
                    conn,
                    take_id=run.take_id,
                    attempts=0,
                    model=fallback.id,
                    fallback_from=spec.id,
                    error_code=err.code,
                    error_message=err.message,
                )
            if moved:
                log.info("generation.take.fallback", take_id=run.take_id, source=spec.id, target=fallback.id)
                await _enqueue(res, run.take_id, delay_s=0, reason=f"fallback-{fallback.id}")
            return
    code = "policy_refusal" if err.kind == "policy" else f"provider_{err.kind}"
    async with transaction(res.pool) as conn:
        failed = await service.mark_failed(conn, run=run, code=code, message=err.message)
    if failed:
        log.info("generation.take.failed", take_id=run.take_id, code=code)
        await _publish(
            res,
            run.user_id,
            {
                "type": "generation.take.failed",
                "generation_id": run.job_id,
                "take_id": run.take_id,
                "error": {"code": code, "message": err.message},
            },
        )


def _next_fallback(engine: GenerationEngine, run: service.TakeRun, spec: ModelSpec) -> ModelSpec | None:
    """The next model after ``spec`` in the job's fallback chain that can make the same clip."""
    chain = engine.models.fallback_chain(run.job_model)
    size = f"{run.width}x{run.height}"
    after = False
    for candidate in chain:
        if candidate.id == spec.id:
            after = True
            continue
        if after and run.seconds in candidate.seconds and size in candidate.sizes:
            return candidate
    return None


async def watch_takes(ctx: dict[str, Any]) -> int:
    """Nothing stays "processing" forever: a take without progress for the stall timeout is
    handed back to the queue (it resumes polling its provider job) or, out of attempts, failed."""
    res = resources(ctx)
    async with transaction(res.pool) as conn:
        stalled = await service.stalled_takes(conn, older_than_s=res.settings.take_stall_timeout_s)
    for take_id, attempts in stalled:
        if attempts + 1 >= res.settings.take_max_attempts:
            async with transaction(res.pool) as conn:
                run = await service.load_take_run(conn, take_id)
                if run is not None and not run.finished:
                    await service.mark_failed(
                        conn,
                        run=run,
                        code="stalled",
                        message="the video service stopped answering; nothing was charged",
                    )
            continue
        async with transaction(res.pool) as conn:
            await conn.execute(
                "UPDATE takes SET attempts = attempts + 1, progressed_at = now() WHERE id = $1", take_id
            )
        await _enqueue(res, take_id, delay_s=0, reason="watchdog")
    if stalled:
        log.info("generation.watchdog", stalled=len(stalled))
    return len(stalled)


async def cancel_provider_take(ctx: dict[str, Any], *, provider: str, provider_job_id: str) -> None:
    engine = resources(ctx).generation
    adapter = engine.providers.get(provider)
    if adapter is not None:
        with contextlib.suppress(ProviderError):
            await adapter.cancel(provider_job_id)


TASKS: list[Task] = [run_take, cancel_provider_take, watch_takes]
CRON: list[CronJob[Any]] = [CronJob(watch_takes, cron="* * * * *", unique=True)]
