"""A viewer's ranked feed kept ready for their next sessions: a new session opens from it
without a ranking and without what the viewer has seen since, never after the viewer changed
what their feed is made of, never showing what became hidden since, and the worker ranks one
ahead for viewers whose events arrive."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import msgspec

from feed import ready, service, tasks
from feed.ingest import EventConsumer, keys
from tests.factories import UserFactory
from tests.feed.conftest import until
from tests.feed.test_feed import COOKING, PRANKS, like, publish_all
from tests.feed.test_later_pages import _first_page, _queued, _rest


def _opened() -> tuple[float, float]:
    """Sessions opened so far in this process: (from a ready feed, ranked)."""
    return service._SESSIONS_READY._value.get(), service._SESSIONS_RANKED._value.get()


def _ids(page) -> list[int]:
    return [item["clip"]["id"] for item in page["items"]]


async def _ready(redis, settings, viewer, teen: bool = False) -> list[int]:
    raw = await redis.lrange(ready.ready_key(settings, viewer.id, teen), 1, -1)
    return [msgspec.msgpack.decode(r)[0] for r in raw]


async def test_a_new_session_opens_from_the_ready_feed_without_what_was_seen(
    app, client, users, conn, redis, settings
):
    chef, joker, viewer = await users.make("chef"), await users.make("joker"), await users.make("viewer")
    cooking = await publish_all(conn, client, chef, COOKING)
    pranks = await publish_all(conn, client, joker, PRANKS)
    await like(conn, viewer, cooking[0])
    before = _opened()
    first = await _first_page(client, viewer, limit=3)
    assert _opened() == (before[0], before[1] + 1)  # ranked, and kept
    kept = await _ready(redis, settings, viewer)
    assert _ids(first) == kept[:3]
    assert set(kept) == set(cooking + pranks)

    again = await _first_page(client, viewer, limit=3)
    assert _opened() == (before[0] + 1, before[1] + 1)  # no ranking this time
    assert _ids(again) == kept[3:6]  # the ranking as kept, less what the first session showed
    rest = await _rest(client, viewer, again["next_cursor"], limit=3)
    shown = _ids(again) + rest
    assert shown == kept[3:]  # every clip once, nothing the first session showed
    # Everything seen now: too little left of the ready feed, so the next session ranks again.
    await _first_page(client, viewer, limit=3)
    assert _opened() == (before[0] + 1, before[1] + 2)
    # Other viewers have their own.
    other = await users.make("other")
    await _first_page(client, other, limit=3)
    assert _opened() == (before[0] + 1, before[1] + 3)


async def test_changing_what_the_feed_is_made_of_ranks_the_next_session_afresh(
    app, client, users, conn, redis, settings
):
    chef, joker, viewer = await users.make("chef"), await users.make("joker"), await users.make("viewer")
    await publish_all(conn, client, chef, COOKING)
    pranks = await publish_all(conn, client, joker, PRANKS)
    changes = [
        ("post", "/v1/users/joker/hide"),
        ("delete", "/v1/users/joker/hide"),
        ("put", "/v1/users/chef/mute"),
        ("delete", "/v1/users/chef/mute"),
        ("put", "/v1/users/chef/follow"),
        ("delete", "/v1/users/chef/follow"),
        ("put", "/v1/users/joker/block"),
        ("delete", "/v1/users/joker/block"),
        ("post", f"/v1/clips/{pranks[0]}/not-interested"),
        ("delete", f"/v1/clips/{pranks[0]}/not-interested"),
        ("put", "/v1/feed/preferences"),
        ("delete", "/v1/feed/preferences"),
    ]
    for method, path in changes:
        await redis.delete(keys(settings.redis_prefix)("seen", viewer.id))  # (a dozen clips only)
        await _first_page(client, viewer, limit=1)
        assert await _ready(redis, settings, viewer), path
        kwargs = (
            {"json": {"text": "more cooking"}} if path.endswith("preferences") and method == "put" else {}
        )
        r = await getattr(client, method)(path, headers=viewer.headers, **kwargs)
        assert r.status_code in (200, 204), (path, r.text)
        assert await _ready(redis, settings, viewer) == [], path  # let go at once
        before = _opened()
        page = await _first_page(client, viewer, limit=1)
        assert _opened() == (before[0], before[1] + 1), path
        if (method, path) == ("post", "/v1/users/joker/hide"):
            assert not set(_ids(page) + await _queued(app, viewer, page["next_cursor"])) & set(pranks)


async def test_a_ranking_that_began_before_a_change_does_not_open_sessions(users, redis, settings):
    """The change commits after the void is written: a ranking that read the old state, even
    if kept after the void, must not be used."""
    viewer = await users.make("viewer")
    started = time.time()
    await ready.forget(redis, settings, viewer.id)
    entry = msgspec.msgpack.encode([1, "new", 2, False])
    opening = ready.Opening(viewer.id, teen=False, session="s", seen="none", page=1, seen_ttl_s=60)
    for ranked_at in (started, time.time() + ready.VOID_GRACE_S / 2):  # before, and within the grace
        await ready.keep(
            redis,
            settings,
            viewer_id=viewer.id,
            teen=False,
            ranked_at=ranked_at,
            clip_ids=[1],
            entries=[entry],
        )
        assert await ready.state(redis, settings, viewer_id=viewer.id, teen=False, seen="none") is None
        opened = await ready.open_session(redis, settings, opening)
        assert opened is None
    later = time.time() + ready.VOID_GRACE_S + 0.01
    await ready.keep(
        redis, settings, viewer_id=viewer.id, teen=False, ranked_at=later, clip_ids=[1], entries=[entry]
    )
    # Its next page starts after the one entry, and has nothing ahead.
    assert await ready.open_session(redis, settings, opening) == ready.Opened(round(later, 3), [entry], 1, [])
    # A teen's ready feed is another.
    assert await ready.state(redis, settings, viewer_id=viewer.id, teen=True, seen="none") is None
    assert 0 < await redis.ttl(ready.ready_key(settings, viewer.id, False)) <= settings.feed_ready_s


async def test_a_session_from_the_ready_feed_leaves_out_what_became_hidden(
    app, client, users, conn, watch, redis, settings
):
    alice, bob, viewer = [await users.make(h) for h in ("alice", "bob", "viewer")]
    await publish_all(conn, client, alice, COOKING)
    await publish_all(conn, client, bob, PRANKS)
    await _first_page(client, viewer, limit=1)
    kept = await _ready(redis, settings, viewer)
    removed, private = kept[1], kept[2]
    # Another process (this connection): only the triggers' notifications tell this one.
    await conn.execute("UPDATE clips SET status = 'removed' WHERE id = $1", removed)
    await conn.execute("UPDATE clips SET visibility = 'private' WHERE id = $1", private)
    assert await until(lambda: not watch.unchanged(0, clip=private, author=0, viewer=None, cameos=False))
    before = _opened()
    page = await _first_page(client, viewer, limit=1)
    assert _opened()[0] == before[0] + 1
    shown = _ids(page) + await _rest(client, viewer, page["next_cursor"], limit=1)
    assert shown == [i for i in kept[1:] if i not in (removed, private)]


async def test_clips_seen_elsewhere_since_are_left_out_of_sessions_and_their_later_pages(
    app, client, users, conn, redis, settings
):
    """What the viewer saw since a ready feed was ranked, or since a session was filled (on
    another device: the event consumer adds every impression to their seen set), is not shown
    again, wherever it sits in the ranking."""
    chef, joker, viewer = await users.make("chef"), await users.make("joker"), await users.make("viewer")
    await publish_all(conn, client, chef, COOKING)
    await publish_all(conn, client, joker, PRANKS)
    first = await _first_page(client, viewer, limit=2)
    kept = await _ready(redis, settings, viewer)
    seen_key = keys(settings.redis_prefix)("seen", viewer.id)
    elsewhere = [kept[4], kept[7]]  # after the first session's page, apart from each other
    await redis.sadd(seen_key, *elsewhere)

    again = await _first_page(client, viewer, limit=2)
    shown = _ids(again)
    later = await _first_page(client, viewer, limit=2)  # a third session, open at the same time
    assert _ids(later) == [i for i in kept if i not in _ids(first) + shown + elsewhere][:2]
    # The second session's later pages: what the third showed is seen too, and left out.
    shown += await _rest(client, viewer, again["next_cursor"], limit=2)
    assert shown == [i for i in kept if i not in _ids(first) + elsewhere + _ids(later)]
    assert len(set(shown)) == len(shown)


async def test_the_worker_ranks_ahead_for_viewers_whose_events_arrive(
    app, client, users, conn, settings, pool, redis
):
    chef, viewer, idle = await users.make("chef"), await users.make("viewer"), await users.make("idle")
    cooking = await publish_all(conn, client, chef, COOKING)
    batch = [
        {"client_event_id": "e1", "type": "like", "clip_id": cooking[0], "at": datetime.now(UTC).isoformat()}
    ]
    assert (
        await client.post("/v1/events", json={"events": batch}, headers=viewer.headers)
    ).status_code == 202
    consumer = EventConsumer(pool, redis, settings.redis_prefix, name="c", prerank=True)
    await consumer.ensure_group()
    assert await consumer.step(block_ms=None) == 1
    waiting = ready.prerank_key(settings)
    assert [int(m) for m in await redis.zrange(waiting, 0, -1)] == [viewer.id]  # not the idle one
    assert await service.prerank(pool, redis, settings, viewer.id)
    assert not await service.prerank(pool, redis, settings, viewer.id)  # fresh: nothing to do
    kept = await _ready(redis, settings, viewer)
    assert set(kept) == set(cooking) - {cooking[0]}  # (seen: the event says so)
    before = _opened()
    page = await _first_page(client, viewer, limit=2)
    assert _opened() == (before[0] + 1, before[1])
    assert _ids(page) == kept[:2]
    assert not await service.prerank(pool, redis, settings, viewer.id)  # 3 of 5 left
    # Once they have seen more than half of it, the worker ranks a new one, however young.
    await redis.sadd(keys(settings.redis_prefix)("seen", viewer.id), *kept[2:4])
    assert await service.prerank(pool, redis, settings, viewer.id)
    assert await _ready(redis, settings, viewer) == kept[4:]
    # An account that cannot sign in gets none.
    await conn.execute("UPDATE users SET status = 'banned' WHERE id = $1", idle.id)
    assert not await service.prerank(pool, redis, settings, idle.id)
    assert await _ready(redis, settings, idle) == []


async def test_the_worker_ranks_ahead_in_as_many_lanes_as_set(
    users, conn, client, settings, pool, redis, monkeypatch
):
    """Every viewer on the worker's list is ranked once, ``feed_prerank_lanes`` at a time."""
    chef = await users.make("chef")
    await publish_all(conn, client, chef, COOKING)
    viewers = [await users.make(f"viewer{n}") for n in range(5)]
    in_flight, most, ranked = 0, 0, []
    real = service.prerank

    async def watched(pool_, redis_, settings_, viewer_id):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            await asyncio.sleep(0.05)  # long enough for another lane to start
            return await real(pool_, redis_, settings_, viewer_id)
        finally:
            in_flight -= 1
            ranked.append(viewer_id)

    monkeypatch.setattr(service, "prerank", watched)
    await redis.zadd(ready.prerank_key(settings), {str(v.id): n for n, v in enumerate(viewers)})
    lanes_of_two = msgspec.structs.replace(settings, feed_prerank_lanes=2)
    res = SimpleNamespace(settings=lanes_of_two, pool=pool, redis=redis)
    lanes = asyncio.create_task(tasks.prerank_feeds(res))  # type: ignore[arg-type]
    try:
        assert await until(lambda: len(ranked) == len(viewers), seconds=10)
    finally:
        lanes.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lanes
    assert sorted(ranked) == sorted(v.id for v in viewers)  # each once
    assert most == 2
    for viewer in viewers:
        assert set(await _ready(redis, settings, viewer))  # a ready feed each


async def test_as_riffle_serve_runs_it_a_viewers_events_get_their_next_feed_ranked_ahead(
    worker_client, conn, settings, redis
):
    """End to end in one process (API, event consumer and worker loops): events in, a ready
    feed out, and the next session opens from it."""
    users = UserFactory(conn, worker_client)
    chef, viewer = await users.make("chef"), await users.make("viewer")
    cooking = await publish_all(conn, worker_client, chef, COOKING)
    batch = [
        {"client_event_id": "w1", "type": "watch", "clip_id": cooking[0], "watch_ms": 900,
         "at": datetime.now(UTC).isoformat()}
    ]  # fmt: skip
    r = await worker_client.post("/v1/events", json={"events": batch}, headers=viewer.headers)
    assert r.status_code == 202
    for _ in range(150):  # the consumer stores the batch, then the worker ranks
        if await _ready(redis, settings, viewer):
            break
        await asyncio.sleep(0.1)
    assert set(await _ready(redis, settings, viewer)) == set(cooking) - {cooking[0]}
    before = _opened()
    page = await _first_page(worker_client, viewer, limit=2)
    assert _opened() == (before[0] + 1, before[1])
    assert cooking[0] not in _ids(page)
