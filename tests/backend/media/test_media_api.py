"""Uploads and signed media downloads, as a client sees them."""

from __future__ import annotations

import io
import struct
import tempfile
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from backend.media.signing import signed_media_url
from backend.secrets_store import signing_key


def png(width: int = 64, height: int = 48, colour: tuple[int, int, int] = (200, 40, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas: a decompression bomb's calling card."""
    data = bytearray(png(1, 1))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


async def upload(client, headers, body: bytes, content_type: str = "image/png"):
    return await client.post("/v1/uploads", content=body, headers=headers | {"Content-Type": content_type})


async def test_upload_then_fetch_by_signed_url(client, users):
    alice = await users.make("alice")
    body = png()
    r = await upload(client, alice.headers, body)
    assert r.status_code == 201, r.text
    item = r.json()
    assert (item["content_type"], item["width"], item["height"], item["bytes"]) == (
        "image/png",
        64,
        48,
        len(body),
    )
    url = item["url"].removeprefix("http://127.0.0.1:8000")
    got = await client.get(url)
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["content-type"] == "image/png"
    assert got.headers["etag"] == f'"{item["sha256"]}"'
    assert (await client.get(f"/v1/uploads/{item['id']}", headers=alice.headers)).json()["id"] == item["id"]


async def test_ranges_etags_and_head(client, users):
    alice = await users.make("alice")
    body = png(400, 300)
    item = (await upload(client, alice.headers, body)).json()
    url = item["url"].removeprefix("http://127.0.0.1:8000")
    part = await client.get(url, headers={"Range": "bytes=10-109"})
    assert part.status_code == 206
    assert part.content == body[10:110]
    assert part.headers["content-range"] == f"bytes 10-109/{len(body)}"
    tail = await client.get(url, headers={"Range": "bytes=-20"})
    assert (tail.status_code, tail.content) == (206, body[-20:])
    beyond = await client.get(url, headers={"Range": f"bytes={len(body) + 5}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-type"].startswith("application/problem+json")
    cached = await client.get(url, headers={"If-None-Match": part.headers["etag"]})
    assert cached.status_code == 304
    head = await client.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(body))
    assert head.content == b""


async def test_signed_urls_cannot_be_forged_moved_or_stretched(client, users, settings):
    alice = await users.make("alice")
    mine = (await upload(client, alice.headers, png())).json()
    other = (await upload(client, alice.headers, png(colour=(1, 2, 3)))).json()
    url = mine["url"].removeprefix("http://127.0.0.1:8000")
    path, query = url.split("?")
    moved = f"/v1/media/{other['id']}?{query}"
    assert (await client.get(moved)).status_code == 404
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert (await client.get(forged)).status_code == 404
    expired = signed_media_url(signing_key(settings), "", mine["id"], ttl_s=-600)
    assert (await client.get(expired)).status_code == 404
    longer = path + "?exp=" + str(int(time.time()) + 10**6) + "&sig=" + query.split("sig=")[1]
    assert (await client.get(longer)).status_code == 404
    assert (await client.get(path)).status_code == 422  # no signature at all
    # Found by schemathesis: a non-ASCII signature once crashed the comparison (a 500).
    exp = query.split("exp=")[1].split("&")[0]
    assert (await client.get(f"{path}?exp={exp}&sig=k%C3%B9%C2%85")).status_code == 404
    assert (await client.head(f"{path}?exp={exp}&sig=%0F%C3%80-")).status_code == 404


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"GIF89a....", "image/gif", 415, "unsupported_type"),
        (png(), "application/octet-stream", 415, "unsupported_type"),
        (b"not an image at all", "image/png", 422, "invalid_image"),
        (png(200, 200)[:300], "image/png", 422, "invalid_image"),  # truncated
        (png_claiming(50_000, 50_000), "image/png", 422, "invalid_image"),  # bomb
        (png(), "image/jpeg", 422, "type_mismatch"),
        (b"", "image/png", 400, "empty_upload"),
    ],
)
async def test_bad_uploads_are_refused_and_keep_nothing(
    client, users, conn, body, content_type, status, code
):
    alice = await users.make("alice")
    r = await upload(client, alice.headers, body, content_type)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert await conn.fetchval("SELECT count(*) FROM media") == 0


async def test_oversized_upload_is_refused(database_url, redis_url, tmp_path, conn):
    from litestar.testing import AsyncTestClient

    from backend.app import create_app
    from tests.conftest import make_settings
    from tests.factories import UserFactory

    settings = make_settings(database_url, redis_url, tmp_path, max_upload_bytes=2048)
    async with AsyncTestClient(app=create_app(settings)) as small:
        alice = await UserFactory(conn, small).make("alice")
        r = await upload(small, alice.headers, png(300, 300, (10, 200, 30)) + b"\0" * 4096)
        assert r.status_code == 413
        assert r.json()["code"] == "too_large"
    assert await conn.fetchval("SELECT count(*) FROM media") == 0


async def test_another_users_upload_is_a_404(client, users):
    alice, bob = await users.make("alice"), await users.make("bob")
    item = (await upload(client, alice.headers, png())).json()
    assert (await client.get(f"/v1/uploads/{item['id']}", headers=bob.headers)).status_code == 404
    assert (await client.delete(f"/v1/uploads/{item['id']}", headers=bob.headers)).status_code == 404
    assert (await client.delete(f"/v1/uploads/{item['id']}", headers=alice.headers)).status_code == 204
    assert (await client.get(f"/v1/uploads/{item['id']}", headers=alice.headers)).status_code == 404
    url = item["url"].removeprefix("http://127.0.0.1:8000")
    assert (await client.get(url)).status_code == 404  # deleted media stop serving at once


def mp4(seconds: int = 2) -> bytes:
    from backend.generation.providers.local import render_clip

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "v.mp4"
        render_clip(
            {"prompt": "reading the words", "seconds": seconds, "width": 144, "height": 256, "seed": 3}, path
        )
        return path.read_bytes()


async def test_a_short_video_upload_is_probed_and_kept(client, users):
    alice = await users.make("alice")
    r = await upload(client, alice.headers, mp4(), "video/mp4")
    assert r.status_code == 201, r.text
    item = r.json()
    assert (item["content_type"], item["width"], item["height"]) == ("video/mp4", 144, 256)
    assert 1900 <= item["duration_ms"] <= 2100
    assert (await client.get(item["url"])).status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        ("truncated", "video/mp4", "invalid_video"),
        ("image", "video/mp4", "invalid_video"),
        ("mp4", "video/webm", "type_mismatch"),
    ],
)
async def test_bad_videos_are_refused_and_keep_nothing(client, users, conn, body, content_type, code):
    alice = await users.make("alice")
    data = {"truncated": mp4()[:600], "image": png(), "mp4": mp4()}[body]
    r = await upload(client, alice.headers, data, content_type)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    assert await conn.fetchval("SELECT count(*) FROM media") == 0
