"""Every route that acts for a user refuses a caller without a valid token.

Routes are written as in the OpenAPI document; the test fills ``{handle}`` and ``{…_id}``.
Public routes are listed with the reason they need no token.
"""

from __future__ import annotations

import re

import pytest

PROTECTED = [
    ("GET", "/v1/me"),
    ("PATCH", "/v1/me"),
    ("GET", "/v1/sessions"),
    ("DELETE", "/v1/sessions/current"),
    ("DELETE", "/v1/sessions/{session_id}"),
    ("PUT", "/v1/users/{handle}/follow"),
    ("DELETE", "/v1/users/{handle}/follow"),
    ("PUT", "/v1/users/{handle}/block"),
    ("DELETE", "/v1/users/{handle}/block"),
    ("PUT", "/v1/users/{handle}/mute"),
    ("DELETE", "/v1/users/{handle}/mute"),
    ("POST", "/v1/uploads"),
    ("GET", "/v1/uploads/{upload_id}"),
    ("DELETE", "/v1/uploads/{upload_id}"),
    ("POST", "/v1/generations"),
    ("GET", "/v1/generations"),
    ("GET", "/v1/generations/usage"),
    ("GET", "/v1/generations/{generation_id}"),
    ("DELETE", "/v1/generations/{generation_id}"),
    ("GET", "/v1/drafts"),
    ("POST", "/v1/clips"),
    ("PATCH", "/v1/clips/{clip_id}"),
    ("DELETE", "/v1/clips/{clip_id}"),
    ("PUT", "/v1/clips/{clip_id}/like"),
    ("DELETE", "/v1/clips/{clip_id}/like"),
    ("POST", "/v1/clips/{clip_id}/comments"),
    ("POST", "/v1/clips/{clip_id}/shares"),
    ("DELETE", "/v1/comments/{comment_id}"),
    ("POST", "/v1/comments/{comment_id}/hide"),
    ("POST", "/v1/comments/{comment_id}/unhide"),
    ("GET", "/v1/me/likes"),
    ("GET", "/v1/notifications"),
    ("POST", "/v1/notifications/read"),
    ("GET", "/v1/notifications/unread-count"),
    ("GET", "/v1/notifications/settings"),
    ("PUT", "/v1/notifications/settings"),
    ("POST", "/v1/events"),
    ("GET", "/v1/feed/following"),
    ("GET", "/v1/feed/preferences"),
    ("PUT", "/v1/feed/preferences"),
    ("DELETE", "/v1/feed/preferences"),
    ("POST", "/v1/clips/{clip_id}/not-interested"),
    ("DELETE", "/v1/clips/{clip_id}/not-interested"),
    ("POST", "/v1/users/{handle}/hide"),
    ("DELETE", "/v1/users/{handle}/hide"),
    ("POST", "/v1/cameos"),
    ("GET", "/v1/cameos"),
    ("GET", "/v1/cameos/review-queue"),
    ("PATCH", "/v1/cameos/{cameo_id}"),
    ("DELETE", "/v1/cameos/{cameo_id}"),
    ("POST", "/v1/cameos/{cameo_id}/challenge"),
    ("POST", "/v1/cameos/{cameo_id}/verification"),
    ("POST", "/v1/cameos/{cameo_id}/review"),
    ("POST", "/v1/cameos/{cameo_id}/requests"),
    ("GET", "/v1/cameos/{cameo_id}/grants"),
    ("POST", "/v1/cameos/{cameo_id}/requests/{handle}/approve"),
    ("POST", "/v1/cameos/{cameo_id}/requests/{handle}/deny"),
    ("PUT", "/v1/cameos/{cameo_id}/grants/{handle}"),
    ("DELETE", "/v1/cameos/{cameo_id}/grants/{handle}"),
    ("GET", "/v1/cameos/{cameo_id}/appearances"),
    ("DELETE", "/v1/cameos/{cameo_id}/appearances/{clip_id}"),
    ("PUT", "/v1/cameos/{cameo_id}/licence"),
    ("DELETE", "/v1/cameos/{cameo_id}/licence"),
    ("GET", "/v1/cameos/{cameo_id}/earnings"),
    ("POST", "/v1/products/{product_id}/studio"),
    ("GET", "/v1/studio/{run_id}"),
    ("POST", "/v1/breakdowns"),
    ("GET", "/v1/breakdowns/{breakdown_id}"),
    ("POST", "/v1/breakdowns/{breakdown_id}/replicate"),
    ("POST", "/v1/shops"),
    ("GET", "/v1/shops"),
    ("GET", "/v1/shops/{shop_id}"),
    ("PATCH", "/v1/shops/{shop_id}"),
    ("DELETE", "/v1/shops/{shop_id}"),
    ("GET", "/v1/shops/{shop_id}/webhook-secret"),
    ("POST", "/v1/shops/{shop_id}/webhook-secret:rotate"),
    ("POST", "/v1/shops/{shop_id}/products"),
    ("GET", "/v1/shops/{shop_id}/products"),
    ("POST", "/v1/shops/{shop_id}/products:import"),
    ("GET", "/v1/products/{product_id}"),
    ("PATCH", "/v1/products/{product_id}"),
    ("DELETE", "/v1/products/{product_id}"),
    ("POST", "/v1/clips/{clip_id}/product-tags"),
    ("DELETE", "/v1/clips/{clip_id}/product-tags/{tag_id}"),
    ("POST", "/v1/clips/{clip_id}/product-tags/{tag_id}/tap"),
    ("GET", "/v1/me/earnings"),
    ("GET", "/v1/shops/{shop_id}/analytics"),
    ("POST", "/v1/campaigns"),
    ("GET", "/v1/campaigns"),
    ("GET", "/v1/campaigns/{campaign_id}"),
    ("POST", "/v1/campaigns/{campaign_id}/pause"),
    ("POST", "/v1/campaigns/{campaign_id}/resume"),
    ("POST", "/v1/campaigns/{campaign_id}/end"),
    ("POST", "/v1/reports"),
    ("GET", "/v1/reports"),
    ("GET", "/v1/moderation/queue"),
    ("GET", "/v1/moderation/cases/{case_id}"),
    ("POST", "/v1/moderation/cases/{case_id}/claim"),
    ("POST", "/v1/moderation/cases/{case_id}/decide"),
    ("GET", "/v1/moderation/audit"),
]

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/v1/accounts"),  # signing up
    ("POST", "/v1/sessions"),  # signing in
    ("GET", "/v1/users/{handle}"),  # public profiles
    ("GET", "/v1/users/{handle}/followers"),
    ("GET", "/v1/users/{handle}/following"),
    ("GET", "/v1/models"),  # what the server offers
    ("GET", "/v1/media/{media_id}"),  # the URL's signature is the authorisation
    ("HEAD", "/v1/media/{media_id}"),
    ("POST", "/v1/generation/webhooks/replicate"),  # Standard Webhooks signature
    # Public clips can be read signed out; a token, when sent, must be valid (tested below).
    ("GET", "/v1/clips/{clip_id}"),
    ("GET", "/v1/clips/{clip_id}/remixes"),
    ("GET", "/v1/clips/{clip_id}/lineage"),
    ("GET", "/v1/clips/{clip_id}/tree"),
    ("GET", "/v1/clips/{clip_id}/comments"),
    ("GET", "/v1/comments/{comment_id}/replies"),
    ("GET", "/v1/users/{handle}/clips"),
    ("GET", "/c/{clip_id}"),  # the share page
    ("GET", "/v1/feed/for-you"),  # signed out: trending and new
    ("GET", "/v1/cameos/{cameo_id}"),  # a verified cameo, so people can ask to use it
    ("POST", "/v1/commerce/webhooks/{shop_id}"),  # the shop's Standard Webhooks signature
    ("GET", "/r/{token}"),  # a tracked product link: its signature is the authorisation
    ("GET", "/v1/clips/{clip_id}/provenance"),  # like the clip itself
    ("GET", "/v1/provenance/key"),  # the public key that verifies manifests
    # A suspended account has no session: the appeal token its sign-in got stands in for one
    # (without either, 401: tests/moderation/test_moderation.py).
    ("POST", "/v1/appeals"),
}


def concrete(template: str) -> str:
    return re.sub(r"\{[a-z_]*_id\}", "1", template.replace("{handle}", "someone"))


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_protected_routes_need_a_valid_token(client, method, path):
    for headers in ({}, {"Authorization": "Bearer rf_not_a_real_token"}):
        r = await client.request(
            method, concrete(path), headers=headers, json={} if method in ("PATCH", "PUT", "POST") else None
        )
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_every_route_is_in_the_matrix_or_public(client):
    spec = (await client.get("/openapi.json")).json()
    covered = set(PROTECTED)
    for path, operations in spec["paths"].items():
        for method in operations:
            key = (method.upper(), path)
            assert key in PUBLIC or key in covered, f"{key} has no authorisation test"


# Media URLs and the share page never look at the Authorization header.
OPTIONAL_VIEWER = [
    concrete(p)
    for m, p in sorted(PUBLIC)
    if m == "GET" and p.startswith("/v1/") and "{" in p and "/media/" not in p
]


@pytest.mark.parametrize("path", OPTIONAL_VIEWER)
async def test_public_reads_refuse_a_bad_token(client, path):
    r = await client.get(path, headers={"Authorization": "Bearer rf_not_a_real_token"})
    assert r.status_code == 401, (path, r.text)
