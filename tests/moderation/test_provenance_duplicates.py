"""Signed provenance manifests, and near-copies found by the posters' perceptual hashes."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from moderation import duplicates, provenance
from tests.factories import make_clip


async def test_every_clip_has_a_signed_manifest_bound_to_its_video(client, users, conn) -> None:
    author, viewer = await users.make("author"), await users.make("viewer")
    clip = await make_clip(conn, client, author, visibility="public")
    private = await make_clip(conn, client, author, visibility="private")
    await conn.execute(
        "UPDATE media SET sha256 = $2 FROM clips c WHERE c.id = $1 AND media.id = c.video_media_id",
        clip["id"],
        bytes(range(32)),
    )
    r = await client.get(f"/v1/clips/{clip['id']}/provenance", headers=viewer.headers)
    assert r.status_code == 200, r.text
    signed = r.json()
    manifest = signed["manifest"]
    assert manifest["ai_generated"] is True
    assert manifest["asset"]["sha256"] == bytes(range(32)).hex()
    assert (manifest["clip_id"], manifest["maker"]["handle"], manifest["model"]) == (
        clip["id"],
        "author",
        "local",
    )
    key = (await client.get("/v1/provenance/key")).json()
    assert (key["kty"], key["crv"]) == ("OKP", "Ed25519")
    assert provenance.verify(key["x"], signed)
    tampered = signed | {"manifest": manifest | {"model": "someone-else"}}
    assert not provenance.verify(key["x"], tampered)
    assert (
        await client.get(f"/v1/clips/{private['id']}/provenance", headers=viewer.headers)
    ).status_code == 404
    assert (await client.get("/v1/clips/999999/provenance")).status_code == 404
    assert clip["ai_generated"] is True  # and every clip says so in the API


def _poster(shade: int, mark: int) -> bytes:
    picture = Image.new("RGB", (144, 256), (shade, shade // 2, 255 - shade))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((20 + mark, 40, 120, 200 - mark), fill=(250, 250, 0))
    draw.rectangle((0, 0, 40 + mark, 30), fill=(0, 0, 0))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=90)
    return out.getvalue()


async def _store_poster(app, conn, tmp_path, clip_id: int, image: bytes) -> None:
    key = await conn.fetchval(
        "SELECT m.storage_key FROM clips c JOIN media m ON m.id = c.poster_media_id WHERE c.id = $1", clip_id
    )
    source = tmp_path / f"poster-{clip_id}.jpg"
    source.write_bytes(image)
    await app.state.runtime.storage.put_file(key, source, "image/jpeg")


async def test_near_copies_are_flagged_and_mass_copying_is_paused(client, users, conn, app, tmp_path) -> None:
    author, other = await users.make("author"), await users.make("other")
    original = await make_clip(conn, client, author, visibility="public")
    await _store_poster(app, conn, tmp_path, original["id"], _poster(40, 0))
    storage = app.state.runtime.storage
    assert await duplicates.fingerprint(conn, storage, clip_id=original["id"], throttle=5) is None

    different = await make_clip(conn, client, other, visibility="public")
    await _store_poster(app, conn, tmp_path, different["id"], _poster(200, 60))
    assert await duplicates.fingerprint(conn, storage, clip_id=different["id"], throttle=5) is None

    copies = []
    for n in range(5):  # RIFFLE_DUPLICATES_PER_DAY's default
        copy = await make_clip(conn, client, author, visibility="public")
        await _store_poster(app, conn, tmp_path, copy["id"], _poster(42 + n, 1))  # re-encoded, nudged
        copies.append(copy["id"])
        assert await duplicates.fingerprint(conn, storage, clip_id=copy["id"], throttle=5) is not None
    flagged = await conn.fetch("SELECT target, target_id, reasons FROM moderation_cases ORDER BY id")
    assert [(f["target"], f["target_id"]) for f in flagged] == [
        *[("clip", c) for c in copies],
        ("user", author.id),
    ]
    assert flagged[0]["reasons"] == ["near_duplicate"]
    from tests.factories import make_draft

    take_id, _ = await make_draft(conn, author)
    paused = await client.post("/v1/clips", json={"take_id": take_id}, headers=author.headers)
    assert paused.status_code == 429
    assert paused.json()["code"] == "duplicates_throttled"
    assert "retry-after" in paused.headers
    other_take, _ = await make_draft(conn, other)
    assert (
        await client.post("/v1/clips", json={"take_id": other_take}, headers=other.headers)
    ).status_code == 201
