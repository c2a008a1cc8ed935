"""Media files: stored once with their sha256, served by signed URL, purged after deletion.

Other domains keep media ids (a take's video, a clip's poster, a generation's reference image)
and come here to store bytes, read them back and sign URLs. Bytes go to storage before the row
is written, so a committed row always has its object; an object whose transaction rolled back
is an orphan that costs space but never shows.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec

from backend.db import Conn
from backend.errors import NotFound
from backend.media import queries as q
from backend.media.signing import signed_media_url
from backend.media.storage import Storage
from backend.media.storage import read_bytes as read_object
from backend.settings import Settings

MediaKind = Literal["video", "poster", "image", "upload"]
_EXTENSIONS = {
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
}


class Media(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    owner_id: int
    kind: str
    storage_key: str
    content_type: str
    size: int  # bytes
    sha256: bytes
    width: int | None
    height: int | None
    duration_ms: int | None
    created_at: datetime

    @property
    def etag(self) -> str:
        return f'"{self.sha256.hex()}"'


def _media(row: object) -> Media:
    record = dict(row)  # type: ignore[call-overload]
    record.pop("deleted_at", None)
    record["size"] = record.pop("bytes")
    return Media(**record)


def _storage_key(kind: str, content_type: str) -> str:
    now = datetime.now(UTC)
    return f"{kind}/{now:%Y}/{now:%m}/{uuid.uuid4().hex}.{_EXTENSIONS.get(content_type, 'bin')}"


def _hash_file(path: Path) -> tuple[bytes, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.digest(), size


async def store_file(
    conn: Conn,
    storage: Storage,
    *,
    owner_id: int,
    kind: MediaKind,
    source: Path,
    content_type: str,
    width: int | None = None,
    height: int | None = None,
    duration_ms: int | None = None,
) -> Media:
    sha256, size = await asyncio.to_thread(_hash_file, source)
    key = _storage_key(kind, content_type)
    await storage.put_file(key, source, content_type)
    row = await conn.fetchrow(
        q.INSERT_MEDIA, owner_id, kind, key, content_type, size, sha256, width, height, duration_ms
    )
    return _media(row)


async def store_bytes(
    conn: Conn,
    storage: Storage,
    *,
    owner_id: int,
    kind: MediaKind,
    data: bytes,
    content_type: str,
    width: int | None = None,
    height: int | None = None,
) -> Media:
    with tempfile.TemporaryDirectory(prefix="riffle-media-") as folder:
        path = Path(folder) / "upload"
        await asyncio.to_thread(path.write_bytes, data)
        return await store_file(
            conn,
            storage,
            owner_id=owner_id,
            kind=kind,
            source=path,
            content_type=content_type,
            width=width,
            height=height,
        )


async def get_media(conn: Conn, media_id: int) -> Media | None:
    row = await conn.fetchrow(q.MEDIA_BY_ID, media_id)
    return _media(row) if row is not None else None


async def get_owned_upload(conn: Conn, *, owner_id: int, media_id: int) -> Media:
    """An upload of ``owner_id``'s; anyone else's is a 404 (its existence is not revealed)."""
    row = await conn.fetchrow(q.OWNED_MEDIA, media_id, owner_id)
    if row is None or row["kind"] not in ("image", "upload"):
        raise NotFound(f"no upload {media_id}", code="unknown_upload")
    return _media(row)


async def delete_upload(conn: Conn, *, owner_id: int, media_id: int) -> None:
    if await conn.fetchval(q.DELETE_OWNED_UPLOAD, media_id, owner_id) is None:
        raise NotFound(f"no upload {media_id}", code="unknown_upload")


async def delete_media(conn: Conn, media_ids: list[int]) -> None:
    """Hide the media at once; :func:`purge_deleted` removes the bytes later."""
    await conn.execute(q.DELETE_MEDIA, media_ids)


async def read_bytes(storage: Storage, media: Media) -> bytes:
    return await read_object(storage, media.storage_key)


def media_url(settings: Settings, signing_key: bytes, media_id: int) -> str:
    return signed_media_url(signing_key, settings.base_url, media_id, ttl_s=settings.media_url_ttl_s)


async def purge_deleted(conn: Conn, storage: Storage, *, grace_s: int, batch: int = 200) -> int:
    """Delete the stored objects of media deleted more than ``grace_s`` ago; returns how many."""
    rows = await conn.fetch(q.DUE_FOR_PURGE, grace_s, batch)
    for row in rows:
        await storage.delete(row["storage_key"])
    if rows:
        await conn.execute(q.MARK_PURGED, [r["id"] for r in rows])
    return len(rows)
