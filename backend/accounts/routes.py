"""HTTP routes of accounts, sessions, profiles and the social graph."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody, Parameter

from backend.accounts import service as accounts
from backend.accounts.schemas import (
    AccountCreate,
    Connection,
    Me,
    MeUpdate,
    MuteCreate,
    Profile,
    Relationship,
    Session,
    SessionCreate,
    SessionCreated,
)
from backend.auth import Viewer
from backend.cursor import CursorCodec
from backend.db import Conn
from backend.errors import problems
from backend.pagination import CursorParam, Limit, Page, cursor_id, id_page
from backend.ratelimit import Rule, client_ip, enforce
from backend.runtime import (
    ConnDep,
    CursorsDep,
    LimiterDep,
    PasswordsDep,
    SettingsDep,
    ViewerDep,
    feed_changed,
)
from moderation import service as moderation

HandlePath = Parameter(min_length=3, max_length=30, pattern=r"^[A-Za-z0-9_]+$", description="User handle.")


class AccountController(Controller):
    path = "/v1"
    tags = ["accounts"]

    @post(
        "/accounts",
        status_code=201,
        summary="Sign up",
        description="Anyone may sign up. Handles and emails are unique case-insensitively.",
        responses=problems(409, 422, 429),
    )
    async def sign_up(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[AccountCreate],
        conn: ConnDep,
        passwords: PasswordsDep,
        limiter: LimiterDep,
        settings: SettingsDep,
    ) -> Me:
        ip = client_ip(request, settings.trust_forwarded_for)
        await enforce(request, limiter, Rule("signup:ip", settings.signup_limit_per_ip, 3600), ip)
        return await accounts.create_account(conn, data, passwords)

    @get("/me", summary="Your account", responses=problems(401))
    async def get_me(self, conn: ConnDep, viewer: ViewerDep) -> Me:
        return await accounts.get_me(conn, viewer.user_id)

    @patch("/me", summary="Change your profile", responses=problems(401, 422))
    async def update_me(self, conn: ConnDep, viewer: ViewerDep, data: JSONBody[MeUpdate]) -> Me:
        return await accounts.update_me(conn, viewer.user_id, data)


class SessionController(Controller):
    path = "/v1/sessions"
    tags = ["sessions"]

    @post(
        "",
        status_code=201,
        summary="Log in",
        description="Exchanges a handle or email and password for a bearer token. "
        "Attempts are limited per account and per client address. A suspended or banned account "
        "gets 403 with `until`, the decisions it may still appeal (`appealable`) and an "
        "`appeal_token` for `POST /v1/appeals`.",
        responses=problems(401, 403, 422, 429),
    )
    async def log_in(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SessionCreate],
        conn: ConnDep,
        passwords: PasswordsDep,
        limiter: LimiterDep,
        settings: SettingsDep,
        cursors: CursorsDep,
    ) -> SessionCreated:
        window = settings.login_limit_window_s
        ip = client_ip(request, settings.trust_forwarded_for)
        await enforce(request, limiter, Rule("login:ip", settings.login_limit_per_ip, window), ip)
        await enforce(
            request,
            limiter,
            Rule("login:account", settings.login_limit_per_account, window),
            data.login.lower(),
        )
        try:
            result = await accounts.log_in(
                conn,
                login=data.login,
                password=data.password,
                passwords=passwords,
                ttl_days=settings.session_ttl_days,
                user_agent=request.headers.get("user-agent", ""),
                ip=ip,
            )
        except accounts.AccountInactive as inactive:
            # No session, but the decisions behind it can still be appealed.
            inactive.extra |= await moderation.appeal_offer(conn, cursors, user_id=inactive.user_id)
            raise
        return SessionCreated(token=result.token, session=result.session, user=result.user)

    @get("", summary="Your live sessions", responses=problems(400, 401))
    async def list_sessions(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Session]:
        before = cursor_id(cursors, "sessions", cursor)
        items = await accounts.list_sessions(conn, viewer, before_id=before, limit=limit)
        return id_page(cursors, "sessions", items, limit)

    @delete("/current", summary="Log out", responses=problems(401))
    async def log_out(self, conn: ConnDep, viewer: ViewerDep) -> None:
        await accounts.revoke_session(conn, viewer, viewer.session_id)

    @delete("/{session_id:int}", summary="Revoke one of your sessions", responses=problems(401, 404))
    async def revoke(self, conn: ConnDep, viewer: ViewerDep, session_id: FromPath[int]) -> None:
        await accounts.revoke_session(conn, viewer, session_id)


class UserController(Controller):
    path = "/v1/users/{handle:str}"
    tags = ["social graph"]

    @get(
        "",
        summary="A public profile",
        description="Anyone may read a profile, except an account the owner blocked (404).",
        responses=problems(401, 404),
    )
    async def profile(
        self, conn: ConnDep, maybe_viewer: ViewerDep | None, handle: str = HandlePath
    ) -> Profile:
        return await accounts.get_profile(conn, handle, maybe_viewer.user_id if maybe_viewer else None)

    @put("/follow", summary="Follow (idempotent)", responses=problems(401, 403, 404, 422, 429))
    async def follow(
        self,
        request: Request[Any, Any, Any],
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        limiter: LimiterDep,
        handle: str = HandlePath,
    ) -> Relationship:
        rule = Rule("follows", settings.follows_per_day, 86400)
        await enforce(request, limiter, rule, f"user:{viewer.user_id}")
        return await feed_changed(request.app.state, viewer.user_id, accounts.follow(conn, viewer, handle))

    @delete("/follow", status_code=200, summary="Unfollow (idempotent)", responses=problems(401, 404, 422))
    async def unfollow(
        self, request: Request[Any, Any, Any], conn: ConnDep, viewer: ViewerDep, handle: str = HandlePath
    ) -> Relationship:
        return await feed_changed(request.app.state, viewer.user_id, accounts.unfollow(conn, viewer, handle))

    @put("/block", summary="Block: removes follows both ways", responses=problems(401, 404, 422))
    async def block(
        self, request: Request[Any, Any, Any], conn: ConnDep, viewer: ViewerDep, handle: str = HandlePath
    ) -> Relationship:
        return await feed_changed(request.app.state, viewer.user_id, accounts.block(conn, viewer, handle))

    @delete("/block", status_code=200, summary="Unblock", responses=problems(401, 404, 422))
    async def unblock(
        self, request: Request[Any, Any, Any], conn: ConnDep, viewer: ViewerDep, handle: str = HandlePath
    ) -> Relationship:
        return await feed_changed(request.app.state, viewer.user_id, accounts.unblock(conn, viewer, handle))

    @put(
        "/mute",
        summary="Mute, optionally for a number of seconds",
        description="Send no body (or `{}`) to mute until you unmute.",
        responses=problems(401, 404, 422),
    )
    async def mute(
        self,
        request: Request[Any, Any, Any],
        conn: ConnDep,
        viewer: ViewerDep,
        data: JSONBody[MuteCreate | None] = None,
        handle: str = HandlePath,
    ) -> Relationship:
        return await feed_changed(
            request.app.state,
            viewer.user_id,
            accounts.mute(conn, viewer, handle, data.seconds if data else None),
        )

    @delete("/mute", status_code=200, summary="Unmute", responses=problems(401, 404, 422))
    async def unmute(
        self, request: Request[Any, Any, Any], conn: ConnDep, viewer: ViewerDep, handle: str = HandlePath
    ) -> Relationship:
        return await feed_changed(request.app.state, viewer.user_id, accounts.unmute(conn, viewer, handle))

    @get("/followers", summary="Who follows this account", responses=problems(400, 401, 404))
    async def followers(
        self,
        conn: ConnDep,
        maybe_viewer: ViewerDep | None,
        cursors: CursorsDep,
        handle: str = HandlePath,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Connection]:
        return await _connections(conn, maybe_viewer, cursors, handle, "followers", cursor, limit)

    @get("/following", summary="Whom this account follows", responses=problems(400, 401, 404))
    async def following(
        self,
        conn: ConnDep,
        maybe_viewer: ViewerDep | None,
        cursors: CursorsDep,
        handle: str = HandlePath,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Connection]:
        return await _connections(conn, maybe_viewer, cursors, handle, "following", cursor, limit)


async def _connections(
    conn: Conn,
    viewer: Viewer | None,
    cursors: CursorCodec,
    handle: str,
    direction: str,
    cursor: str | None,
    limit: int,
) -> Page[Connection]:
    kind = f"{direction}:{handle.lower()}"
    after = None
    if cursor:
        since, last_id = cursors.decode(kind, cursor)
        after = (datetime.fromisoformat(since), int(last_id))
    items = await accounts.connections(
        conn,
        handle=handle,
        viewer_id=viewer.user_id if viewer else None,
        direction=direction,
        after=after,
        limit=limit,
    )
    next_cursor = None
    if len(items) == limit:
        last = items[-1]
        next_cursor = cursors.encode(kind, [last.since.isoformat(), last.user.id])
    return Page(items=items, next_cursor=next_cursor)
