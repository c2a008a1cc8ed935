"""Fixtures of the feed tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backend import db


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[db.Pool]:
    """A pool of its own, for work that runs side by side (consumers, concurrent batches)."""
    p = await db.create_pool(database_url, min_size=1, max_size=4)
    yield p
    await p.close()
