"""Replicate's Standard Webhooks: verification, and the route that wakes a take up."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook

from backend.app import create_app
from backend.webhooks import WebhookRefused, verify_standard_webhook
from tests.conftest import make_settings
from tests.factories import UserFactory

SECRET = "whsec_" + base64.b64encode(b"riffle-test-webhook-secret-32byt").decode()
BODY = json.dumps({"id": "p1", "status": "succeeded", "output": "https://cdn.example/v.mp4"}).encode()


def signed(body: bytes = BODY, *, at: datetime | None = None, msg_id: str | None = None) -> dict[str, str]:
    at = at or datetime.now(UTC)
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(msg_id, at, body.decode()),
    }


def test_a_correctly_signed_webhook_is_accepted():
    headers = signed()
    webhook_id, payload = verify_standard_webhook(SECRET, {k.title(): v for k, v in headers.items()}, BODY)
    assert webhook_id == headers["webhook-id"]
    assert payload["id"] == "p1"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h | {"webhook-signature": "v1,AAAA"}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b),
        lambda h, b: (h, b.replace(b"p1", b"p2")),
        lambda h, b: (signed(at=datetime.now(UTC) - timedelta(minutes=6)), b),
        lambda h, b: (signed(b"not json"), b"not json"),
    ],
    ids=["bad-signature", "missing-header", "altered-body", "stale", "not-json"],
)
def test_forged_stale_or_unreadable_webhooks_are_refused(tamper):
    headers, body = tamper(signed(), BODY)
    with pytest.raises(WebhookRefused):
        verify_standard_webhook(SECRET, headers, body)


async def test_the_webhook_route_wakes_the_take_once(database_url, redis_url, tmp_path, conn):
    settings = make_settings(database_url, redis_url, tmp_path, replicate_webhook_secret=SECRET)
    async with AsyncTestClient(app=create_app(settings)) as client:
        alice = await UserFactory(conn, client).make("alice")
        job = await conn.fetchval(
            "INSERT INTO generation_jobs (user_id, prompt, provider_prompt, model, seconds, width, height, "
            "takes_requested) VALUES ($1, 'p', 'p', 'kling', 5, 720, 1280, 1) RETURNING id",
            alice.id,
        )
        await conn.execute(
            "INSERT INTO takes (job_id, user_id, position, status, model, provider, provider_job_id, "
            "reserved_seconds) VALUES ($1, $2, 0, 'in_progress', 'kling', 'replicate', 'p1', 5)",
            job,
            alice.id,
        )
        url = "/v1/generation/webhooks/replicate"
        headers = signed()
        r = await client.post(url, content=BODY, headers=headers | {"content-type": "application/json"})
        assert r.status_code == 204, r.text
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE task = 'run_take'") == 1
        replay = await client.post(url, content=BODY, headers=headers | {"content-type": "application/json"})
        assert (replay.status_code, replay.json()["code"]) == (400, "webhook_replayed")
        forged = await client.post(url, content=BODY, headers=signed() | {"webhook-signature": "v1,AAAA"})
        assert (forged.status_code, forged.json()["code"]) == (400, "bad_webhook")
        unknown = json.dumps({"id": "nope", "status": "succeeded"}).encode()
        assert (await client.post(url, content=unknown, headers=signed(unknown))).status_code == 204
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE task = 'run_take'") == 1


async def test_without_a_secret_webhooks_are_refused(client):
    r = await client.post("/v1/generation/webhooks/replicate", content=BODY, headers=signed())
    assert (r.status_code, r.json()["code"]) == (400, "webhooks_disabled")
