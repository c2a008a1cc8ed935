"""Sessions remembered per API process, and forgotten in every process the moment they change."""

from __future__ import annotations

import asyncio
import time

from backend.accounts.session_cache import SessionCache
from backend.auth import Viewer, hash_token
from backend.runtime import runtime


async def _until(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.02)
    return False


async def _listening(app) -> None:
    assert await _until(lambda: asyncio.sleep(0, runtime(app.state).sessions.listening))


async def test_a_session_revoked_by_another_process_stops_working_here(app, client, users, conn):
    await _listening(app)
    alice = await users.make("alice")
    sessions = runtime(app.state).sessions

    async def remembered() -> bool:
        # (a lookup that overlapped a notification, such as the sign-up's own, is not kept)
        assert (await client.get("/v1/me", headers=alice.headers)).status_code == 200
        return sessions.get(hash_token(alice.token)) is not None

    assert await _until(remembered)
    # Revoked by someone else (another API process, an operator): only the notification tells.
    await conn.execute("UPDATE sessions SET revoked_at = now() WHERE user_id = $1", alice.id)

    async def refused() -> bool:
        return (await client.get("/v1/me", headers=alice.headers)).status_code == 401

    assert await _until(refused)
    assert sessions.get(hash_token(alice.token)) is None


async def test_a_role_or_status_change_elsewhere_is_seen_at_once(app, client, users, conn):
    await _listening(app)
    bob = await users.make("bob")
    assert (await client.get("/v1/moderation/queue", headers=bob.headers)).status_code == 404
    await conn.execute("UPDATE users SET role = 'moderator' WHERE id = $1", bob.id)

    async def moderating() -> bool:
        return (await client.get("/v1/moderation/queue", headers=bob.headers)).status_code == 200

    assert await _until(moderating)
    await conn.execute("UPDATE users SET status = 'banned' WHERE id = $1", bob.id)

    async def refused() -> bool:
        return (await client.get("/v1/me", headers=bob.headers)).status_code == 401

    assert await _until(refused)


async def test_logging_out_refuses_the_very_next_request(app, client, users):
    await _listening(app)
    carol = await users.make("carol")
    assert (await client.get("/v1/me", headers=carol.headers)).status_code == 200
    assert (await client.delete("/v1/sessions/current", headers=carol.headers)).status_code == 204
    # No waiting: the process that ended the session forgot it before answering.
    assert (await client.get("/v1/me", headers=carol.headers)).status_code == 401


async def test_nothing_is_remembered_while_the_listener_is_down(app, client, users, conn):
    await _listening(app)
    dave = await users.make("dave")
    assert (await client.get("/v1/me", headers=dave.headers)).status_code == 200
    sessions = runtime(app.state).sessions
    assert len(sessions) >= 1
    killed = await conn.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
    )
    assert killed >= 1

    async def forgotten() -> bool:
        return not sessions.listening and len(sessions) == 0

    assert await _until(forgotten)
    # Requests still work meanwhile (every token is looked up), and it listens again.
    assert (await client.get("/v1/me", headers=dave.headers)).status_code == 200
    await _listening(app)
    await conn.execute("UPDATE sessions SET revoked_at = now() WHERE user_id = $1", dave.id)

    async def refused() -> bool:
        return (await client.get("/v1/me", headers=dave.headers)).status_code == 401

    assert await _until(refused)


def _viewer(user_id: int) -> Viewer:
    return Viewer(user_id=user_id, session_id=user_id, handle=f"u{user_id}", role="user", birth_year=None)


def test_a_lookup_that_raced_a_change_is_not_kept():
    cache = SessionCache(30)
    cache.listening = True
    epoch = cache.epoch  # a lookup begins...
    cache.forget_user(7)  # ...a notification arrives while it waits for PostgreSQL...
    cache.put(b"t7", _viewer(7), epoch=epoch)  # ...what it read may predate the change
    assert cache.get(b"t7") is None
    cache.put(b"t7", _viewer(7), epoch=cache.epoch)
    assert cache.get(b"t7") == _viewer(7)


def test_entries_expire_and_the_cache_is_bounded():
    cache = SessionCache(0.05, max_entries=3)
    cache.listening = True
    for i in range(3):
        cache.put(f"t{i}".encode(), _viewer(i), epoch=cache.epoch)
    assert len(cache) == 3
    cache.put(b"t3", _viewer(3), epoch=cache.epoch)  # full: starts over
    assert len(cache) == 1
    assert cache.get(b"t3") is not None
    time.sleep(0.06)
    assert cache.get(b"t3") is None
    off = SessionCache(0)
    off.listening = True
    off.put(b"t", _viewer(1), epoch=off.epoch)
    assert off.get(b"t") is None
