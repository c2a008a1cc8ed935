"""Likes, comments and notifications, including what concurrency and blocks must not break."""

from __future__ import annotations

import asyncio

from tests.conftest import make_settings
from tests.factories import make_clip


async def test_fifty_people_liking_at_once_make_fifty_likes(client, users, conn):
    alice = await users.make("alice")
    clip = await make_clip(conn, client, alice)
    fans = [await users.make(f"fan{i}") for i in range(50)]
    url = f"/v1/clips/{clip['id']}/like"
    results = await asyncio.gather(*(client.put(url, headers=fan.headers) for fan in fans))
    assert all(r.status_code == 200 for r in results)
    # Everyone likes again at once, and half take it back at once: still exact.
    await asyncio.gather(*(client.put(url, headers=fan.headers) for fan in fans))
    await asyncio.gather(*(client.delete(url, headers=fan.headers) for fan in fans[:25]))
    assert (await client.get(f"/v1/clips/{clip['id']}")).json()["counts"]["likes"] == 25
    assert await conn.fetchval("SELECT count(*) FROM likes WHERE clip_id = $1", clip["id"]) == 25
    assert await conn.fetchval("SELECT like_count FROM clips WHERE id = $1", clip["id"]) == 25


async def test_likes_are_idempotent_private_and_need_sight_of_the_clip(client, users, conn):
    alice, bob, carol = await users.make("alice"), await users.make("bob"), await users.make("carol")
    clip = await make_clip(conn, client, alice)
    private = await make_clip(conn, client, alice, visibility="private")
    for _ in range(2):
        r = await client.put(f"/v1/clips/{clip['id']}/like", headers=bob.headers)
        assert r.json() == {"clip_id": clip["id"], "liked": True, "likes": 1}
    assert (await client.get(f"/v1/clips/{clip['id']}", headers=bob.headers)).json()["viewer"][
        "liked"
    ] is True
    assert (await client.put(f"/v1/clips/{private['id']}/like", headers=bob.headers)).status_code == 404
    likes = (await client.get("/v1/me/likes", headers=bob.headers)).json()
    assert [c["id"] for c in likes["items"]] == [clip["id"]]
    assert (await client.get("/v1/me/likes", headers=carol.headers)).json()["items"] == []
    r = await client.delete(f"/v1/clips/{clip['id']}/like", headers=bob.headers)
    assert r.json() == {"clip_id": clip["id"], "liked": False, "likes": 0}


async def test_comments_replies_hiding_and_deleting(client, users, conn):
    alice, bob, carol = await users.make("alice"), await users.make("bob"), await users.make("carol")
    clip = await make_clip(conn, client, alice)
    url = f"/v1/clips/{clip['id']}/comments"
    first = (await client.post(url, json={"body": "love it"}, headers=bob.headers)).json()
    reply = (
        await client.post(url, json={"body": "thanks!", "reply_to": first["id"]}, headers=alice.headers)
    ).json()
    deeper = await client.post(url, json={"body": "same", "reply_to": reply["id"]}, headers=carol.headers)
    assert deeper.json()["reply_to"] == first["id"]  # one level deep: joins the thread
    assert (await client.get(f"/v1/clips/{clip['id']}")).json()["counts"]["comments"] == 3
    top = (await client.get(url)).json()["items"]
    assert [(c["id"], c["reply_count"]) for c in top] == [(first["id"], 2)]
    replies = (await client.get(f"/v1/comments/{first['id']}/replies")).json()["items"]
    assert [c["body"] for c in replies] == ["thanks!", "same"]

    # The clip's owner hides carol's reply: carol still sees it, nobody else does.
    carols = deeper.json()["id"]
    assert (await client.post(f"/v1/comments/{carols}/hide", headers=bob.headers)).status_code == 404
    assert (await client.post(f"/v1/comments/{carols}/hide", headers=alice.headers)).json()[
        "status"
    ] == "hidden"
    assert (
        len((await client.get(f"/v1/comments/{first['id']}/replies", headers=carol.headers)).json()["items"])
        == 2
    )
    assert (
        len((await client.get(f"/v1/comments/{first['id']}/replies", headers=bob.headers)).json()["items"])
        == 1
    )
    assert (await client.get(f"/v1/clips/{clip['id']}")).json()["counts"]["comments"] == 2

    # Only the author or the clip's owner deletes; deleting a comment takes its thread with it.
    assert (await client.delete(f"/v1/comments/{first['id']}", headers=carol.headers)).status_code == 404
    assert (await client.delete(f"/v1/comments/{first['id']}", headers=alice.headers)).status_code == 204
    assert (await client.get(url)).json()["items"] == []
    assert (await client.get(f"/v1/clips/{clip['id']}")).json()["counts"]["comments"] == 0


async def test_comment_refusals(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    quiet = await make_clip(conn, client, alice, allow_comments=False)
    private = await make_clip(conn, client, alice, visibility="private")
    off = await client.post(f"/v1/clips/{quiet['id']}/comments", json={"body": "hi"}, headers=bob.headers)
    assert (off.status_code, off.json()["code"]) == (403, "comments_off")
    unseen = await client.post(
        f"/v1/clips/{private['id']}/comments", json={"body": "hi"}, headers=bob.headers
    )
    assert unseen.status_code == 404
    clip = await make_clip(conn, client, alice)
    url = f"/v1/clips/{clip['id']}/comments"
    assert (await client.post(url, json={"body": ""}, headers=bob.headers)).status_code in (400, 422)
    assert (await client.post(url, json={"body": "x" * 1001}, headers=bob.headers)).status_code in (400, 422)
    elsewhere = await client.post(url, json={"body": "hi", "reply_to": 999_999}, headers=bob.headers)
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (422, "unknown_comment")
    assert await conn.fetchval("SELECT count(*) FROM comments") == 0


async def test_comments_are_rate_limited(database_url, redis_url, tmp_path, conn):
    from litestar.testing import AsyncTestClient

    from backend.app import create_app
    from tests.factories import UserFactory

    settings = make_settings(database_url, redis_url, tmp_path, comments_per_minute=2)
    async with AsyncTestClient(app=create_app(settings)) as limited:
        users = UserFactory(conn, limited)
        alice, bob = await users.make("alice"), await users.make("bob")
        clip = await make_clip(conn, limited, alice)
        url = f"/v1/clips/{clip['id']}/comments"
        codes = [
            (await limited.post(url, json={"body": f"c{i}"}, headers=bob.headers)).status_code
            for i in range(3)
        ]
        assert codes == [201, 201, 429]


async def test_notifications_respect_settings_mutes_and_blocks(client, users, conn):
    alice, bob, carol, dave = [await users.make(h) for h in ("alice", "bob", "carol", "dave")]
    clip = await make_clip(conn, client, alice)
    await client.put(f"/v1/clips/{clip['id']}/like", headers=bob.headers)
    await client.put("/v1/users/alice/follow", headers=bob.headers)
    await client.put(f"/v1/clips/{clip['id']}/like", headers=alice.headers)  # your own like: no notification
    await client.put("/v1/users/carol/mute", json={}, headers=alice.headers)
    await client.put(f"/v1/clips/{clip['id']}/like", headers=carol.headers)  # muted
    await client.put("/v1/notifications/settings", json={"kinds": {"comment": False}}, headers=alice.headers)
    await client.post(
        f"/v1/clips/{clip['id']}/comments", json={"body": "wow"}, headers=dave.headers
    )  # turned off

    page = (await client.get("/v1/notifications", headers=alice.headers)).json()["items"]
    assert [(n["kind"], n["actor"]["handle"]) for n in page] == [("follow", "bob"), ("like", "bob")]
    assert page[1]["clip_id"] == clip["id"]
    assert (await client.get("/v1/notifications/unread-count", headers=alice.headers)).json() == {"unread": 2}
    read = await client.post(
        "/v1/notifications/read", json={"up_to_id": page[1]["id"]}, headers=alice.headers
    )
    assert read.json() == {"unread": 1}
    assert (await client.get("/v1/notifications", headers=bob.headers)).json()["items"] == []
    settings = (await client.get("/v1/notifications/settings", headers=alice.headers)).json()["kinds"]
    assert settings["comment"] is False
    assert settings["like"] is True
    bad = await client.put(
        "/v1/notifications/settings", json={"kinds": {"spam": True}}, headers=alice.headers
    )
    assert bad.status_code in (400, 422)
    # Each stored notification is queued for live delivery after commit.
    assert await conn.fetchval("SELECT count(*) FROM outbox WHERE task = 'deliver_notification'") == 2
