"""HTTP routes of notifications."""

from __future__ import annotations

from litestar import Controller, get, post, put
from litestar.params import JSONBody

from backend.errors import problems
from backend.notifications import service
from backend.notifications.service import Notification, NotificationSettings, ReadUpTo, UnreadCount
from backend.pagination import CursorParam, Limit, Page
from backend.runtime import ConnDep, CursorsDep, ViewerDep


class NotificationController(Controller):
    path = "/v1/notifications"
    tags = ["notifications"]

    @get("", summary="Your notifications, newest first", responses=problems(400, 401))
    async def list_notifications(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        cursor: CursorParam = None,
        limit: Limit = 30,
    ) -> Page[Notification]:
        before = int(cursors.decode("notifications", cursor)[0]) if cursor else None
        items = await service.page(conn, user_id=viewer.user_id, before_id=before, limit=limit)
        next_cursor = cursors.encode("notifications", [items[-1].id]) if len(items) == limit else None
        return Page(items=items, next_cursor=next_cursor)

    @post(
        "/read",
        status_code=200,
        summary="Mark your notifications read up to an id",
        responses=problems(400, 401, 422),
    )
    async def read(self, conn: ConnDep, viewer: ViewerDep, data: JSONBody[ReadUpTo]) -> UnreadCount:
        return await service.mark_read(conn, user_id=viewer.user_id, up_to_id=data.up_to_id)

    @get("/unread-count", summary="How many of your notifications are unread", responses=problems(401))
    async def unread(self, conn: ConnDep, viewer: ViewerDep) -> UnreadCount:
        return await service.unread(conn, user_id=viewer.user_id)

    @get("/settings", summary="Which kinds of notification you get", responses=problems(401))
    async def get_settings(self, conn: ConnDep, viewer: ViewerDep) -> NotificationSettings:
        return await service.settings(conn, user_id=viewer.user_id)

    @put("/settings", summary="Turn kinds of notification on or off", responses=problems(400, 401, 422))
    async def put_settings(
        self, conn: ConnDep, viewer: ViewerDep, data: JSONBody[NotificationSettings]
    ) -> NotificationSettings:
        return await service.update_settings(conn, user_id=viewer.user_id, data=data)
