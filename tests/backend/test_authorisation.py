"""Every route that acts for a user refuses a caller without a valid token."""

from __future__ import annotations

import pytest

PROTECTED = [
    ("GET", "/v1/me"),
    ("PATCH", "/v1/me"),
    ("GET", "/v1/sessions"),
    ("DELETE", "/v1/sessions/current"),
    ("DELETE", "/v1/sessions/1"),
    ("PUT", "/v1/users/someone/follow"),
    ("DELETE", "/v1/users/someone/follow"),
    ("PUT", "/v1/users/someone/block"),
    ("DELETE", "/v1/users/someone/block"),
    ("PUT", "/v1/users/someone/mute"),
    ("DELETE", "/v1/users/someone/mute"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_protected_routes_need_a_valid_token(client, method, path):
    for headers in ({}, {"Authorization": "Bearer rf_not_a_real_token"}):
        r = await client.request(
            method, path, headers=headers, json={} if method in ("PATCH", "PUT") else None
        )
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_every_route_is_in_the_matrix_or_public(client):
    spec = (await client.get("/openapi.json")).json()
    public = {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("POST", "/v1/accounts"),
        ("POST", "/v1/sessions"),
        ("GET", "/v1/users/{handle}"),
        ("GET", "/v1/users/{handle}/followers"),
        ("GET", "/v1/users/{handle}/following"),
    }
    covered = {(m, p.replace("someone", "{handle}").replace("/1", "/{session_id}")) for m, p in PROTECTED}
    for path, operations in spec["paths"].items():
        for method in operations:
            key = (method.upper(), path)
            assert key in public or key in covered, f"{key} has no authorisation test"
