"""Worker tasks of the product studio: scoring each finished take."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import structlog

from backend.commerce import studio
from backend.commerce.judge import HeuristicJudge, Judge, TakeEvidence, Verdict, VisionJudge
from backend.commerce.llm import ChatClient, ChatError
from backend.db import transaction
from backend.generation import service as generation
from backend.media import service as media
from backend.settings import Settings
from backend.worker import Task, resources

log = structlog.get_logger()


def build_judge(settings: Settings) -> Judge:
    """The judge the settings ask for (``RIFFLE_JUDGE_BACKEND``)."""
    if settings.judge_backend == "vision":
        return VisionJudge(
            ChatClient(
                base_url=settings.judge_base_url, api_key=settings.judge_api_key, model=settings.judge_model
            )
        )
    return HeuristicJudge()


async def judge_take(judge: Judge, evidence: TakeEvidence) -> Verdict:
    """The configured judge's verdict, or the heuristic's when a model judge cannot answer: a
    take is never left unscored because an outside service is down."""
    try:
        return await judge.score(evidence)
    except ChatError as exc:
        log.warning("studio.judge.failed", judge=judge.name, error=str(exc))
        return await HeuristicJudge().score(evidence)


async def score_take(ctx: dict[str, Any], *, take_id: int) -> float | None:
    """Score a succeeded take; safe to run twice (the score row is replaced)."""
    res = resources(ctx)
    async with transaction(res.pool) as conn:
        take = await generation.finished_take(conn, take_id)
        if take is None:
            return None
        video = await media.get_media(conn, take.video_media_id)
        poster = await media.get_media(conn, take.poster_media_id)
        product = await studio.product_facts(conn, take.product_id) if take.product_id else None
    if video is None or poster is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix=f"judge-{take_id}-"))
    judge = build_judge(res.settings)
    try:
        path = folder / "take.mp4"
        data = await media.read_bytes(res.storage, video)
        path.write_bytes(data)
        evidence = TakeEvidence(
            prompt=take.provider_prompt,
            requested_seconds=take.requested_seconds,
            requested_width=take.requested_width,
            requested_height=take.requested_height,
            video_path=path,
            video_bytes=len(data),
            poster=await media.read_bytes(res.storage, poster),
            product=product,
        )
        verdict = await judge_take(judge, evidence)
    finally:
        await judge.aclose()
        shutil.rmtree(folder, ignore_errors=True)
    async with transaction(res.pool) as conn:
        await studio.save_score(conn, take_id=take_id, verdict=verdict)
    log.info("studio.take.scored", take_id=take_id, judge=verdict.judge, overall=verdict.overall)
    return verdict.overall


TASKS: list[Task] = [score_take]
