"""Accounts: sign-up, sessions, profiles and the social graph (follows, blocks, mutes).

Other domains ask this module who may see whom: :func:`are_mutuals`, :func:`blocked_either_way`
and :func:`hidden_authors`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from backend.accounts import queries as q
from backend.accounts import session_cache
from backend.accounts.passwords import Passwords
from backend.accounts.schemas import (
    AccountCreate,
    Connection,
    Me,
    MeUpdate,
    Profile,
    Relationship,
    Session,
    UserSummary,
)
from backend.auth import Viewer, hash_token, is_teen, new_token
from backend.db import Conn
from backend.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from backend.notifications import service as notifications
from feed import visibility

MIN_AGE = 13


def _me(row: asyncpg.Record) -> Me:
    return Me(
        id=row["id"],
        handle=row["handle"],
        email=row["email"],
        display_name=row["display_name"],
        bio=row["bio"],
        avatar_url=row["avatar_url"],
        locale=row["locale"],
        birth_year=row["birth_year"],
        is_teen=is_teen(row["birth_year"]),
        role=row["role"],
        follower_count=row["follower_count"],
        following_count=row["following_count"],
        created_at=row["created_at"],
    )


def _session(row: asyncpg.Record, current_id: int | None) -> Session:
    return Session(
        id=row["id"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        expires_at=row["expires_at"],
        user_agent=row["user_agent"],
        ip=row["ip"],
        current=row["id"] == current_id,
    )


def _check_birth_year(year: int | None) -> None:
    if year is None:
        return
    this_year = datetime.now(UTC).year
    if year > this_year:
        raise ValidationFailed("birth year is in the future", field="birth_year")
    if this_year - year < MIN_AGE:
        raise ValidationFailed(f"Riffle accounts are for people aged {MIN_AGE} and over", field="birth_year")


# --- accounts and profiles -------------------------------------------------------------------


async def create_account(conn: Conn, data: AccountCreate, passwords: Passwords) -> Me:
    _check_birth_year(data.birth_year)
    password_hash = await passwords.hash(data.password)
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                q.INSERT_USER,
                data.handle,
                data.email,
                password_hash,
                data.display_name,
                data.locale,
                data.birth_year,
            )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "users_handle_key":
            raise Conflict("that handle is taken", code="handle_taken", field="handle") from None
        raise Conflict("an account with that email exists", code="email_taken", field="email") from None
    assert row is not None
    return _me(row)


async def get_me(conn: Conn, user_id: int) -> Me:
    row = await conn.fetchrow(q.ME, user_id)
    if row is None:
        raise NotFound("no such account")
    return _me(row)


async def update_me(conn: Conn, user_id: int, data: MeUpdate) -> Me:
    if data.birth_year is not msgspec.UNSET:
        _check_birth_year(data.birth_year)

    def part(value: object) -> tuple[bool, object]:
        return (False, None) if value is msgspec.UNSET else (True, value)

    row = await conn.fetchrow(
        q.UPDATE_ME,
        user_id,
        *part(data.display_name),
        *part(data.bio),
        *part(data.avatar_url),
        *part(data.locale),
        *part(data.birth_year),
    )
    if row is None:
        raise NotFound("no such account")
    session_cache.forget_user(user_id)  # a cached viewer carries the birth year
    if data.birth_year is not msgspec.UNSET:
        visibility.changed(viewer=user_id)  # age-restricted clips in their feed sessions
    return _me(row)


async def visible_user_id(conn: Conn, handle: str, viewer_id: int | None) -> int:
    """The id behind ``handle`` if the viewer may see that account; 404 otherwise (also when the
    account blocked the viewer, so a block cannot be told from a missing account)."""
    user_id = await conn.fetchval(q.VISIBLE_USER, handle, viewer_id)
    if user_id is None:
        raise NotFound(f"no user @{handle.lower()}")
    return int(user_id)


async def get_profile(conn: Conn, handle: str, viewer_id: int | None) -> Profile:
    user_id = await visible_user_id(conn, handle, viewer_id)
    row = await conn.fetchrow(q.PROFILE, user_id, viewer_id)
    assert row is not None
    relationship = None
    if viewer_id is not None and viewer_id != user_id:
        relationship = Relationship(
            following=row["following"],
            followed_by=row["followed_by"],
            blocking=row["blocking"],
            muting=row["muting"],
        )
    return Profile(
        id=row["id"],
        handle=row["handle"],
        display_name=row["display_name"],
        bio=row["bio"],
        avatar_url=row["avatar_url"],
        follower_count=row["follower_count"],
        following_count=row["following_count"],
        created_at=row["created_at"],
        relationship=relationship,
    )


# --- sessions ---------------------------------------------------------------------------------


class LoginResult(msgspec.Struct, kw_only=True):
    token: str
    session: Session
    user: Me


class AccountInactive(Forbidden):
    """The right password for a suspended or banned account: no session, but the sign-in route
    offers a way to appeal (see moderation.service.appeal_offer)."""

    def __init__(self, detail: str, *, user_id: int, **kw: Any) -> None:
        super().__init__(detail, **kw)
        self.user_id = user_id


async def log_in(
    conn: Conn,
    *,
    login: str,
    password: str,
    passwords: Passwords,
    ttl_days: int,
    user_agent: str,
    ip: str,
) -> LoginResult:
    row = await conn.fetchrow(q.LOGIN_LOOKUP, login)
    ok, rehashed = await passwords.verify(row["password_hash"] if row else None, password)
    if row is None or not ok:
        raise Unauthorized("wrong handle, email or password", code="invalid_credentials")
    if not row["active"]:
        until = row["suspended_until"]
        detail = f"this account is {row['status']}" + (f" until {until.isoformat()}" if until else "")
        raise AccountInactive(
            detail,
            user_id=row["id"],
            code=f"account_{row['status']}",
            extra={"until": until.isoformat() if until else None},
        )
    if row["status"] == "suspended":  # the suspension is over
        await conn.execute(
            "UPDATE users SET status = 'active', suspended_until = NULL WHERE id = $1", row["id"]
        )
    if rehashed:
        await conn.execute(q.SET_PASSWORD_HASH, row["id"], rehashed)
    token, token_hash = new_token()
    session_row = await conn.fetchrow(
        q.INSERT_SESSION, row["id"], token_hash, user_agent[:300], ip[:64], ttl_days
    )
    assert session_row is not None
    session = _session(session_row, session_row["id"])
    return LoginResult(token=token, session=session, user=await get_me(conn, row["id"]))


async def authenticate(conn: Conn, token: str | bytes, *, ttl_days: int) -> Viewer | None:
    """The viewer a bearer token (or its SHA-256) signs in, extending the session's life."""
    token_hash = token if isinstance(token, bytes) else hash_token(token)
    row = await conn.fetchrow(q.AUTHENTICATE, token_hash, ttl_days)
    if row is None:
        return None
    return Viewer(
        user_id=row["user_id"],
        session_id=row["session_id"],
        handle=row["handle"],
        role=row["role"],
        birth_year=row["birth_year"],
    )


async def list_sessions(conn: Conn, viewer: Viewer, *, before_id: int | None, limit: int) -> list[Session]:
    rows = await conn.fetch(q.LIST_SESSIONS, viewer.user_id, before_id, limit)
    return [_session(r, viewer.session_id) for r in rows]


async def revoke_session(conn: Conn, viewer: Viewer, session_id: int) -> None:
    if await conn.fetchval(q.REVOKE_SESSION, session_id, viewer.user_id) is None:
        raise NotFound("no such session")
    session_cache.forget_user(viewer.user_id)


async def revoke_all_sessions(conn: Conn, user_id: int) -> None:
    await conn.execute(q.REVOKE_ALL_SESSIONS, user_id)
    session_cache.forget_user(user_id)


async def prune_sessions(conn: Conn) -> int:
    status = await conn.execute(q.PRUNE_SESSIONS)
    return int(status.split()[-1])


# --- the social graph -------------------------------------------------------------------------


async def _other(conn: Conn, viewer: Viewer, handle: str) -> int:
    other = await visible_user_id(conn, handle, viewer.user_id)
    if other == viewer.user_id:
        raise ValidationFailed("you cannot do that to yourself", code="self_action", field="handle")
    return other


async def follow(conn: Conn, viewer: Viewer, handle: str) -> Relationship:
    other = await _other(conn, viewer, handle)
    if await conn.fetchval(q.BLOCKED_EITHER_WAY, viewer.user_id, other):
        raise Forbidden("you cannot follow an account you blocked; unblock it first", code="blocked")
    if await conn.execute(q.FOLLOW, viewer.user_id, other) != "UPDATE 0":  # a new follow
        await notifications.notify(conn, recipient_id=other, kind="follow", actor_id=viewer.user_id)
    return await relationship(conn, viewer.user_id, other)


async def unfollow(conn: Conn, viewer: Viewer, handle: str) -> Relationship:
    other = await _other(conn, viewer, handle)
    await conn.execute(q.UNFOLLOW, viewer.user_id, other)
    # Their followers-only clips leave this viewer's feed sessions. (Clips made with a cameo
    # whose consent is "mutuals" are the trigger's to announce, migration 0020.)
    visibility.changed(viewer=viewer.user_id)
    return await relationship(conn, viewer.user_id, other)


async def block(conn: Conn, viewer: Viewer, handle: str) -> Relationship:
    """Block an account: it can no longer see the blocker's profile or interact, and follows
    between the two are removed both ways."""
    other = await _other(conn, viewer, handle)
    for side in (viewer.user_id, other):  # each side's clips leave the other's feed sessions
        visibility.changed(viewer=side)
    await conn.execute(q.BLOCK, viewer.user_id, other)
    await conn.execute(q.UNFOLLOW, viewer.user_id, other)
    await conn.execute(q.UNFOLLOW, other, viewer.user_id)
    return await relationship(conn, viewer.user_id, other)


async def unblock(conn: Conn, viewer: Viewer, handle: str) -> Relationship:
    other = await _other(conn, viewer, handle)
    await conn.execute(q.UNBLOCK, viewer.user_id, other)
    return await relationship(conn, viewer.user_id, other)


async def mute(conn: Conn, viewer: Viewer, handle: str, seconds: int | None) -> Relationship:
    other = await _other(conn, viewer, handle)
    until = datetime.now(UTC) + timedelta(seconds=seconds) if seconds else None
    await conn.execute(q.MUTE, viewer.user_id, other, until)
    return await relationship(conn, viewer.user_id, other)


async def unmute(conn: Conn, viewer: Viewer, handle: str) -> Relationship:
    other = await _other(conn, viewer, handle)
    await conn.execute(q.UNMUTE, viewer.user_id, other)
    return await relationship(conn, viewer.user_id, other)


async def relationship(conn: Conn, viewer_id: int, other_id: int) -> Relationship:
    row = await conn.fetchrow(q.PROFILE, other_id, viewer_id)
    assert row is not None
    return Relationship(
        following=row["following"],
        followed_by=row["followed_by"],
        blocking=row["blocking"],
        muting=row["muting"],
    )


async def connections(
    conn: Conn,
    *,
    handle: str,
    viewer_id: int | None,
    direction: str,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[Connection]:
    user_id = await visible_user_id(conn, handle, viewer_id)
    sql = q.FOLLOWERS if direction == "followers" else q.FOLLOWING
    since, last_id = after if after else (None, None)
    rows = await conn.fetch(sql, user_id, viewer_id, since, last_id, limit)
    return [
        Connection(
            user=UserSummary(
                id=r["id"], handle=r["handle"], display_name=r["display_name"], avatar_url=r["avatar_url"]
            ),
            since=r["since"],
        )
        for r in rows
    ]


async def are_mutuals(conn: Conn, a: int, b: int) -> bool:
    """Both follow each other (cameo consent "mutuals" rests on this)."""
    return bool(await conn.fetchval(q.ARE_MUTUALS, a, b))


async def blocked_either_way(conn: Conn, a: int, b: int) -> bool:
    return bool(await conn.fetchval(q.BLOCKED_EITHER_WAY, a, b))


async def hidden_authors(conn: Conn, viewer_id: int) -> set[int]:
    """Accounts whose content the viewer must not be shown: blocked either way, or muted."""
    return {r["user_id"] for r in await conn.fetch(q.HIDDEN_AUTHORS, viewer_id)}
