"""Commerce jobs: billing pay-per-thousand-views campaigns."""

from __future__ import annotations

from typing import Any

import structlog
from saq import CronJob

from backend.commerce import campaigns
from backend.db import transaction
from backend.worker import Resources, Task, resources

log = structlog.get_logger()


async def bill_campaign_views(ctx: dict[str, Any]) -> int:
    """Every minute: pay-per-thousand-views campaigns billed for the thousands their clip gained."""
    res: Resources = resources(ctx)
    async with transaction(res.pool) as conn:
        charged = await campaigns.bill_views(conn)
    if charged:
        log.info("commerce.campaigns.billed", campaigns=charged)
    return charged


TASKS: list[Task] = [bill_campaign_views]
CRON: list[CronJob[Any]] = [
    CronJob(bill_campaign_views, cron="* * * * *", unique=True),
]
