"""What may have become hidden since a feed session was ranked, as each process has been told.

A feed session is ranked with every visibility rule applied (``backend.clips.queries.VISIBLE``
in the candidate query), so its later pages only need to know whether something *changed* since
then. Asking PostgreSQL for each later page cost more than the rest of the page together
(docs/BENCHMARKS.md). Instead, triggers (migration 0020) send ``NOTIFY riffle_visibility`` with
what a change can hide:

- ``c<clip id>``: that clip (deleted, removed, made private or followers-only, age-restricted,
  a cameo owner took it down);
- ``a<user id>``: every clip by that author (suspended or banned, a cameo grant revoked, a block
  or unfollow that a cameo's consent depends on);
- ``u<user id>``: everything that viewer sees (blocks, unfollows, their age);
- ``k``: every clip with a cameo (a cameo's consent, status or deletion changed).

Each process records when it heard of each; a later page serves an entry from the session as
ranked unless it, its author or its viewer changed after the session was ranked, and asks
PostgreSQL about the rest. Notifications arrive a moment after the commit, so code that hides
things also tells this process at once (:func:`changed`), as the session cache does for
revocations.

While not listening, and for sessions ranked before it started listening (less :attr:`margin_s`
for clocks of different hosts) or longer ago than it remembers (:attr:`horizon_s`), nothing is
trusted: every page is checked in PostgreSQL, as before.
"""

from __future__ import annotations

import math
import time
import weakref
from typing import Any

CHANNEL = "riffle_visibility"
_NEVER = -math.inf
_WATCHES: weakref.WeakSet[VisibilityWatch] = weakref.WeakSet()  # every watch in this process


def changed(
    *, clip: int | None = None, author: int | None = None, viewer: int | None = None, cameos: bool = False
) -> None:
    """Tell this process now that something may have become hidden (notifications tell the
    others, and this one a moment later). Call it before the change commits."""
    for watch in _WATCHES:
        if cameos:
            watch.record("k", 0)
        if clip is not None:
            watch.record("c", clip)
        if author is not None:
            watch.record("a", author)
        if viewer is not None:
            watch.record("u", viewer)


class VisibilityWatch:
    """When this process last heard that a clip, an author's clips, a viewer's view or the
    clips with cameos may have changed."""

    margin_s = 1.0  # clock differences between the process that ranked and this one
    horizon_s = 1800.0  # how long changes are remembered
    max_entries = 200_000

    def __init__(self) -> None:
        self.listening_since: float | None = None  # set by backend.listen
        self._floor = 0.0  # sessions ranked before this are not covered
        self._cameos = _NEVER
        self._changes: dict[tuple[str, int], float] = {}
        _WATCHES.add(self)

    def __len__(self) -> int:
        return len(self._changes)

    def record(self, kind: str, key: int) -> None:
        now = time.time()
        if kind == "k":
            self._cameos = now
            return
        self._changes.pop((kind, key), None)  # re-inserted last: the dict stays oldest first
        self._changes[(kind, key)] = now
        if len(self._changes) > self.max_entries:
            self._forget_before(now - self.horizon_s)
            while len(self._changes) > self.max_entries // 2:  # a burst: forget the oldest half
                first = next(iter(self._changes))
                self._floor = max(self._floor, self._changes.pop(first))

    def _forget_before(self, at: float) -> None:
        for key, when in list(self._changes.items()):
            if when >= at:
                break
            del self._changes[key]
        self._floor = max(self._floor, at)

    def covers(self, ranked_at: float | None) -> bool:
        """Whether every change since ``ranked_at`` (wall clock) is known here."""
        if ranked_at is None or self.listening_since is None:
            return False
        since = ranked_at - self.margin_s
        if since < time.time() - self.horizon_s:
            return False
        return since >= self.listening_since and since >= self._floor

    def unchanged(
        self, ranked_at: float, *, clip: int, author: int, viewer: int | None, cameos: bool
    ) -> bool:
        """Nothing that could hide ``clip`` from ``viewer`` changed since ``ranked_at`` (given
        :meth:`covers`)."""
        since = ranked_at - self.margin_s
        changes = self._changes
        return not (
            changes.get(("c", clip), _NEVER) >= since
            or changes.get(("a", author), _NEVER) >= since
            or (viewer is not None and changes.get(("u", viewer), _NEVER) >= since)
            or (cameos and self._cameos >= since)
        )

    # backend.listen.Subscriber

    def started(self) -> None:
        self.listening_since = time.time()

    def stopped(self) -> None:
        self.listening_since = None

    def notified(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        text = str(payload)
        try:
            self.record(text[:1], int(text[1:]) if len(text) > 1 else 0)
        except ValueError:
            self._floor = time.time()  # not ours to read: trust no session ranked before now
