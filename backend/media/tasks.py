"""Media jobs: purge the bytes of deleted media after a grace period."""

from __future__ import annotations

from typing import Any

import structlog
from saq import CronJob

from backend.db import transaction
from backend.media import service
from backend.worker import Task, resources

log = structlog.get_logger()

PURGE_GRACE_S = 600  # a signed URL handed out just before deletion may still be in a player's buffer


async def purge_media(ctx: dict[str, Any]) -> int:
    res = resources(ctx)
    purged = 0
    while True:
        async with transaction(res.pool) as conn:
            done = await service.purge_deleted(conn, res.storage, grace_s=PURGE_GRACE_S)
        purged += done
        if done == 0:
            break
    if purged:
        log.info("media.purged", count=purged)
    return purged


TASKS: list[Task] = [purge_media]
CRON: list[CronJob[Any]] = [CronJob(purge_media, cron="*/5 * * * *", unique=True)]
