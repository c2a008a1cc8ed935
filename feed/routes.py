"""HTTP routes of the feed: events, For You, Following, steering."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, Parameter
from redis import exceptions as redis_errors

from backend.accounts import service as accounts
from backend.accounts.routes import HandlePath
from backend.clips.schemas import Clip
from backend.clips.service import Signer
from backend.db import LazyConn
from backend.errors import ValidationFailed, problems
from backend.pagination import CursorParam, Page
from backend.ratelimit import Rule, enforce
from backend.responses import EncodedJson, ok
from backend.runtime import (
    READ_ONLY,
    ConnDep,
    EncoderDep,
    LimiterDep,
    RedisDep,
    SettingsDep,
    SigningKeyDep,
    ViewerDep,
    feed_changed,
    runtime,
    viewer_from,
)
from feed import ingest, service
from feed.schemas import EventBatch, EventsAccepted, FeedPage, Preferences, PreferencesIn

FeedLimit = Annotated[int, Parameter(ge=1, le=20, description="Clips per page (1-20).")]
EVENT_BATCHES_PER_MINUTE = Rule("events", 120, 60)


class EventController(Controller):
    path = "/v1/events"
    tags = ["feed"]

    @post(
        "",
        status_code=202,
        summary="Report what you watched",
        description=(
            "A batch of impressions, watch time, completions, skips, likes, shares, taps… "
            "De-duplicated by `client_event_id`; a 202 means the events will be stored."
        ),
        responses=problems(400, 401, 422, 429, 503),
    )
    async def post_events(
        self,
        request: Request[Any, Any, Any],
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        limiter: LimiterDep,
        redis: RedisDep,
        data: JSONBody[EventBatch],
    ) -> EventsAccepted:
        if len(data.events) > settings.events_per_request:
            raise ValidationFailed(
                f"at most {settings.events_per_request} events per request",
                code="too_many_events",
                field="events",
            )
        # With Redis down the limit cannot be checked; events then go straight to PostgreSQL.
        with contextlib.suppress(redis_errors.ConnectionError, redis_errors.TimeoutError):
            await enforce(request, limiter, EVENT_BATCHES_PER_MINUTE, f"user:{viewer.user_id}")
        return await ingest.accept(
            conn, redis, settings.redis_prefix, user_id=viewer.user_id, events=data.events
        )


class FeedController(Controller):
    path = "/v1/feed"
    tags = ["feed"]

    @get(
        "/for-you",
        summary="The For You feed",
        description=(
            "The first call (no cursor) opens a feed session; pass `next_cursor` for more. Nothing "
            "repeats within a session. Signed out: trending and new clips."
        ),
        responses=problems(400, 401) | ok(FeedPage, "A page of the feed"),
        opt=READ_ONLY,
    )
    async def for_you(
        self,
        request: Request[Any, Any, Any],
        state: State,
        cursor: CursorParam = None,
        limit: FeedLimit = 10,
    ) -> EncodedJson:
        # The hottest route takes nothing by injection: Litestar resolves a batch of several
        # dependencies in an anyio task group (a quarter of a later page's CPU, measured with
        # bench/feed_load.py --profile), and a later page usually needs no database connection,
        # so it takes one only when it must (the caller not in the session cache, ranking, a
        # clip whose visibility may have changed) and gives it back as soon as that statement
        # is answered, not at the end of the request: held across the Redis call and the
        # rendering, the pool's 20 connections were what 64 returning viewers queued for
        # (their first pages' p99 185 ms, 99-127 ms when released; bench/feed_load.py).
        rt = runtime(state)
        async with LazyConn(rt.pool) as conn:
            viewer = await viewer_from(request, rt, conn)
            await conn.release()
            page = await service.for_you(
                service.FeedRuntime(
                    conn=conn,
                    redis=rt.redis,
                    mux=rt.mux,
                    settings=rt.settings,
                    cursors=rt.cursors,
                    cards=rt.cards,
                    loader=rt.loader,
                    watch=rt.visibility,
                    signer=Signer(rt.settings, rt.signing_key),
                    rankings=rt.rankings,
                    cohort_heads=rt.cohort_heads,
                ),
                viewer_id=viewer.user_id if viewer else None,
                cursor=cursor,
                limit=limit,
                teen=viewer.is_teen if viewer else True,
            )
        return EncodedJson(msgspec.json.encode(page))

    @get(
        "/following",
        summary="Newest clips from accounts you follow",
        responses=problems(400, 401),
        opt=READ_ONLY,
    )
    async def following(
        self,
        state: State,
        conn: ConnDep,
        viewer: ViewerDep,
        cursor: CursorParam = None,
        limit: FeedLimit = 10,
    ) -> Page[Clip]:
        rt = runtime(state)
        before = None
        if cursor:
            at, last_id = rt.cursors.decode("following", cursor)
            before = (datetime.fromisoformat(at), int(last_id))
        items = await service.following(
            conn,
            viewer_id=viewer.user_id,
            before=before,
            limit=limit,
            signer=Signer(rt.settings, rt.signing_key),
        )
        next_cursor = None
        if len(items) == limit and items[-1].published_at is not None:
            next_cursor = rt.cursors.encode("following", [items[-1].published_at.isoformat(), items[-1].id])
        return Page(items=items, next_cursor=next_cursor)

    @get("/preferences", summary="How you steered your feed", responses=problems(401))
    async def get_preferences(self, conn: ConnDep, viewer: ViewerDep) -> Preferences:
        return await service.preferences(conn, user_id=viewer.user_id)

    @put(
        "/preferences",
        summary="Steer your feed",
        description='Free text ("more cooking, fewer pranks") and topic chips (`more`, `fewer`).',
        responses=problems(400, 401, 422),
    )
    async def put_preferences(
        self,
        state: State,
        conn: ConnDep,
        viewer: ViewerDep,
        encoder: EncoderDep,
        data: JSONBody[PreferencesIn],
    ) -> Preferences:
        return await feed_changed(
            state, viewer.user_id, service.set_preferences(conn, encoder, user_id=viewer.user_id, data=data)
        )

    @delete("/preferences", summary="Forget how you steered your feed", responses=problems(401))
    async def reset_preferences(self, state: State, conn: ConnDep, viewer: ViewerDep) -> None:
        await feed_changed(state, viewer.user_id, service.reset_preferences(conn, user_id=viewer.user_id))


class FeedSignalController(Controller):
    path = "/v1"
    tags = ["feed"]

    @post(
        "/clips/{clip_id:int}/not-interested",
        status_code=204,
        summary="Show me less like this",
        responses=problems(401, 404),
    )
    async def not_interested(
        self,
        state: State,
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
    ) -> None:
        change = service.not_interested(
            conn, user_id=viewer.user_id, clip_id=clip_id, on=True, signer=Signer(settings, signing_key)
        )
        await feed_changed(state, viewer.user_id, change)

    @delete(
        "/clips/{clip_id:int}/not-interested", summary="Undo not interested", responses=problems(401, 404)
    )
    async def undo_not_interested(
        self,
        state: State,
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
    ) -> None:
        change = service.not_interested(
            conn, user_id=viewer.user_id, clip_id=clip_id, on=False, signer=Signer(settings, signing_key)
        )
        await feed_changed(state, viewer.user_id, change)

    @post(
        "/users/{handle:str}/hide",
        status_code=204,
        summary="Hide this creator from your feeds",
        responses=problems(400, 401, 404),
    )
    async def hide(self, state: State, conn: ConnDep, viewer: ViewerDep, handle: str = HandlePath) -> None:
        creator = await accounts.visible_user_id(conn, handle, viewer.user_id)
        change = service.hide_creator(conn, user_id=viewer.user_id, creator_id=creator, on=True)
        await feed_changed(state, viewer.user_id, change)

    @delete("/users/{handle:str}/hide", summary="Show this creator again", responses=problems(401, 404))
    async def unhide(self, state: State, conn: ConnDep, viewer: ViewerDep, handle: str = HandlePath) -> None:
        creator = await accounts.visible_user_id(conn, handle, viewer.user_id)
        change = service.hide_creator(conn, user_id=viewer.user_id, creator_id=creator, on=False)
        await feed_changed(state, viewer.user_id, change)
