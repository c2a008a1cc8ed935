"""Engagement on clips: likes, comments (replies one level deep) and shares.

Counters on ``clips`` move in the same statement as the row they count (a CTE that inserts or
deletes, then updates the counter only if it did), so concurrent likes stay exact without a
read-modify-write in Python.
"""

from __future__ import annotations

from typing import Any

from backend.accounts.schemas import UserSummary
from backend.clips.schemas import Comment, CommentCreate, LikeState, Share, ShareCreate
from backend.clips.service import Signer, get_clip
from backend.db import Conn
from backend.errors import Forbidden, NotFound, ValidationFailed
from backend.notifications import service as notifications
from moderation.screening import screen_text

LIKE = """
WITH ins AS (
    INSERT INTO likes (user_id, clip_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING clip_id
)
UPDATE clips SET like_count = like_count + 1
WHERE id = $2 AND EXISTS (SELECT 1 FROM ins)
RETURNING like_count
"""

UNLIKE = """
WITH del AS (DELETE FROM likes WHERE user_id = $1 AND clip_id = $2 RETURNING clip_id)
UPDATE clips SET like_count = like_count - 1
WHERE id = $2 AND EXISTS (SELECT 1 FROM del)
RETURNING like_count
"""

LIKE_COUNT = "SELECT like_count FROM clips WHERE id = $1"

COMMENT_COLUMNS = """
    m.id, m.clip_id, m.parent_id, m.body, m.status, m.reply_count, m.created_at,
    m.author_id, u.handle, u.display_name, u.avatar_url
"""

# Comments a viewer may read: visible ones, plus hidden ones to their own author (the clip
# owner hid them from everyone else); none across a block in either direction.
READABLE = """
(m.status = 'visible' OR (m.status = 'hidden' AND m.author_id = $1))
AND NOT EXISTS (SELECT 1 FROM blocks b
                WHERE (b.blocker_id = m.author_id AND b.blocked_id = $1)
                   OR (b.blocker_id = $1 AND b.blocked_id = m.author_id))
"""

TOP_LEVEL = f"""
SELECT {COMMENT_COLUMNS} FROM comments m JOIN users u ON u.id = m.author_id
WHERE m.clip_id = $2 AND m.parent_id IS NULL AND {READABLE} AND ($3::bigint IS NULL OR m.id < $3)
ORDER BY m.id DESC
LIMIT $4
"""

REPLIES = f"""
SELECT {COMMENT_COLUMNS} FROM comments m JOIN users u ON u.id = m.author_id
WHERE m.parent_id = $2 AND {READABLE} AND ($3::bigint IS NULL OR m.id > $3)
ORDER BY m.id
LIMIT $4
"""

ONE_COMMENT = f"""
SELECT {COMMENT_COLUMNS}, c.author_id AS clip_author_id
FROM comments m JOIN users u ON u.id = m.author_id JOIN clips c ON c.id = m.clip_id
WHERE m.id = $1
"""

INSERT_COMMENT = """
INSERT INTO comments (clip_id, author_id, parent_id, body) VALUES ($1, $2, $3, $4) RETURNING id
"""

BUMP_COMMENTS = "UPDATE clips SET comment_count = comment_count + $2 WHERE id = $1"
BUMP_REPLIES = "UPDATE comments SET reply_count = reply_count + $2 WHERE id = $1"

SET_COMMENT_STATUS = """
UPDATE comments SET status = $2 WHERE id = $1 AND status = ANY($3::text[]) RETURNING clip_id, parent_id
"""

DELETE_REPLIES = """
WITH r AS (
    SELECT id, status FROM comments WHERE parent_id = $1 AND status IN ('visible', 'hidden') FOR UPDATE
)
UPDATE comments m SET status = 'deleted' FROM r WHERE m.id = r.id
RETURNING r.status AS was
"""

INSERT_SHARE = "INSERT INTO shares (clip_id, user_id, channel) VALUES ($1, $2, $3) RETURNING id"
BUMP_SHARES = "UPDATE clips SET share_count = share_count + 1 WHERE id = $1"


async def _published(conn: Conn, *, viewer_id: int, clip_id: int, signer: Signer) -> Any:
    clip = await get_clip(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)
    if clip.status != "published":
        raise NotFound(f"no clip {clip_id}", code="unknown_clip")
    return clip


async def like(conn: Conn, *, viewer_id: int, clip_id: int, signer: Signer) -> LikeState:
    clip = await _published(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)
    count = await conn.fetchval(LIKE, viewer_id, clip_id)
    if count is None:  # already liked: nothing changes
        return LikeState(clip_id=clip_id, liked=True, likes=await conn.fetchval(LIKE_COUNT, clip_id))
    await notifications.notify(
        conn, recipient_id=clip.author.id, kind="like", actor_id=viewer_id, clip_id=clip_id
    )
    return LikeState(clip_id=clip_id, liked=True, likes=count)


async def unlike(conn: Conn, *, viewer_id: int, clip_id: int) -> LikeState:
    """Taking a like back works even if the clip has since become invisible to the viewer."""
    count = await conn.fetchval(UNLIKE, viewer_id, clip_id)
    if count is None:
        count = await conn.fetchval(LIKE_COUNT, clip_id)
        if count is None:
            raise NotFound(f"no clip {clip_id}", code="unknown_clip")
    return LikeState(clip_id=clip_id, liked=False, likes=count)


def _comment(row: Any) -> Comment:
    return Comment(
        id=row["id"],
        clip_id=row["clip_id"],
        author=UserSummary(
            id=row["author_id"],
            handle=row["handle"],
            display_name=row["display_name"],
            avatar_url=row["avatar_url"],
        ),
        body=row["body"],
        reply_to=row["parent_id"],
        reply_count=row["reply_count"],
        status=row["status"],
        created_at=row["created_at"],
    )


async def add_comment(
    conn: Conn, *, viewer_id: int, teen: bool, clip_id: int, data: CommentCreate, signer: Signer
) -> Comment:
    clip = await _published(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)
    if not clip.allow_comments:
        raise Forbidden("comments are turned off for this clip", code="comments_off")
    verdict = screen_text(data.body, teen=teen)
    if not verdict.allowed:
        raise ValidationFailed(
            verdict.reason or "this comment is not allowed", code="comment_blocked", field="body"
        )
    parent = None
    if data.reply_to is not None:
        parent = await conn.fetchrow(ONE_COMMENT, data.reply_to)
        if parent is None or parent["clip_id"] != clip_id or parent["status"] != "visible":
            raise ValidationFailed(
                f"no comment {data.reply_to} on this clip to reply to",
                code="unknown_comment",
                field="reply_to",
            )
        if parent["parent_id"] is not None:  # replies are one level deep: join the thread
            parent = await conn.fetchrow(ONE_COMMENT, parent["parent_id"])
    parent_id = parent["id"] if parent is not None else None
    comment_id = await conn.fetchval(INSERT_COMMENT, clip_id, viewer_id, parent_id, data.body)
    await conn.execute(BUMP_COMMENTS, clip_id, 1)
    if parent is not None:
        await conn.execute(BUMP_REPLIES, parent_id, 1)
        await notifications.notify(
            conn,
            recipient_id=parent["author_id"],
            kind="reply",
            actor_id=viewer_id,
            clip_id=clip_id,
            comment_id=comment_id,
        )
    if parent is None or parent["author_id"] != clip.author.id:
        await notifications.notify(
            conn,
            recipient_id=clip.author.id,
            kind="comment",
            actor_id=viewer_id,
            clip_id=clip_id,
            comment_id=comment_id,
        )
    row = await conn.fetchrow(ONE_COMMENT, comment_id)
    return _comment(row)


async def comments(
    conn: Conn, *, viewer_id: int | None, clip_id: int, before_id: int | None, limit: int, signer: Signer
) -> list[Comment]:
    await get_clip(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)
    return [_comment(r) for r in await conn.fetch(TOP_LEVEL, viewer_id, clip_id, before_id, limit)]


async def replies(
    conn: Conn, *, viewer_id: int | None, comment_id: int, after_id: int | None, limit: int, signer: Signer
) -> list[Comment]:
    parent = await conn.fetchrow(ONE_COMMENT, comment_id)
    if parent is None or parent["status"] not in ("visible", "hidden"):
        raise NotFound(f"no comment {comment_id}", code="unknown_comment")
    await get_clip(conn, viewer_id=viewer_id, clip_id=parent["clip_id"], signer=signer)
    return [_comment(r) for r in await conn.fetch(REPLIES, viewer_id, comment_id, after_id, limit)]


async def _set_status(conn: Conn, comment_id: int, old: str, new: str) -> None:
    """Move a comment from ``old`` to ``new``; counts follow what is visible."""
    changed = await conn.fetchrow(SET_COMMENT_STATUS, comment_id, new, [old])
    if changed is None:  # someone else changed it first
        return
    delta = (new == "visible") - (old == "visible")
    if delta:
        await conn.execute(BUMP_COMMENTS, changed["clip_id"], delta)
        if changed["parent_id"] is not None:
            await conn.execute(BUMP_REPLIES, changed["parent_id"], delta)


async def delete_comment(conn: Conn, *, viewer_id: int, comment_id: int) -> None:
    """By its author or by the clip's owner; replies go with a deleted comment."""
    row = await conn.fetchrow(ONE_COMMENT, comment_id)
    if (
        row is None
        or row["status"] == "deleted"
        or viewer_id not in (row["author_id"], row["clip_author_id"])
    ):
        raise NotFound(f"no comment {comment_id} you can delete", code="unknown_comment")
    await _set_status(conn, comment_id, row["status"], "deleted")
    if row["parent_id"] is None:
        gone = await conn.fetch(DELETE_REPLIES, comment_id)
        visible = sum(1 for r in gone if r["was"] == "visible")
        if visible:
            await conn.execute(BUMP_COMMENTS, row["clip_id"], -visible)


async def hide_comment(conn: Conn, *, viewer_id: int, comment_id: int, hidden: bool) -> Comment:
    """The clip's owner hides a comment from everyone but its author (or shows it again)."""
    row = await conn.fetchrow(ONE_COMMENT, comment_id)
    if row is None or row["status"] not in ("visible", "hidden") or row["clip_author_id"] != viewer_id:
        raise NotFound(f"no comment {comment_id} on your clips", code="unknown_comment")
    await _set_status(conn, comment_id, row["status"], "hidden" if hidden else "visible")
    return _comment(await conn.fetchrow(ONE_COMMENT, comment_id))


async def share(conn: Conn, *, viewer_id: int, clip_id: int, data: ShareCreate, signer: Signer) -> Share:
    await _published(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)
    share_id = await conn.fetchval(INSERT_SHARE, clip_id, viewer_id, data.channel)
    await conn.execute(BUMP_SHARES, clip_id)
    return Share(id=share_id, clip_id=clip_id, url=f"{signer.settings.base_url}/c/{clip_id}?s={share_id}")
