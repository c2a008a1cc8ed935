"""Bearer-token authentication.

Tokens are random (``rf_`` + 32 bytes, URL-safe) and stored only as their SHA-256, so a leaked
database does not leak sessions. Every request looks its token up in PostgreSQL, so revoking a
session takes effect on the very next request in every process.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

import msgspec

TOKEN_PREFIX = "rf_"


class Viewer(msgspec.Struct, frozen=True, kw_only=True):
    """The authenticated caller of a request."""

    user_id: int
    session_id: int
    handle: str
    role: str
    birth_year: int | None

    @property
    def is_moderator(self) -> bool:
        return self.role in ("moderator", "admin")

    @property
    def is_teen(self) -> bool:
        return is_teen(self.birth_year)


def is_teen(birth_year: int | None, now: datetime | None = None) -> bool:
    """Under 18 by birth year. Unknown birth years are treated as adults only for ranking, not
    for teen safety, which is why the app asks for it at sign-up."""
    if birth_year is None:
        return False
    year = (now or datetime.now(UTC)).year
    return year - birth_year < 18


def new_token() -> tuple[str, bytes]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
