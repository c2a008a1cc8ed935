"""Authenticated sessions, remembered by each API process for a short while.

Looking every bearer token up in PostgreSQL cost each signed-in request a round trip: on a later
feed page, a third of the server's time in asyncpg and a quarter of PostgreSQL's. Each process
now keeps what a lookup found for ``auth_cache_s`` seconds, and revocation still takes effect
at once in every process: triggers on ``sessions`` and ``users`` (migration 0018) send
``NOTIFY riffle_auth, '<user id>'`` when a session is revoked or deleted, or when a user's
status, role, handle or birth year changes. PostgreSQL delivers that when the change commits
(never for one rolled back), and every process's listener forgets that user's sessions.

The notification arrives a moment after the commit, so code that ends sessions in this process
also calls :func:`forget_user` itself, before it commits: the caller's next request, which
starts once the response (and so the commit) is out, cannot find the old entry.

Two races are closed by an *epoch* that every forgetting bumps: a lookup that began before a
notification arrived does not store what it found, since it may have read the row as it was
before the change. And while a process is not listening (starting, or after its listening
connection was lost, when notifications may have been missed) it remembers nothing and forgets
everything, so every request goes to PostgreSQL as before.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from backend.auth import Viewer

CHANNEL = "riffle_auth"
_CACHES: weakref.WeakSet[SessionCache] = weakref.WeakSet()  # every cache in this process


def forget_user(user_id: int) -> None:
    """Forget ``user_id``'s sessions in this process now (the notification covers the others)."""
    for cache in _CACHES:
        cache.forget_user(user_id)


class SessionCache:
    """Token hash → the viewer its session authenticated, per process."""

    def __init__(self, ttl_s: float, *, max_entries: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.listening = False  # set by backend.listen: remember only while notifications can arrive
        self.epoch = 0
        self._entries: dict[bytes, tuple[Viewer, float]] = {}
        self._by_user: dict[int, set[bytes]] = {}
        _CACHES.add(self)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token_hash: bytes) -> Viewer | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        viewer, until = entry
        if until < time.monotonic():
            self._drop(token_hash, viewer.user_id)
            return None
        return viewer

    def put(self, token_hash: bytes, viewer: Viewer, *, epoch: int) -> None:
        """Remember ``viewer``, unless something was forgotten since the lookup began (``epoch``
        read before it) or the process is not listening."""
        if not self.listening or epoch != self.epoch or self.ttl_s <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self.clear()  # a burst of new tokens: start over rather than track recency per hit
        self._entries[token_hash] = (viewer, time.monotonic() + self.ttl_s)
        self._by_user.setdefault(viewer.user_id, set()).add(token_hash)

    def forget_user(self, user_id: int) -> None:
        self.epoch += 1
        for token_hash in self._by_user.pop(user_id, ()):
            self._entries.pop(token_hash, None)

    def clear(self) -> None:
        self.epoch += 1
        self._entries.clear()
        self._by_user.clear()

    def _drop(self, token_hash: bytes, user_id: int) -> None:
        self._entries.pop(token_hash, None)
        hashes = self._by_user.get(user_id)
        if hashes is not None:
            hashes.discard(token_hash)
            if not hashes:
                del self._by_user[user_id]

    def notified(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        try:
            self.forget_user(int(str(payload)))
        except ValueError:
            self.clear()

    def started(self) -> None:
        self.clear()  # whatever was looked up before now was not covered
        self.listening = True

    def stopped(self) -> None:
        self.listening = False
        self.clear()
