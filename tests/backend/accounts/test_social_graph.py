"""Follows, blocks, mutes and the lists of followers and following."""

from __future__ import annotations

import asyncio

from backend.accounts import service as accounts


async def test_follow_is_idempotent_and_counts_stay_exact(client, users):
    alice = await users.make("alice")
    bob = await users.make("bob")
    for _ in range(3):
        r = await client.put("/v1/users/bob/follow", headers=alice.headers)
        assert r.status_code == 200
        assert r.json()["following"] is True
    profile = (await client.get("/v1/users/bob")).json()
    assert profile["follower_count"] == 1
    assert (await client.get("/v1/users/alice")).json()["following_count"] == 1
    for _ in range(2):
        r = await client.delete("/v1/users/bob/follow", headers=alice.headers)
        assert r.status_code == 200
        assert r.json()["following"] is False
    assert (await client.get("/v1/users/bob")).json()["follower_count"] == 0
    assert (await client.get("/v1/users/alice", headers=bob.headers)).json()["following_count"] == 0


async def test_concurrent_follows_count_exactly(client, users):
    star = await users.make("star")
    fans = [await users.make(f"fan{i}") for i in range(20)]
    results = await asyncio.gather(
        *[client.put("/v1/users/star/follow", headers=f.headers) for f in fans for _ in range(2)]
    )
    assert {r.status_code for r in results} == {200}
    assert (await client.get("/v1/users/star", headers=star.headers)).json()["follower_count"] == 20


async def test_follow_refusals(client, users):
    alice = await users.make("alice")
    await users.make("bob")
    assert (await client.put("/v1/users/bob/follow")).status_code == 401
    me = await client.put("/v1/users/alice/follow", headers=alice.headers)
    assert me.status_code == 422
    assert me.json()["code"] == "self_action"
    assert (await client.put("/v1/users/ghost/follow", headers=alice.headers)).status_code == 404


async def test_blocking_removes_follows_both_ways_and_stops_interaction(client, users, conn):
    alice = await users.make("alice")
    bob = await users.make("bob")
    await client.put("/v1/users/bob/follow", headers=alice.headers)
    await client.put("/v1/users/alice/follow", headers=bob.headers)
    assert await accounts.are_mutuals(conn, alice.id, bob.id)
    r = await client.put("/v1/users/bob/block", headers=alice.headers)
    assert r.status_code == 200
    assert r.json() == {"following": False, "followed_by": False, "blocking": True, "muting": False}
    assert not await accounts.are_mutuals(conn, alice.id, bob.id)
    assert await accounts.blocked_either_way(conn, bob.id, alice.id)
    assert (await client.get("/v1/users/alice", headers=alice.headers)).json()["following_count"] == 0
    assert (await client.get("/v1/users/bob", headers=alice.headers)).json()["follower_count"] == 0
    # Bob can no longer see or follow Alice: to him she does not exist.
    assert (await client.put("/v1/users/alice/follow", headers=bob.headers)).status_code == 404
    assert (await client.get("/v1/users/alice/followers", headers=bob.headers)).status_code == 404
    # Alice cannot follow someone she blocked until she unblocks.
    refused = await client.put("/v1/users/bob/follow", headers=alice.headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "blocked"
    assert (await client.delete("/v1/users/bob/block", headers=alice.headers)).json()["blocking"] is False
    assert (await client.put("/v1/users/alice/follow", headers=bob.headers)).status_code == 200


async def test_mute_with_and_without_duration(client, users, conn):
    alice = await users.make("alice")
    bob = await users.make("bob")
    r = await client.put("/v1/users/bob/mute", headers=alice.headers)
    assert r.status_code == 200
    assert r.json()["muting"] is True
    assert bob.id in await accounts.hidden_authors(conn, alice.id)
    r = await client.put("/v1/users/bob/mute", headers=alice.headers, json={"seconds": 3600})
    assert r.json()["muting"] is True
    until = await conn.fetchval("SELECT until FROM mutes WHERE muter_id = $1", alice.id)
    assert until is not None
    await conn.execute("UPDATE mutes SET until = now() - interval '1 second'")
    assert (await client.get("/v1/users/bob", headers=alice.headers)).json()["relationship"][
        "muting"
    ] is False
    assert bob.id not in await accounts.hidden_authors(conn, alice.id)
    bad = await client.put("/v1/users/bob/mute", headers=alice.headers, json={"seconds": 5})
    assert bad.status_code == 422
    assert bad.json()["field"] == "seconds"
    assert (await client.delete("/v1/users/bob/mute", headers=alice.headers)).json()["muting"] is False
    assert (await client.put("/v1/users/bob/mute")).status_code == 401


async def test_followers_and_following_page_without_repeats(client, users):
    star = await users.make("star")
    fans = [await users.make(f"fan{i}") for i in range(7)]
    for fan in fans:
        await client.put("/v1/users/star/follow", headers=fan.headers)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        r = await client.get("/v1/users/star/followers", params=params)
        assert r.status_code == 200
        seen += [c["user"]["handle"] for c in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(f.handle for f in fans)
    assert seen[0] == "fan6"  # newest first
    following = (await client.get("/v1/users/fan0/following", headers=star.headers)).json()
    assert [c["user"]["handle"] for c in following["items"]] == ["star"]
    # A cursor for one list is refused on another.
    first = (await client.get("/v1/users/star/followers", params={"limit": 3})).json()
    wrong = await client.get("/v1/users/fan0/followers", params={"cursor": first["next_cursor"]})
    assert wrong.status_code == 400


async def test_lists_leave_out_accounts_that_blocked_the_viewer(client, users):
    star = await users.make("star")
    alice = await users.make("alice")
    bob = await users.make("bob")
    await client.put("/v1/users/star/follow", headers=alice.headers)
    await client.put("/v1/users/star/follow", headers=bob.headers)
    await client.put("/v1/users/alice/block", headers=bob.headers)
    handles = [
        c["user"]["handle"]
        for c in (await client.get("/v1/users/star/followers", headers=alice.headers)).json()["items"]
    ]
    assert handles == ["alice"]
    assert star.handle == "star"
