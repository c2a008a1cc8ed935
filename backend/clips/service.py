"""Clips: drafts, publishing, remix lineage, engagement.

Generation calls :func:`create_draft` once per succeeded take; everything else here serves the
clips API.
"""

from __future__ import annotations

from typing import Any

import msgspec

from backend.db import Conn


class DraftInput(msgspec.Struct, kw_only=True):
    """A finished take, as generation hands it over."""

    author_id: int
    take_id: int
    job_id: int
    prompt: str
    model: str
    provider: str
    cost_minor: int
    currency: str
    video_media_id: int
    poster_media_id: int
    duration_ms: int
    width: int
    height: int
    cameo_ids: list[int]
    product_id: int | None
    parent_id: int | None
    provenance: dict[str, Any]


async def create_draft(conn: Conn, draft: DraftInput) -> int:
    """Write the draft clip of a take; idempotent per take (a redelivered job gets the same id).

    A remix records its parent, the root of the chain and its depth, read from the parent so a
    chain is a tree that can be walked from any node.
    """
    root_id, depth = None, 0
    if draft.parent_id is not None:
        parent = await conn.fetchrow("SELECT id, root_id, depth FROM clips WHERE id = $1", draft.parent_id)
        if parent is not None:
            root_id = parent["root_id"] or parent["id"]
            depth = parent["depth"] + 1
    clip_id = await conn.fetchval(
        """
        INSERT INTO clips (
            author_id, take_id, job_id, prompt, model, provider, cost_minor, currency,
            video_media_id, poster_media_id, duration_ms, width, height, cameo_ids, product_id,
            parent_id, root_id, depth, provenance
        ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
        ON CONFLICT (take_id) DO NOTHING
        RETURNING id
        """,
        draft.author_id,
        draft.take_id,
        draft.job_id,
        draft.prompt,
        draft.model,
        draft.provider,
        draft.cost_minor,
        draft.currency,
        draft.video_media_id,
        draft.poster_media_id,
        draft.duration_ms,
        draft.width,
        draft.height,
        draft.cameo_ids,
        draft.product_id,
        draft.parent_id if root_id is not None else None,
        root_id,
        depth,
        draft.provenance,
    )
    if clip_id is None:
        clip_id = await conn.fetchval("SELECT id FROM clips WHERE take_id = $1", draft.take_id)
    return int(clip_id)
