"""Every failure is problem+json with a request id; never a 500 for bad input."""

from __future__ import annotations

import gc

from backend.app import YOUNG_COLLECTION_THRESHOLD
from tests.factories import PASSWORD


async def test_unknown_route_and_wrong_method_are_problems(client):
    r = await client.get("/v1/no-such-thing")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "not_found"
    assert r.json()["request_id"] == r.headers["x-request-id"]
    r = await client.delete("/healthz")
    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"
    assert "GET" in r.headers["allow"]


async def test_malformed_json_wrong_types_and_unknown_fields(client):
    r = await client.post(
        "/v1/accounts", content=b'{"handle": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "malformed_json"
    r = await client.post("/v1/accounts", json={"handle": 12, "email": "a@x.io", "password": PASSWORD})
    assert r.status_code == 422
    assert r.json()["field"] == "handle"
    assert "str" in r.json()["detail"]
    r = await client.post("/v1/accounts", json=["not", "an", "object"])
    assert r.status_code == 422
    r = await client.post(
        "/v1/accounts", json={"handle": "okname", "email": "a@x.io", "password": PASSWORD, "is_admin": True}
    )
    assert r.status_code == 422
    assert r.json()["field"] == "is_admin"


async def test_body_over_the_limit_is_413(client):
    huge = b'{"handle": "' + b"a" * 2_000_000 + b'"}'
    r = await client.post("/v1/accounts", content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "body_too_large"


async def test_request_id_is_echoed_or_made(client):
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces"
    assert len(r.headers["x-request-id"]) == 32


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok", "checks": {}}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}


async def test_readiness_fails_when_redis_is_gone(database_url, tmp_path):
    from litestar.testing import AsyncTestClient

    from backend.app import create_app
    from backend.embedded import free_port
    from tests.conftest import make_settings

    settings = make_settings(database_url, f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        r = await client.get("/readyz")
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["checks"]["postgres"] == "ok"
        assert r.json()["checks"]["redis"].startswith("error")


async def test_openapi_documents_routes_and_errors(client):
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert "/v1/accounts" in spec["paths"]
    post = spec["paths"]["/v1/accounts"]["post"]
    assert "requestBody" in post
    assert "409" in post["responses"]
    assert "application/problem+json" in post["responses"]["409"]["content"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]


async def test_an_id_past_bigint_is_a_422_not_a_crash(client, users):
    alice = await users.make("alice")
    huge = 2**70
    r = await client.delete(f"/v1/clips/{huge}/not-interested", headers=alice.headers)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "out_of_range"
    assert (await client.get(f"/v1/clips/{huge}", headers=alice.headers)).status_code == 422


async def test_a_nul_character_is_a_422_and_changes_nothing(client, users, conn):
    alice = await users.make("alice")
    before = await conn.fetchval("SELECT bio FROM users WHERE id = $1", alice.id)
    r = await client.patch("/v1/me", json={"bio": "hello\u0000world"}, headers=alice.headers)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "bad_character"
    assert await conn.fetchval("SELECT bio FROM users WHERE id = $1", alice.id) == before


async def test_a_started_app_collects_garbage_for_cycles_not_every_few_hundred_objects(client):
    """Young collections every 700 objects promoted what requests in flight held and brought
    full collections of 15-47 ms every second or two under load (backend/app.py)."""
    assert (await client.get("/healthz")).status_code == 200
    assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text, 0 when absent."""
    want = {f'{k}="{v}"' for k, v in labels.items()}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            series, value = line.rsplit(" ", 1)
            if want <= set(series[len(name) + 1 : -1].split(",")):
                return float(value)
    return 0.0


async def test_requests_are_counted_and_timed_by_route_template_and_status(client, users):
    alice = await users.make("alice")
    before = (await client.get("/metrics")).text
    for clip_id in (991, 992, 993):  # three ids, one route template
        assert (await client.get(f"/v1/clips/{clip_id}", headers=alice.headers)).status_code == 404
    assert (await client.get("/v1/me", headers=alice.headers)).status_code == 200
    assert (await client.get("/healthz")).status_code == 200
    after = (await client.get("/metrics")).text
    clip = {"method": "GET", "path": "/v1/clips/{clip_id}", "status_code": "404", "app_name": "riffle"}
    me = {"method": "GET", "path": "/v1/me", "status_code": "200"}
    for name, labels, added in (
        ("riffle_requests_total", clip, 3),
        ("riffle_request_duration_seconds_count", clip, 3),
        ("riffle_requests_total", me, 1),
    ):
        assert _metric(after, name, **labels) - _metric(before, name, **labels) == added, name
    assert _metric(after, "riffle_requests_in_progress", path="/v1/me") == 0
    assert 'path="/healthz"' not in after
    assert "/v1/clips/991" not in after
