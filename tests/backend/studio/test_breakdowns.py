"""Breakdowns of published clips, and replicating one for your own product."""

from __future__ import annotations

import uuid

import pytest

from backend.commerce.studio import analyse
from backend.commerce.studio_templates import ProductFacts, storyboard_prompt, write_scripts
from tests.backend.studio.products import make_product
from tests.factories import make_draft

HIT = (
    "Ever wondered why your coffee goes cold? This mug keeps it hot for twelve hours. "
    "The lid never leaks. Tap the link and shop now!"
)


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"test-{uuid.uuid4().hex}"}


async def publish(conn, client, author, *, prompt: str, **fields) -> int:
    take_id, _ = await make_draft(conn, author, prompt=prompt)
    r = await client.post("/v1/clips", json={"take_id": take_id, **fields}, headers=author.headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_a_plain_prompt_is_split_into_timed_beats():
    s = analyse(HIT, "#coffee", 8000)
    assert s.hook == "Ever wondered why your coffee goes cold?"
    assert s.hook_kind == "question"
    assert [b.text for b in s.beats][-1] == "#coffee"
    assert s.beats[0].start_s == 0
    assert s.beats[-1].end_s == 8
    assert all(a.end_s == b.start_s for a, b in zip(s.beats, s.beats[1:], strict=False))
    # Time follows the words: the longest sentence gets the most.
    lengths = {b.text: b.end_s - b.start_s for b in s.beats}
    assert lengths["This mug keeps it hot for twelve hours."] > lengths["The lid never leaks."]
    assert s.call_to_action == "Tap the link and shop now!"
    assert [b.is_cta for b in s.beats] == [False, False, False, True, False]
    assert s.beats_per_second == pytest.approx(5 / 8, abs=0.001)
    assert s.pacing == "steady"
    calm = analyse("A slow pan over a quiet lake at dawn", "", 8000)
    assert (calm.hook_kind, calm.pacing, calm.call_to_action) == ("statement", "slow", None)


def test_a_studio_storyboard_keeps_its_own_timings():
    mug = ProductFacts(
        title="Aurora Mug", description="Hot for hours.", brand="Aurora", price_minor=None, currency=None
    )
    script = write_scripts(mug, goal="conversion", style="energetic", language="fr", variants=1, seconds=8)[0]
    s = analyse(storyboard_prompt(script, title=mug.title, brand=mug.brand, seconds=8), "", 8000)
    assert [(b.start_s, b.end_s) for b in s.beats] == [(b.start_s, b.end_s) for b in script.beats]
    assert s.hook == script.beats[0].voice_over
    assert s.hook_kind == "exclamation"
    assert s.call_to_action == script.beats[-1].voice_over
    assert s.beats[-1].is_cta


async def test_a_breakdown_has_the_clips_structure_and_numbers(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    clip_id = await publish(conn, client, bob, prompt=HIT, caption="best mug #coffee")
    await conn.execute(
        "INSERT INTO clip_stats (clip_id, impressions, watches, completes, likes, shares) "
        "VALUES ($1, 200, 150, 90, 30, 10)",
        clip_id,
    )
    r = await client.post("/v1/breakdowns", json={"clip_id": clip_id}, headers=alice.headers)
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["clip_id"] == clip_id
    assert b["structure"]["hook_kind"] == "question"
    assert b["structure"]["duration_s"] == 2
    assert b["structure"]["call_to_action"] == "Tap the link and shop now!"
    assert b["structure"]["beats"][-1]["text"] == "best mug #coffee"
    m = b["metrics"]
    assert (m["impressions"], m["watches"], m["completes"], m["likes"], m["shares"]) == (200, 150, 90, 30, 10)
    assert (m["completion_rate"], m["like_rate"], m["share_rate"]) == (0.45, 0.15, 0.05)
    assert (m["views"], m["comments"], m["remixes"]) == (200, 0, 0)  # a clip's views are its impressions
    again = await client.get(f"/v1/breakdowns/{b['id']}", headers=alice.headers)
    assert again.json() == b
    # Another user's breakdown is not theirs to read.
    assert (await client.get(f"/v1/breakdowns/{b['id']}", headers=bob.headers)).status_code == 404
    # A clip nobody has watched yet has no rates, not zero rates.
    fresh = await publish(conn, client, bob, prompt="a kite")
    cold = (await client.post("/v1/breakdowns", json={"clip_id": fresh}, headers=alice.headers)).json()
    assert cold["metrics"]["impressions"] == 0
    assert cold["metrics"]["completion_rate"] is None


async def test_only_published_clips_the_caller_can_see(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    private = await publish(conn, client, bob, prompt=HIT, visibility="private")
    _, draft = await make_draft(conn, bob, prompt=HIT)
    public = await publish(conn, client, bob, prompt=HIT)
    for clip_id in (private, draft, 999_999):
        r = await client.post("/v1/breakdowns", json={"clip_id": clip_id}, headers=alice.headers)
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "unknown_clip"
    await conn.execute("INSERT INTO blocks (blocker_id, blocked_id) VALUES ($1, $2)", bob.id, alice.id)
    blocked = await client.post("/v1/breakdowns", json={"clip_id": public}, headers=alice.headers)
    assert blocked.status_code == 404
    mine = await client.post("/v1/breakdowns", json={"clip_id": private}, headers=bob.headers)
    assert mine.status_code == 201
    bad = await client.post("/v1/breakdowns", json={"clip_id": "x"}, headers=bob.headers)
    assert bad.status_code == 422
    assert (await client.post("/v1/breakdowns", json={"clip_id": public})).status_code == 401
    assert await conn.fetchval("SELECT count(*) FROM breakdowns") == 1


async def test_replicate_feeds_the_studio_with_the_breakdowns_shape(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    clip_id = await publish(conn, client, bob, prompt=HIT, caption="best mug #coffee")
    breakdown = (await client.post("/v1/breakdowns", json={"clip_id": clip_id}, headers=alice.headers)).json()
    product = await make_product(conn, alice, title="Nimbus Water Bottle", brand="Nimbus")
    url = f"/v1/breakdowns/{breakdown['id']}/replicate"
    body = {"product_id": product, "language": "es", "variants": 2}
    headers = alice.headers | key()
    r = await client.post(url, json=body, headers=headers)
    assert r.status_code == 202, r.text
    run = r.json()
    assert run["breakdown_id"] == breakdown["id"]
    assert run["product_id"] == product
    assert run["seconds"] == 2  # the studied clip's length, as the model offers it
    studied = breakdown["structure"]["beats"]
    for item in run["items"]:
        beats = item["script"]["beats"]
        assert len(beats) == len(studied)
        assert [b["kind"] for b in beats] == ["hook", "demo", "point", "point", "cta"]
        assert item["script"]["hook"].startswith("¿")  # the studied hook asked a question
        shares = [(b["end_s"] - b["start_s"]) / 2 for b in beats]
        expected = [(b["end_s"] - b["start_s"]) / 2 for b in studied]
        assert shares == pytest.approx(expected, abs=0.02)
        assert item["generation"]["product_id"] == product
    assert (await client.post(url, json=body, headers=headers)).json()["id"] == run["id"]
    assert (
        await conn.fetchval("SELECT count(*) FROM studio_runs WHERE breakdown_id = $1", breakdown["id"]) == 1
    )
    # Someone else's product, or someone else's breakdown, is refused and leaves nothing.
    theirs = await make_product(conn, bob)
    r = await client.post(url, json=body | {"product_id": theirs}, headers=alice.headers | key())
    assert r.status_code == 422
    assert (r.json()["code"], r.json()["field"]) == ("unknown_product", "product_id")
    r = await client.post(url, json=body | {"product_id": theirs}, headers=bob.headers | key())
    assert r.status_code == 404
    assert r.json()["code"] == "unknown_breakdown"
    r = await client.post(url, json=body | {"seconds": 3}, headers=alice.headers | key())
    assert r.status_code == 422
    assert r.json()["code"] == "seconds_not_allowed"
    assert await conn.fetchval("SELECT count(*) FROM studio_runs") == 1
    assert await conn.fetchval("SELECT count(*) FROM generation_jobs WHERE product_id IS NOT NULL") == 2
