"""A generation through the Replicate adapter, end to end: API, worker, fake gateway, storage."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from tests.backend.generation.providers.fakes import FakeServer, Script, replicate_app
from tests.backend.generation.test_generations import key, wait_for
from tests.conftest import make_settings
from tests.factories import UserFactory

BODY = {"prompt": "a lighthouse in a storm", "model": "kling", "seconds": 5, "size": "720x1280", "takes": 1}


@pytest.fixture
def gateway():
    script = Script(polls_before_done=1)
    server = FakeServer(replicate_app(script)).start()
    yield server, script
    server.stop()


@pytest.mark.parametrize("scenario", ["ok", "policy"])
async def test_a_gateway_take_is_stored_priced_or_refused_free(
    database_url, redis_url, tmp_path, conn, gateway, scenario
):
    server, script = gateway
    script.scenario = scenario
    settings = make_settings(
        database_url,
        redis_url,
        tmp_path,
        run_worker=True,
        replicate_api_token="r8_test",
        replicate_base_url=server.url,
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        models = {m["id"] for m in (await client.get("/v1/models")).json()}
        assert {"kling", "seedance", "local"} <= models
        alice = await UserFactory(conn, client).make("alice")
        r = await client.post("/v1/generations", json=BODY, headers=alice.headers | key())
        assert r.status_code == 202, r.text
        done = await wait_for(client, r.json()["id"], alice.headers, within_s=60)
        take = done["takes"][0]
        usage = (await client.get("/v1/generations/usage", headers=alice.headers)).json()
    sent = script.requests[0]
    assert sent[1] == "kwaivgi/kling-v2.1"
    sent_input = dict(sent[2]["input"])
    assert isinstance(sent_input.pop("seed"), int)  # each take has its own seed, so takes differ
    assert sent_input == {
        "prompt": BODY["prompt"],
        "duration": 5,
        "aspect_ratio": "9:16",
        "mode": "standard",
    }
    assert sent[2]["_auth"] == "Bearer r8_test"
    if scenario == "ok":
        assert (done["status"], take["provider"], take["cost_minor"]) == ("succeeded", "replicate", 5 * 28)
        assert await conn.fetchval("SELECT provider FROM clips WHERE id = $1", take["clip_id"]) == "replicate"
        assert usage["reserved_seconds"] == 5
    else:
        assert (done["status"], take["error"]["code"], take["cost_minor"]) == ("failed", "policy_refusal", 0)
        assert take["attempts"] == 0  # a refusal is never retried
        assert usage["reserved_seconds"] == 0
        assert len(script.requests) == 1


async def test_a_failing_model_falls_back_to_the_next(database_url, redis_url, tmp_path, conn, gateway):
    server, script = gateway
    script.failing_models = {"kwaivgi/kling-v2.1"}
    settings = make_settings(
        database_url,
        redis_url,
        tmp_path,
        run_worker=True,
        replicate_api_token="r8_test",
        replicate_base_url=server.url,
        take_max_attempts=2,
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        alice = await UserFactory(conn, client).make("alice")
        r = await client.post("/v1/generations", json=BODY, headers=alice.headers | key())
        done = await wait_for(client, r.json()["id"], alice.headers, within_s=60)
    take = done["takes"][0]
    assert done["status"] == "succeeded"
    assert (take["model"], take["fallback_from"], take["provider"]) == ("seedance", "kling", "replicate")
    assert take["cost_minor"] == 5 * 15  # priced as the model that made it
    assert [model for _, model, _ in script.requests] == ["kwaivgi/kling-v2.1"] * 2 + [
        "bytedance/seedance-1-pro"
    ]
