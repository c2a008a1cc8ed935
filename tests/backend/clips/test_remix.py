"""Remix chains: lineage, trees, counts, refusals, and a removed original."""

from __future__ import annotations

import uuid

from tests.factories import make_clip

GENERATE = {"prompt": "make it night time", "model": "local", "seconds": 2, "size": "144x256", "takes": 1}


async def test_a_chain_records_parent_root_and_depth(client, users, conn):
    alice, bob, carol = await users.make("alice"), await users.make("bob"), await users.make("carol")
    a = await make_clip(conn, client, alice)
    b = await make_clip(conn, client, bob, parent_id=a["id"])
    c = await make_clip(conn, client, carol, parent_id=b["id"])
    b2 = await make_clip(conn, client, carol, parent_id=a["id"])
    assert c["remix"] == {"parent_id": b["id"], "root_id": a["id"], "depth": 2, "parent_available": True}
    assert (await client.get(f"/v1/clips/{a['id']}")).json()["counts"]["remixes"] == 2

    lineage = (await client.get(f"/v1/clips/{c['id']}/lineage")).json()
    assert [(step["id"], step["available"]) for step in lineage] == [
        (a["id"], True),
        (b["id"], True),
        (c["id"], True),
    ]
    remixes = (await client.get(f"/v1/clips/{a['id']}/remixes")).json()["items"]
    assert [r["id"] for r in remixes] == [b2["id"], b["id"]]

    tree = (await client.get(f"/v1/clips/{a['id']}/tree", params={"depth": 3})).json()
    assert {(n["clip"]["id"], n["parent_id"], n["level"]) for n in tree["nodes"]} == {
        (a["id"], None, 0),
        (b["id"], a["id"], 1),
        (b2["id"], a["id"], 1),
        (c["id"], b["id"], 2),
    }
    assert tree["truncated"] is False
    narrow = (await client.get(f"/v1/clips/{a['id']}/tree", params={"depth": 1, "breadth": 1})).json()
    assert len(narrow["nodes"]) == 2
    assert narrow["truncated"] is True
    assert (await client.get(f"/v1/clips/{a['id']}/tree", params={"depth": 99})).status_code in (400, 422)

    kinds = [
        n["kind"] for n in (await client.get("/v1/notifications", headers=alice.headers)).json()["items"]
    ]
    assert kinds == ["remix", "remix"]


async def test_a_removed_original_leaves_its_remixes_standing(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    a = await make_clip(conn, client, alice)
    b = await make_clip(conn, client, bob, parent_id=a["id"])
    await conn.execute("UPDATE clips SET status = 'removed' WHERE id = $1", a["id"])
    shown = (await client.get(f"/v1/clips/{b['id']}")).json()
    assert shown["remix"]["parent_available"] is False
    lineage = (await client.get(f"/v1/clips/{b['id']}/lineage")).json()
    assert lineage[0] == {"id": a["id"], "available": False, "clip": None}
    assert (await client.get(f"/v1/clips/{a['id']}/remixes")).status_code == 404


async def test_remixing_is_refused_with_the_reason(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    closed = await make_clip(conn, client, alice, allow_remix=False)
    private = await make_clip(conn, client, alice, visibility="private")
    open_clip = await make_clip(conn, client, alice)

    async def remix(user, parent_id):
        headers = user.headers | {"Idempotency-Key": uuid.uuid4().hex}
        return await client.post("/v1/generations", json=GENERATE | {"remix_of": parent_id}, headers=headers)

    r = await remix(bob, closed["id"])
    assert (r.status_code, r.json()["code"]) == (403, "remix_not_allowed")
    r = await remix(bob, private["id"])
    assert (r.status_code, r.json()["code"]) == (403, "parent_private")
    assert (await remix(alice, closed["id"])).status_code == 202  # the author may remix their own
    await client.put("/v1/users/bob/block", headers=alice.headers)
    r = await remix(bob, open_clip["id"])
    assert (r.status_code, r.json()["code"]) == (403, "blocked")
    assert await conn.fetchval("SELECT count(*) FROM generation_jobs WHERE user_id = $1", bob.id) == 0
