"""Per-user realtime events over Redis pub/sub.

Anything may publish (the API after a commit, a worker mid-job); ``/v1/stream`` sockets in
any API process subscribe to their user's channel (see :mod:`backend.realtime.routes`).
Events are hints: what a client missed while away comes back from the notifications table
(``since``) or the API itself, so publishing never fails the caller's work.
"""

from __future__ import annotations

from typing import Any

import msgspec

from backend.redis_pool import Keys, Redis


def keys(prefix: str) -> Keys:
    return Keys(prefix, "rt")


async def publish(redis: Redis, prefix: str, user_id: int, event: dict[str, Any]) -> int:
    """Send ``event`` to the user's live sockets; returns how many processes were listening."""
    listeners: int = await redis.publish(keys(prefix)("user", user_id), msgspec.json.encode(event))
    return listeners
