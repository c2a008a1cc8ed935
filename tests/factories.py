"""Plain async factories with overrides: ``alice = await users.make("alice")``."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from backend.db import Conn

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


@dataclass
class User:
    id: int
    handle: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class UserFactory:
    """Creates accounts through the public API (sign-up, then log-in), as a client would."""

    def __init__(self, conn: Conn, client: AsyncTestClient[Litestar]) -> None:
        self.conn = conn
        self.client = client

    async def make(self, handle: str | None = None, *, role: str = "user", **fields: Any) -> User:
        handle = handle or f"user{next(_seq)}"
        body = {"handle": handle, "email": f"{handle}@example.com", "password": PASSWORD, **fields}
        created = await self.client.post("/v1/accounts", json=body)
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        if role != "user":
            await self.conn.execute("UPDATE users SET role = $2 WHERE id = $1", user_id, role)
        session = await self.client.post("/v1/sessions", json={"login": handle, "password": PASSWORD})
        assert session.status_code == 201, session.text
        return User(id=user_id, handle=handle.lower(), token=session.json()["token"])


async def make_draft(
    conn: Conn,
    author: User,
    *,
    prompt: str = "a red kite over the sea",
    parent_id: int | None = None,
    cameo_ids: list[int] | None = None,
) -> tuple[int, int]:
    """A finished take and its draft clip, as the generation worker leaves them (without running a
    model): the job, a succeeded take, its video and poster rows, and the draft written by the
    real ``clips.create_draft``. Returns (take_id, clip_id)."""
    from backend.clips.service import DraftInput, create_draft

    n = next(_seq)
    job_id = await conn.fetchval(
        "INSERT INTO generation_jobs (user_id, prompt, provider_prompt, model, seconds, width, height, "
        "takes_requested, remix_of, status, finished_at, cameo_ids) "
        "VALUES ($1, $2, $2, 'local', 2, 144, 256, 1, $3, 'succeeded', now(), $4) RETURNING id",
        author.id,
        prompt,
        parent_id,
        cameo_ids or [],
    )
    media = []
    for kind, content_type, ext in (("video", "video/mp4", "mp4"), ("poster", "image/jpeg", "jpg")):
        media.append(
            await conn.fetchval(
                "INSERT INTO media (owner_id, kind, storage_key, content_type, bytes, sha256, width, height) "
                "VALUES ($1, $2, $3, $4, 1000, $5, 144, 256) RETURNING id",
                author.id,
                kind,
                f"{kind}/2026/11/{n:032x}.{ext}",
                content_type,
                bytes(32),
            )
        )
    take_id = await conn.fetchval(
        "INSERT INTO takes (job_id, user_id, position, status, model, provider, reserved_seconds, "
        "video_media_id, poster_media_id, duration_ms, width, height, progress, finished_at) "
        "VALUES ($1, $2, 0, 'succeeded', 'local', 'local', 2, $3, $4, 2000, 144, 256, 100, now()) "
        "RETURNING id",
        job_id,
        author.id,
        media[0],
        media[1],
    )
    clip_id = await create_draft(
        conn,
        DraftInput(
            author_id=author.id,
            take_id=take_id,
            job_id=job_id,
            prompt=prompt,
            model="local",
            provider="local",
            cost_minor=0,
            currency="USD",
            video_media_id=media[0],
            poster_media_id=media[1],
            duration_ms=2000,
            width=144,
            height=256,
            cameo_ids=cameo_ids or [],
            product_id=None,
            parent_id=parent_id,
            provenance={"ai_generated": True, "model": "local", "prompt": prompt},
        ),
    )
    await conn.execute("UPDATE takes SET clip_id = $2 WHERE id = $1", take_id, clip_id)
    return take_id, clip_id


async def make_clip(
    conn: Conn,
    client: AsyncTestClient[Litestar],
    author: User,
    *,
    parent_id: int | None = None,
    cameo_ids: list[int] | None = None,
    **publish: Any,
) -> dict[str, Any]:
    """A published clip: a draft from :func:`make_draft`, published through the API."""
    take_id, _ = await make_draft(conn, author, parent_id=parent_id, cameo_ids=cameo_ids)
    r = await client.post("/v1/clips", json={"take_id": take_id, **publish}, headers=author.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())
