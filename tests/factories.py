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
