"""Clip cards rendered to JSON once and reused by a process for a few seconds.

Building a card (a :class:`Clip` with its author, counters, product tags and two signed media
URLs) and encoding it was a third of a later feed page's server time. A card is the same for
every viewer but for ``viewer`` (liked, is author), so each process keeps the rendered JSON
split around that part for ``ttl_s`` seconds and puts each viewer's part back in. Counters are
then up to ``ttl_s`` old, and the signed URLs inside stay valid for at least the media URL
lifetime less ``ttl_s``.

Whether the viewer may see the clip is not the cache's business: callers decide that first
(feed pages through :mod:`feed.visibility`, everything else in SQL).
"""

from __future__ import annotations

import time

import msgspec

from backend.clips.schemas import Clip, ViewerState

_PLACEHOLDER = ViewerState(liked=False, is_author=False)
_VIEWER_KEY = b'"viewer":'
_SPLIT = _VIEWER_KEY + msgspec.json.encode(_PLACEHOLDER)
_STATES = {
    (liked, is_author): _VIEWER_KEY + msgspec.json.encode(ViewerState(liked=liked, is_author=is_author))
    for liked in (False, True)
    for is_author in (False, True)
}


class Card:
    __slots__ = ("author_id", "head", "tail", "until")

    def __init__(self, clip: Clip, until: float) -> None:
        # Strings in JSON have their quotes escaped, so the only `"viewer":{…}` is the field.
        encoded = msgspec.json.encode(msgspec.structs.replace(clip, viewer=_PLACEHOLDER))
        head, found, tail = encoded.partition(_SPLIT)
        if not found:
            raise ValueError("a clip card without its viewer field")
        self.author_id = clip.author.id
        self.head, self.tail, self.until = head, tail, until

    def raw(self, *, liked: bool, is_author: bool) -> msgspec.Raw:
        """The card as JSON for one viewer, to embed in a response."""
        return msgspec.Raw(self.head + _STATES[liked, is_author] + self.tail)


class CardCache:
    """Clip id → its rendered card, per process."""

    def __init__(self, ttl_s: float, *, max_entries: int = 20_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cards: dict[int, Card] = {}

    def __len__(self) -> int:
        return len(self._cards)

    def get(self, clip_id: int) -> Card | None:
        card = self._cards.get(clip_id)
        if card is None:
            return None
        if card.until < time.monotonic():
            del self._cards[clip_id]
            return None
        return card

    def put(self, clip: Clip) -> Card:
        """Render ``clip`` and keep it (for ``ttl_s``; not at all when that is 0)."""
        card = Card(clip, time.monotonic() + self.ttl_s)
        if self.ttl_s > 0:
            self._cards.pop(clip.id, None)  # re-inserted last: the dict stays oldest first
            self._cards[clip.id] = card
            while len(self._cards) > self.max_entries:
                del self._cards[next(iter(self._cards))]
        return card
