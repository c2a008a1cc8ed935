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

import asyncio
import random
import time
from collections.abc import Iterable

import msgspec
import structlog

from backend.clips.schemas import Clip, ViewerState
from backend.clips.service import Signer, published_cards
from backend.db import Pool

log = structlog.get_logger()

_PLACEHOLDER = ViewerState(liked=False, is_author=False)
_VIEWER_KEY = b'"viewer":'
_SPLIT = _VIEWER_KEY + msgspec.json.encode(_PLACEHOLDER)
_STATES = {
    (liked, is_author): _VIEWER_KEY + msgspec.json.encode(ViewerState(liked=liked, is_author=is_author))
    for liked in (False, True)
    for is_author in (False, True)
}


class Card:
    """A clip's JSON as a viewer who neither liked nor made it sees it (what feed pages
    serve: ranking leaves out the viewer's own clips and the ones they liked), and where its
    viewer part is, to put another viewer's in."""

    __slots__ = ("at", "author_id", "plain", "until")

    def __init__(self, clip: Clip, until: float) -> None:
        # Strings in JSON have their quotes escaped, so the only `"viewer":{…}` is the field.
        plain = msgspec.json.encode(msgspec.structs.replace(clip, viewer=_PLACEHOLDER))
        at = plain.find(_SPLIT)
        if at < 0:
            raise ValueError("a clip card without its viewer field")
        self.author_id = clip.author.id
        self.plain, self.at, self.until = plain, at, until

    def raw(self, *, liked: bool, is_author: bool) -> msgspec.Raw:
        """The card as JSON for one viewer, to embed in a response (without a copy for the
        common viewer)."""
        if not (liked or is_author):
            return msgspec.Raw(self.plain)
        plain, at = self.plain, self.at
        return msgspec.Raw(plain[:at] + _STATES[liked, is_author] + plain[at + len(_SPLIT) :])


class CardCache:
    """Clip id -> its rendered card, per process."""

    # A card served with less than this share of its lifetime left is rendered again in the
    # background (CardLoader.prefetch): a card that keeps being asked for is replaced before it
    # expires, not rendered again by the page that finds it gone.
    REFRESH_SHARE = 0.3

    def __init__(self, ttl_s: float, *, max_entries: int = 20_000) -> None:
        self.ttl_s = ttl_s
        self.refresh_s = ttl_s * self.REFRESH_SHARE
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

    def wanted(self, clip_ids: Iterable[int]) -> list[int]:
        """Those of ``clip_ids`` worth rendering ahead: not held, or soon to expire."""
        if self.ttl_s <= 0:
            return []
        soon, cards = time.monotonic() + self.refresh_s, self._cards
        return [i for i in clip_ids if (card := cards.get(i)) is None or card.until < soon]

    def put(self, clip: Clip) -> Card:
        """Render ``clip`` and keep it (for 80-100% of ``ttl_s``, at random: cards rendered
        together, as the first pages of many sessions from one taste cohort's list are, must
        not all expire together and be rendered again in one burst; not at all when it is 0)."""
        card = Card(clip, time.monotonic() + self.ttl_s * (0.8 + 0.2 * random.random()))  # noqa: S311
        if self.ttl_s > 0:
            self._cards.pop(clip.id, None)  # re-inserted last: the dict stays oldest first
            self._cards[clip.id] = card
            while len(self._cards) > self.max_entries:
                del self._cards[next(iter(self._cards))]
        return card


class _Batch:
    """Clip ids rendered by one query, and the requests waiting for them."""

    __slots__ = ("ids", "waiters")

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.waiters: list[asyncio.Future[dict[int, Card]]] = []


class CardLoader:
    """Renders the cards a process lacks, for many requests in one query.

    Feed pages ask for the cards of clips their sessions hold that the process has not
    rendered in the last ``ttl_s``: one or two a page, so one query a page, and a query's fixed
    cost (asyncpg, PostgreSQL's per-statement work) was most of what a later page spent on
    PostgreSQL. Requests that ask while a query is being prepared join it, and a request that
    asks for a card a running query renders waits for that query; while ``MAX_QUERIES`` are in
    flight, the next query waits for one of them and collects every request that asks
    meanwhile, so the busier the process, the larger the batch.

    :meth:`prefetch` renders cards no request waits for yet (the next page of a session, cards
    about to expire), so that the page that needs them finds them rendered: a page that waited
    for the loader took four times as long as one that did not (bench/feed_load.py, later
    pages: server time p50 49 ms against 13), and one page in ten did.

    Only for clips whose visibility the caller settles (they are rendered as anyone sees
    them, no viewer's rules applied): a feed session's clips that nothing could have hidden
    since it was ranked (feed.visibility) are shown from here; cards rendered ahead are only
    kept, and shown once a page has settled that.
    """

    MAX_QUERIES = 2

    def __init__(self, cache: CardCache, pool: Pool, signer: Signer) -> None:
        self.cache = cache
        self._pool = pool
        self._signer = signer
        self._next: _Batch | None = None  # asked for, not yet in a query
        self._inflight: dict[int, _Batch] = {}  # clip id -> the running query rendering it
        self._scheduled = False
        self._running: set[asyncio.Task[None]] = set()

    @property
    def idle(self) -> bool:
        """Nothing rendering or waiting to be rendered: what was asked for has been."""
        return not (self._running or self._scheduled or (self._next is not None and self._next.ids))

    async def load(self, clip_ids: list[int]) -> dict[int, Card]:
        """Cards for those of ``clip_ids`` that are published (rendered now, or by a query that
        was rendering them or that another request asked for at the same time), by clip id."""
        loop = asyncio.get_running_loop()
        batches: list[_Batch] = []
        new: list[int] = []
        for clip_id in clip_ids:
            if (running := self._inflight.get(clip_id)) is not None:
                if running not in batches:
                    batches.append(running)
            else:
                new.append(clip_id)
        if new:
            batch = self._batch()
            batch.ids.update(new)
            batches.append(batch)
        rendered: dict[int, Card] = {}
        waiters = [loop.create_future() for _ in batches]
        for batch, waiter in zip(batches, waiters, strict=True):
            batch.waiters.append(waiter)
        for waiter in waiters:
            rendered.update(await waiter)
        return {i: rendered[i] for i in clip_ids if i in rendered}

    def prefetch(self, clip_ids: list[int]) -> None:
        """Render these cards soon, with whatever query comes next; nobody waits for them."""
        if new := [i for i in clip_ids if i not in self._inflight]:
            self._batch().ids.update(new)

    def _batch(self) -> _Batch:
        """The batch the next query renders, that query scheduled unless it must wait."""
        if self._next is None:
            self._next = _Batch()
        if not self._scheduled and len(self._running) < self.MAX_QUERIES:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)
        return self._next

    def _start(self) -> None:
        self._scheduled = False
        batch, self._next = self._next, None
        if batch is None or not batch.ids:
            return
        for clip_id in batch.ids:
            self._inflight[clip_id] = batch
        task = asyncio.create_task(self._query(batch), name="card-loader")
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._next is not None and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)

    async def _query(self, batch: _Batch) -> None:
        try:
            async with self._pool.acquire() as conn:
                clips = await published_cards(conn, clip_ids=list(batch.ids), signer=self._signer)
            rendered = {clip.id: self.cache.put(clip) for clip in clips}
        except asyncio.CancelledError:  # shutting down
            for waiter in batch.waiters:
                waiter.cancel()
            raise
        except Exception as exc:  # each request answers for it (a 503 for PostgreSQL away)
            if not batch.waiters:
                log.warning("clips.cards_ahead_failed", cards=len(batch.ids), error=repr(exc))
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        finally:
            for clip_id in batch.ids:
                if self._inflight.get(clip_id) is batch:
                    del self._inflight[clip_id]
        for waiter in batch.waiters:
            if not waiter.done():
                waiter.set_result(rendered)
