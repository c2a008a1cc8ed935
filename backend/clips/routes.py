"""HTTP routes of clips: drafts, publishing, reading, remix chains, likes, comments, shares."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter

from backend.accounts import service as accounts
from backend.accounts.routes import HandlePath
from backend.auth import Viewer
from backend.clips import engagement, service
from backend.clips.schemas import (
    Clip,
    ClipCreate,
    ClipUpdate,
    Comment,
    CommentCreate,
    LikeState,
    LineageItem,
    RemixTree,
    Share,
    ShareCreate,
)
from backend.clips.service import Signer
from backend.cursor import CursorCodec
from backend.errors import NotFound, problems
from backend.pagination import CursorParam, Limit, Page, cursor_id, id_page
from backend.ratelimit import Rule, enforce
from backend.runtime import (
    ConnDep,
    CursorsDep,
    LimiterDep,
    SettingsDep,
    SigningKeyDep,
    ViewerDep,
)
from backend.settings import Settings

TreeDepth = Annotated[int, Parameter(ge=1, le=service.MAX_TREE_DEPTH, description="Levels of remixes shown.")]
TreeBreadth = Annotated[
    int,
    Parameter(ge=1, le=service.MAX_TREE_BREADTH, description="Remixes shown per clip, most remixed first."),
]
SHARES_PER_MINUTE = Rule("shares", 30, 60)


def _viewer_id(viewer: Viewer | None) -> int | None:
    return viewer.user_id if viewer is not None else None


def _published_page(cursors: CursorCodec, kind: str, cursor: str | None) -> tuple[Any, int] | None:
    if not cursor:
        return None
    at, last_id = cursors.decode(kind, cursor)
    return datetime.fromisoformat(at), int(last_id)


def _next_published(cursors: CursorCodec, kind: str, items: list[Clip], limit: int) -> str | None:
    if len(items) < limit or items[-1].published_at is None:
        return None
    return cursors.encode(kind, [items[-1].published_at.isoformat(), items[-1].id])


class DraftController(Controller):
    path = "/v1/drafts"
    tags = ["clips"]

    @get("", summary="Your finished takes not yet published, newest first", responses=problems(400, 401))
    async def list_drafts(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Clip]:
        before = cursor_id(cursors, "drafts", cursor)
        items = await service.drafts(
            conn,
            viewer_id=viewer.user_id,
            before_id=before,
            limit=limit,
            signer=Signer(settings, signing_key),
        )
        return id_page(cursors, "drafts", items, limit)


class ClipController(Controller):
    path = "/v1/clips"
    tags = ["clips"]

    @post(
        "",
        status_code=201,
        summary="Publish a take",
        description="Turns the draft of one of your finished takes into a clip.",
        responses=problems(400, 401, 404, 409, 422, 429),
    )
    async def publish(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        data: JSONBody[ClipCreate],
    ) -> Clip:
        return await service.publish(
            conn,
            viewer_id=viewer.user_id,
            teen=viewer.is_teen,
            data=data,
            signer=Signer(settings, signing_key),
            duplicates_per_day=settings.duplicates_per_day,
        )

    @get("/{clip_id:int}", summary="A clip", responses=problems(401, 404))
    async def get_one(
        self,
        conn: ConnDep,
        maybe_viewer: ViewerDep | None,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
    ) -> Clip:
        return await service.get_clip(
            conn, viewer_id=_viewer_id(maybe_viewer), clip_id=clip_id, signer=Signer(settings, signing_key)
        )

    @patch(
        "/{clip_id:int}",
        summary="Change your clip's caption, visibility or switches",
        responses=problems(400, 401, 404, 422),
    )
    async def update(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
        data: JSONBody[ClipUpdate],
    ) -> Clip:
        return await service.update(
            conn,
            viewer_id=viewer.user_id,
            teen=viewer.is_teen,
            clip_id=clip_id,
            data=data,
            signer=Signer(settings, signing_key),
        )

    @delete(
        "/{clip_id:int}",
        summary="Delete your clip",
        description="Gone for everyone at once; its files are removed shortly after.",
        responses=problems(401, 404),
    )
    async def remove(self, conn: ConnDep, viewer: ViewerDep, clip_id: FromPath[int]) -> None:
        await service.delete(conn, viewer_id=viewer.user_id, clip_id=clip_id)

    @get(
        "/{clip_id:int}/remixes",
        summary="Direct remixes of a clip, newest first",
        responses=problems(400, 401, 404),
    )
    async def remixes(
        self,
        conn: ConnDep,
        maybe_viewer: ViewerDep | None,
        cursors: CursorsDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Clip]:
        kind = f"remixes:{clip_id}"
        items = await service.remixes(
            conn,
            viewer_id=_viewer_id(maybe_viewer),
            clip_id=clip_id,
            before=_published_page(cursors, kind, cursor),
            limit=limit,
            signer=Signer(settings, signing_key),
        )
        return Page(items=items, next_cursor=_next_published(cursors, kind, items, limit))

    @get(
        "/{clip_id:int}/lineage",
        summary="The remix chain from its root to this clip",
        responses=problems(401, 404),
    )
    async def lineage(
        self,
        conn: ConnDep,
        maybe_viewer: ViewerDep | None,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
    ) -> list[LineageItem]:
        return await service.lineage(
            conn, viewer_id=_viewer_id(maybe_viewer), clip_id=clip_id, signer=Signer(settings, signing_key)
        )

    @get(
        "/{clip_id:int}/tree",
        summary="A clip and its remixes, bounded in depth and breadth",
        responses=problems(400, 401, 404),
    )
    async def tree(
        self,
        conn: ConnDep,
        maybe_viewer: ViewerDep | None,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
        depth: TreeDepth = 3,
        breadth: TreeBreadth = 10,
    ) -> RemixTree:
        return await service.tree(
            conn,
            viewer_id=_viewer_id(maybe_viewer),
            clip_id=clip_id,
            depth=depth,
            breadth=breadth,
            signer=Signer(settings, signing_key),
        )

    @put("/{clip_id:int}/like", summary="Like a clip (idempotent)", responses=problems(401, 404))
    async def like(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
    ) -> LikeState:
        return await engagement.like(
            conn, viewer_id=viewer.user_id, clip_id=clip_id, signer=Signer(settings, signing_key)
        )

    @delete(
        "/{clip_id:int}/like",
        status_code=200,
        summary="Take your like back (idempotent)",
        responses=problems(401, 404),
    )
    async def unlike(self, conn: ConnDep, viewer: ViewerDep, clip_id: FromPath[int]) -> LikeState:
        return await engagement.unlike(conn, viewer_id=viewer.user_id, clip_id=clip_id)

    @post(
        "/{clip_id:int}/comments",
        status_code=201,
        summary="Comment on a clip, or reply to a comment",
        description="Replies are one level deep: a reply to a reply joins the same thread.",
        responses=problems(400, 401, 403, 404, 422, 429),
    )
    async def comment(
        self,
        request: Request[Any, Any, Any],
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        limiter: LimiterDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
        data: JSONBody[CommentCreate],
    ) -> Comment:
        rule = Rule("comments", settings.comments_per_minute, 60)
        await enforce(request, limiter, rule, f"user:{viewer.user_id}")
        return await engagement.add_comment(
            conn,
            viewer_id=viewer.user_id,
            teen=viewer.is_teen,
            clip_id=clip_id,
            data=data,
            signer=Signer(settings, signing_key),
        )

    @get(
        "/{clip_id:int}/comments",
        summary="Comments on a clip, newest first",
        responses=problems(400, 401, 404),
    )
    async def list_comments(
        self,
        conn: ConnDep,
        maybe_viewer: ViewerDep | None,
        cursors: CursorsDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Comment]:
        kind = f"comments:{clip_id}"
        before = int(cursors.decode(kind, cursor)[0]) if cursor else None
        items = await engagement.comments(
            conn,
            viewer_id=_viewer_id(maybe_viewer),
            clip_id=clip_id,
            before_id=before,
            limit=limit,
            signer=Signer(settings, signing_key),
        )
        return Page(
            items=items, next_cursor=cursors.encode(kind, [items[-1].id]) if len(items) == limit else None
        )

    @post(
        "/{clip_id:int}/shares",
        status_code=201,
        summary="Share a clip",
        description="Records the share and returns a link that previews in messengers and opens the app.",
        responses=problems(400, 401, 404, 422, 429),
    )
    async def share(
        self,
        request: Request[Any, Any, Any],
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        limiter: LimiterDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
        data: JSONBody[ShareCreate],
    ) -> Share:
        await enforce(request, limiter, SHARES_PER_MINUTE, f"user:{viewer.user_id}")
        return await engagement.share(
            conn, viewer_id=viewer.user_id, clip_id=clip_id, data=data, signer=Signer(settings, signing_key)
        )


class CommentController(Controller):
    path = "/v1/comments"
    tags = ["clips"]

    @get(
        "/{comment_id:int}/replies",
        summary="Replies to a comment, oldest first",
        responses=problems(400, 401, 404),
    )
    async def replies(
        self,
        conn: ConnDep,
        maybe_viewer: ViewerDep | None,
        cursors: CursorsDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        comment_id: FromPath[int],
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Comment]:
        kind = f"replies:{comment_id}"
        after = int(cursors.decode(kind, cursor)[0]) if cursor else None
        items = await engagement.replies(
            conn,
            viewer_id=_viewer_id(maybe_viewer),
            comment_id=comment_id,
            after_id=after,
            limit=limit,
            signer=Signer(settings, signing_key),
        )
        return Page(
            items=items, next_cursor=cursors.encode(kind, [items[-1].id]) if len(items) == limit else None
        )

    @delete(
        "/{comment_id:int}",
        summary="Delete a comment (its author or the clip's owner)",
        responses=problems(401, 404),
    )
    async def remove(self, conn: ConnDep, viewer: ViewerDep, comment_id: FromPath[int]) -> None:
        await engagement.delete_comment(conn, viewer_id=viewer.user_id, comment_id=comment_id)

    @post(
        "/{comment_id:int}/hide",
        status_code=200,
        summary="Hide a comment on your clip from everyone but its author",
        responses=problems(401, 404),
    )
    async def hide(self, conn: ConnDep, viewer: ViewerDep, comment_id: FromPath[int]) -> Comment:
        return await engagement.hide_comment(
            conn, viewer_id=viewer.user_id, comment_id=comment_id, hidden=True
        )

    @post(
        "/{comment_id:int}/unhide",
        status_code=200,
        summary="Show a hidden comment again",
        responses=problems(401, 404),
    )
    async def unhide(self, conn: ConnDep, viewer: ViewerDep, comment_id: FromPath[int]) -> Comment:
        return await engagement.hide_comment(
            conn, viewer_id=viewer.user_id, comment_id=comment_id, hidden=False
        )


class UserClipsController(Controller):
    path = "/v1"
    tags = ["clips"]

    @get(
        "/users/{handle:str}/clips",
        summary="An account's clips you may see, newest first",
        responses=problems(400, 401, 404),
    )
    async def user_clips(
        self,
        conn: ConnDep,
        maybe_viewer: ViewerDep | None,
        cursors: CursorsDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        handle: str = HandlePath,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Clip]:
        viewer_id = _viewer_id(maybe_viewer)
        author_id = await accounts.visible_user_id(conn, handle, viewer_id)
        kind = f"user-clips:{author_id}"
        items = await service.user_clips(
            conn,
            viewer_id=viewer_id,
            author_id=author_id,
            before=_published_page(cursors, kind, cursor),
            limit=limit,
            signer=Signer(settings, signing_key),
        )
        return Page(items=items, next_cursor=_next_published(cursors, kind, items, limit))

    @get(
        "/me/likes", summary="Clips you liked, most recent like first (private)", responses=problems(400, 401)
    )
    async def my_likes(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Clip]:
        liked = await service.liked(
            conn,
            viewer_id=viewer.user_id,
            before=_published_page(cursors, "likes", cursor),
            limit=limit,
            signer=Signer(settings, signing_key),
        )
        next_cursor = None
        if len(liked) == limit:
            at, last = liked[-1]
            next_cursor = cursors.encode("likes", [at.isoformat(), last.id])
        return Page(items=[clip for _, clip in liked], next_cursor=next_cursor)


def share_page(clip: Clip, settings: Settings) -> str:
    title = html.escape(clip.caption[:90] or f"A clip by @{clip.author.handle}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title} · Riffle</title>
<meta property="og:type" content="video.other">
<meta property="og:title" content="{title}">
<meta property="og:description"
 content="{html.escape(clip.label)} · @{html.escape(clip.author.handle)} on Riffle">
<meta property="og:image" content="{html.escape(clip.poster.url)}">
<meta property="og:video" content="{html.escape(clip.video.url)}">
<meta property="og:video:type" content="video/mp4">
<meta property="og:video:width" content="{clip.width}">
<meta property="og:video:height" content="{clip.height}">
<meta name="viewport" content="width=device-width, initial-scale=1">
</head><body style="margin:0;background:#000;display:flex;justify-content:center">
<video src="{html.escape(clip.video.url)}" poster="{html.escape(clip.poster.url)}" controls playsinline
 style="max-height:100vh;max-width:100vw"></video>
<p style="position:fixed;bottom:8px;left:8px;color:#fff;font:14px sans-serif">{html.escape(clip.label)} ·
<a style="color:#fff" href="riffle://clip/{clip.id}">open in Riffle</a></p>
</body></html>"""


@get(
    "/c/{clip_id:int}",
    summary="The page a share link opens (link previews and a web player)",
    tags=["clips"],
    media_type="text/html",
    responses={
        404: ResponseSpec(
            data_container=None, description="A page saying the clip is not available", media_type="text/html"
        )
    },
)
async def shared_clip(
    conn: ConnDep, settings: SettingsDep, signing_key: SigningKeyDep, clip_id: FromPath[int]
) -> Response[str]:
    """Public clips only: the page is for anyone holding the link, signed in or not."""
    try:
        clip = await service.get_clip(
            conn, viewer_id=None, clip_id=clip_id, signer=Signer(settings, signing_key)
        )
    except NotFound:
        return Response(
            "<!doctype html><title>Riffle</title><p>This clip is not available.</p>",
            status_code=404,
            media_type="text/html",
        )
    return Response(
        share_page(clip, settings), media_type="text/html", headers={"Cache-Control": "public, max-age=60"}
    )
