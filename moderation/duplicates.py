"""Near-copies: a perceptual hash of each published clip's poster (imagehash's DCT pHash,
64 bits) compared with the author's recent clips and with everyone's very recent ones.

A clip within ``MAX_DISTANCE`` bits of an earlier one is recorded as its near-copy and flagged
for review (an automatic flag on the clip's case). An account with ``throttle`` near-copies in a
day is throttled: publishing answers 429 until the day has passed, and the account is flagged.

The comparison scans a bounded recent window (Hamming distance in SQL, ``bit_count`` of the
XOR), which is cheap at one server's publishing rate; beyond that a multi-index hash table or
a BK-tree would replace the scan.
"""

from __future__ import annotations

import asyncio
import io

import imagehash
import structlog
from PIL import Image

from backend.db import Conn
from backend.errors import RateLimited
from backend.media import service as media
from backend.media.storage import Storage, StorageError
from moderation import service as moderation

log = structlog.get_logger()

MAX_DISTANCE = 6  # of 64 bits: re-encodes, crops of a few pixels, recolouring
OWN_WINDOW = "30 days"
EVERYONE_WINDOW = "3 days"
SCAN_LIMIT = 5000

NEAREST = f"""
SELECT clip_id, bit_count((phash # $1)::bit(64)) AS distance
FROM (
    (SELECT clip_id, phash FROM clip_fingerprints
     WHERE author_id = $2 AND clip_id <> $3 AND created_at > now() - interval '{OWN_WINDOW}'
     ORDER BY created_at DESC LIMIT {SCAN_LIMIT})
    UNION ALL
    (SELECT clip_id, phash FROM clip_fingerprints
     WHERE author_id <> $2 AND created_at > now() - interval '{EVERYONE_WINDOW}'
     ORDER BY created_at DESC LIMIT {SCAN_LIMIT})
) recent
WHERE bit_count((phash # $1)::bit(64)) <= {MAX_DISTANCE}
ORDER BY distance, clip_id
LIMIT 1
"""

RECENT_COPIES = """
SELECT count(*) FROM clip_fingerprints
WHERE author_id = $1 AND duplicate_of IS NOT NULL AND created_at > now() - interval '1 day'
"""


def phash(image: bytes) -> int:
    """The poster's 64-bit pHash as a signed integer (PostgreSQL's bigint)."""
    with Image.open(io.BytesIO(image)) as picture:
        value = int(str(imagehash.phash(picture)), 16)
    return value - (1 << 64) if value >= 1 << 63 else value


async def check_throttle(conn: Conn, *, author_id: int, throttle: int) -> None:
    """Refuse to publish for an account that posted ``throttle`` near-copies in the last day."""
    if await conn.fetchval(RECENT_COPIES, author_id) >= throttle:
        raise RateLimited(
            "too many near-copies of earlier clips today; publishing is paused for a while",
            code="duplicates_throttled",
            headers={"Retry-After": "3600"},
        )


async def fingerprint(conn: Conn, storage: Storage, *, clip_id: int, throttle: int) -> int | None:
    """Hash the clip's poster, record it, flag a near-copy; returns the clip it copies, if any."""
    row = await conn.fetchrow(
        "SELECT id, author_id, poster_media_id FROM clips WHERE id = $1 AND status = 'published'", clip_id
    )
    if row is None:
        return None
    poster = await media.get_media(conn, row["poster_media_id"])
    if poster is None:
        return None
    try:
        value = await asyncio.to_thread(phash, await media.read_bytes(storage, poster))
    except (StorageError, OSError, ValueError) as exc:  # missing or unreadable poster: nothing to compare
        log.warning("duplicates.unreadable_poster", clip_id=clip_id, error=repr(exc))
        return None
    near = await conn.fetchrow(NEAREST, value, row["author_id"], clip_id)
    duplicate_of = near["clip_id"] if near else None
    inserted = await conn.fetchval(
        "INSERT INTO clip_fingerprints (clip_id, author_id, phash, duplicate_of, distance) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (clip_id) DO NOTHING RETURNING clip_id",
        clip_id,
        row["author_id"],
        value,
        duplicate_of,
        near["distance"] if near else None,
    )
    if inserted is None or near is None:
        return duplicate_of
    detail = {"duplicate_of": duplicate_of, "distance": near["distance"]}
    await moderation.open_case(
        conn,
        target="clip",
        target_id=clip_id,
        subject_id=row["author_id"],
        reason="near_duplicate",
        detail=detail,
    )
    if await conn.fetchval(RECENT_COPIES, row["author_id"]) >= throttle:
        await moderation.open_case(
            conn,
            target="user",
            target_id=row["author_id"],
            subject_id=row["author_id"],
            reason="mass_duplicates",
            detail={"last_clip_id": clip_id},
        )
    log.info("duplicates.near_copy", clip_id=clip_id, **detail)
    return duplicate_of
