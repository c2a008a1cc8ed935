"""Sign-up, the own account, and public profiles."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.factories import PASSWORD


async def test_sign_up_returns_the_account_without_secrets(client, conn):
    r = await client.post(
        "/v1/accounts",
        json={"handle": "Alice_01", "email": "Alice@Example.com", "password": PASSWORD, "birth_year": 1990},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["handle"] == "alice_01"
    assert body["email"] == "alice@example.com"
    assert body["is_teen"] is False
    assert "password" not in r.text
    stored = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", body["id"])
    assert stored.startswith("$argon2id$")


async def test_handles_and_emails_are_unique_case_insensitively(client):
    first = await client.post(
        "/v1/accounts", json={"handle": "bob", "email": "bob@x.io", "password": PASSWORD}
    )
    assert first.status_code == 201
    same_handle = await client.post(
        "/v1/accounts", json={"handle": "BOB", "email": "b2@x.io", "password": PASSWORD}
    )
    assert same_handle.status_code == 409
    assert same_handle.json()["code"] == "handle_taken"
    assert same_handle.json()["field"] == "handle"
    same_email = await client.post(
        "/v1/accounts", json={"handle": "bob2", "email": "BOB@x.io", "password": PASSWORD}
    )
    assert same_email.status_code == 409
    assert same_email.json()["code"] == "email_taken"


async def test_sign_up_refuses_bad_input_and_writes_nothing(client, conn):
    cases = [
        ({"handle": "ab", "email": "a@x.io", "password": PASSWORD}, "handle"),
        ({"handle": "a" * 31, "email": "a@x.io", "password": PASSWORD}, "handle"),
        ({"handle": "has-dash", "email": "a@x.io", "password": PASSWORD}, "handle"),
        ({"handle": "okname", "email": "not-an-email", "password": PASSWORD}, "email"),
        ({"handle": "okname", "email": "a@x.io", "password": "short"}, "password"),
        ({"handle": "okname", "email": "a@x.io", "password": PASSWORD, "admin": True}, "admin"),
        (
            {"handle": "okname", "email": "a@x.io", "password": PASSWORD, "birth_year": "nineteen"},
            "birth_year",
        ),
        ({"handle": "okname", "email": "a@x.io"}, "password"),
    ]
    for body, field in cases:
        r = await client.post("/v1/accounts", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == field, r.json()
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_children_under_13_cannot_sign_up_and_teens_are_marked(client):
    year = datetime.now(UTC).year
    child = await client.post(
        "/v1/accounts",
        json={"handle": "kid", "email": "k@x.io", "password": PASSWORD, "birth_year": year - 10},
    )
    assert child.status_code == 422
    assert child.json()["field"] == "birth_year"
    teen = await client.post(
        "/v1/accounts",
        json={"handle": "teen", "email": "t@x.io", "password": PASSWORD, "birth_year": year - 15},
    )
    assert teen.status_code == 201
    assert teen.json()["is_teen"] is True


async def test_me_needs_a_token_and_patch_changes_only_what_was_sent(client, users):
    assert (await client.get("/v1/me")).status_code == 401
    alice = await users.make("alice")
    r = await client.patch(
        "/v1/me", headers=alice.headers, json={"bio": "I make cooking clips", "locale": "zh-CN"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["bio"] == "I make cooking clips"
    assert r.json()["locale"] == "zh-CN"
    r = await client.patch("/v1/me", headers=alice.headers, json={"display_name": "Alice"})
    assert r.json()["bio"] == "I make cooking clips"
    assert r.json()["display_name"] == "Alice"
    year = datetime.now(UTC).year
    r = await client.patch("/v1/me", headers=alice.headers, json={"birth_year": year - 16})
    assert r.json()["is_teen"] is True
    r = await client.patch("/v1/me", headers=alice.headers, json={"avatar_url": None})
    assert r.status_code == 200
    assert r.json()["avatar_url"] is None


async def test_me_patch_refuses_bad_values(client, users):
    alice = await users.make("alice")
    for body, field in [
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
        ({"bio": "x" * 301}, "bio"),
        ({"role": "admin"}, "role"),
        ({"birth_year": datetime.now(UTC).year + 1}, "birth_year"),
    ]:
        r = await client.patch("/v1/me", headers=alice.headers, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field
    me = (await client.get("/v1/me", headers=alice.headers)).json()
    assert me["role"] == "user"
    assert me["bio"] == ""


async def test_profile_is_public_but_hidden_from_blocked_users(client, users):
    alice = await users.make("alice")
    bob = await users.make("bob")
    anonymous = await client.get("/v1/users/alice")
    assert anonymous.status_code == 200
    assert anonymous.json()["relationship"] is None
    assert "email" not in anonymous.json()
    assert (await client.get("/v1/users/ALICE", headers=bob.headers)).status_code == 200
    await client.put("/v1/users/bob/block", headers=alice.headers)
    hidden = await client.get("/v1/users/alice", headers=bob.headers)
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "not_found"
    # The blocker still sees the account it blocked.
    seen = await client.get("/v1/users/bob", headers=alice.headers)
    assert seen.json()["relationship"]["blocking"] is True


async def test_unknown_profile_and_bad_handle(client):
    assert (await client.get("/v1/users/nobody_here")).status_code == 404
    bad = await client.get("/v1/users/x!")
    assert bad.status_code in (404, 422)
    assert bad.headers["content-type"].startswith("application/problem+json")


async def test_invalid_token_is_refused_even_on_public_routes(client):
    r = await client.get("/v1/users/whoever", headers={"Authorization": "Bearer rf_forged"})
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_token"
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = await client.get("/v1/me", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
