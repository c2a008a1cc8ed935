"""The external verification service adapter, against a local server speaking its shape."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, Request, Response, post
from litestar.testing import AsyncTestClient

from backend.app import create_app
from tests.backend.generation.providers.fakes import FakeServer
from tests.backend.media.test_media_api import mp4, upload
from tests.conftest import make_settings
from tests.factories import UserFactory


@pytest.fixture
def service():
    seen: list[dict[str, Any]] = []
    answer: dict[str, Any] = {"status": 200, "body": {"status": "passed", "reason": "live, phrase heard"}}

    @post("/v1/liveness-checks", status_code=200)
    async def check(request: Request[Any, Any, Any]) -> Response[Any]:
        seen.append(await request.json() | {"_auth": request.headers.get("authorization")})
        return Response(answer["body"], status_code=answer["status"])

    server = FakeServer(Litestar([check])).start()
    yield server, seen, answer
    server.stop()


async def _verify(client, conn, alice):
    made = (
        await client.post("/v1/cameos", json={"kind": "person", "display_name": "me"}, headers=alice.headers)
    ).json()
    challenge = (await client.post(f"/v1/cameos/{made['id']}/challenge", headers=alice.headers)).json()
    video = (await upload(client, alice.headers, mp4(3), "video/mp4")).json()
    body = {"challenge_id": challenge["id"], "upload_id": video["id"]}
    return (
        made,
        challenge,
        await client.post(f"/v1/cameos/{made['id']}/verification", json=body, headers=alice.headers),
    )


async def test_the_service_verifies_at_once_and_gets_the_phrase_and_a_signed_video_url(
    database_url, redis_url, tmp_path, conn, service
):
    server, seen, _ = service
    settings = make_settings(
        database_url,
        redis_url,
        tmp_path,
        cameo_verifier="http",
        cameo_verifier_url=server.url,
        cameo_verifier_api_key="vk",
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        alice = await UserFactory(conn, client).make("alice")
        made, challenge, r = await _verify(client, conn, alice)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "verified"
        sent = seen[0]
        assert (sent["phrase"], sent["reference"], sent["_auth"]) == (
            challenge["phrase"],
            f"cameo-{made['id']}",
            "Bearer vk",
        )
        assert "sig=" in sent["video_url"]
        assert (await client.get(sent["video_url"].replace(settings.base_url, ""))).status_code == 200


async def test_a_failing_service_decides_nothing_and_keeps_the_challenge(
    database_url, redis_url, tmp_path, conn, service
):
    server, _, answer = service
    answer["status"] = 503
    settings = make_settings(
        database_url, redis_url, tmp_path, cameo_verifier="http", cameo_verifier_url=server.url
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        alice = await UserFactory(conn, client).make("alice")
        made, _, r = await _verify(client, conn, alice)
        assert r.status_code == 503, r.text
    assert await conn.fetchval("SELECT status FROM cameos WHERE id = $1", made["id"]) == "pending"
    assert await conn.fetchval("SELECT used_at FROM cameo_challenges") is None


async def test_a_rejection_is_recorded(database_url, redis_url, tmp_path, conn, service):
    server, _, answer = service
    answer["body"] = {"status": "failed", "reason": "the face does not match"}
    settings = make_settings(
        database_url, redis_url, tmp_path, cameo_verifier="http", cameo_verifier_url=server.url
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        alice = await UserFactory(conn, client).make("alice")
        _, _, r = await _verify(client, conn, alice)
        assert r.json()["status"] == "rejected"
