"""Cameo consent, as generation sees it: :func:`authorize` is the one question it asks.

Until the cameo issue lands there is no cameo to consent to, so any cameo id is refused as
unknown; nothing is let through by default.
"""

from __future__ import annotations

from backend.db import Conn
from backend.errors import ValidationFailed


async def authorize(conn: Conn, *, user_id: int, cameo_ids: list[int], prompt: str) -> str:
    """Check that ``user_id`` may put every cameo in ``cameo_ids`` into a clip made from ``prompt``.

    Returns the text to add to the provider prompt (the owners' rules); raises when any cameo
    is unknown, unverified or not consented to.
    """
    if cameo_ids:
        raise ValidationFailed(f"unknown cameo {cameo_ids[0]}", code="unknown_cameo", field="cameo_ids")
    return ""
