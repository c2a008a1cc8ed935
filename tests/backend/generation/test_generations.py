"""Generations end to end: the API, the worker and the built-in renderer, on real PostgreSQL
and Redis. The local renderer's test markers ([[fail:…]], [[slow:…]]) script failures."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image

from backend.app import create_app
from backend.media.signing import signed_media_url
from backend.media.video import probe_video
from backend.secrets_store import signing_key
from tests.conftest import make_settings

BODY = {"prompt": "a corgi surfing at sunset", "model": "local", "seconds": 2, "size": "144x256", "takes": 2}


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"test-{uuid.uuid4().hex}"}


async def wait_for(
    client: AsyncTestClient[Litestar], job_id: int, headers: dict[str, str], within_s: float = 40
) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        job = (await client.get(f"/v1/generations/{job_id}", headers=headers)).json()
        if job["status"] not in ("queued", "in_progress"):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"generation {job_id} did not finish: {job}")


async def test_models_lists_what_can_run_here(client):
    models = (await client.get("/v1/models")).json()
    assert [m["id"] for m in models] == ["local"]  # no provider keys in tests
    assert models[0]["price_per_second_minor"] == 0
    assert 2 in models[0]["seconds"]


async def test_takes_become_draft_clips(worker_client, users, conn):
    alice = await users.make("alice")
    r = await worker_client.post("/v1/generations", json=BODY, headers=alice.headers | key())
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "queued"
    assert [t["status"] for t in job["takes"]] == ["queued", "queued"]
    done = await wait_for(worker_client, job["id"], alice.headers)
    assert done["status"] == "succeeded", done
    assert all(t["status"] == "succeeded" and t["progress"] == 100 for t in done["takes"])
    assert done["cost_minor"] == 0
    clip_ids = [t["clip_id"] for t in done["takes"]]
    rows = await conn.fetch(
        "SELECT c.status, c.author_id, c.duration_ms, c.width, c.height, c.provenance, m.sha256, m.bytes "
        "FROM clips c JOIN media m ON m.id = c.video_media_id WHERE c.id = ANY($1::bigint[])",
        clip_ids,
    )
    assert len(rows) == 2
    for row in rows:
        assert row["status"] == "draft"
        assert row["author_id"] == alice.id
        assert (row["width"], row["height"]) == (144, 256)
        assert 1500 <= row["duration_ms"] <= 2500
        assert row["provenance"]["ai_generated"] is True
        assert row["provenance"]["model"] == "local"
        assert len(row["sha256"]) == 32
        assert row["bytes"] > 0
    usage = (await worker_client.get("/v1/generations/usage", headers=alice.headers)).json()
    assert usage["reserved_seconds"] == 4
    assert usage["spend_total_minor"] == 0  # an integer, not the string a numeric sum encodes to


async def test_a_stored_take_is_a_playable_h264_video_with_a_poster(worker_client, users, conn, tmp_path):
    alice = await users.make("alice")
    r = await worker_client.post("/v1/generations", json=BODY | {"takes": 1}, headers=alice.headers | key())
    done = await wait_for(worker_client, r.json()["id"], alice.headers)
    row = await conn.fetchrow(
        "SELECT v.id AS video, v.sha256, p.id AS poster FROM clips c "
        "JOIN media v ON v.id = c.video_media_id JOIN media p ON p.id = c.poster_media_id WHERE c.id = $1",
        done["takes"][0]["clip_id"],
    )
    key_bytes = signing_key(make_settings("", "", tmp_path))
    video = await worker_client.get(signed_media_url(key_bytes, "", row["video"], ttl_s=60))
    assert video.headers["content-type"] == "video/mp4"
    assert hashlib.sha256(video.content).digest() == row["sha256"]
    path = tmp_path / "take.mp4"
    path.write_bytes(video.content)
    info = probe_video(path)
    assert (info.codec, info.width, info.height) == ("h264", 144, 256)
    poster = await worker_client.get(signed_media_url(key_bytes, "", row["poster"], ttl_s=60))
    assert poster.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(poster.content)).size == (144, 256)


async def test_a_reference_image_goes_with_a_product_shot_only(worker_client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (0, 128, 255)).save(buffer, "PNG")
    upload = await worker_client.post(
        "/v1/uploads", content=buffer.getvalue(), headers=alice.headers | {"Content-Type": "image/png"}
    )
    image_id = upload.json()["id"]
    body = BODY | {"takes": 1, "reference_image": image_id}
    theirs = await worker_client.post("/v1/generations", json=body, headers=bob.headers | key())
    assert theirs.status_code == 422
    assert theirs.json()["code"] == "unknown_upload"
    portrait = await worker_client.post("/v1/generations", json=body, headers=alice.headers | key())
    assert portrait.status_code == 422  # an uploaded picture is not a way to put a person in a clip
    assert portrait.json()["code"] == "reference_not_allowed"
    from tests.backend.studio.products import make_product

    product_id = await make_product(conn, alice)
    shot = body | {"product_id": product_id}
    r = await worker_client.post("/v1/generations", json=shot, headers=alice.headers | key())
    assert r.status_code == 202, r.text
    assert r.json()["reference_image"] == image_id
    done = await wait_for(worker_client, r.json()["id"], alice.headers)
    assert done["status"] == "succeeded"


async def test_idempotency_key_returns_the_same_job(client, users, conn):
    alice = await users.make("alice")
    headers = alice.headers | key()
    first = await client.post("/v1/generations", json=BODY, headers=headers)
    again = await client.post("/v1/generations", json=BODY, headers=headers)
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = await client.post("/v1/generations", json=BODY | {"prompt": "something else"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert await conn.fetchval("SELECT count(*) FROM generation_jobs") == 1
    assert await conn.fetchval("SELECT count(*) FROM takes") == 2


async def test_racing_requests_with_one_key_make_one_job(client, users, conn):
    alice = await users.make("alice")
    headers = alice.headers | key()
    results = await asyncio.gather(
        *[client.post("/v1/generations", json=BODY, headers=headers) for _ in range(5)]
    )
    assert sorted(r.status_code for r in results) == [200, 200, 200, 200, 202]
    assert len({r.json()["id"] for r in results}) == 1
    assert await conn.fetchval("SELECT count(*) FROM generation_jobs") == 1
    assert await conn.fetchval("SELECT reserved_seconds FROM generation_quota") == 4


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"model": "sora-2"}, 422, "unknown_model", "model"),
        ({"seconds": 3}, 422, "seconds_not_allowed", "seconds"),
        ({"size": "100x100"}, 422, "size_not_allowed", "size"),
        ({"size": "big"}, 422, "validation_failed", "size"),
        ({"prompt": ""}, 422, "validation_failed", "prompt"),
        ({"prompt": "x" * 2001}, 422, "validation_failed", "prompt"),
        ({"takes": 0}, 422, "validation_failed", "takes"),
        ({"takes": 5}, 422, "validation_failed", "takes"),
        ({"prompt": "a n.u.d.e portrait"}, 422, "prompt_blocked", "prompt"),
        ({"cameo_ids": [123]}, 422, "unknown_cameo", "cameo_ids"),
        ({"product_id": 9}, 422, "unknown_product", "product_id"),
        ({"remix_of": 999_999}, 404, "unknown_clip", "remix_of"),
        ({"reference_image": 999_999}, 422, "unknown_upload", "reference_image"),
        ({"colour": "red"}, 422, "validation_failed", "colour"),
    ],
)
async def test_bad_requests_leave_nothing_behind(client, users, conn, change, status, code, field):
    alice = await users.make("alice")
    r = await client.post("/v1/generations", json=BODY | change, headers=alice.headers | key())
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code
    assert r.json().get("field") == field
    assert await conn.fetchval("SELECT count(*) FROM generation_jobs") == 0
    assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    assert await conn.fetchval("SELECT coalesce(sum(reserved_seconds), 0) FROM generation_quota") == 0


async def test_missing_idempotency_key_is_refused(client, users, conn):
    alice = await users.make("alice")
    r = await client.post("/v1/generations", json=BODY, headers=alice.headers)
    assert r.status_code == 400
    assert r.json()["code"] == "idempotency_key_required"
    assert await conn.fetchval("SELECT count(*) FROM generation_jobs") == 0


async def test_daily_quota_is_enforced_and_says_when_it_resets(database_url, redis_url, tmp_path, conn):
    settings = make_settings(database_url, redis_url, tmp_path, generation_daily_seconds=6)
    async with AsyncTestClient(app=create_app(settings)) as client:
        from tests.factories import UserFactory

        alice = await UserFactory(conn, client).make("alice")
        ok = await client.post("/v1/generations", json=BODY, headers=alice.headers | key())
        assert ok.status_code == 202
        over = await client.post("/v1/generations", json=BODY, headers=alice.headers | key())
        assert over.status_code == 429
        assert over.json()["code"] == "generation_quota_exceeded"
        assert int(over.headers["retry-after"]) > 0
        assert "resets_at" in over.json()
        assert await conn.fetchval("SELECT count(*) FROM generation_jobs") == 1


async def test_another_users_generation_is_a_404(client, users):
    alice = await users.make("alice")
    bob = await users.make("bob")
    job = (await client.post("/v1/generations", json=BODY, headers=alice.headers | key())).json()
    assert (await client.get(f"/v1/generations/{job['id']}", headers=bob.headers)).status_code == 404
    assert (await client.delete(f"/v1/generations/{job['id']}", headers=bob.headers)).status_code == 404
    assert (await client.get("/v1/generations", headers=bob.headers)).json()["items"] == []
    assert (await client.get(f"/v1/generations/{job['id']}")).status_code == 401
    assert (await client.post("/v1/generations", json=BODY, headers=key())).status_code == 401
    mine = (await client.get("/v1/generations", headers=alice.headers)).json()
    assert [g["id"] for g in mine["items"]] == [job["id"]]


async def test_policy_refusal_fails_without_retry_or_charge(worker_client, users, conn):
    alice = await users.make("alice")
    body = BODY | {"prompt": "a quiet street [[fail:policy]]", "takes": 1}
    job = (await worker_client.post("/v1/generations", json=body, headers=alice.headers | key())).json()
    done = await wait_for(worker_client, job["id"], alice.headers)
    assert done["status"] == "failed"
    take = done["takes"][0]
    assert take["status"] == "failed"
    assert take["error"]["code"] == "policy_refusal"
    assert take["error"]["message"]
    assert take["attempts"] == 0
    assert take["cost_minor"] == 0
    assert await conn.fetchval("SELECT reserved_seconds FROM generation_quota") == 0
    assert await conn.fetchval("SELECT count(*) FROM clips") == 0


async def test_transient_failure_is_retried_then_succeeds(worker_client, users, conn):
    alice = await users.make("alice")
    body = BODY | {"prompt": "rain on a window [[fail:transient-once]]", "takes": 1}
    job = (await worker_client.post("/v1/generations", json=body, headers=alice.headers | key())).json()
    done = await wait_for(worker_client, job["id"], alice.headers)
    assert done["status"] == "succeeded", done
    assert done["takes"][0]["attempts"] == 1
    assert await conn.fetchval("SELECT count(*) FROM clips") == 1


async def test_cancel_stops_open_takes_and_gives_seconds_back(worker_client, users, conn):
    alice = await users.make("alice")
    body = BODY | {"prompt": "a slow sunrise [[slow:20]]", "takes": 1}
    job = (await worker_client.post("/v1/generations", json=body, headers=alice.headers | key())).json()
    await asyncio.sleep(0.5)
    r = await worker_client.delete(f"/v1/generations/{job['id']}", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "canceled"
    assert r.json()["takes"][0]["status"] == "canceled"
    assert await conn.fetchval("SELECT reserved_seconds FROM generation_quota") == 0
    again = await worker_client.delete(f"/v1/generations/{job['id']}", headers=alice.headers)
    assert again.status_code == 409
    await asyncio.sleep(1.0)
    assert (await worker_client.get(f"/v1/generations/{job['id']}", headers=alice.headers)).json()[
        "status"
    ] == "canceled"
    assert await conn.fetchval("SELECT count(*) FROM clips") == 0


async def test_progress_and_results_are_published_per_user(worker_client, users, conn, redis_url):
    import msgspec

    from backend.realtime.service import keys as realtime_keys
    from backend.redis_pool import create_redis

    alice = await users.make("alice")
    redis = create_redis(redis_url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(realtime_keys("riffle:")("user", alice.id))
    try:
        r = await worker_client.post(
            "/v1/generations", json=BODY | {"takes": 1}, headers=alice.headers | key()
        )
        await wait_for(worker_client, r.json()["id"], alice.headers)
        kinds = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                kinds.append(msgspec.json.decode(message["data"])["type"])
    finally:
        await pubsub.aclose()
        await redis.aclose()
    assert "generation.progress" in kinds
    assert "generation.take.succeeded" in kinds
