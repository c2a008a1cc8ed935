"""The clips API: what clients send and get back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from backend.accounts.schemas import Input, UserSummary

Caption = Annotated[str, Meta(max_length=2200)]
Visibility = Literal["public", "followers", "private"]
CommentBody = Annotated[str, Meta(min_length=1, max_length=1000)]
PositiveId = Annotated[int, Meta(ge=1)]


class ClipCreate(Input):
    """Publish one finished take (its draft) as a clip."""

    take_id: PositiveId
    caption: Caption = ""
    visibility: Visibility = "public"
    allow_remix: bool = True
    allow_comments: bool = True


class ClipUpdate(Input):
    caption: Caption | UnsetType = UNSET
    visibility: Visibility | UnsetType = UNSET
    allow_remix: bool | UnsetType = UNSET
    allow_comments: bool | UnsetType = UNSET


class Media(msgspec.Struct, kw_only=True):
    url: str
    content_type: str


class Counts(msgspec.Struct, kw_only=True):
    views: int
    likes: int
    comments: int
    shares: int
    remixes: int


class ViewerState(msgspec.Struct, kw_only=True):
    liked: bool
    is_author: bool


class RemixInfo(msgspec.Struct, kw_only=True):
    parent_id: int | None
    root_id: int | None
    depth: int
    parent_available: bool  # False: the original was removed or deleted ("original unavailable")


class ProductTag(msgspec.Struct, kw_only=True):
    """A product shown in the clip; tapping it (POST …/product-tags/{id}/tap) leads to the shop."""

    id: int
    product_id: int
    title: str
    price_minor: int | None
    currency: str | None
    image_url: str | None
    start_ms: int | None
    end_ms: int | None
    x: float | None
    y: float | None


class Clip(msgspec.Struct, kw_only=True):
    id: int
    author: UserSummary
    status: Literal["draft", "published", "removed", "deleted"]
    caption: str
    hashtags: list[str]
    mentions: list[str]
    visibility: Visibility
    allow_remix: bool
    allow_comments: bool
    video: Media
    poster: Media
    duration_ms: int
    width: int
    height: int
    model: str
    ai_generated: bool
    label: str  # the disclosure shown on the clip
    counts: Counts
    viewer: ViewerState
    remix: RemixInfo
    cameo_ids: list[int]
    product_tags: list[ProductTag]
    take_id: int
    created_at: datetime
    published_at: datetime | None


class LineageItem(msgspec.Struct, kw_only=True):
    """One step from the root to the clip; an unavailable step keeps its place but not its content."""

    id: int
    available: bool
    clip: Clip | None = None


class TreeNode(msgspec.Struct, kw_only=True):
    clip: Clip
    parent_id: int | None
    level: int  # 0 for the clip asked about


class RemixTree(msgspec.Struct, kw_only=True):
    nodes: list[TreeNode]
    truncated: bool  # True when some remixes were left out by the depth or breadth bound


class CommentCreate(Input):
    body: CommentBody
    reply_to: PositiveId | None = None


class Comment(msgspec.Struct, kw_only=True):
    id: int
    clip_id: int
    author: UserSummary
    body: str
    reply_to: int | None
    reply_count: int
    status: Literal["visible", "hidden"]
    created_at: datetime


class ShareCreate(Input):
    channel: Annotated[str, Meta(min_length=1, max_length=30, pattern=r"^[a-z0-9_]+$")] = "link"


class Share(msgspec.Struct, kw_only=True):
    id: int
    clip_id: int
    url: str


class LikeState(msgspec.Struct, kw_only=True):
    clip_id: int
    liked: bool
    likes: int
