"""HTTP routes of media: signed downloads with Range and ETags, and image uploads."""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, head, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from backend.db import Conn
from backend.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    UnsupportedMediaType,
    ValidationFailed,
    problems,
)
from backend.media import service
from backend.media.signing import verify_media_signature
from backend.media.storage import Storage, StorageError
from backend.media.video import (
    UPLOAD_VIDEO_TYPES,
    InvalidImage,
    InvalidVideo,
    probe_image,
    probe_video,
    video_type_matches,
)
from backend.ratelimit import Rule, enforce
from backend.runtime import ConnDep, LimiterDep, SettingsDep, SigningKeyDep, StorageDep, ViewerDep

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
UPLOADS_PER_HOUR = Rule("uploads", 60, 3600)
ExpiresParam = Annotated[int, QueryParameter(description="Expiry of the signed URL (Unix seconds).")]
SignatureParam = Annotated[str, QueryParameter(max_length=64, description="Signature of the URL.")]


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range asked for, inclusive; None for the whole file (also for multi-range asks,
    which RFC 9110 lets a server answer with the whole representation)."""
    if not header or "," in header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        raise RangeNotSatisfiable(f"cannot serve the range {header!r}")
    first, last = match.groups()
    if first == "":  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last)) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(f"the range {header!r} is outside the file's {size} bytes")
    return start, end


class MediaController(Controller):
    path = "/v1/media"
    tags = ["media"]

    async def _resolve(
        self, conn: ConnDep, signing_key: bytes, media_id: int, exp: int, sig: str
    ) -> service.Media:
        # A bad or stale signature and a missing file look alike, so URLs cannot be probed.
        if not verify_media_signature(signing_key, media_id, exp, sig):
            raise NotFound("this media link is not valid or has expired", code="bad_media_link")
        media = await service.get_media(conn, media_id)
        if media is None:
            raise NotFound("this media link is not valid or has expired", code="bad_media_link")
        return media

    def _headers(self, media: service.Media, exp: int) -> dict[str, str]:
        max_age = max(0, exp - int(time.time()))
        return {
            "ETag": media.etag,
            "Accept-Ranges": "bytes",
            "Cache-Control": f"private, max-age={max_age}, immutable",
            "Content-Disposition": "inline",
            "X-Content-Type-Options": "nosniff",
        }

    @get(
        "/{media_id:int}",
        summary="Download a media file by its signed URL",
        description=(
            "The URL comes signed from the API (clip, draft or upload responses) and expires. "
            "Supports a single `Range` (206), `If-None-Match` (304) and `HEAD`."
        ),
        responses=problems(404, 416),
    )
    async def download(
        self,
        request: Request[Any, Any, Any],
        conn: ConnDep,
        storage: StorageDep,
        signing_key: SigningKeyDep,
        media_id: FromPath[int],
        exp: ExpiresParam,
        sig: SignatureParam,
    ) -> Response[Any]:
        media = await self._resolve(conn, signing_key, media_id, exp, sig)
        headers = self._headers(media, exp)
        if request.headers.get("if-none-match") in (media.etag, "*"):
            return Response(content=b"", status_code=304, headers=headers)
        requested = _byte_range(request.headers.get("range"), media.size)
        start, end = requested or (0, media.size - 1)
        if requested is not None:
            headers["Content-Range"] = f"bytes {start}-{end}/{media.size}"
        headers["Content-Length"] = str(end - start + 1)
        try:
            chunks = storage.read(media.storage_key, start, end)
            first = await anext(chunks, b"")  # fail before the status line if the object is gone
        except StorageError:
            raise NotFound("this media file is no longer available", code="media_gone") from None

        async def body() -> Any:
            yield first
            async for chunk in chunks:
                yield chunk

        return Stream(
            body(),
            status_code=206 if requested is not None else 200,
            media_type=media.content_type,
            headers=headers,
        )

    @head("/{media_id:int}", summary="Headers of a media file", responses=problems(404))
    async def headers_only(
        self,
        conn: ConnDep,
        signing_key: SigningKeyDep,
        media_id: FromPath[int],
        exp: ExpiresParam,
        sig: SignatureParam,
    ) -> Response[None]:
        media = await self._resolve(conn, signing_key, media_id, exp, sig)
        headers = self._headers(media, exp) | {"Content-Length": str(media.size)}
        # An empty body with the file's type; Litestar sends no body for HEAD anyway.
        return Response(content=b"", media_type=media.content_type, headers=headers)  # type: ignore[arg-type]


class Upload(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    content_type: str
    bytes: int
    width: int | None
    height: int | None
    duration_ms: int | None = None  # videos
    sha256: str
    url: str
    created_at: datetime


def _upload(settings: SettingsDep, signing_key: bytes, media: service.Media) -> Upload:
    return Upload(
        id=media.id,
        kind=media.kind,
        content_type=media.content_type,
        bytes=media.size,
        width=media.width,
        height=media.height,
        duration_ms=media.duration_ms,
        sha256=media.sha256.hex(),
        url=service.media_url(settings, signing_key, media.id),
        created_at=media.created_at,
    )


async def _store_video(
    conn: Conn, storage: Storage, owner_id: int, data: bytes, declared_type: str
) -> service.Media:
    with tempfile.TemporaryDirectory(prefix="riffle-upload-") as folder:
        path = Path(folder) / "upload"
        await asyncio.to_thread(path.write_bytes, data)
        try:
            info = await asyncio.to_thread(probe_video, path)
        except InvalidVideo as exc:
            raise ValidationFailed(f"the video {exc}", code="invalid_video") from None
        if not video_type_matches(info, declared_type):
            raise ValidationFailed(
                f"the file is not {declared_type} (found {info.container})", code="type_mismatch"
            )
        return await service.store_file(
            conn,
            storage,
            owner_id=owner_id,
            kind="upload",
            source=path,
            content_type=declared_type,
            width=info.width,
            height=info.height,
            duration_ms=info.duration_ms,
        )


class UploadController(Controller):
    path = "/v1/uploads"
    tags = ["media"]

    @post(
        "",
        status_code=201,
        summary="Upload an image (a reference for generation) or a short video (a cameo check)",
        description=(
            "Send the raw bytes with `Content-Type: image/jpeg | image/png | image/webp | "
            "video/mp4 | video/quicktime | video/webm`. The file is decoded before it is kept "
            "(the type is what the bytes are, not what the header says); at most "
            "`RIFFLE_MAX_UPLOAD_BYTES`."
        ),
        responses=problems(400, 401, 413, 415, 422, 429),
        request_max_body_size=None,  # checked below against the configured upload limit
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        limiter: LimiterDep,
        storage: StorageDep,
        signing_key: SigningKeyDep,
    ) -> Upload:
        declared_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if declared_type not in ("image/jpeg", "image/png", "image/webp", *UPLOAD_VIDEO_TYPES):
            raise UnsupportedMediaType(
                "send a JPEG, PNG or WebP image or an MP4, QuickTime or WebM video with its Content-Type"
            )
        limit = settings.max_upload_bytes
        declared_length = request.headers.get("content-length")
        if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
            raise PayloadTooLarge(f"uploads are limited to {limit} bytes")
        await enforce(request, limiter, UPLOADS_PER_HOUR, f"user:{viewer.user_id}")
        received = bytearray()
        async for chunk in request.stream():
            received += chunk
            if len(received) > limit:
                raise PayloadTooLarge(f"uploads are limited to {limit} bytes")
        if not received:
            raise BadRequest("the upload is empty", code="empty_upload")
        if declared_type in UPLOAD_VIDEO_TYPES:
            video = await _store_video(conn, storage, viewer.user_id, bytes(received), declared_type)
            return _upload(settings, signing_key, video)
        try:
            info = probe_image(bytes(received))
        except InvalidImage as exc:
            raise ValidationFailed(str(exc), code="invalid_image") from None
        if info.content_type != declared_type:
            raise ValidationFailed(
                f"the file is {info.content_type}, not {declared_type}", code="type_mismatch"
            )
        media = await service.store_bytes(
            conn,
            storage,
            owner_id=viewer.user_id,
            kind="image",
            data=bytes(received),
            content_type=info.content_type,
            width=info.width,
            height=info.height,
        )
        return _upload(settings, signing_key, media)

    @get("/{upload_id:int}", summary="One of your uploads", responses=problems(401, 404))
    async def get_one(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        upload_id: FromPath[int],
    ) -> Upload:
        media = await service.get_owned_upload(conn, owner_id=viewer.user_id, media_id=upload_id)
        return _upload(settings, signing_key, media)

    @delete("/{upload_id:int}", summary="Delete one of your uploads", responses=problems(401, 404))
    async def remove(self, conn: ConnDep, viewer: ViewerDep, upload_id: FromPath[int]) -> None:
        await service.delete_upload(conn, owner_id=viewer.user_id, media_id=upload_id)
