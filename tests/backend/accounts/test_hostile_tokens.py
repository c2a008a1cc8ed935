"""Tokens that must not work: expired, revoked, forged, tampered, or for a suspended account.
Each is a 401 problem on every signed-in route, and a public route given one refuses it too
(rather than quietly treating the caller as anonymous)."""

from __future__ import annotations

import pytest


async def _refused(client, token: str) -> None:
    for path in ("/v1/me", "/v1/feed/following", "/v1/clips/1"):
        r = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_an_expired_session_is_refused(client, users, conn):
    alice = await users.make("alice")
    await conn.execute(
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1", alice.id
    )
    await _refused(client, alice.token)


async def test_a_revoked_session_is_refused_at_once(client, users):
    alice = await users.make("alice")
    sessions = (await client.get("/v1/sessions", headers=alice.headers)).json()["items"]
    assert (
        await client.delete(f"/v1/sessions/{sessions[0]['id']}", headers=alice.headers)
    ).status_code == 204
    await _refused(client, alice.token)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # one character changed
        lambda t: t + "x",  # extended
        lambda t: t[:10],  # cut short
        lambda t: "rf_" + "0" * 43,  # well-formed, made up
        lambda t: t.upper(),
        lambda t: "",
    ],
)
async def test_forged_or_tampered_tokens_are_refused(client, users, tamper):
    alice = await users.make("alice")
    forged = tamper(alice.token)
    r = await client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401, r.text
    assert (await client.get("/v1/me", headers=alice.headers)).status_code == 200  # hers still works


async def test_a_suspended_accounts_sessions_stop_working(client, users, conn):
    alice = await users.make("alice")
    await conn.execute("UPDATE users SET status = 'suspended' WHERE id = $1", alice.id)
    await _refused(client, alice.token)
