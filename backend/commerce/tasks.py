"""Commerce jobs: booking cameo licence fees in the ledger, billing campaigns for views."""

from __future__ import annotations

from typing import Any

import structlog
from saq import CronJob

from backend.commerce import campaigns, ledger
from backend.db import transaction
from backend.worker import Resources, Task, resources

log = structlog.get_logger()


async def book_licence_fees(ctx: dict[str, Any]) -> int:
    """Every minute: usage entries of licensed cameos not yet in the ledger, booked once each
    (the transaction's reference is the entry's id)."""
    res: Resources = resources(ctx)
    booked = 0
    while True:
        async with transaction(res.pool) as conn:
            done = await ledger.book_usage(conn)
        booked += done
        if done == 0:
            break
    if booked:
        log.info("commerce.licence_fees.booked", entries=booked)
    return booked


async def bill_campaign_views(ctx: dict[str, Any]) -> int:
    """Every minute: pay-per-thousand-views campaigns billed for the thousands their clip gained."""
    res: Resources = resources(ctx)
    async with transaction(res.pool) as conn:
        charged = await campaigns.bill_views(conn)
    if charged:
        log.info("commerce.campaigns.billed", campaigns=charged)
    return charged


TASKS: list[Task] = [book_licence_fees, bill_campaign_views]
CRON: list[CronJob[Any]] = [
    CronJob(book_licence_fees, cron="* * * * *", unique=True),
    CronJob(bill_campaign_views, cron="* * * * *", unique=True),
]
