"""The accounts API: what clients send and get back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

Handle = Annotated[str, Meta(min_length=3, max_length=30, pattern=r"^[A-Za-z0-9_]+$")]
Email = Annotated[str, Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Password = Annotated[str, Meta(min_length=10, max_length=256)]
DisplayName = Annotated[str, Meta(max_length=60)]
Bio = Annotated[str, Meta(max_length=300)]
AvatarUrl = Annotated[str, Meta(max_length=2048, pattern=r"^https://[^\s]+$")]
Locale = Annotated[str, Meta(max_length=35, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
BirthYear = Annotated[int, Meta(ge=1900, le=2100)]


class Input(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every request body: unknown fields are refused, not ignored."""


class AccountCreate(Input):
    handle: Handle
    email: Email
    password: Password
    display_name: DisplayName = ""
    locale: Locale = "en"
    birth_year: BirthYear | None = None


class MeUpdate(Input):
    display_name: DisplayName | UnsetType = UNSET
    bio: Bio | UnsetType = UNSET
    avatar_url: AvatarUrl | UnsetType | None = UNSET
    locale: Locale | UnsetType = UNSET
    birth_year: BirthYear | UnsetType | None = UNSET


class Me(msgspec.Struct, kw_only=True):
    id: int
    handle: str
    email: str
    display_name: str
    bio: str
    avatar_url: str | None
    locale: str
    birth_year: int | None
    is_teen: bool
    role: str
    follower_count: int
    following_count: int
    created_at: datetime


class SessionCreate(Input):
    login: Annotated[str, Meta(min_length=1, max_length=254, description="Handle or email.")]
    password: Annotated[str, Meta(min_length=1, max_length=256)]


class Session(msgspec.Struct, kw_only=True):
    id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str
    ip: str
    current: bool


class SessionCreated(msgspec.Struct, kw_only=True):
    token: str
    session: Session
    user: Me


class Relationship(msgspec.Struct, kw_only=True):
    """How the caller stands to a profile's owner."""

    following: bool
    followed_by: bool
    blocking: bool
    muting: bool


class Profile(msgspec.Struct, kw_only=True):
    id: int
    handle: str
    display_name: str
    bio: str
    avatar_url: str | None
    follower_count: int
    following_count: int
    created_at: datetime
    relationship: Relationship | None = None


class UserSummary(msgspec.Struct, kw_only=True):
    id: int
    handle: str
    display_name: str
    avatar_url: str | None


class Connection(msgspec.Struct, kw_only=True):
    """One entry of a followers or following list."""

    user: UserSummary
    since: datetime


class MuteCreate(Input):
    seconds: Annotated[int, Meta(ge=60, le=366 * 86400)] | None = None
