"""The product studio over HTTP: scripts, one generation per variant, drafts tagged with the
product, who may use which product, and what a refused request leaves behind (nothing)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from backend.app import create_app
from tests.backend.studio.products import make_product
from tests.conftest import make_settings
from tests.factories import UserFactory

BODY = {"goal": "conversion", "style": "ugc", "language": "en", "variants": 2, "seconds": 8}


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"test-{uuid.uuid4().hex}"}


@pytest.fixture
async def worker_client(database_url, redis_url, tmp_path) -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = make_settings(database_url, redis_url, tmp_path, run_worker=True)
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def nothing_written(conn) -> None:
    assert await conn.fetchval("SELECT count(*) FROM studio_runs") == 0
    assert await conn.fetchval("SELECT count(*) FROM generation_jobs") == 0
    assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    assert await conn.fetchval("SELECT coalesce(sum(reserved_seconds), 0) FROM generation_quota") == 0


async def test_a_run_writes_scripts_and_one_generation_per_variant(client, users, conn):
    alice = await users.make("alice")
    product = await make_product(conn, alice)
    r = await client.post(f"/v1/products/{product}/studio", json=BODY, headers=alice.headers | key())
    assert r.status_code == 202, r.text
    run = r.json()
    assert run["product_id"] == product
    assert run["writer"] == "template"
    assert len(run["items"]) == 2
    assert len(run["generation_ids"]) == 2
    for item in run["items"]:
        script = item["script"]
        kinds = [b["kind"] for b in script["beats"]]
        assert kinds[0] == "hook"
        assert kinds[1] == "demo"
        assert kinds[-1] == "cta"
        assert set(kinds) <= {"hook", "demo", "point", "cta"}
        assert script["beats"][0]["start_s"] == 0
        assert script["beats"][-1]["end_s"] == 8
        assert all(a["end_s"] == b["start_s"] for a, b in itertools.pairwise(script["beats"]))
        assert "Aurora Travel Mug" in script["hook"]
        assert any("$24.99" in p for p in script["selling_points"])  # conversion names the price
        assert script["call_to_action"] in script["voice_over"]
        job = item["generation"]
        assert job["product_id"] == product
        assert job["seconds"] == 8
        assert job["prompt"] == item["prompt"]
        assert "Aurora Travel Mug" in job["prompt"]
        lines = job["prompt"].splitlines()
        assert lines[1] == "Storyboard:"
        assert lines[2].startswith("[0-")
        assert " HOOK — " in lines[2]
        assert len(lines) == 2 + len(script["beats"])
        assert next(b["end_s"] for b in script["beats"]) > 0
        assert [t["status"] for t in job["takes"]] == ["queued"]
    first, second = (item["script"] for item in run["items"])
    assert first["hook"] != second["hook"]  # variants are worth comparing
    assert first["beats"][0]["visual"] != second["beats"][0]["visual"]
    rows = await conn.fetch("SELECT product_id, user_id, seconds FROM generation_jobs ORDER BY id")
    assert [(r["product_id"], r["user_id"], r["seconds"]) for r in rows] == [(product, alice.id, 8)] * 2
    assert await conn.fetchval("SELECT count(*) FROM outbox WHERE task = 'run_take'") == 2
    assert await conn.fetchval("SELECT reserved_seconds FROM generation_quota") == 16
    again = await client.get(f"/v1/studio/{run['id']}", headers=alice.headers)
    assert again.status_code == 200
    assert again.json()["items"] == run["items"]


async def test_idempotency_key_replays_the_run(client, users, conn):
    alice = await users.make("alice")
    product = await make_product(conn, alice)
    headers = alice.headers | key()
    url = f"/v1/products/{product}/studio"
    first, again = [await client.post(url, json=BODY, headers=headers) for _ in range(2)]
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    other = await client.post(url, json=BODY | {"variants": 1}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert await conn.fetchval("SELECT count(*) FROM generation_jobs") == 2
    missing = await client.post(url, json=BODY, headers=alice.headers)
    assert missing.status_code == 400
    assert missing.json()["code"] == "idempotency_key_required"


async def test_racing_requests_with_one_key_make_one_run(client, users, conn):
    alice = await users.make("alice")
    product = await make_product(conn, alice)
    headers = alice.headers | key()
    results = await asyncio.gather(
        *[client.post(f"/v1/products/{product}/studio", json=BODY, headers=headers) for _ in range(4)]
    )
    assert sorted(r.status_code for r in results) == [200, 200, 200, 202]
    assert len({r.json()["id"] for r in results}) == 1
    assert await conn.fetchval("SELECT count(*) FROM studio_runs") == 1
    assert await conn.fetchval("SELECT count(*) FROM generation_jobs") == 2


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Aurora Travel Mug"),
        ("es", "Aurora Travel Mug"),
        ("fr", "Aurora Travel Mug"),
        ("de", "Aurora Travel Mug"),
        ("pt-BR", "Aurora Travel Mug"),
        ("ja", "Aurora Travel Mug"),
        ("zh", "Aurora Travel Mug"),
        ("ko", "Aurora Travel Mug"),
    ],
)
async def test_scripts_are_written_in_the_requested_language(client, users, conn, language, expected):
    alice = await users.make("alice")
    product = await make_product(conn, alice, price_minor=250000, currency="EUR")
    body = BODY | {"language": language, "variants": 1}
    r = await client.post(f"/v1/products/{product}/studio", json=body, headers=alice.headers | key())
    assert r.status_code == 202, r.text
    script = r.json()["items"][0]["script"]
    assert script["language"] == language.split("-")[0]
    assert expected in script["hook"]
    from backend.commerce.studio_templates import PHRASES

    phrases = PHRASES[script["language"]]
    assert script["call_to_action"] in phrases.cta["conversion"]
    assert script["beats"][-1]["on_screen_text"] == phrases.labels[3]
    price = {"en": "€2,500.00", "ja": "€2,500.00", "zh": "€2,500.00", "ko": "€2,500.00"}.get(
        script["language"], "2.500,00 €"
    )
    assert any(price in p for p in script["selling_points"]), script["selling_points"]
    assert f"Voice-over ({script['language']})" in r.json()["items"][0]["prompt"]


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"language": "it"}, 422, "unsupported_language", "language"),
        ({"language": "not a tag"}, 422, "validation_failed", "language"),
        ({"style": "noir"}, 422, "unsupported_style", "style"),
        ({"goal": "sales"}, 422, "validation_failed", "goal"),
        ({"variants": 0}, 422, "validation_failed", "variants"),
        ({"variants": 5}, 422, "validation_failed", "variants"),
        ({"seconds": 3}, 422, "seconds_not_allowed", "seconds"),
        ({"model": "sora-2"}, 422, "unknown_model", "model"),
        ({"size": "100x100"}, 422, "size_not_allowed", "size"),
        ({"colour": "red"}, 422, "validation_failed", "colour"),
    ],
)
async def test_bad_requests_leave_nothing_behind(client, users, conn, change, status, code, field):
    alice = await users.make("alice")
    product = await make_product(conn, alice)
    r = await client.post(f"/v1/products/{product}/studio", json=BODY | change, headers=alice.headers | key())
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (r.json()["code"], r.json().get("field")) == (code, field)
    await nothing_written(conn)


async def test_product_text_that_fails_screening_is_refused_whole(client, users, conn):
    alice = await users.make("alice")
    product = await make_product(conn, alice, description="Great for gore fans.")
    body = BODY | {"goal": "awareness"}
    r = await client.post(f"/v1/products/{product}/studio", json=body, headers=alice.headers | key())
    assert r.status_code == 422
    assert (r.json()["code"], r.json()["field"]) == ("prompt_blocked", "product_id")
    await nothing_written(conn)


async def test_the_daily_allowance_covers_every_variant(database_url, redis_url, tmp_path, conn):
    settings = make_settings(database_url, redis_url, tmp_path, generation_daily_seconds=20)
    async with AsyncTestClient(app=create_app(settings)) as client:
        alice = await UserFactory(conn, client).make("alice")
        product = await make_product(conn, alice)
        body = BODY | {"variants": 3}  # 24 s of 20
        r = await client.post(f"/v1/products/{product}/studio", json=body, headers=alice.headers | key())
        assert r.status_code == 429
        assert r.json()["code"] == "generation_quota_exceeded"
        await nothing_written(conn)


async def test_only_the_shop_owner_or_its_affiliates_may_use_a_product(client, users, conn):
    alice, bob, carol = await users.make("alice"), await users.make("bob"), await users.make("carol")
    private = await make_product(conn, alice)
    open_to_affiliates = await make_product(conn, alice, allow_affiliates=True)
    gone = await make_product(conn, alice)
    await conn.execute("UPDATE products SET deleted_at = now() WHERE id = $1", gone)
    for product, who in ((private, bob), (gone, alice), (999_999, alice)):
        r = await client.post(f"/v1/products/{product}/studio", json=BODY, headers=who.headers | key())
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "unknown_product"
    await nothing_written(conn)
    url = f"/v1/products/{open_to_affiliates}/studio"
    ok = await client.post(url, json=BODY, headers=bob.headers | key())
    assert ok.status_code == 202, ok.text
    # A block either way ends the affiliate arrangement.
    await conn.execute("INSERT INTO blocks (blocker_id, blocked_id) VALUES ($1, $2)", alice.id, carol.id)
    blocked = await client.post(
        f"/v1/products/{open_to_affiliates}/studio", json=BODY, headers=carol.headers | key()
    )
    assert blocked.status_code == 404
    # Runs are their maker's own.
    run_id = ok.json()["id"]
    assert (await client.get(f"/v1/studio/{run_id}", headers=alice.headers)).status_code == 404
    assert (await client.get(f"/v1/studio/{run_id}")).status_code == 401
    assert (await client.post(f"/v1/products/{private}/studio", json=BODY, headers=key())).status_code == 401


async def test_generations_take_a_product_only_from_who_may_use_it(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    product = await make_product(conn, alice)
    body = {"prompt": "a mug on a desk", "seconds": 2, "size": "144x256", "product_id": product}
    theirs = await client.post("/v1/generations", json=body, headers=bob.headers | key())
    assert theirs.status_code == 422
    assert theirs.json()["code"] == "unknown_product"
    mine = await client.post("/v1/generations", json=body, headers=alice.headers | key())
    assert mine.status_code == 202, mine.text
    assert mine.json()["product_id"] == product


async def wait_for_run(client, run_id: int, headers: dict[str, str], within_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        run = (await client.get(f"/v1/studio/{run_id}", headers=headers)).json()
        takes = [t for item in run["items"] for t in item["generation"]["takes"]]
        if all(t["status"] == "succeeded" and t["score"] is not None for t in takes):
            return dict(run)
        assert not any(t["status"] == "failed" for t in takes), run
        await asyncio.sleep(0.3)
    raise AssertionError(f"studio run {run_id} did not finish and get scored: {run}")


async def test_finished_drafts_carry_the_product_and_every_take_is_scored(worker_client, conn):
    alice = await UserFactory(conn, worker_client).make("alice")
    product = await make_product(conn, alice)
    body = BODY | {"seconds": 2, "size": "144x256", "variants": 2}
    r = await worker_client.post(f"/v1/products/{product}/studio", json=body, headers=alice.headers | key())
    assert r.status_code == 202, r.text
    run = await wait_for_run(worker_client, r.json()["id"], alice.headers)
    assert len(run["draft_clip_ids"]) == 2
    rows = await conn.fetch(
        "SELECT status, product_id, author_id FROM clips WHERE id = ANY($1::bigint[])", run["draft_clip_ids"]
    )
    drafts = [(r["status"], r["product_id"], r["author_id"]) for r in rows]
    assert drafts == [("draft", product, alice.id)] * 2
    for item in run["items"]:
        score = item["generation"]["takes"][0]["score"]
        assert score["judge"] == "heuristic"
        parts = [score[k] for k in ("realism", "product_consistency", "voice_over", "script_structure")]
        assert all(0 <= p <= 1 for p in parts)
        assert score["product_consistency"] == 1.0  # the storyboard names the product and its brand
        assert 0 < score["overall"] <= 1
    stored = await conn.fetchval("SELECT count(*) FROM take_scores WHERE judge = 'heuristic'")
    assert stored == 2
