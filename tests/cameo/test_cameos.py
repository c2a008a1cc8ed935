"""Cameos through the HTTP API: verification, consent, revocation, appearances, licensing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.backend.generation.test_generations import key, wait_for
from tests.backend.media.test_media_api import mp4, png, upload
from tests.factories import User, make_clip, make_draft

GEN = {"prompt": "a walk on the beach at dawn", "model": "local", "seconds": 2, "size": "144x256", "takes": 1}


async def cameo(client, conn, owner: User, *, verified: bool = True, **fields: Any) -> dict[str, Any]:
    body = {"kind": "person", "display_name": f"{owner.handle} cameo", **fields}
    r = await client.post("/v1/cameos", json=body, headers=owner.headers)
    assert r.status_code == 201, r.text
    made = dict(r.json())
    if verified:  # the verification flow has its own test
        await conn.execute(
            "UPDATE cameos SET status = 'verified', verified_at = now() WHERE id = $1", made["id"]
        )
    return made


async def generate(client, user: User, cameo_ids: list[int], **extra: Any):
    body = GEN | {"cameo_ids": cameo_ids} | extra
    return await client.post("/v1/generations", json=body, headers=user.headers | key())


async def visible(client, clip_id: int, viewer: User | None) -> bool:
    r = await client.get(f"/v1/clips/{clip_id}", headers=viewer.headers if viewer else {})
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


# --- creating and verifying --------------------------------------------------------------------


async def test_a_person_cameo_is_verified_by_a_fresh_video_then_a_moderator(client, users, conn):
    alice, mod, bob = (
        await users.make("alice"),
        await users.make("moderator1", role="moderator"),
        await users.make("bob"),
    )
    made = await cameo(client, conn, alice, verified=False)
    assert made["status"] == "pending"
    assert (await client.get(f"/v1/cameos/{made['id']}", headers=bob.headers)).status_code == 404

    challenge = (await client.post(f"/v1/cameos/{made['id']}/challenge", headers=alice.headers)).json()
    assert len(challenge["phrase"].split()) == 4
    video = (await upload(client, alice.headers, mp4(3), "video/mp4")).json()
    body = {"challenge_id": challenge["id"], "upload_id": video["id"]}
    r = await client.post(f"/v1/cameos/{made['id']}/verification", json=body, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending_review"

    again = await client.post(f"/v1/cameos/{made['id']}/verification", json=body, headers=alice.headers)
    assert (again.status_code, again.json()["code"]) == (409, "challenge_used")

    review = {"decision": "verify", "reason": "face and phrase match"}
    assert (
        await client.post(f"/v1/cameos/{made['id']}/review", json=review, headers=bob.headers)
    ).status_code == 404
    queue = (await client.get("/v1/cameos/review-queue", headers=mod.headers)).json()
    assert [c["id"] for c in queue["items"]] == [made["id"]]
    r = await client.post(f"/v1/cameos/{made['id']}/review", json=review, headers=mod.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "verified"
    seen = (await client.get(f"/v1/cameos/{made['id']}", headers=bob.headers)).json()
    assert (seen["status"], seen["usable"]) == ("verified", False)  # only_me by default
    kinds = [
        n["kind"] for n in (await client.get("/v1/notifications", headers=alice.headers)).json()["items"]
    ]
    assert "cameo_review" in kinds


async def test_expired_or_foreign_challenges_and_non_videos_are_refused(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    made = await cameo(client, conn, alice, verified=False)
    challenge = (await client.post(f"/v1/cameos/{made['id']}/challenge", headers=alice.headers)).json()
    image = (await upload(client, alice.headers, png())).json()
    r = await client.post(
        f"/v1/cameos/{made['id']}/verification",
        json={"challenge_id": challenge["id"], "upload_id": image["id"]},
        headers=alice.headers,
    )
    assert (r.status_code, r.json()["code"]) == (422, "not_a_video")

    video = (await upload(client, alice.headers, mp4(3), "video/mp4")).json()
    await conn.execute("UPDATE cameo_challenges SET expires_at = now() - interval '1 second'")
    r = await client.post(
        f"/v1/cameos/{made['id']}/verification",
        json={"challenge_id": challenge["id"], "upload_id": video["id"]},
        headers=alice.headers,
    )
    assert (r.status_code, r.json()["code"]) == (409, "challenge_expired")
    theirs = await client.post(
        f"/v1/cameos/{made['id']}/verification",
        json={"challenge_id": challenge["id"], "upload_id": video["id"]},
        headers=bob.headers,
    )
    assert theirs.status_code == 404  # not their cameo, and not their upload
    assert (await conn.fetchval("SELECT status FROM cameos WHERE id = $1", made["id"])) == "pending"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "person", "display_name": "me", "rules": "x" * 501}, "rules"),
        ({"kind": "character", "display_name": "Captain Comet"}, "declared_rights"),
        ({"kind": "person", "display_name": ""}, "display_name"),
        ({"kind": "ghost", "display_name": "boo"}, "kind"),
        ({"kind": "person", "display_name": "me", "rules": "always nude"}, "rules"),
    ],
)
async def test_bad_cameos_are_refused(client, users, conn, body, field):
    alice = await users.make("alice")
    r = await client.post("/v1/cameos", json=body, headers=alice.headers)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert await conn.fetchval("SELECT count(*) FROM cameos") == 0


# --- consent -------------------------------------------------------------------------------------


async def test_only_verified_and_consented_cameos_can_be_used_by_others(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    pending = await cameo(client, conn, alice, verified=False, consent="everyone")
    r = await generate(client, bob, [pending["id"]])
    assert (r.status_code, r.json()["code"]) == (422, "cameo_not_verified")
    assert (await generate(client, alice, [pending["id"]])).status_code == 202  # its owner may

    private = await cameo(client, conn, alice)
    r = await generate(client, bob, [private["id"]])
    assert (r.status_code, r.json()["code"]) == (403, "cameo_not_allowed")
    r = await generate(client, bob, [999_999])
    assert (r.status_code, r.json()["code"]) == (422, "unknown_cameo")
    assert await conn.fetchval("SELECT count(*) FROM generation_jobs WHERE user_id = $1", bob.id) == 0


async def test_requests_at_once_then_approval_and_a_grant_for_yourself(client, users, conn):
    alice, bob, carol = await users.make("alice"), await users.make("bob"), await users.make("carol")
    made = await cameo(client, conn, alice, consent="approved", rules="no politics, always smiling")
    asked = await asyncio.gather(
        *[
            client.post(f"/v1/cameos/{made['id']}/requests", json={"note": "for my vlog"}, headers=u.headers)
            for u in (bob, carol)
        ]
    )
    assert [r.status_code for r in asked] == [201, 201]
    assert all(r.json()["my_request"] == "requested" for r in asked)
    again = await client.post(f"/v1/cameos/{made['id']}/requests", json={}, headers=bob.headers)
    assert (again.status_code, again.json()["code"]) == (409, "already_requested")
    waiting = (
        await client.get(f"/v1/cameos/{made['id']}/grants?status=requested", headers=alice.headers)
    ).json()
    assert {g["user"]["handle"] for g in waiting["items"]} == {"bob", "carol"}
    notes = (await client.get("/v1/notifications", headers=alice.headers)).json()["items"]
    assert sorted(n["actor"]["handle"] for n in notes if n["kind"] == "cameo_request") == ["bob", "carol"]

    assert (await client.post(f"/v1/cameos/{made['id']}/requests/bob/approve", headers=alice.headers)).json()[
        "status"
    ] == "approved"
    assert (await client.post(f"/v1/cameos/{made['id']}/requests/carol/deny", headers=alice.headers)).json()[
        "status"
    ] == "denied"
    assert (await generate(client, bob, [made["id"]])).status_code == 202
    assert (await generate(client, carol, [made["id"]])).status_code == 403
    # The owner's rules: screened against the prompt, and the rest goes to the provider.
    r = await generate(client, bob, [made["id"]], prompt="a political rally speech")
    assert (r.status_code, r.json()["code"]) == (422, "cameo_rule")
    prompt = await conn.fetchval("SELECT provider_prompt FROM generation_jobs WHERE user_id = $1", bob.id)
    assert "always smiling" in prompt

    mine = await client.put(f"/v1/cameos/{made['id']}/grants/alice", headers=alice.headers)
    assert (mine.status_code, mine.json()["code"]) == (422, "own_cameo")
    theirs = await client.put(f"/v1/cameos/{made['id']}/grants/carol", headers=bob.headers)
    assert theirs.status_code == 404  # bob does not own it


async def test_revoking_cancels_running_generations_and_hides_clips_until_granted_again(
    worker_client, users_on_worker, conn
):
    client = worker_client
    alice, bob, carol = [await users_on_worker.make(h) for h in ("alice", "bob", "carol")]
    made = await cameo(client, conn, alice, consent="approved")
    await client.put(f"/v1/cameos/{made['id']}/grants/bob", headers=alice.headers)
    clip = await make_clip(conn, client, bob, cameo_ids=[made["id"]])
    own = await make_clip(conn, client, alice, cameo_ids=[made["id"]])
    r = await generate(client, bob, [made["id"]], prompt="a slow walk [[slow:20]]")
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    for _ in range(100):
        if await conn.fetchval(
            "SELECT count(*) FROM takes WHERE job_id = $1 AND status = 'in_progress'", job_id
        ):
            break
        await asyncio.sleep(0.1)
    draft_take, _ = await make_draft(conn, bob, cameo_ids=[made["id"]])

    r = await client.delete(f"/v1/cameos/{made['id']}/grants/bob", headers=alice.headers)
    assert (r.status_code, r.json()["status"]) == (200, "revoked")
    done = await wait_for(client, job_id, bob.headers, within_s=30)
    assert done["status"] == "canceled"
    assert (
        await conn.fetchval("SELECT reserved_seconds FROM generation_quota WHERE user_id = $1", bob.id) == 0
    )
    assert not await visible(client, clip["id"], carol)
    assert not await visible(client, clip["id"], None)
    assert await visible(client, clip["id"], bob)  # its maker still sees it
    assert await visible(client, own["id"], carol)  # the owner's own clips are untouched
    grid = (await client.get("/v1/users/bob/clips", headers=carol.headers)).json()
    assert clip["id"] not in [c["id"] for c in grid["items"]]
    r = await client.post("/v1/clips", json={"take_id": draft_take}, headers=bob.headers)
    assert (r.status_code, r.json()["code"]) == (403, "cameo_not_allowed")

    await client.put(f"/v1/cameos/{made['id']}/grants/bob", headers=alice.headers)
    assert await visible(client, clip["id"], carol)


async def test_mutuals_consent_ends_with_an_unfollow(client, users, conn):
    alice, bob, carol = await users.make("alice"), await users.make("bob"), await users.make("carol")
    made = await cameo(client, conn, alice, consent="mutuals")
    await client.put("/v1/users/alice/follow", headers=bob.headers)
    assert (await generate(client, bob, [made["id"]])).status_code == 403  # one way is not mutual
    await client.put("/v1/users/bob/follow", headers=alice.headers)
    assert (await generate(client, bob, [made["id"]])).status_code == 202
    clip = await make_clip(conn, client, bob, cameo_ids=[made["id"]])
    assert await visible(client, clip["id"], carol)

    await client.delete("/v1/users/bob/follow", headers=alice.headers)
    assert (await generate(client, bob, [made["id"]])).status_code == 403
    assert not await visible(client, clip["id"], carol)


async def test_a_remix_is_authorised_against_todays_consent_not_the_parents(client, users, conn):
    alice, bob, carol = await users.make("alice"), await users.make("bob"), await users.make("carol")
    made = await cameo(client, conn, alice, consent="everyone")
    parent = await make_clip(conn, client, bob, cameo_ids=[made["id"]])
    r = await generate(client, carol, [], remix_of=parent["id"], prompt="now in the rain")
    assert r.status_code == 202, r.text
    assert await conn.fetchval("SELECT cameo_ids FROM generation_jobs WHERE id = $1", r.json()["id"]) == [
        made["id"]
    ]

    await client.patch(f"/v1/cameos/{made['id']}", json={"allow_remix": False}, headers=alice.headers)
    r = await generate(client, carol, [], remix_of=parent["id"], prompt="now in the snow")
    assert (r.status_code, r.json()["code"]) == (403, "cameo_remix_not_allowed")

    await client.patch(
        f"/v1/cameos/{made['id']}", json={"allow_remix": True, "consent": "only_me"}, headers=alice.headers
    )
    r = await generate(client, carol, [], remix_of=parent["id"], prompt="now at night")
    assert (r.status_code, r.json()["code"]) == (403, "cameo_not_allowed")
    assert not await visible(client, parent["id"], carol)  # bob's clip lost its consent too


# --- appearances and licensing ---------------------------------------------------------------------


async def test_appearances_list_every_use_and_the_owner_removes_one_made_by_someone_who_blocked_them(
    client, users, conn
):
    alice, bob, carol = await users.make("alice"), await users.make("bob"), await users.make("carol")
    made = await cameo(client, conn, alice, consent="everyone")
    published = await make_clip(conn, client, bob, cameo_ids=[made["id"]])
    _, draft = await make_draft(conn, carol, cameo_ids=[made["id"]])
    running = (await generate(client, carol, [made["id"]])).json()["id"]

    listed = (await client.get(f"/v1/cameos/{made['id']}/appearances", headers=alice.headers)).json()["items"]
    assert {(a["kind"], a["clip_id"] or a["generation_id"], a["maker"]["handle"]) for a in listed} == {
        ("clip", published["id"], "bob"),
        ("draft", draft, "carol"),
        ("generation", running, "carol"),
    }
    assert (await client.get(f"/v1/cameos/{made['id']}/appearances", headers=bob.headers)).status_code == 404

    await client.put("/v1/users/alice/block", headers=bob.headers)
    r = await client.delete(f"/v1/cameos/{made['id']}/appearances/{published['id']}", headers=alice.headers)
    assert r.status_code == 204, r.text
    await client.delete("/v1/users/alice/block", headers=bob.headers)
    assert not await visible(client, published["id"], carol)  # removed for good, unblocked or not
    told = await conn.fetchval(
        "SELECT data->>'reason' FROM notifications "
        "WHERE recipient_id = $1 AND kind = 'cameo_appearance_removed'",
        bob.id,
    )
    assert told is not None
    assert "removed" in told
    again = await client.delete(
        f"/v1/cameos/{made['id']}/appearances/{published['id']}", headers=alice.headers
    )
    assert again.status_code == 204
    other = await client.delete(
        f"/v1/cameos/{made['id']}/appearances/{published['id']}", headers=carol.headers
    )
    assert other.status_code == 404


async def test_a_licensed_cameo_earns_once_per_published_clip(client, users, conn):
    alice, bob = await users.make("alice"), await users.make("bob")
    made = await cameo(client, conn, alice, consent="everyone")
    licence = {"price_minor": 150, "unit": "second", "currency": "USD", "revenue_share_percent": 12.5}
    r = await client.put(f"/v1/cameos/{made['id']}/licence", json=licence, headers=alice.headers)
    assert r.json()["licence"] == licence
    await make_clip(conn, client, bob, cameo_ids=[made["id"]])  # 2 s
    await make_clip(conn, client, alice, cameo_ids=[made["id"]])  # the owner's own: free
    earnings = (await client.get(f"/v1/cameos/{made['id']}/earnings", headers=alice.headers)).json()
    assert earnings["totals"] == [{"currency": "USD", "amount_minor": 300, "uses": 1}]
    assert earnings["entries"][0]["user"]["handle"] == "bob"
    assert await conn.fetchval("SELECT revenue_share_bps FROM cameos WHERE id = $1", made["id"]) == 1250
    assert (await client.get(f"/v1/cameos/{made['id']}/earnings", headers=bob.headers)).status_code == 404
    bad = await client.put(
        f"/v1/cameos/{made['id']}/licence", json=licence | {"currency": "usd"}, headers=alice.headers
    )
    assert bad.status_code == 422


async def test_deleting_a_cameo_stops_every_use_at_once(client, users, conn):
    alice, bob, carol = await users.make("alice"), await users.make("bob"), await users.make("carol")
    made = await cameo(client, conn, alice, consent="everyone")
    clip = await make_clip(conn, client, bob, cameo_ids=[made["id"]])
    assert (await client.delete(f"/v1/cameos/{made['id']}", headers=alice.headers)).status_code == 204
    assert not await visible(client, clip["id"], carol)
    assert (await generate(client, bob, [made["id"]])).status_code == 422
    assert (await generate(client, alice, [made["id"]])).status_code == 422
    assert (await client.get(f"/v1/cameos/{made['id']}", headers=alice.headers)).status_code == 404


@pytest.fixture
def users_on_worker(conn, worker_client):
    from tests.factories import UserFactory

    return UserFactory(conn, worker_client)
