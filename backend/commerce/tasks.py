"""Commerce jobs: booking cameo licence fees in the ledger."""

from __future__ import annotations

from typing import Any

import structlog
from saq import CronJob

from backend.commerce import ledger
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


TASKS: list[Task] = [book_licence_fees]
CRON: list[CronJob[Any]] = [CronJob(book_licence_fees, cron="* * * * *", unique=True)]
