"""Taste cohorts: viewers grouped by taste, each cohort's ranking shared as a ready feed by its
viewers who have none of their own, less what each of them must not get; a viewer whose feed
changed since is ranked on the spot; the worker builds them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import msgspec
import numpy as np
import pytest

from backend.redis_mux import Multiplexed
from backend.runtime import runtime
from feed import cohorts, ready, service, tasks
from tests.feed.test_feed import COOKING, PRANKS, publish_all
from tests.feed.test_later_pages import _first_page, _rest
from tests.feed.test_ready import _ids


def _opened() -> tuple[float, float, float]:
    """Sessions opened so far in this process: (from a ready feed, from a cohort's, ranked)."""
    return (
        service._SESSIONS_READY._value.get(),
        service._SESSIONS_COHORT._value.get(),
        service._SESSIONS_RANKED._value.get(),
    )


async def _steer(client, user, text: str) -> None:
    r = await client.put("/v1/feed/preferences", json={"text": text}, headers=user.headers)
    assert r.status_code == 200, r.text


async def _build(pool, redis, settings, k: int = 2) -> cohorts.Built:
    return await cohorts.build(
        pool,
        redis,
        msgspec.structs.replace(settings, feed_cohorts=k),
        taste=service.taste_of,
        rank=service.rank_taste,
    )


async def _cohort_of(redis, settings, user) -> int | None:
    found = await redis.hget(cohorts.members_key(settings), str(user.id))
    return int(found) if found is not None else None


async def _cohort_list(redis, settings, cohort: int, teen: bool = False) -> list[int]:
    raw = await redis.lrange(cohorts.cohort_key(settings, cohort, teen), 1, -1)
    return [msgspec.msgpack.decode(r)[0] for r in raw]


@contextlib.asynccontextmanager
async def _mux(settings) -> AsyncIterator[Multiplexed]:
    mux = Multiplexed(settings.redis_url)
    try:
        yield mux
    finally:
        await mux.aclose()


def test_centroids_find_the_groups_tastes_fall_into():
    rng = np.random.default_rng(7)
    axes = np.eye(8, dtype=np.float32)
    points = np.concatenate([axes[i] + 0.05 * rng.standard_normal((50, 8)) for i in (0, 3, 5)])
    units = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    centroids = cohorts.centroids_of(units, 3, np.random.default_rng(1))
    assert sorted(int(np.argmax(c)) for c in centroids) == [0, 3, 5]
    assert len(cohorts.centroids_of(units[:2], 3, np.random.default_rng(1))) == 2  # never more than points


async def test_a_viewer_without_a_ready_feed_opens_from_their_cohort_less_what_they_must_not_get(
    app, client, users, conn, pool, redis, settings, watch
):
    chef, baker, joker = [await users.make(h) for h in ("chef", "baker", "joker")]
    viewer, like_minded, other = [await users.make(h) for h in ("viewer", "alike", "other")]
    cooking = await publish_all(conn, client, chef, COOKING[:3])
    blocked = await publish_all(conn, client, baker, COOKING[3:])
    await publish_all(conn, client, joker, PRANKS)
    mine = await publish_all(conn, client, viewer, ["my own pasta dinner #cooking"])
    for user, text in ((viewer, "more cooking"), (like_minded, "more cooking"), (other, "more pranks")):
        await _steer(client, user, text)
    assert (await client.put(f"/v1/clips/{cooking[0]}/like", headers=viewer.headers)).status_code == 200
    assert (await client.put("/v1/users/baker/block", headers=viewer.headers)).status_code in (200, 204)
    await asyncio.sleep(ready.VOID_GRACE_S + 0.05)  # the block's void stamp is older than the lists

    built = await _build(pool, redis, settings)
    assert (built.viewers, built.cohorts) == (3, 2)
    cohort = await _cohort_of(redis, settings, viewer)
    assert cohort is not None
    assert cohort == await _cohort_of(redis, settings, like_minded)
    assert await _cohort_of(redis, settings, other) not in (None, cohort)
    shared = await _cohort_list(redis, settings, cohort)
    # Ranked for no viewer: everything the cohort's taste finds, the viewer's clips included.
    assert {*cooking, *blocked, *mine} <= set(shared)
    assert await _cohort_list(redis, settings, cohort, teen=True) == []  # no teen in it

    before = _opened()
    page = await _first_page(client, viewer, limit=2)
    assert _opened() == (before[0], before[1] + 1, before[2])  # from the cohort's, nothing ranked
    shown = _ids(page) + await _rest(client, viewer, page["next_cursor"], limit=2)
    assert shown == [i for i in shared if i not in {cooking[0], *blocked, *mine}]
    assert all(item["clip"]["viewer"] == {"liked": False, "is_author": False} for item in page["items"])
    # The same list serves the like-minded viewer whole (their first page, in order).
    page = await _first_page(client, like_minded, limit=3)
    assert _ids(page) == shared[:3]
    assert _opened()[1] == before[1] + 2
    # Opening from the cohort's list keeps no ready feed: their events rank them one.
    assert not await redis.exists(ready.ready_key(settings, viewer.id, False))


async def test_a_viewer_whose_feed_changed_since_the_cohorts_were_made_is_ranked(
    app, client, users, conn, pool, redis, settings
):
    chef = await users.make("chef")
    clips = await publish_all(conn, client, chef, COOKING)
    viewer, unknown = await users.make("viewer"), await users.make("unknown")
    await _steer(client, viewer, "more cooking")
    await asyncio.sleep(ready.VOID_GRACE_S + 0.05)
    await _build(pool, redis, settings)
    assert await _cohort_of(redis, settings, viewer) is not None
    assert await _cohort_of(redis, settings, unknown) is None  # no taste yet: no cohort

    r = await client.post(f"/v1/clips/{clips[0]}/not-interested", headers=viewer.headers)
    assert r.status_code == 204
    before = _opened()
    page = await _first_page(client, viewer, limit=2)
    assert _opened() == (before[0], before[1], before[2] + 1)  # ranked, as the change asks
    assert clips[0] not in _ids(page) + await _rest(client, viewer, page["next_cursor"], limit=2)
    await _first_page(client, unknown, limit=2)
    assert _opened()[2] == before[2] + 2


async def test_a_teen_opens_from_their_cohort_s_teen_list(app, client, users, conn, pool, redis, settings):
    chef = await users.make("chef")
    await publish_all(conn, client, chef, COOKING)
    teen = await users.make("teen", birth_year=2011)
    await _steer(client, teen, "more cooking")
    await asyncio.sleep(ready.VOID_GRACE_S + 0.05)
    await _build(pool, redis, settings, k=1)
    assert await _cohort_list(redis, settings, 0) == []  # no adult in the cohort: no adults' list
    kept = await _cohort_list(redis, settings, 0, teen=True)
    assert kept
    before = _opened()
    page = await _first_page(client, teen, limit=2)
    assert _opened()[1] == before[1] + 1
    assert _ids(page) == kept[:2]


async def test_a_first_page_from_a_cohort_asks_redis_twice(app, client, users, conn, pool, redis, settings):
    chef = await users.make("chef")
    await publish_all(conn, client, chef, COOKING)
    viewer = await users.make("viewer")
    await _steer(client, viewer, "more cooking")
    await asyncio.sleep(ready.VOID_GRACE_S + 0.05)
    built = await _build(pool, redis, settings, k=1)
    rt = runtime(app.state)
    # What a process reads when it starts (the app here started before the build). The app
    # runs its own event loop, where its connections live: this test's loop uses one of its own.
    async with _mux(settings) as mux:
        assert await rt.cohort_heads.load(mux, rt.settings) == built.lists == 1

    sent: list[str] = []
    execute = rt.mux.execute

    async def counted(*args: Any) -> Any:
        sent.append(str(args[0]))
        return await execute(*args)

    rt.mux.execute = counted  # type: ignore[method-assign]
    try:
        page = await _first_page(client, viewer, limit=2)
    finally:
        del rt.mux.execute
    assert _ids(page) == (await _cohort_list(redis, settings, 0))[:2]
    # No ready feed, and the same call answered their cohort; then the session from its list.
    assert sent == ["EVALSHA", "EVALSHA"]


async def test_a_list_built_again_since_the_process_read_it_is_read_again(
    app, client, users, conn, pool, redis, settings
):
    chef = await users.make("chef")
    await publish_all(conn, client, chef, COOKING[:3])
    early, late = await users.make("early"), await users.make("late")
    for user in (early, late):
        await _steer(client, user, "more cooking")
    await asyncio.sleep(ready.VOID_GRACE_S + 0.05)
    await _build(pool, redis, settings, k=1)
    before = _opened()
    await _first_page(client, early, limit=2)  # the process now holds the list's head
    rt = runtime(app.state)
    async with _mux(settings) as mux:
        kept = await rt.cohort_heads.get(mux, rt.settings, 0, False)
    assert kept is not None

    newer = await publish_all(conn, client, chef, COOKING[3:])
    await _build(pool, redis, settings, k=1)
    rebuilt = await _cohort_list(redis, settings, 0)
    assert set(newer) <= set(rebuilt)
    page = await _first_page(client, late, limit=2)
    assert _opened() == (before[0], before[1] + 2, before[2])  # from the new list, not ranked
    assert _ids(page) == rebuilt[:2]
    async with _mux(settings) as mux:
        head = await rt.cohort_heads.get(mux, rt.settings, 0, False)
    assert head is not None
    assert head.ranked != kept.ranked
    assert head.clip_ids == rebuilt


async def test_the_worker_builds_the_cohorts_when_it_starts(app, client, users, conn, pool, redis, settings):
    chef = await users.make("chef")
    await publish_all(conn, client, chef, COOKING)
    viewer = await users.make("viewer")
    await _steer(client, viewer, "more cooking")
    res = SimpleNamespace(pool=pool, redis=redis, settings=settings)
    loop = asyncio.create_task(tasks.cohort_feeds(res))  # type: ignore[arg-type]
    try:
        assert await _until(lambda: _cohort_of(redis, settings, viewer), 10.0)
        # Another worker process starting now leaves them to the first.
        again = await cohorts.build_if_due(
            pool, redis, settings, taste=service.taste_of, rank=service.rank_taste
        )
        assert again is None
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


async def _until(check: Callable[[], Awaitable[Any]], seconds: float) -> bool:
    """Whether ``check`` answers something other than None within ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await check() is not None:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_build_that_fails_lets_the_next_attempt_build(pool, redis, settings, monkeypatch):
    async def broken(*args: Any, **kwargs: Any) -> cohorts.Built:
        raise RuntimeError("PostgreSQL went away")

    monkeypatch.setattr(cohorts, "build", broken)
    with pytest.raises(RuntimeError):
        await cohorts.build_if_due(pool, redis, settings, taste=service.taste_of, rank=service.rank_taste)
    monkeypatch.undo()
    built = await cohorts.build_if_due(pool, redis, settings, taste=service.taste_of, rank=service.rank_taste)
    assert built is not None  # not left to wait out the failed build's turn
