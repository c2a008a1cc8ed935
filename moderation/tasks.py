"""Moderation jobs: fingerprinting published clips for near-copies."""

from __future__ import annotations

from typing import Any

from backend.db import transaction
from backend.worker import Task, resources
from moderation import duplicates


async def fingerprint_clip(ctx: dict[str, Any], *, clip_id: int) -> int | None:
    res = resources(ctx)
    async with transaction(res.pool) as conn:
        return await duplicates.fingerprint(
            conn, res.storage, clip_id=clip_id, throttle=res.settings.duplicates_per_day
        )


TASKS: list[Task] = [fingerprint_clip]
