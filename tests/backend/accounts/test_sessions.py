"""Log-in, sessions, revocation and log-in limits."""

from __future__ import annotations

from backend.auth import hash_token
from tests.conftest import make_settings
from tests.factories import PASSWORD


async def test_log_in_by_handle_or_email_and_tokens_are_stored_hashed(client, users, conn):
    await users.make("alice")
    for login in ("alice", "ALICE", "alice@example.com"):
        r = await client.post("/v1/sessions", json={"login": login, "password": PASSWORD})
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        assert token.startswith("rf_")
        assert (
            await conn.fetchval("SELECT count(*) FROM sessions WHERE token_hash = $1", hash_token(token)) == 1
        )
        assert await conn.fetchval("SELECT count(*) FROM sessions WHERE token_hash = $1", token.encode()) == 0


async def test_wrong_password_and_unknown_account_look_the_same(client, users):
    await users.make("alice")
    wrong = await client.post("/v1/sessions", json={"login": "alice", "password": "not the password"})
    unknown = await client.post("/v1/sessions", json={"login": "nobody", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "invalid_credentials"
    missing = await client.post("/v1/sessions", json={"login": "alice"})
    assert missing.status_code == 422
    assert missing.json()["field"] == "password"


async def test_list_and_revoke_sessions_and_log_out(client, users):
    alice = await users.make("alice")
    second = (await client.post("/v1/sessions", json={"login": "alice", "password": PASSWORD})).json()
    listed = await client.get("/v1/sessions", headers=alice.headers)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert len(items) == 2
    assert [s["current"] for s in items].count(True) == 1
    # Revoke the other session: its token stops working at once.
    r = await client.delete(f"/v1/sessions/{second['session']['id']}", headers=alice.headers)
    assert r.status_code == 204
    other = {"Authorization": f"Bearer {second['token']}"}
    assert (await client.get("/v1/me", headers=other)).status_code == 401
    # Log out of the current one.
    assert (await client.delete("/v1/sessions/current", headers=alice.headers)).status_code == 204
    assert (await client.get("/v1/me", headers=alice.headers)).status_code == 401


async def test_another_users_session_is_a_404(client, users):
    alice = await users.make("alice")
    bob = await users.make("bob")
    bobs = (await client.get("/v1/sessions", headers=bob.headers)).json()["items"][0]["id"]
    r = await client.delete(f"/v1/sessions/{bobs}", headers=alice.headers)
    assert r.status_code == 404
    assert (await client.get("/v1/me", headers=bob.headers)).status_code == 200
    assert (await client.delete("/v1/sessions/current")).status_code == 401
    assert (await client.get("/v1/sessions")).status_code == 401


async def test_session_list_pages_with_cursor_and_refuses_forged_ones(client, users):
    alice = await users.make("alice")
    for _ in range(4):
        await client.post("/v1/sessions", json={"login": "alice", "password": PASSWORD})
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/sessions", headers=alice.headers, params=params)).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 5
    forged = await client.get("/v1/sessions", headers=alice.headers, params={"cursor": "WzEwMF0"})
    assert forged.status_code == 400
    assert forged.json()["code"] == "invalid_cursor"
    too_many = await client.get("/v1/sessions", headers=alice.headers, params={"limit": 1000})
    assert too_many.status_code == 422


async def test_log_in_is_limited_per_account(database_url, redis_url, tmp_path):
    from litestar.testing import AsyncTestClient

    from backend.app import create_app

    settings = make_settings(database_url, redis_url, tmp_path, login_limit_per_account=3)
    async with AsyncTestClient(app=create_app(settings)) as client:
        await client.post("/v1/accounts", json={"handle": "alice", "email": "a@x.io", "password": PASSWORD})
        codes = []
        for _ in range(4):
            r = await client.post("/v1/sessions", json={"login": "alice", "password": "wrong password!"})
            codes.append(r.status_code)
        assert codes == [401, 401, 401, 429]
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["ratelimit-remaining"] == "0"
        assert r.json()["code"] == "rate_limited"
        # Even the right password is refused while limited: the limit is what stops guessing.
        right = await client.post("/v1/sessions", json={"login": "alice", "password": PASSWORD})
        assert right.status_code == 429


async def test_log_in_is_limited_per_address(database_url, redis_url, tmp_path):
    from litestar.testing import AsyncTestClient

    from backend.app import create_app

    settings = make_settings(database_url, redis_url, tmp_path, login_limit_per_ip=2)
    async with AsyncTestClient(app=create_app(settings)) as client:
        r1 = await client.post("/v1/sessions", json={"login": "a1", "password": "whatever12"})
        assert r1.headers["ratelimit-limit"] in ("2", "10")
        await client.post("/v1/sessions", json={"login": "a2", "password": "whatever12"})
        r3 = await client.post("/v1/sessions", json={"login": "a3", "password": "whatever12"})
        assert r3.status_code == 429
