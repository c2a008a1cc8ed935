"""argon2id password hashing, run off the event loop (a hash takes tens of milliseconds)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> tuple[bool, str | None]:
        """Check ``password``; return (ok, new hash if the parameters changed since it was stored).

        With no stored hash (unknown account) a dummy hash is checked anyway so that a missing
        account costs the same time as a wrong password.
        """
        if stored is None:
            if self._dummy is None:
                self._dummy = await self.hash("not-a-real-password")
            stored = self._dummy
            await asyncio.to_thread(self._check, stored, password)
            return False, None
        ok = await asyncio.to_thread(self._check, stored, password)
        if ok and self._hasher.check_needs_rehash(stored):
            return True, await self.hash(password)
        return ok, None

    def _check(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
