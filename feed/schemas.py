"""The feed API: events in, pages of clips out, steering."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from backend.accounts.schemas import Input
from backend.clips.schemas import Clip

EventType = Literal[
    "impression", "watch", "complete", "skip", "like", "share", "not_interested", "hide_creator", "tap"
]


class EventIn(Input):
    client_event_id: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
    type: EventType
    clip_id: Annotated[int, Meta(ge=1)]
    at: datetime
    watch_ms: Annotated[int, Meta(ge=0, le=3_600_000)] | None = None


class EventBatch(Input):
    events: Annotated[list[EventIn], Meta(min_length=1, max_length=1000)]


class EventsAccepted(msgspec.Struct, kw_only=True):
    accepted: int  # new events queued for storage
    duplicates: int  # client_event_ids already received (ignored)


class FeedItem(msgspec.Struct, kw_only=True):
    clip: Clip
    reason: str  # "because you liked …", "trending", "from someone you follow", "new", …


class FeedPage(msgspec.Struct, kw_only=True):
    items: list[FeedItem]
    next_cursor: str | None


class RenderedItem(msgspec.Struct, kw_only=True):
    """A :class:`FeedItem` whose clip is already JSON (backend.clips.cards)."""

    clip: msgspec.Raw
    reason: str


class RenderedPage(msgspec.Struct, kw_only=True):
    """A :class:`FeedPage` as it is sent: the same JSON, built from rendered cards."""

    items: list[RenderedItem]
    next_cursor: str | None


Topic = Annotated[str, Meta(min_length=1, max_length=40)]


class PreferencesIn(Input):
    text: Annotated[str, Meta(max_length=500)] = ""
    more: Annotated[list[Topic], Meta(max_length=20)] = []
    fewer: Annotated[list[Topic], Meta(max_length=20)] = []


class Preferences(msgspec.Struct, kw_only=True):
    text: str
    more: list[str]
    fewer: list[str]
    updated_at: datetime | None
