"""Background tasks of the accounts domain."""

from __future__ import annotations

from typing import Any

import structlog
from saq import CronJob

from backend.accounts import service as accounts
from backend.db import transaction
from backend.worker import Task, resources

log = structlog.get_logger()


async def prune_sessions(ctx: dict[str, Any]) -> int:
    """Delete sessions that expired or were revoked more than a week ago."""
    async with transaction(resources(ctx).pool) as conn:
        removed = await accounts.prune_sessions(conn)
    log.info("accounts.sessions.pruned", removed=removed)
    return removed


TASKS: list[Task] = [prune_sessions]
CRON: list[CronJob[Any]] = [CronJob(prune_sessions, cron="17 * * * *", unique=True)]
