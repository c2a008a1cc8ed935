"""``Idempotency-Key`` for creates that cost money or make rows.

The key is claimed in the same transaction as the resource it creates, under a primary key, so
two racing requests with one key serialise on PostgreSQL: the second waits for the first to
commit and then gets the same resource. The same key with a different body is refused.
"""

from __future__ import annotations

import hashlib
import re

import msgspec

from backend.db import Conn
from backend.errors import BadRequest, ValidationFailed

_KEY = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")


def require_key(header: str | None) -> str:
    if header is None:
        raise BadRequest(
            "this request needs an Idempotency-Key header so that a retry does not repeat it",
            code="idempotency_key_required",
            field="header.Idempotency-Key",
        )
    if not _KEY.match(header):
        raise BadRequest(
            "Idempotency-Key must be 8-128 characters of letters, digits and . _ : -",
            code="idempotency_key_invalid",
            field="header.Idempotency-Key",
        )
    return header


def fingerprint(body: msgspec.Struct) -> bytes:
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).digest()


async def claim(conn: Conn, *, user_id: int, scope: str, key: str, body_fingerprint: bytes) -> int | None:
    """Return the resource id already made under this key, or None if the key is new.

    When it returns None the caller creates the resource and calls :func:`record` in the same
    transaction. A transaction-level advisory lock on the key makes a racing twin wait here.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))", f"{scope}:{key}", user_id)
    row = await conn.fetchrow(
        """
        SELECT fingerprint, resource_id FROM idempotency_keys
        WHERE user_id = $1 AND scope = $2 AND key = $3
        """,
        user_id,
        scope,
        key,
    )
    if row is None:
        return None
    if bytes(row["fingerprint"]) != body_fingerprint:
        raise ValidationFailed(
            "this Idempotency-Key was already used with a different request body",
            code="idempotency_key_reused",
            field="header.Idempotency-Key",
        )
    return int(row["resource_id"])


async def record(
    conn: Conn, *, user_id: int, scope: str, key: str, body_fingerprint: bytes, resource_id: int
) -> None:
    await conn.execute(
        """
        INSERT INTO idempotency_keys (user_id, scope, key, fingerprint, resource_id)
        VALUES ($1, $2, $3, $4, $5)
        """,
        user_id,
        scope,
        key,
        body_fingerprint,
        resource_id,
    )
