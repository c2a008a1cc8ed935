"""The feeds as a viewer sees them: personal within a few likes, never repeating, steerable,
and never showing what the viewer must not see."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np

from backend.redis_pool import create_redis
from feed.encoder import HashedEncoder
from feed.service import embed_clips, interest_queries, interests, split_steering
from feed.store import StoredEvent, store_events
from tests.factories import make_clip, make_draft

COOKING = [
    "homemade pasta with garlic and basil #cooking",
    "cooking ramen noodles from scratch #cooking",
    "baking sourdough bread at home #baking #cooking",
    "quick vegetable stir fry cooking #cooking",
    "chocolate cake baking tutorial #baking",
    "grilling steak on a cast iron pan #cooking",
]
PRANKS = [
    "office prank with sticky notes #prank",
    "fake spider prank on my brother #prank",
    "whoopee cushion prank compilation #prank",
    "prank call gone wrong #prank",
    "scare prank in the dark hallway #prank",
    "water bucket door prank #prank",
]


async def publish_all(conn, client, author, prompts):
    clips = []
    for prompt in prompts:
        take_id, clip_id = await make_draft(conn, author, prompt=prompt)
        r = await client.post(
            "/v1/clips", json={"take_id": take_id, "caption": prompt}, headers=author.headers
        )
        assert r.status_code == 201
        clips.append(clip_id)
    await embed_clips(conn, HashedEncoder(), clips)
    return clips


async def like(conn, user, clip_id):
    await store_events(
        conn,
        [StoredEvent(user.id, f"l{clip_id}", "like", clip_id, None, datetime.now(UTC))],
    )


async def pages(client, headers, *, limit=5, max_pages=20):
    seen, cursor = [], None
    for _ in range(max_pages):
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        r = await client.get("/v1/feed/for-you", params=params, headers=headers)
        assert r.status_code == 200, r.text
        seen += [(item["clip"]["id"], item["reason"]) for item in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    return seen


async def test_a_few_likes_make_the_feed_personal_and_it_never_repeats(client, users, conn):
    chef, joker, viewer = await users.make("chef"), await users.make("joker"), await users.make("viewer")
    cooking = await publish_all(conn, client, chef, COOKING)
    pranks = await publish_all(conn, client, joker, PRANKS)
    for clip_id in cooking[:2]:
        await like(conn, viewer, clip_id)
    served = await pages(client, viewer.headers, limit=4)
    ids = [clip_id for clip_id, _ in served]
    assert len(ids) == len(set(ids)), "a clip repeated within the session"
    assert set(ids) == set(cooking + pranks)  # everything, once
    first_page = ids[:4]
    assert sum(1 for i in first_page if i in cooking) >= 3, served
    reasons = dict(served)
    assert any(
        reasons[i].startswith("because you liked") or reasons[i] == "picked for your tastes" for i in cooking
    )


async def test_session_cursors_are_checked(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    await publish_all(conn, client, alice, COOKING)
    r = await client.get("/v1/feed/for-you", params={"limit": 2}, headers=bob.headers)
    cursor = r.json()["next_cursor"]
    assert cursor
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    bad = await client.get("/v1/feed/for-you", params={"cursor": tampered}, headers=bob.headers)
    assert (bad.status_code, bad.headers["content-type"].split(";")[0]) == (400, "application/problem+json")
    assert (bad.json()["code"], bad.json()["field"]) == ("bad_cursor", "query.cursor")
    someone_else = await client.get("/v1/feed/for-you", params={"cursor": cursor}, headers=alice.headers)
    assert (someone_else.status_code, someone_else.json()["code"]) == (400, "bad_cursor")
    redis = create_redis(client.app.state.runtime.settings.redis_url)
    for key in await redis.keys("riffle:feed:session:*"):
        await redis.delete(key)
    await redis.aclose()
    expired = await client.get("/v1/feed/for-you", params={"cursor": cursor}, headers=bob.headers)
    assert (expired.status_code, expired.json()["code"]) == (400, "feed_expired")
    too_many = await client.get("/v1/feed/for-you", params={"limit": 21}, headers=bob.headers)
    assert too_many.status_code == 422
    assert too_many.headers["content-type"].startswith("application/problem+json")
    assert too_many.json()["field"] == "query.limit"  # named as the client sent it


async def test_the_feed_leaves_out_what_the_viewer_must_not_see(client, users, conn):
    alice, bob, carol, viewer = (
        (await users.make(h) for h in ("alice", "bob", "carol", "viewer"))
        if False
        else [await users.make(h) for h in ("alice", "bob", "carol", "viewer")]
    )
    from_alice = await publish_all(conn, client, alice, COOKING[:2])
    from_bob = await publish_all(conn, client, bob, COOKING[2:4])
    from_carol = await publish_all(conn, client, carol, COOKING[4:])
    private = await make_clip(conn, client, alice, visibility="private")
    _, draft = await make_draft(conn, alice)
    mine = await publish_all(conn, client, viewer, PRANKS[:1])
    await client.put("/v1/users/alice/block", headers=viewer.headers)
    assert (await client.post("/v1/users/bob/hide", headers=viewer.headers)).status_code == 204
    r = await client.post(f"/v1/clips/{from_carol[0]}/not-interested", headers=viewer.headers)
    assert r.status_code == 204
    ids = {clip_id for clip_id, _ in await pages(client, viewer.headers)}
    assert ids == {from_carol[1]}
    assert not ids & {*from_alice, *from_bob, private["id"], draft, *mine}
    # Undo brings them back (in a new session).
    assert (await client.delete("/v1/users/bob/hide", headers=viewer.headers)).status_code == 204
    assert (
        await client.delete(f"/v1/clips/{from_carol[0]}/not-interested", headers=viewer.headers)
    ).status_code == 204
    assert (
        await client.delete(f"/v1/clips/{from_carol[0]}/not-interested", headers=viewer.headers)
    ).status_code == 404
    redis = create_redis(client.app.state.runtime.settings.redis_url)
    await redis.delete(f"riffle:feed:seen:{viewer.id}")
    await redis.aclose()
    ids = {clip_id for clip_id, _ in await pages(client, viewer.headers)}
    assert ids == {*from_bob, *from_carol}


async def test_anonymous_viewers_get_new_and_trending_clips(client, users, conn):
    alice = await users.make("alice")
    cooking = await publish_all(conn, client, alice, COOKING[:3])
    served = await pages(client, {})
    assert {clip_id for clip_id, _ in served} == set(cooking)
    assert {reason for _, reason in served} <= {"new", "trending"}


async def test_steering_moves_a_cold_feed(client, users, conn):
    chef, joker, viewer = await users.make("chef"), await users.make("joker"), await users.make("viewer")
    cooking = await publish_all(conn, client, chef, COOKING)
    await publish_all(conn, client, joker, PRANKS)
    r = await client.put(
        "/v1/feed/preferences",
        json={"text": "more cooking, fewer pranks", "more": ["baking"]},
        headers=viewer.headers,
    )
    assert r.status_code == 200
    assert r.json()["text"] == "more cooking, fewer pranks"
    assert (await client.get("/v1/feed/preferences", headers=viewer.headers)).json()["more"] == ["baking"]
    first = (await client.get("/v1/feed/for-you", params={"limit": 5}, headers=viewer.headers)).json()[
        "items"
    ]
    assert sum(1 for item in first if item["clip"]["id"] in cooking) >= 4
    assert (await client.delete("/v1/feed/preferences", headers=viewer.headers)).status_code == 204
    assert (await client.get("/v1/feed/preferences", headers=viewer.headers)).json()["text"] == ""
    too_long = await client.put("/v1/feed/preferences", json={"text": "x" * 501}, headers=viewer.headers)
    assert too_long.status_code in (400, 422)


def test_steering_text_splits_into_more_and_fewer():
    assert split_steering("more cooking, fewer pranks") == (["cooking"], ["pranks"])
    assert split_steering("cats and dogs; no horror") == (["cats", "dogs"], ["horror"])


async def test_following_feed_is_newest_first_from_followed_creators(client, users, conn):
    alice, bob, viewer = await users.make("alice"), await users.make("bob"), await users.make("viewer")
    a = [await make_clip(conn, client, alice) for _ in range(3)]
    await make_clip(conn, client, bob)
    followers_only = await make_clip(conn, client, alice, visibility="followers")
    await client.put("/v1/users/alice/follow", headers=viewer.headers)
    r = await client.get("/v1/feed/following", params={"limit": 2}, headers=viewer.headers)
    first = r.json()
    second = (
        await client.get(
            "/v1/feed/following", params={"limit": 2, "cursor": first["next_cursor"]}, headers=viewer.headers
        )
    ).json()
    ids = [c["id"] for c in first["items"] + second["items"]]
    assert ids == [followers_only["id"], a[2]["id"], a[1]["id"], a[0]["id"]]
    assert (await client.get("/v1/feed/following")).status_code == 401


def test_exploration_takes_its_share_of_places_and_authors_are_spread():
    import random

    from feed.service import Candidate, spread

    liked = [
        Candidate(i, {"taste"}, similarity=0.9 - i / 100, score=1.0 - i / 100, author_id=1) for i in range(20)
    ]
    liked += [
        Candidate(100 + i, {"taste"}, similarity=0.88 - i / 100, score=0.98 - i / 100, author_id=2)
        for i in range(20)
    ]
    unknown = [Candidate(200 + i, {"new"}, similarity=0.0, score=0.1, author_id=3 + i) for i in range(10)]
    order = spread(liked + unknown, exploration=0.2, rng=random.Random(7))
    explored = [i for i, c in enumerate(order[:20]) if c.clip_id >= 200]
    assert explored == [4, 9, 14, 19]  # every fifth place
    top = [c for c in order[:20] if c.clip_id < 200]
    assert all(a.author_id != b.author_id for a, b in itertools.pairwise(top))
    assert len(spread(liked + unknown, exploration=0.0, rng=random.Random(7))) == 50


async def test_teen_viewers_and_signed_out_viewers_get_only_teen_safe_clips(client, users, conn):
    author = await users.make("author")
    safe = await publish_all(conn, client, author, COOKING[:2])
    adult_only = await publish_all(conn, client, author, ["beach day in a tiny bikini #summer"])
    teen = await users.make("teen", birth_year=datetime.now(UTC).year - 15)
    adult = await users.make("adult", birth_year=1990)
    assert {c for c, _ in await pages(client, adult.headers)} == set(safe + adult_only)
    assert {c for c, _ in await pages(client, teen.headers)} == set(safe)
    assert {c for c, _ in await pages(client, {})} == set(safe)


def test_interests_are_the_clusters_of_what_was_engaged_with_stray_clips_left_out():
    rng = np.random.default_rng(3)
    topics = np.eye(256, dtype=np.float32)[:3]  # three unrelated topics

    def around(topic, n):
        return topic + 0.15 * rng.standard_normal((n, 256)).astype(np.float32) / 16

    vectors = np.vstack([around(topics[0], 12), around(topics[1], 8), around(topics[2], 1)])
    found = interests(vectors, np.ones(len(vectors), dtype=np.float32))
    assert len(found) == 2  # the lone third-topic clip is not an interest
    assert float(found[0] @ topics[0]) > 0.95  # heaviest first
    assert float(found[1] @ topics[1]) > 0.95
    # One topic, however it is split, is one interest.
    one = interests(around(topics[0], 20), np.ones(20, dtype=np.float32))
    assert len(one) == 1
    assert float(one[0] @ topics[0]) > 0.95


async def test_each_interest_is_its_own_query_and_steering_adds_one(client, users, conn):
    chef, joker, viewer = await users.make("chef"), await users.make("joker"), await users.make("viewer")
    cooking = await publish_all(conn, client, chef, COOKING)
    pranks = await publish_all(conn, client, joker, PRANKS)
    taste, asked = await interest_queries(conn, viewer.id)
    assert (taste, asked) == (None, [])  # nothing known yet: trending and new only
    for clip_id in cooking[:3] + pranks[:3]:
        await like(conn, viewer, clip_id)
    taste, asked = await interest_queries(conn, viewer.id)
    assert taste is not None
    assert 2 <= len(asked) <= 3  # (the offline encoder's cooking clips are only loosely alike)

    async def nearest(vector):
        rows = await conn.fetch("SELECT clip_id FROM clip_vectors ORDER BY embedding <=> $1 LIMIT 3", vector)
        return {r["clip_id"] for r in rows}

    # One query per interest, none between them: each one's nearest clips share a topic.
    topics = []
    for v in asked:
        near = await nearest(v)
        assert near <= set(cooking) or near <= set(pranks)
        topics.append("cooking" if near <= set(cooking) else "pranks")
    assert set(topics) == {"cooking", "pranks"}
    r = await client.put("/v1/feed/preferences", json={"text": "more gardening"}, headers=viewer.headers)
    assert r.status_code == 200
    assert len((await interest_queries(conn, viewer.id))[1]) == len(asked) + 1
