"""Reports, the review queue, decisions and their effects, appeals and the audit log, through
the HTTP API as reporters, moderators and the people affected use it."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from tests.conftest import make_settings
from tests.factories import UserFactory, make_clip
from tests.feed.test_feed import COOKING, pages, publish_all


async def _report(client, who, target: str, target_id: int, reason: str = "spam", **extra):
    body = {"target": target, "id": target_id, "reason": reason} | extra
    return await client.post("/v1/reports", json=body, headers=who.headers)


async def _decide(client, moderator, case_id: int, action: str, reason: str = "breaks the rules", **extra):
    claimed = await client.post(f"/v1/moderation/cases/{case_id}/claim", headers=moderator.headers)
    assert claimed.status_code == 200, claimed.text
    body = {"action": action, "reason": reason} | extra
    return await client.post(f"/v1/moderation/cases/{case_id}/decide", json=body, headers=moderator.headers)


async def test_reports_fold_into_one_case_and_stay_private(client, users, conn) -> None:
    author, alice, bob = await users.make("author"), await users.make("alice"), await users.make("bob")
    clip = await make_clip(conn, client, author, visibility="public")
    first = await _report(
        client, alice, "clip", clip["id"], "hate", note="at 0:03", start_ms=3000, end_ms=4000
    )
    assert first.status_code == 201, first.text
    again = await _report(client, alice, "clip", clip["id"], "hate")
    assert again.json()["id"] == first.json()["id"]  # the same report, counted once
    other = await _report(client, bob, "clip", clip["id"], "violence")
    assert other.json()["case_id"] == first.json()["case_id"]
    case = await conn.fetchrow("SELECT report_count, reasons FROM moderation_cases")
    assert (case["report_count"], sorted(case["reasons"])) == (2, ["hate", "violence"])
    mine = (await client.get("/v1/reports", headers=bob.headers)).json()["items"]
    assert [r["id"] for r in mine] == [other.json()["id"]]  # bob sees his, not alice's

    private = await make_clip(conn, client, author, visibility="private")
    assert (await _report(client, alice, "clip", private["id"])).status_code == 404
    assert (await _report(client, alice, "clip", 999_999)).status_code == 404
    assert (await _report(client, alice, "comment", 999_999)).status_code == 404
    assert (await _report(client, alice, "cameo", 999_999)).status_code == 404
    unknown = await _report(client, alice, "clip", clip["id"], "boring")
    assert unknown.status_code == 422
    backwards = await _report(client, bob, "user", author.id, "harassment", start_ms=9, end_ms=1)
    assert backwards.status_code == 422
    own = await _report(client, author, "clip", clip["id"])
    assert own.status_code == 422
    await client.put(f"/v1/users/{alice.handle}/block", headers=author.headers)
    blocked = await _report(client, alice, "user", author.id, "harassment")
    assert blocked.status_code == 404
    assert await conn.fetchval("SELECT count(*) FROM reports") == 2


async def test_the_queue_is_for_moderators_and_a_removal_is_immediate(client, users, conn) -> None:
    chef, viewer, reporter = (
        await users.make("chef"),
        await users.make("viewer"),
        await users.make("reporter"),
    )
    mod, other_mod = await users.make("mod", role="moderator"), await users.make("mod2", role="moderator")
    clips = await publish_all(conn, client, chef, COOKING)
    first = await client.get("/v1/feed/for-you", params={"limit": 1}, headers=viewer.headers)
    shown = first.json()["items"][0]["clip"]["id"]
    target = next(c for c in clips if c != shown)  # in the viewer's stored session, not yet shown
    case_id = (await _report(client, reporter, "clip", target, "sexual")).json()["case_id"]

    for path in ("/v1/moderation/queue", f"/v1/moderation/cases/{case_id}", "/v1/moderation/audit"):
        assert (await client.get(path, headers=viewer.headers)).status_code == 404
    refused = await client.post(f"/v1/moderation/cases/{case_id}/claim", headers=viewer.headers)
    assert refused.status_code == 404
    queue = (await client.get("/v1/moderation/queue", headers=mod.headers)).json()["items"]
    assert [c["id"] for c in queue] == [case_id]
    detail = (await client.get(f"/v1/moderation/cases/{case_id}", headers=mod.headers)).json()
    assert [r["reason"] for r in detail["reports"]] == ["sexual"]

    assert (
        await client.post(f"/v1/moderation/cases/{case_id}/claim", headers=mod.headers)
    ).status_code == 200
    taken = await client.post(f"/v1/moderation/cases/{case_id}/claim", headers=other_mod.headers)
    assert taken.status_code == 409
    assert (await client.get("/v1/moderation/queue", headers=other_mod.headers)).json()["items"] == []
    no_reason = await client.post(
        f"/v1/moderation/cases/{case_id}/decide",
        json={"action": "remove", "reason": "  "},
        headers=mod.headers,
    )
    assert no_reason.status_code == 422
    not_mine = await client.post(
        f"/v1/moderation/cases/{case_id}/decide",
        json={"action": "remove", "reason": "x"},
        headers=other_mod.headers,
    )
    assert not_mine.status_code == 409
    decided = await client.post(
        f"/v1/moderation/cases/{case_id}/decide",
        json={"action": "remove", "reason": "nudity"},
        headers=mod.headers,
    )
    assert decided.status_code == 200, decided.text

    # Gone at once: the clip page, the stored feed session, the author's grid.
    assert (await client.get(f"/v1/clips/{target}", headers=viewer.headers)).status_code == 404
    rest = [clip_id for clip_id, _ in await pages(client, viewer.headers, limit=3)]
    assert target not in rest
    grid = (await client.get(f"/v1/users/{chef.handle}/clips", headers=viewer.headers)).json()["items"]
    assert target not in [c["id"] for c in grid]
    told = await conn.fetchrow(
        "SELECT data FROM notifications WHERE recipient_id = $1 AND kind = 'moderation'", chef.id
    )
    assert told["data"]["action"] == "remove"
    assert told["data"]["reason"] == "nudity"
    audit = (await client.get("/v1/moderation/audit", headers=mod.headers)).json()["items"]
    assert [a["action"] for a in audit] == ["remove", "claim"]
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("UPDATE moderation_audit SET reason = 'nothing happened'")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("DELETE FROM moderation_audit")


async def test_a_suspension_ends_sessions_and_hides_clips(client, users, conn) -> None:
    author, viewer = await users.make("author"), await users.make("viewer")
    mod = await users.make("mod", role="moderator")
    clip = await make_clip(conn, client, author, visibility="public")
    case_id = (await _report(client, viewer, "user", author.id, "harassment")).json()["case_id"]
    assert (await client.get("/v1/me", headers=author.headers)).status_code == 200
    claimed = await client.post(f"/v1/moderation/cases/{case_id}/claim", headers=mod.headers)
    assert claimed.status_code == 200
    strike_for_hours = await client.post(
        f"/v1/moderation/cases/{case_id}/decide",
        json={"action": "strike", "reason": "x", "duration_hours": 5},
        headers=mod.headers,
    )
    assert strike_for_hours.status_code == 422
    assert strike_for_hours.json()["field"] == "duration_hours"
    decided = await _decide(client, mod, case_id, "suspend", duration_hours=48)
    assert decided.status_code == 200, decided.text
    assert (await client.get("/v1/me", headers=author.headers)).status_code == 401
    assert (await client.get(f"/v1/clips/{clip['id']}", headers=viewer.headers)).status_code == 404
    login = await client.post(
        "/v1/sessions", json={"login": author.handle, "password": "correct horse battery staple"}
    )
    assert login.status_code == 403
    refused = login.json()
    assert refused["code"] == "account_suspended"
    # No session, but the decision can still be appealed, with the token the refusal carries.
    assert [c["case_id"] for c in refused["appealable"]] == [case_id]
    body = {"case_id": case_id, "statement": "that was my brother"}
    assert (await client.post("/v1/appeals", json=body)).status_code == 401
    forged = await client.post("/v1/appeals", json=body | {"appeal_token": refused["appeal_token"] + "x"})
    assert forged.status_code == 401
    appealed = await client.post("/v1/appeals", json=body | {"appeal_token": refused["appeal_token"]})
    assert appealed.status_code == 201, appealed.text
    assert appealed.json()["kind"] == "appeal"
    live = "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL"
    assert await conn.fetchval(live, author.id) == 0
    profile = f"/v1/users/{author.handle}"
    assert (await client.get(profile, headers=viewer.headers)).status_code == 404
    assert (await client.put(f"/v1/users/{author.handle}/follow", headers=viewer.headers)).status_code == 404
    followers = (await client.get(f"/v1/users/{viewer.handle}/following", headers=viewer.headers)).json()
    assert followers["items"] == []
    await conn.execute(
        "UPDATE users SET suspended_until = now() - interval '1 minute' WHERE id = $1", author.id
    )
    # Over by itself, before they even sign in again: profile and clips are back.
    assert (await client.get(profile, headers=viewer.headers)).status_code == 200
    assert (await client.get(f"/v1/clips/{clip['id']}", headers=viewer.headers)).status_code == 200
    again = await client.post(
        "/v1/sessions", json={"login": author.handle, "password": "correct horse battery staple"}
    )
    assert again.status_code == 201  # the suspension is over by itself


async def test_an_appeal_is_heard_once_by_another_moderator(client, users, conn) -> None:
    author, reporter, stranger = (
        await users.make("author"),
        await users.make("reporter"),
        await users.make("x1x"),
    )
    mod, other_mod = await users.make("mod", role="moderator"), await users.make("mod2", role="moderator")
    clip = await make_clip(conn, client, author, visibility="public")
    case_id = (await _report(client, reporter, "clip", clip["id"], "ip")).json()["case_id"]
    assert (await _decide(client, mod, case_id, "remove", "copyrighted music")).status_code == 200
    body = {"case_id": case_id, "statement": "I licensed that track"}
    assert (await client.post("/v1/appeals", json=body, headers=stranger.headers)).status_code == 404
    appeal = await client.post("/v1/appeals", json=body, headers=author.headers)
    assert appeal.status_code == 201, appeal.text
    second = await client.post("/v1/appeals", json=body, headers=author.headers)
    assert second.status_code == 409
    appeal_id = appeal.json()["id"]
    assert appeal_id not in [
        c["id"] for c in (await client.get("/v1/moderation/queue", headers=mod.headers)).json()["items"]
    ]
    own = await client.post(f"/v1/moderation/cases/{appeal_id}/claim", headers=mod.headers)
    assert own.status_code == 409
    assert own.json()["code"] == "own_decision"
    wrong = await _decide(client, other_mod, appeal_id, "remove")
    assert wrong.status_code == 422  # an appeal is upheld or overturned
    overturned = await client.post(
        f"/v1/moderation/cases/{appeal_id}/decide",
        json={"action": "overturn", "reason": "licence checked"},
        headers=other_mod.headers,
    )
    assert overturned.status_code == 200, overturned.text
    assert (await client.get(f"/v1/clips/{clip['id']}", headers=reporter.headers)).status_code == 200


async def test_age_restricted_clips_need_a_signed_in_adult(client, users, conn) -> None:
    author, reporter = await users.make("author"), await users.make("reporter", birth_year=1990)
    teen = await users.make("teen", birth_year=datetime.now(UTC).year - 15)
    mod = await users.make("mod", role="moderator")
    clip = await make_clip(conn, client, author, visibility="public")
    case_id = (await _report(client, reporter, "clip", clip["id"], "violence")).json()["case_id"]
    assert (await _decide(client, mod, case_id, "age_restrict", "graphic")).status_code == 200
    assert (await client.get(f"/v1/clips/{clip['id']}", headers=reporter.headers)).status_code == 200
    assert (await client.get(f"/v1/clips/{clip['id']}", headers=teen.headers)).status_code == 404
    assert (await client.get(f"/v1/clips/{clip['id']}")).status_code == 404
    assert (await client.get(f"/v1/clips/{clip['id']}", headers=author.headers)).status_code == 200


async def test_three_strikes_suspend(client, users, conn) -> None:
    author, reporter = await users.make("author"), await users.make("reporter")
    mod = await users.make("mod", role="moderator")
    for n in range(3):
        clip = await make_clip(conn, client, author, visibility="public")
        case_id = (await _report(client, reporter, "clip", clip["id"], "spam")).json()["case_id"]
        assert (await _decide(client, mod, case_id, "strike", f"spam {n}")).status_code == 200
    row = await conn.fetchrow("SELECT status, strikes FROM users WHERE id = $1", author.id)
    assert (row["status"], row["strikes"]) == ("suspended", 3)
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM moderation_audit WHERE actor_id IS NULL AND action = 'suspend'"
        )
        == 1
    )


async def test_reports_and_follows_are_limited_per_day(database_url, redis_url, tmp_path, conn) -> None:
    settings = make_settings(database_url, redis_url, tmp_path, reports_per_day=2, follows_per_day=1)
    async with AsyncTestClient(app=create_app(settings)) as client:
        users = UserFactory(conn, client)
        author, reporter, other = (
            await users.make("author"),
            await users.make("reporter"),
            await users.make("other"),
        )
        for _ in range(3):  # a report that is refused does not use up the day's quota
            assert (await _report(client, reporter, "clip", 999_999)).status_code == 404
        for _ in range(2):
            clip = await make_clip(conn, client, author, visibility="public")
            assert (await _report(client, reporter, "clip", clip["id"])).status_code == 201
        limited = await _report(client, reporter, "user", author.id)
        assert limited.status_code == 429
        assert "retry-after" in limited.headers
        assert await conn.fetchval("SELECT count(*) FROM reports") == 2  # the refused one is not kept
        assert (
            await client.put(f"/v1/users/{author.handle}/follow", headers=reporter.headers)
        ).status_code == 200
        assert (
            await client.put(f"/v1/users/{other.handle}/follow", headers=reporter.headers)
        ).status_code == 429
    assert uuid


async def test_a_moderator_does_not_decide_a_case_about_themselves(client, users, conn) -> None:
    mod, other_mod, reporter = (
        await users.make("mod", role="moderator"),
        await users.make("mod2", role="moderator"),
        await users.make("reporter"),
    )
    clip = await make_clip(conn, client, mod, visibility="public")
    case_id = (await _report(client, reporter, "clip", clip["id"], "spam")).json()["case_id"]
    own = await client.post(f"/v1/moderation/cases/{case_id}/claim", headers=mod.headers)
    assert own.status_code == 409
    assert own.json()["code"] == "own_case"
    assert (await _decide(client, other_mod, case_id, "dismiss")).status_code == 200


async def test_the_queue_pages_by_priority_and_a_decision_between_pages_skips_nothing(
    client, users, conn
) -> None:
    author, mod = await users.make("author"), await users.make("mod", role="moderator")
    reporters = [await users.make(f"rep{i}") for i in range(3)]
    cases = []
    for n in (3, 2, 1):  # three clips reported by 3, 2 and 1 people: that is their order
        clip = await make_clip(conn, client, author, visibility="public")
        for who in reporters[:n]:
            case_id = (await _report(client, who, "clip", clip["id"])).json()["case_id"]
        cases.append(case_id)
    first = (await client.get("/v1/moderation/queue", params={"limit": 2}, headers=mod.headers)).json()
    assert [c["id"] for c in first["items"]] == cases[:2]
    # The top case is decided before the next page is asked for: the third is not skipped.
    assert (await _decide(client, mod, cases[0], "remove")).status_code == 200
    rest = await client.get(
        "/v1/moderation/queue", params={"limit": 2, "cursor": first["next_cursor"]}, headers=mod.headers
    )
    assert [c["id"] for c in rest.json()["items"]] == cases[2:]
    assert rest.json()["next_cursor"] is None
    forged = await client.get("/v1/moderation/queue", params={"cursor": "abc"}, headers=mod.headers)
    assert forged.status_code == 400


async def test_a_clips_reach_is_its_views_and_an_accounts_its_followers(client, users, conn) -> None:
    author, mod, reporter = (
        await users.make("author"),
        await users.make("mod", role="moderator"),
        await users.make("rep"),
    )
    await conn.execute("UPDATE users SET follower_count = 10000 WHERE id = $1", author.id)
    quiet = await make_clip(conn, client, author, visibility="public")
    seen = await make_clip(conn, client, author, visibility="public")
    await conn.execute("INSERT INTO clip_stats (clip_id, impressions) VALUES ($1, 99)", seen["id"])
    cases = {
        name: (await _report(client, reporter, target, target_id)).json()["case_id"]
        for name, target, target_id in (
            ("quiet", "clip", quiet["id"]),
            ("seen", "clip", seen["id"]),
            ("account", "user", author.id),
        )
    }
    queue = (await client.get("/v1/moderation/queue", headers=mod.headers)).json()["items"]
    priority = {c["id"]: c["priority"] for c in queue}
    # One report each; reach is ln(1 + views) for a clip (none seen yet: nothing, not the
    # author's followers) and ln(1 + followers) for an account.
    assert priority[cases["quiet"]] == pytest.approx(1.0)
    assert priority[cases["seen"]] == pytest.approx(1 + math.log(100))
    assert priority[cases["account"]] == pytest.approx(1 + math.log(10001))
