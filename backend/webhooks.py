"""Verifying incoming webhooks (Standard Webhooks: ``webhook-id``, ``webhook-timestamp``,
``webhook-signature``) with the ``standardwebhooks`` package rather than our own HMAC code:
video providers' (Replicate) and shops' order webhooks. The timestamp must be within 5
minutes; replays (a ``webhook-id`` seen before) are refused by the caller, which remembers the
ids it took."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class WebhookRefused(Exception):
    """The webhook is not authentic, too old or unreadable; the message says which."""


def verify_standard_webhook(
    secret: str, headers: Mapping[str, str], body: bytes
) -> tuple[str, dict[str, Any]]:
    lowered = {k.lower(): v for k, v in headers.items()}
    webhook_id = lowered.get("webhook-id", "")
    try:
        payload = Webhook(secret).verify(body, lowered)
    except WebhookVerificationError as exc:
        raise WebhookRefused(str(exc) or "bad signature") from None
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused("the body is not JSON") from None
    if not isinstance(payload, dict) or not webhook_id:
        raise WebhookRefused("the body is not a JSON object")
    return webhook_id, payload
