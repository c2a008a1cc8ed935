"""Push committed notifications to their recipient's realtime channel."""

from __future__ import annotations

from typing import Any

from backend.notifications import service
from backend.realtime import service as realtime
from backend.worker import Task, resources


async def deliver_notification(ctx: dict[str, Any], *, notification_id: int) -> None:
    res = resources(ctx)
    async with res.pool.acquire() as conn:
        found = await service.delivery_event(conn, notification_id)
    if found is None:  # the recipient or the subject is gone
        return
    recipient_id, event = found
    await realtime.publish(res.redis, res.settings.redis_prefix, recipient_id, event)


TASKS: list[Task] = [deliver_notification]
