"""Who may touch whose things: every route with an id in its path, tried by everyone who is not
the owner.

Alice owns one of each thing (an upload, a generation, a draft, a public and a followers-only
clip, a comment, a session). Bob is a stranger, Carol is blocked by Alice, Mo is a moderator
(moderation has its own routes; the ordinary ones give a moderator no more than anyone else,
but for seeing a cameo that waits for review),
and the anonymous caller has no token. Each of them tries every read and write below and must
get what the table says, almost always a 404 so that another user's id reveals nothing; then
Alice checks that nothing of hers changed. ``test_every_route_with_an_id_is_in_the_matrix``
keeps the table honest as routes are added.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from tests.backend.media.test_media_api import png, upload
from tests.backend.studio.products import make_product
from tests.factories import User, make_clip, make_draft

ANON, STRANGER, BLOCKED, MODERATOR = "anonymous", "stranger", "blocked", "moderator"
ACTORS = (ANON, STRANGER, BLOCKED, MODERATOR)


@dataclass(frozen=True)
class Case:
    method: str
    template: str  # as in the OpenAPI document
    path: str  # with Alice's ids filled in
    expect: dict[str, int]  # per actor
    body: Any = None


def everyone(status: int, *, anon: int | None = None, **per_actor: int) -> dict[str, int]:
    expect = dict.fromkeys(ACTORS, status)
    if anon is not None:
        expect[ANON] = anon
    expect.update(per_actor)
    return expect


# Routes with an id in the path that the matrix leaves out, and why.
NOT_OWNED = {
    ("GET", "/v1/media/{media_id}"): "the URL's signature is the authorisation (tests/backend/media)",
    ("HEAD", "/v1/media/{media_id}"): "the URL's signature is the authorisation (tests/backend/media)",
    ("GET", "/v1/users/{handle}"): "public profile; blocked viewers are tested in test_social_graph",
    ("GET", "/v1/users/{handle}/followers"): "public lists",
    ("GET", "/v1/users/{handle}/following"): "public lists",
    ("PUT", "/v1/users/{handle}/mute"): "acts on the caller's own mute list",
    ("DELETE", "/v1/users/{handle}/mute"): "acts on the caller's own mute list",
    ("PUT", "/v1/users/{handle}/block"): "acts on the caller's own block list",
    ("DELETE", "/v1/users/{handle}/block"): "acts on the caller's own block list",
    ("DELETE", "/v1/users/{handle}/follow"): "acts on the caller's own follows",
    ("POST", "/v1/users/{handle}/hide"): "acts on the caller's own feed",
    ("DELETE", "/v1/users/{handle}/hide"): "acts on the caller's own feed",
    ("DELETE", "/v1/clips/{clip_id}/not-interested"): "acts on the caller's own feed",
    ("DELETE", "/v1/clips/{clip_id}/like"): "removes the caller's own like; nothing of the author's",
    ("POST", "/v1/comments/{comment_id}/unhide"): "same rule as hide, tested there",
    ("DELETE", "/v1/sessions/current"): "the caller's own session",
    ("POST", "/v1/commerce/webhooks/{shop_id}"): "the shop's webhook signature is the authorisation "
    "(tests/backend/commerce)",
    ("GET", "/r/{token}"): "the link's signature is the authorisation (tests/backend/commerce)",
}


async def _scenario(conn, client, users) -> tuple[User, dict[str, User], dict[str, int]]:
    alice = await users.make("alice")
    actors = {
        STRANGER: await users.make("bob"),
        BLOCKED: await users.make("carol"),
        MODERATOR: await users.make("moderator1", role="moderator"),
    }
    blocked = await client.put(f"/v1/users/{actors[BLOCKED].handle}/block", headers=alice.headers)
    assert blocked.status_code in (200, 204), blocked.text

    ids: dict[str, int] = {}
    r = await upload(client, alice.headers, png())
    assert r.status_code == 201, r.text
    ids["upload"] = r.json()["id"]
    r = await client.post(
        "/v1/generations",
        json={"prompt": "a lighthouse in fog", "model": "local", "seconds": 2, "size": "144x256", "takes": 1},
        headers=alice.headers | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code in (201, 202), r.text
    ids["generation"] = r.json()["id"]
    ids["take"], ids["draft"] = await make_draft(conn, alice)
    ids["public"] = (await make_clip(conn, client, alice, caption="mine", visibility="public"))["id"]
    ids["followers"] = (await make_clip(conn, client, alice, visibility="followers"))["id"]
    r = await client.post(
        f"/v1/clips/{ids['public']}/comments", json={"body": "first"}, headers=alice.headers
    )
    assert r.status_code == 201, r.text
    ids["comment"] = r.json()["id"]
    r = await client.get("/v1/sessions", headers=alice.headers)
    ids["session"] = r.json()["items"][0]["id"]
    ids["product"] = await make_product(conn, alice)
    ids["shop"] = await conn.fetchval("SELECT shop_id FROM products WHERE id = $1", ids["product"])
    r = await client.post(
        f"/v1/clips/{ids['public']}/product-tags", json={"product_id": ids["product"]}, headers=alice.headers
    )
    assert r.status_code == 201, r.text
    ids["tag"] = r.json()["product_tags"][0]["id"]
    r = await client.post(
        "/v1/campaigns",
        json={
            "clip_id": ids["public"],
            "billing": "cpm",
            "rate_minor": 100,
            "currency": "USD",
            "budget_minor": 500,
        },
        headers=alice.headers | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    ids["campaign"] = r.json()["id"]
    r = await client.post(
        "/v1/reports",
        json={"target": "clip", "id": ids["public"], "reason": "spam"},
        headers=actors[STRANGER].headers,
    )
    assert r.status_code == 201, r.text
    ids["case"] = r.json()["case_id"]
    studio = {"goal": "awareness", "style": "ugc", "language": "en", "variants": 1, "seconds": 4}
    r = await client.post(
        f"/v1/products/{ids['product']}/studio",
        json=studio,
        headers=alice.headers | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 202, r.text
    ids["studio_run"] = r.json()["id"]
    r = await client.post("/v1/breakdowns", json={"clip_id": ids["public"]}, headers=alice.headers)
    assert r.status_code == 201, r.text
    ids["breakdown"] = r.json()["id"]
    for name, status in (("cameo", "verified"), ("pending_cameo", "pending")):
        r = await client.post(
            "/v1/cameos", json={"kind": "person", "display_name": name}, headers=alice.headers
        )
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
        await conn.execute("UPDATE cameos SET status = $2 WHERE id = $1", ids[name], status)
    return alice, actors, ids


def _cases(ids: dict[str, int]) -> list[Case]:
    up, gen, draft, pub, fol = ids["upload"], ids["generation"], ids["draft"], ids["public"], ids["followers"]
    com, ses = ids["comment"], ids["session"]
    private = everyone(404, anon=401)
    not_blocked = everyone(200, blocked=404)  # public, except to the user she blocked
    signed_in_not_blocked = everyone(
        200, anon=401, blocked=404
    )  # a signed-in route over something only Alice may see
    hidden = everyone(404)  # a public route over something only Alice may see
    moderator_only = everyone(404, anon=401, moderator=200)
    cases = [
        Case("GET", "/v1/uploads/{upload_id}", f"/v1/uploads/{up}", private),
        Case("DELETE", "/v1/uploads/{upload_id}", f"/v1/uploads/{up}", private),
        Case("GET", "/v1/generations/{generation_id}", f"/v1/generations/{gen}", private),
        Case("DELETE", "/v1/generations/{generation_id}", f"/v1/generations/{gen}", private),
        Case("DELETE", "/v1/sessions/{session_id}", f"/v1/sessions/{ses}", private),
        # A draft is Alice's alone, on every route that reads or acts on a clip.
        Case("GET", "/v1/clips/{clip_id}", f"/v1/clips/{draft}", hidden),
        Case("GET", "/v1/clips/{clip_id}/remixes", f"/v1/clips/{draft}/remixes", hidden),
        Case("GET", "/v1/clips/{clip_id}/lineage", f"/v1/clips/{draft}/lineage", hidden),
        Case("GET", "/v1/clips/{clip_id}/tree", f"/v1/clips/{draft}/tree", hidden),
        Case("GET", "/v1/clips/{clip_id}/provenance", f"/v1/clips/{draft}/provenance", hidden),
        Case("GET", "/v1/clips/{clip_id}/provenance", f"/v1/clips/{pub}/provenance", not_blocked),
        Case("GET", "/v1/clips/{clip_id}/comments", f"/v1/clips/{draft}/comments", hidden),
        Case("GET", "/c/{clip_id}", f"/c/{draft}", hidden),
        Case("PUT", "/v1/clips/{clip_id}/like", f"/v1/clips/{draft}/like", private),
        Case("POST", "/v1/clips/{clip_id}/shares", f"/v1/clips/{draft}/shares", private, {"channel": "link"}),
        Case("POST", "/v1/clips/{clip_id}/comments", f"/v1/clips/{draft}/comments", private, {"body": "hi"}),
        Case("POST", "/v1/clips/{clip_id}/not-interested", f"/v1/clips/{draft}/not-interested", private),
        # Her public clip: anyone may read it, except the user she blocked; only she may change it.
        Case("GET", "/v1/clips/{clip_id}", f"/v1/clips/{pub}", not_blocked),
        Case("GET", "/c/{clip_id}", f"/c/{pub}", everyone(200)),
        Case("PATCH", "/v1/clips/{clip_id}", f"/v1/clips/{pub}", private, {"caption": "not yours"}),
        Case("DELETE", "/v1/clips/{clip_id}", f"/v1/clips/{pub}", private),
        Case("PUT", "/v1/clips/{clip_id}/like", f"/v1/clips/{pub}/like", signed_in_not_blocked),
        Case("GET", "/v1/clips/{clip_id}/comments", f"/v1/clips/{pub}/comments", not_blocked),
        # Her followers-only clip: nobody here follows her.
        Case("GET", "/v1/clips/{clip_id}", f"/v1/clips/{fol}", hidden),
        # Her comment: only she (or the clip's author, also she) may delete or hide it.
        Case("DELETE", "/v1/comments/{comment_id}", f"/v1/comments/{com}", private),
        Case("POST", "/v1/comments/{comment_id}/hide", f"/v1/comments/{com}/hide", private),
        Case("GET", "/v1/comments/{comment_id}/replies", f"/v1/comments/{com}/replies", not_blocked),
        # Her profile, as the user she blocked sees it.
        Case("GET", "/v1/users/{handle}/clips", "/v1/users/alice/clips", not_blocked),
        Case("PUT", "/v1/users/{handle}/follow", "/v1/users/alice/follow", signed_in_not_blocked),
        *_cameo_cases(ids),
        # Her product (its shop does not take affiliates), studio run and breakdown.
        Case(
            "POST",
            "/v1/products/{product_id}/studio",
            f"/v1/products/{ids['product']}/studio",
            private,
            {"goal": "awareness", "style": "ugc", "language": "en", "variants": 1, "seconds": 4},
        ),
        Case("GET", "/v1/studio/{run_id}", f"/v1/studio/{ids['studio_run']}", private),
        *_commerce_cases(ids),
        # A report about her clip: a moderator's case, nobody else's.
        Case("GET", "/v1/moderation/cases/{case_id}", f"/v1/moderation/cases/{ids['case']}", moderator_only),
        Case(
            "POST",
            "/v1/moderation/cases/{case_id}/claim",
            f"/v1/moderation/cases/{ids['case']}/claim",
            moderator_only,
        ),
        Case(
            "POST",
            "/v1/moderation/cases/{case_id}/decide",
            f"/v1/moderation/cases/{ids['case']}/decide",
            moderator_only,
            {"action": "dismiss", "reason": "not spam"},
        ),
        Case("GET", "/v1/breakdowns/{breakdown_id}", f"/v1/breakdowns/{ids['breakdown']}", private),
        Case(
            "POST",
            "/v1/breakdowns/{breakdown_id}/replicate",
            f"/v1/breakdowns/{ids['breakdown']}/replicate",
            private,
            {"product_id": ids["product"]},
        ),
    ]
    return cases


def _commerce_cases(ids: dict[str, int]) -> list[Case]:
    """Her shop (no affiliates), its product, and a tag on her public clip."""
    private = everyone(404, anon=401)
    shop, product, pub, tag = ids["shop"], ids["product"], ids["public"], ids["tag"]
    product_body = {"title": "not yours", "url": "https://example.com/x"}
    not_the_author = everyone(403, anon=401, blocked=404)  # they see the clip; only she tags it
    campaign = ids["campaign"]
    return [
        Case("GET", "/v1/campaigns/{campaign_id}", f"/v1/campaigns/{campaign}", private),
        *(
            Case(
                "POST",
                f"/v1/campaigns/{{campaign_id}}/{action}",
                f"/v1/campaigns/{campaign}/{action}",
                private,
            )
            for action in ("pause", "resume", "end")
        ),
        Case("GET", "/v1/shops/{shop_id}", f"/v1/shops/{shop}", private),
        Case("PATCH", "/v1/shops/{shop_id}", f"/v1/shops/{shop}", private, {"name": "mine now"}),
        Case("DELETE", "/v1/shops/{shop_id}", f"/v1/shops/{shop}", private),
        Case("GET", "/v1/shops/{shop_id}/webhook-secret", f"/v1/shops/{shop}/webhook-secret", private),
        Case(
            "POST",
            "/v1/shops/{shop_id}/webhook-secret:rotate",
            f"/v1/shops/{shop}/webhook-secret:rotate",
            private,
        ),
        Case("GET", "/v1/shops/{shop_id}/products", f"/v1/shops/{shop}/products", private),
        Case(
            "GET",
            "/v1/shops/{shop_id}/analytics",
            f"/v1/shops/{shop}/analytics?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z",
            private,
        ),
        Case("POST", "/v1/shops/{shop_id}/products", f"/v1/shops/{shop}/products", private, product_body),
        Case(
            "POST",
            "/v1/shops/{shop_id}/products:import",
            f"/v1/shops/{shop}/products:import",
            private,
            {"url": "https://example.com/product"},
        ),
        Case("GET", "/v1/products/{product_id}", f"/v1/products/{product}", private),
        Case("PATCH", "/v1/products/{product_id}", f"/v1/products/{product}", private, {"title": "x"}),
        Case("DELETE", "/v1/products/{product_id}", f"/v1/products/{product}", private),
        Case(
            "POST",
            "/v1/clips/{clip_id}/product-tags",
            f"/v1/clips/{pub}/product-tags",
            not_the_author,
            {"product_id": product},
        ),
        Case(
            "DELETE",
            "/v1/clips/{clip_id}/product-tags/{tag_id}",
            f"/v1/clips/{pub}/product-tags/{tag}",
            not_the_author,
        ),
        Case(
            "POST",
            "/v1/clips/{clip_id}/product-tags/{tag_id}/tap",
            f"/v1/clips/{pub}/product-tags/{tag}/tap",
            everyone(200, anon=401, blocked=404),
        ),
    ]


def _cameo_cases(ids: dict[str, int]) -> list[Case]:
    """Her verified cameo (only she may use it) and a pending one nobody else may even see."""
    cam, pending, pub = ids["cameo"], ids["pending_cameo"], ids["public"]
    private = everyone(404, anon=401)
    path = f"/v1/cameos/{cam}"
    licence = {"price_minor": 100, "unit": "use", "currency": "EUR"}
    owner_only = [
        ("PATCH", "/v1/cameos/{cameo_id}", path, {"consent": "everyone"}),
        ("DELETE", "/v1/cameos/{cameo_id}", path, None),
        ("POST", "/v1/cameos/{cameo_id}/challenge", f"/v1/cameos/{pending}/challenge", None),
        (
            "POST",
            "/v1/cameos/{cameo_id}/verification",
            f"{path}/verification",
            {"challenge_id": 1, "upload_id": 1},
        ),
        ("GET", "/v1/cameos/{cameo_id}/grants", f"{path}/grants", None),
        ("POST", "/v1/cameos/{cameo_id}/requests/{handle}/approve", f"{path}/requests/bob/approve", None),
        ("POST", "/v1/cameos/{cameo_id}/requests/{handle}/deny", f"{path}/requests/bob/deny", None),
        ("PUT", "/v1/cameos/{cameo_id}/grants/{handle}", f"{path}/grants/bob", None),
        ("DELETE", "/v1/cameos/{cameo_id}/grants/{handle}", f"{path}/grants/bob", None),
        ("GET", "/v1/cameos/{cameo_id}/appearances", f"{path}/appearances", None),
        ("DELETE", "/v1/cameos/{cameo_id}/appearances/{clip_id}", f"{path}/appearances/{pub}", None),
        ("PUT", "/v1/cameos/{cameo_id}/licence", f"{path}/licence", licence),
        ("DELETE", "/v1/cameos/{cameo_id}/licence", f"{path}/licence", None),
        ("GET", "/v1/cameos/{cameo_id}/earnings", f"{path}/earnings", None),
    ]
    return [
        Case("GET", "/v1/cameos/{cameo_id}", path, everyone(200, blocked=404)),
        # A moderator sees a cameo in any state: they review them.
        Case("GET", "/v1/cameos/{cameo_id}", f"/v1/cameos/{pending}", everyone(404, moderator=200)),
        # Asking is open to anyone who can see it; this one is hers alone, so the answer says so.
        Case(
            "POST",
            "/v1/cameos/{cameo_id}/requests",
            f"{path}/requests",
            everyone(403, anon=401, blocked=404),
            {"note": "please"},
        ),
        Case(
            "POST",
            "/v1/cameos/{cameo_id}/review",
            f"/v1/cameos/{pending}/review",
            everyone(404, anon=401, moderator=409),  # not waiting for review
            {"decision": "verify", "reason": "looks right"},
        ),
        *(Case(m, t, p, private, b) for m, t, p, b in owner_only),
    ]


async def test_nobody_reads_or_changes_what_is_not_theirs(client, users, conn):
    alice, actors, ids = await _scenario(conn, client, users)
    cases = _cases(ids)
    wrong: list[str] = []
    for case in cases:
        for actor in ACTORS:
            headers = actors[actor].headers if actor in actors else {}
            headers = headers | {"Idempotency-Key": uuid.uuid4().hex}  # where a route needs one
            r = await client.request(case.method, case.path, headers=headers, json=case.body)
            want = case.expect[actor]
            got = r.status_code if r.status_code not in (201, 204) or want != 200 else 200
            if got != want:
                seen = f"{r.status_code} (want {want}) {r.text[:120]}"
                wrong.append(f"{case.method} {case.path} as {actor}: {seen}")
            elif r.status_code >= 400 and case.template != "/c/{clip_id}":
                assert r.headers["content-type"].startswith("application/problem+json"), case
    assert not wrong, "\n".join(wrong)

    # Nothing of Alice's changed or went away.
    for path in (
        f"/v1/uploads/{ids['upload']}",
        f"/v1/generations/{ids['generation']}",
        f"/v1/clips/{ids['draft']}",
        f"/v1/clips/{ids['followers']}",
    ):
        assert (await client.get(path, headers=alice.headers)).status_code == 200, path
    clip = (await client.get(f"/v1/clips/{ids['public']}", headers=alice.headers)).json()
    assert clip["caption"] == "mine"
    assert clip["counts"]["likes"] == 2  # Bob's and the moderator's likes; Carol's was refused
    comments = (await client.get(f"/v1/clips/{ids['public']}/comments", headers=alice.headers)).json()
    assert [c["id"] for c in comments["items"]] == [ids["comment"]]
    assert (await client.get("/v1/me", headers=alice.headers)).status_code == 200  # session intact
    cameo = (await client.get(f"/v1/cameos/{ids['cameo']}", headers=alice.headers)).json()
    assert (cameo["consent"], cameo["licence"]) == ("only_me", None)


async def test_every_route_with_an_id_is_in_the_matrix(client, users, conn):
    spec = (await client.get("/openapi.json")).json()
    _, _, ids = await _scenario(conn, client, users)
    covered = {(c.method, c.template) for c in _cases(ids)}
    missing = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        if re.search(r"\{[a-z_]+\}", path)
        for method in operations
        if (method.upper(), path) not in covered and (method.upper(), path) not in NOT_OWNED
    ]
    assert not missing, "routes with an id and no access-matrix row:\n" + "\n".join(missing)
