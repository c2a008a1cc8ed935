"""Clips as clients see them: drafts, publishing, who may see what, editing and deleting."""

from __future__ import annotations

import pytest

from tests.factories import make_clip, make_draft


async def test_publish_a_draft_and_read_it_back(client, users, conn):
    alice = await users.make("alice")
    take_id, draft_id = await make_draft(conn, alice)
    drafts = (await client.get("/v1/drafts", headers=alice.headers)).json()
    assert [d["id"] for d in drafts["items"]] == [draft_id]
    assert drafts["items"][0]["status"] == "draft"

    r = await client.post(
        "/v1/clips",
        json={"take_id": take_id, "caption": "Kites! #Summer #beach @bob_2 #summer", "visibility": "public"},
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text
    clip = r.json()
    assert clip["id"] == draft_id
    assert clip["status"] == "published"
    assert clip["hashtags"] == ["summer", "beach"]
    assert clip["mentions"] == ["bob_2"]
    assert clip["ai_generated"] is True
    assert clip["label"] == "AI-generated"
    assert clip["author"]["handle"] == "alice"
    assert clip["counts"] == {"views": 0, "likes": 0, "comments": 0, "shares": 0, "remixes": 0}
    assert clip["viewer"] == {"liked": False, "is_author": True}
    assert "/v1/media/" in clip["video"]["url"]
    assert "sig=" in clip["video"]["url"]
    assert (clip["duration_ms"], clip["width"], clip["height"]) == (2000, 144, 256)
    assert (await client.get("/v1/drafts", headers=alice.headers)).json()["items"] == []
    anonymous = await client.get(f"/v1/clips/{draft_id}")
    assert anonymous.status_code == 200
    assert anonymous.json()["viewer"] == {"liked": False, "is_author": False}
    listed = (await client.get("/v1/users/alice/clips")).json()
    assert [c["id"] for c in listed["items"]] == [draft_id]


async def test_publishing_refusals_leave_nothing_changed(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    take_id, draft_id = await make_draft(conn, alice)
    theirs = await client.post("/v1/clips", json={"take_id": take_id}, headers=bob.headers)
    assert (theirs.status_code, theirs.json()["code"]) == (404, "unknown_take")
    long = await client.post(
        "/v1/clips", json={"take_id": take_id, "caption": "x" * 2201}, headers=alice.headers
    )
    assert long.status_code == 422
    blocked = await client.post(
        "/v1/clips", json={"take_id": take_id, "caption": "n u d e"}, headers=alice.headers
    )
    assert (blocked.status_code, blocked.json()["code"]) == (422, "caption_blocked")
    unknown_field = await client.post(
        "/v1/clips", json={"take_id": take_id, "colour": "red"}, headers=alice.headers
    )
    assert unknown_field.status_code in (400, 422)
    assert await conn.fetchval("SELECT status FROM clips WHERE id = $1", draft_id) == "draft"

    failed_take = await conn.fetchval(
        "INSERT INTO takes (job_id, user_id, position, status, model, reserved_seconds) "
        "SELECT job_id, user_id, 1, 'failed', 'local', 2 FROM takes WHERE id = $1 RETURNING id",
        take_id,
    )
    r = await client.post("/v1/clips", json={"take_id": failed_take}, headers=alice.headers)
    assert (r.status_code, r.json()["code"]) == (409, "take_not_ready")
    ok = await client.post("/v1/clips", json={"take_id": take_id}, headers=alice.headers)
    assert ok.status_code == 201
    again = await client.post("/v1/clips", json={"take_id": take_id}, headers=alice.headers)
    assert (again.status_code, again.json()["code"]) == (409, "already_published")


async def test_who_sees_what(client, users, conn):
    alice, bob, carol = await users.make("alice"), await users.make("bob"), await users.make("carol")
    public = await make_clip(conn, client, alice, visibility="public")
    followers = await make_clip(conn, client, alice, visibility="followers")
    private = await make_clip(conn, client, alice, visibility="private")
    _, draft = await make_draft(conn, alice)

    async def seen_by(user) -> set[int]:
        headers = user.headers if user else {}
        ids = set()
        for clip in (public, followers, private, {"id": draft}):
            if (await client.get(f"/v1/clips/{clip['id']}", headers=headers)).status_code == 200:
                ids.add(clip["id"])
        listed = await client.get("/v1/users/alice/clips", headers=headers)
        assert {c["id"] for c in listed.json()["items"]} == ids - {draft}
        return ids

    assert await seen_by(None) == {public["id"]}
    assert await seen_by(bob) == {public["id"]}
    assert await seen_by(alice) == {public["id"], followers["id"], private["id"], draft}
    await client.put("/v1/users/alice/follow", headers=bob.headers)
    assert await seen_by(bob) == {public["id"], followers["id"]}
    await client.put("/v1/users/carol/block", headers=alice.headers)
    assert (await client.get(f"/v1/clips/{public['id']}", headers=carol.headers)).status_code == 404
    await client.put("/v1/users/alice/block", headers=bob.headers)  # blocking works both ways
    assert (await client.get(f"/v1/clips/{public['id']}", headers=bob.headers)).status_code == 404


async def test_edit_and_delete_are_the_authors_alone(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    clip = await make_clip(conn, client, alice, caption="first")
    url = f"/v1/clips/{clip['id']}"
    assert (await client.patch(url, json={"caption": "hijacked"}, headers=bob.headers)).status_code == 404
    assert (await client.delete(url, headers=bob.headers)).status_code == 404
    r = await client.patch(url, json={"caption": "second #take", "allow_remix": False}, headers=alice.headers)
    assert r.status_code == 200
    assert (r.json()["caption"], r.json()["hashtags"], r.json()["allow_remix"]) == (
        "second #take",
        ["take"],
        False,
    )
    assert r.json()["visibility"] == "public"  # untouched
    bad = await client.patch(url, json={"visibility": "everyone"}, headers=alice.headers)
    assert bad.status_code in (400, 422)
    assert (await client.delete(url, headers=alice.headers)).status_code == 204
    for headers in (alice.headers, bob.headers, {}):
        assert (await client.get(url, headers=headers)).status_code == 404
    assert (await client.get("/v1/users/alice/clips")).json()["items"] == []
    assert await conn.fetchval("SELECT count(*) FROM outbox WHERE task = 'purge_clip_media'") == 1
    assert (await client.delete(url, headers=alice.headers)).status_code == 404


@pytest.mark.parametrize("limit", [1, 2])
async def test_user_clips_pages_cover_everything_once(client, users, conn, limit):
    alice = await users.make("alice")
    made = [(await make_clip(conn, client, alice))["id"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/users/alice/clips", params=params)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(made))


async def test_share_link_opens_a_preview_page_for_public_clips(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    public = await make_clip(conn, client, alice, caption="<b>kites</b>")
    private = await make_clip(conn, client, alice, visibility="private")
    r = await client.post(
        f"/v1/clips/{public['id']}/shares", json={"channel": "whatsapp"}, headers=bob.headers
    )
    assert r.status_code == 201
    link = r.json()["url"]
    assert f"/c/{public['id']}?s=" in link
    assert (await client.get(f"/v1/clips/{public['id']}")).json()["counts"]["shares"] == 1
    page = await client.get(f"/c/{public['id']}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'property="og:video"' in page.text
    assert "<b>kites</b>" not in page.text
    assert "&lt;b&gt;kites&lt;/b&gt;" in page.text
    assert (await client.get(f"/c/{private['id']}")).status_code == 404
    hidden = await client.post(f"/v1/clips/{private['id']}/shares", json={}, headers=bob.headers)
    assert hidden.status_code == 404
