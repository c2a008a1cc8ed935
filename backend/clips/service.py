"""Clips: drafts, publishing, reading, remix chains.

Generation calls :func:`create_draft` once per succeeded take and :func:`check_remix_parent`
before a remix; everything else here serves the clips API. Engagement (likes, comments,
shares) lives in :mod:`backend.clips.engagement`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from backend import outbox
from backend.accounts.schemas import UserSummary
from backend.clips import queries as q
from backend.clips.schemas import (
    Clip,
    ClipCreate,
    ClipUpdate,
    Counts,
    LineageItem,
    Media,
    ProductTag,
    RemixInfo,
    RemixTree,
    TreeNode,
    ViewerState,
)
from backend.db import Conn
from backend.errors import Conflict, Forbidden, NotFound, ValidationFailed
from backend.media.service import media_url
from backend.notifications import service as notifications
from backend.settings import Settings
from cameo import service as cameo
from feed import visibility as feed_visibility
from moderation import duplicates
from moderation import service as moderation
from moderation.classifier import Verdict
from moderation.screening import screen_text

AI_LABEL = "AI-generated"
_HASHTAG = re.compile(r"(?<![\w#])#(\w{1,100})")
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{3,30})")
MAX_TREE_DEPTH, MAX_TREE_BREADTH = 6, 20


class DraftInput(msgspec.Struct, kw_only=True):
    """A finished take, as generation hands it over."""

    author_id: int
    take_id: int
    job_id: int
    prompt: str
    model: str
    provider: str
    cost_minor: int
    currency: str
    video_media_id: int
    poster_media_id: int
    duration_ms: int
    width: int
    height: int
    cameo_ids: list[int]
    product_id: int | None
    parent_id: int | None
    provenance: dict[str, Any]


async def create_draft(conn: Conn, draft: DraftInput) -> int:
    """Write the draft clip of a take; idempotent per take (a redelivered job gets the same id).

    A remix records its parent, the root of the chain and its depth, read from the parent so a
    chain is a tree that can be walked from any node.
    """
    root_id, depth = None, 0
    if draft.parent_id is not None:
        parent = await conn.fetchrow("SELECT id, root_id, depth FROM clips WHERE id = $1", draft.parent_id)
        if parent is not None:
            root_id = parent["root_id"] or parent["id"]
            depth = parent["depth"] + 1
    clip_id = await conn.fetchval(
        """
        INSERT INTO clips (
            author_id, take_id, job_id, prompt, model, provider, cost_minor, currency,
            video_media_id, poster_media_id, duration_ms, width, height, cameo_ids, product_id,
            parent_id, root_id, depth, provenance
        ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
        ON CONFLICT (take_id) DO NOTHING
        RETURNING id
        """,
        draft.author_id,
        draft.take_id,
        draft.job_id,
        draft.prompt,
        draft.model,
        draft.provider,
        draft.cost_minor,
        draft.currency,
        draft.video_media_id,
        draft.poster_media_id,
        draft.duration_ms,
        draft.width,
        draft.height,
        draft.cameo_ids,
        draft.product_id,
        draft.parent_id if root_id is not None else None,
        root_id,
        depth,
        draft.provenance,
    )
    if clip_id is None:
        clip_id = await conn.fetchval("SELECT id FROM clips WHERE take_id = $1", draft.take_id)
    elif draft.product_id is not None:
        # A product clip (the product studio) comes out already tagged with its product.
        await conn.execute(
            """
            INSERT INTO product_tags (clip_id, product_id, created_by)
            SELECT $1, p.id, $3 FROM products p WHERE p.id = $2 AND p.deleted_at IS NULL
            ON CONFLICT (clip_id, product_id) WHERE removed_at IS NULL DO NOTHING
            """,
            clip_id,
            draft.product_id,
            draft.author_id,
        )
    return int(clip_id)


class RemixParent(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    author_id: int
    prompt: str
    model: str
    poster_media_id: int
    cameo_ids: list[int]


REMIX_PARENT = """
SELECT c.id, c.author_id, c.prompt, c.model, c.poster_media_id, c.cameo_ids, c.status, c.visibility,
       c.allow_remix,
       EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $2 AND f.followee_id = c.author_id) AS follows,
       EXISTS (SELECT 1 FROM blocks b
               WHERE b.blocker_id = c.author_id AND b.blocked_id = $2) AS blocked_by_author,
       EXISTS (SELECT 1 FROM blocks b
               WHERE b.blocker_id = $2 AND b.blocked_id = c.author_id) AS blocks_author
FROM clips c
WHERE c.id = $1
"""


async def check_remix_parent(conn: Conn, *, viewer_id: int, parent_id: int) -> RemixParent:
    """The clip ``viewer_id`` wants to remix, if today's settings allow it; otherwise why not.

    A clip that is gone (or a draft of someone else) is a 404; one the viewer knows of but may
    not remix is a 403 that says why, so the app can explain instead of failing silently.
    """
    row = await conn.fetchrow(REMIX_PARENT, parent_id, viewer_id)
    own = row is not None and row["author_id"] == viewer_id
    if row is None or row["status"] in ("removed", "deleted") or (row["status"] == "draft" and not own):
        raise NotFound(f"no clip {parent_id} to remix", code="unknown_clip", field="remix_of")
    if not own:
        if row["blocked_by_author"] or row["blocks_author"]:
            raise Forbidden("you cannot remix this creator's clips", code="blocked", field="remix_of")
        if row["visibility"] == "private" or (row["visibility"] == "followers" and not row["follows"]):
            raise Forbidden("this clip is not shared with you", code="parent_private", field="remix_of")
        if not row["allow_remix"]:
            raise Forbidden(
                "the creator turned remixing off for this clip", code="remix_not_allowed", field="remix_of"
            )
    return RemixParent(
        id=row["id"],
        author_id=row["author_id"],
        prompt=row["prompt"],
        model=row["model"],
        poster_media_id=row["poster_media_id"],
        cameo_ids=list(row["cameo_ids"]),
    )


class Signer(msgspec.Struct, frozen=True):
    """What turning media ids into signed URLs needs; one per request."""

    settings: Settings
    key: bytes

    def url(self, media_id: int) -> str:
        return media_url(self.settings, self.key, media_id)


def clip_from_row(row: Any, signer: Signer, viewer_id: int | None) -> Clip:
    return Clip(
        id=row["id"],
        author=UserSummary(
            id=row["author_id"],
            handle=row["handle"],
            display_name=row["display_name"],
            avatar_url=row["avatar_url"],
        ),
        status=row["status"],
        caption=row["caption"],
        hashtags=list(row["hashtags"]),
        mentions=list(row["mentions"]),
        visibility=row["visibility"],
        allow_remix=row["allow_remix"],
        allow_comments=row["allow_comments"],
        video=Media(url=signer.url(row["video_media_id"]), content_type="video/mp4"),
        poster=Media(url=signer.url(row["poster_media_id"]), content_type="image/jpeg"),
        duration_ms=row["duration_ms"],
        width=row["width"],
        height=row["height"],
        model=row["model"],
        ai_generated=True,
        label=AI_LABEL,
        counts=Counts(
            views=row["view_count"],
            likes=row["like_count"],
            comments=row["comment_count"],
            shares=row["share_count"],
            remixes=row["remix_count"],
        ),
        viewer=ViewerState(liked=row["liked"], is_author=row["author_id"] == viewer_id),
        remix=RemixInfo(
            parent_id=row["parent_id"],
            root_id=row["root_id"],
            depth=row["depth"],
            parent_available=row["parent_id"] is None or row["parent_available"],
        ),
        cameo_ids=list(row["cameo_ids"]),
        product_tags=msgspec.convert(row["product_tags"], list[ProductTag]) if row["product_tags"] else [],
        take_id=row["take_id"],
        created_at=row["created_at"],
        published_at=row["published_at"],
    )


def _cards(rows: Sequence[Any], signer: Signer, viewer_id: int | None) -> list[Clip]:
    return [clip_from_row(row, signer, viewer_id) for row in rows]


def parse_caption(caption: str) -> tuple[list[str], list[str]]:
    """Hashtags and @mentions, lower-cased, in order of first appearance."""
    tags = list(dict.fromkeys(t.casefold() for t in _HASHTAG.findall(caption)))
    mentions = list(dict.fromkeys(m.lower() for m in _MENTION.findall(caption)))
    return tags[:30], mentions[:20]


def _screen_caption(caption: str, *, teen: bool) -> Verdict:
    verdict = screen_text(caption, teen=teen)
    if not verdict.allowed:
        raise ValidationFailed(
            verdict.reason or "this caption is not allowed", code="caption_blocked", field="caption"
        )
    return verdict


async def get_clip(conn: Conn, *, viewer_id: int | None, clip_id: int, signer: Signer) -> Clip:
    """A clip the viewer may see; anything else (missing, private, blocked, removed) is a 404."""
    row = await conn.fetchrow(q.ONE, viewer_id, clip_id)
    if row is None:
        raise NotFound(f"no clip {clip_id}", code="unknown_clip")
    return clip_from_row(row, signer, viewer_id)


async def publish(
    conn: Conn, *, viewer_id: int, teen: bool, data: ClipCreate, signer: Signer, duplicates_per_day: int = 5
) -> Clip:
    verdict = _screen_caption(data.caption, teen=teen)
    await duplicates.check_throttle(conn, author_id=viewer_id, throttle=duplicates_per_day)
    take_status = await conn.fetchval(q.TAKE_STATE, data.take_id, viewer_id)
    if take_status is None:
        raise NotFound(f"no take {data.take_id} of yours", code="unknown_take", field="take_id")
    hashtags, mentions = parse_caption(data.caption)
    row = await conn.fetchrow(
        q.PUBLISH,
        data.take_id,
        viewer_id,
        data.caption,
        hashtags,
        mentions,
        data.visibility,
        data.allow_remix,
        data.allow_comments,
    )
    if row is None:
        state = await conn.fetchrow(q.DRAFT_STATE, data.take_id)
        if state is None:
            raise Conflict(
                f"take {data.take_id} has not produced a video (it is {take_status})",
                code="take_not_ready",
                field="take_id",
            )
        raise Conflict(
            f"take {data.take_id} is already {state['status']}", code="already_published", field="take_id"
        )
    clip_id, parent_id = row["id"], row["parent_id"]
    await cameo.on_publish(
        conn,
        clip_id=clip_id,
        author_id=viewer_id,
        cameo_ids=list(row["cameo_ids"]),
        duration_ms=row["duration_ms"],
    )
    if parent_id is not None:
        parent_author = await conn.fetchval(q.BUMP_REMIXES, parent_id, 1)
        if parent_author is not None:
            await notifications.notify(
                conn, recipient_id=parent_author, kind="remix", actor_id=viewer_id, clip_id=clip_id
            )
    await _notify_mentions(conn, mentions, actor_id=viewer_id, clip_id=clip_id, visibility=data.visibility)
    await outbox.add(conn, "embed_clip", {"clip_id": clip_id}, job_key=f"embed:{clip_id}:{data.take_id}")
    await outbox.add(conn, "fingerprint_clip", {"clip_id": clip_id}, job_key=f"fingerprint:{clip_id}")
    if verdict.outcome == "review":  # allowed, but a moderator should look
        await moderation.open_case(
            conn,
            target="clip",
            target_id=clip_id,
            subject_id=viewer_id,
            reason=verdict.category or "review",
            detail={"source": "caption screening", "matched": verdict.matched},
        )
    return await get_clip(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)


async def _notify_mentions(
    conn: Conn, handles: list[str], *, actor_id: int, clip_id: int, visibility: str
) -> None:
    if not handles or visibility == "private":
        return
    for row in await conn.fetch(q.USERS_BY_HANDLE, handles):
        await notifications.notify(
            conn, recipient_id=row["id"], kind="mention", actor_id=actor_id, clip_id=clip_id
        )


async def update(
    conn: Conn, *, viewer_id: int, teen: bool, clip_id: int, data: ClipUpdate, signer: Signer
) -> Clip:
    caption = hashtags = mentions = None
    if isinstance(data.caption, str):
        _screen_caption(data.caption, teen=teen)
        caption = data.caption
        hashtags, mentions = parse_caption(caption)
    updated = await conn.fetchval(
        q.UPDATE,
        clip_id,
        viewer_id,
        caption,
        hashtags,
        mentions,
        data.visibility if isinstance(data.visibility, str) else None,
        data.allow_remix if isinstance(data.allow_remix, bool) else None,
        data.allow_comments if isinstance(data.allow_comments, bool) else None,
    )
    if updated is None:
        raise NotFound(f"no clip {clip_id} of yours", code="unknown_clip")
    if isinstance(data.visibility, str):
        feed_visibility.changed(clip=clip_id)
    if caption is not None:  # the feed's content vector reads the caption and hashtags
        await outbox.add(conn, "embed_clip", {"clip_id": clip_id})
    return await get_clip(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)


async def delete(conn: Conn, *, viewer_id: int, clip_id: int) -> None:
    """Gone for everyone at once; its files are removed by a job after commit."""
    row = await conn.fetchrow(q.DELETE, clip_id, viewer_id)
    if row is None:
        raise NotFound(f"no clip {clip_id} of yours", code="unknown_clip")
    feed_visibility.changed(clip=clip_id)
    if row["parent_id"] is not None and row["published_at"] is not None:
        await conn.execute(q.BUMP_REMIXES, row["parent_id"], -1)
    await outbox.add(
        conn,
        "purge_clip_media",
        {"media_ids": [row["video_media_id"], row["poster_media_id"]]},
        job_key=f"purge-clip:{clip_id}",
    )


async def drafts(
    conn: Conn, *, viewer_id: int, before_id: int | None, limit: int, signer: Signer
) -> list[Clip]:
    return _cards(await conn.fetch(q.DRAFTS, viewer_id, before_id, limit), signer, viewer_id)


async def user_clips(
    conn: Conn,
    *,
    viewer_id: int | None,
    author_id: int,
    before: tuple[Any, int] | None,
    limit: int,
    signer: Signer,
) -> list[Clip]:
    at, last_id = before or (None, None)
    rows = await conn.fetch(q.USER_CLIPS, viewer_id, author_id, at, last_id, limit)
    return _cards(rows, signer, viewer_id)


async def liked(
    conn: Conn, *, viewer_id: int, before: tuple[Any, int] | None, limit: int, signer: Signer
) -> list[tuple[Any, Clip]]:
    at, last_id = before or (None, None)
    rows = await conn.fetch(q.LIKED, viewer_id, at, last_id, limit)
    return [(row["liked_at"], clip_from_row(row, signer, viewer_id)) for row in rows]


async def remixes(
    conn: Conn,
    *,
    viewer_id: int | None,
    clip_id: int,
    before: tuple[Any, int] | None,
    limit: int,
    signer: Signer,
) -> list[Clip]:
    await get_clip(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)
    at, last_id = before or (None, None)
    return _cards(await conn.fetch(q.REMIXES, viewer_id, clip_id, at, last_id, limit), signer, viewer_id)


async def lineage(conn: Conn, *, viewer_id: int | None, clip_id: int, signer: Signer) -> list[LineageItem]:
    """The chain from its root down to this clip; steps the viewer may not see stay as gaps."""
    await get_clip(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)
    path = [r["id"] for r in await conn.fetch(q.LINEAGE_IDS, clip_id)]
    visible = {
        r["id"]: clip_from_row(r, signer, viewer_id) for r in await conn.fetch(q.MANY, viewer_id, path)
    }
    return [LineageItem(id=i, available=i in visible, clip=visible.get(i)) for i in path]


async def tree(
    conn: Conn, *, viewer_id: int | None, clip_id: int, depth: int, breadth: int, signer: Signer
) -> RemixTree:
    """This clip and its remixes, ``depth`` levels down, at most ``breadth`` per clip."""
    await get_clip(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)
    nodes = await conn.fetch(
        q.TREE_IDS, viewer_id, min(depth, MAX_TREE_DEPTH), min(breadth, MAX_TREE_BREADTH), clip_id
    )
    cards = {
        r["id"]: clip_from_row(r, signer, viewer_id)
        for r in await conn.fetch(q.MANY, viewer_id, [n["id"] for n in nodes])
    }
    shown = [n for n in nodes if n["id"] in cards]
    counted = {n["id"]: n["children"] for n in shown}
    children_shown: dict[int, int] = {}
    for n in shown:
        if n["parent_id"] is not None:
            children_shown[n["parent_id"]] = children_shown.get(n["parent_id"], 0) + 1
    truncated = any(counted[i] > children_shown.get(i, 0) for i in counted)
    return RemixTree(
        nodes=[TreeNode(clip=cards[n["id"]], parent_id=n["parent_id"], level=n["level"]) for n in shown],
        truncated=truncated,
    )


# PostgreSQL keeps its generic plan for a statement with an array parameter only while each
# call passes at least as many elements as that plan assumes (10): asked about fewer, it made a
# custom plan for every call, planning included (1.5 ms a page against 0.4 on the seeded data).
# So short lists are padded by repeating an id, which does not repeat its row.
ARRAY_PLAN_SIZE = 10


async def cards(conn: Conn, *, viewer_id: int | None, clip_ids: list[int], signer: Signer) -> dict[int, Clip]:
    """The clips among ``clip_ids`` the viewer may see, hydrated in one query (for other domains'
    lists, such as the feed)."""
    if not clip_ids:
        return {}
    ids = [*clip_ids, *[clip_ids[-1]] * (ARRAY_PLAN_SIZE - len(clip_ids))]
    return {r["id"]: clip_from_row(r, signer, viewer_id) for r in await conn.fetch(q.MANY, viewer_id, ids)}


async def published_cards(conn: Conn, *, clip_ids: list[int], signer: Signer) -> list[Clip]:
    """The published clips among ``clip_ids`` as anyone sees them, with no visibility rule
    applied: for callers that settled who may see them (see backend.clips.cards.CardLoader)."""
    if not clip_ids:
        return []
    ids = [*clip_ids, *[clip_ids[-1]] * (ARRAY_PLAN_SIZE - len(clip_ids))]
    return [clip_from_row(r, signer, None) for r in await conn.fetch(q.PUBLISHED, None, ids)]


class ClipSource(msgspec.Struct, kw_only=True, frozen=True):
    """A published clip's prompt, caption, length and counters (for the product studio's
    breakdowns)."""

    id: int
    author_id: int
    prompt: str
    caption: str
    duration_ms: int
    views: int
    likes: int
    comments: int
    shares: int
    remixes: int


async def published_source(conn: Conn, *, viewer_id: int | None, clip_id: int) -> ClipSource:
    """A published clip the viewer may see; anything else is a 404, as for :func:`get_clip`."""
    row = await conn.fetchrow(q.SOURCE, viewer_id, clip_id)
    if row is None:
        raise NotFound(f"no clip {clip_id}", code="unknown_clip", field="clip_id")
    return ClipSource(
        id=row["id"],
        author_id=row["author_id"],
        prompt=row["prompt"],
        caption=row["caption"],
        duration_ms=row["duration_ms"],
        views=row["view_count"],
        likes=row["like_count"],
        comments=row["comment_count"],
        shares=row["share_count"],
        remixes=row["remix_count"],
    )
