"""Clip jobs: remove a deleted clip's files."""

from __future__ import annotations

from typing import Any

from backend.db import transaction
from backend.media import service as media
from backend.worker import Task, resources


async def purge_clip_media(ctx: dict[str, Any], *, media_ids: list[int]) -> None:
    """Hide the media at once; the media purge job deletes the bytes after its grace period."""
    async with transaction(resources(ctx).pool) as conn:
        await media.delete_media(conn, media_ids)


TASKS: list[Task] = [purge_clip_media]
