"""Notifications: written with the change that causes them, delivered live after commit.

A notification row is inserted in the caller's transaction together with an outbox entry, so
it exists exactly when the change does; the worker then pushes it to the recipient's realtime
channel. Nobody is told about their own actions, about kinds they turned off, or about
accounts they blocked, were blocked by, or muted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

import msgspec

from backend import outbox
from backend.accounts.schemas import Input, UserSummary
from backend.db import Conn
from backend.notifications import queries as q

Kind = Literal[
    "follow",
    "like",
    "comment",
    "reply",
    "mention",
    "remix",
    "generation_succeeded",
    "generation_failed",
    "cameo_request",  # someone asks to use your cameo
    "cameo_decision",  # your request was approved or denied; a grant was revoked
    "cameo_used",  # a clip featuring your cameo was published by someone else
    "cameo_appearance_removed",  # a cameo's owner removed your clip (data says why)
    "cameo_review",  # your cameo was verified or rejected
    "moderation",  # a moderator acted on your content or account (data: action, reason, case)
]
KINDS: tuple[str, ...] = get_args(Kind)


class Notification(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    actor: UserSummary | None
    clip_id: int | None
    generation_id: int | None
    comment_id: int | None
    data: dict[str, Any]
    created_at: datetime
    read: bool


class ReadUpTo(Input):
    up_to_id: int


class UnreadCount(msgspec.Struct, kw_only=True):
    unread: int


class NotificationSettings(Input):
    """Which kinds of notification you get; a kind left out keeps its current setting."""

    kinds: dict[Kind, bool]


def _notification(row: Any) -> Notification:
    actor = None
    if row["actor_id"] is not None:
        actor = UserSummary(
            id=row["actor_id"],
            handle=row["actor_handle"],
            display_name=row["actor_display_name"],
            avatar_url=row["actor_avatar_url"],
        )
    return Notification(
        id=row["id"],
        kind=row["kind"],
        actor=actor,
        clip_id=row["clip_id"],
        generation_id=row["job_id"],
        comment_id=row["comment_id"],
        data=row["data"],
        created_at=row["created_at"],
        read=row["read_at"] is not None,
    )


async def notify(
    conn: Conn,
    *,
    recipient_id: int,
    kind: Kind,
    actor_id: int | None = None,
    clip_id: int | None = None,
    job_id: int | None = None,
    comment_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> int | None:
    """Tell ``recipient_id`` about something; returns the notification id, or None if not told."""
    if actor_id is not None and actor_id == recipient_id:
        return None
    notification_id: int | None = await conn.fetchval(
        q.INSERT, recipient_id, actor_id, kind, clip_id, job_id, comment_id, data or {}
    )
    if notification_id is not None:
        await outbox.add(conn, "deliver_notification", {"notification_id": notification_id})
    return notification_id


async def delivery_event(conn: Conn, notification_id: int) -> tuple[int, dict[str, Any]] | None:
    """The recipient and the realtime event of one notification."""
    row = await conn.fetchrow(q.BY_ID, notification_id)
    if row is None:
        return None
    return row["recipient_id"], {
        "type": "notification",
        "notification": msgspec.to_builtins(_notification(row)),
    }


async def page(
    conn: Conn, *, user_id: int, before_id: int | None, limit: int, after_id: int | None = None
) -> list[Notification]:
    return [_notification(r) for r in await conn.fetch(q.PAGE, user_id, before_id, limit, after_id)]


async def mark_read(conn: Conn, *, user_id: int, up_to_id: int) -> UnreadCount:
    await conn.execute(q.MARK_READ, user_id, up_to_id)
    return await unread(conn, user_id=user_id)


async def unread(conn: Conn, *, user_id: int) -> UnreadCount:
    return UnreadCount(unread=int(await conn.fetchval(q.UNREAD, user_id)))


async def settings(conn: Conn, *, user_id: int) -> NotificationSettings:
    chosen = {r["kind"]: r["enabled"] for r in await conn.fetch(q.SETTINGS, user_id)}
    return NotificationSettings(kinds={kind: chosen.get(kind, True) for kind in KINDS})  # type: ignore[misc]


async def update_settings(conn: Conn, *, user_id: int, data: NotificationSettings) -> NotificationSettings:
    for kind, enabled in data.kinds.items():
        await conn.execute(q.SET_KIND, user_id, kind, enabled)
    return await settings(conn, user_id=user_id)
