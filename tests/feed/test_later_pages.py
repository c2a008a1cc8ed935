"""Later pages of a feed session: served as ranked, with cards rendered once per process, and
still never showing what the viewer may no longer see, whichever process made the change."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import msgspec

from backend.clips import cards as cards_module
from backend.clips.cards import Card, CardCache, CardLoader
from backend.clips.schemas import Clip, ViewerState
from backend.clips.service import Signer
from backend.redis_mux import Multiplexed
from backend.redis_pool import create_redis
from backend.runtime import runtime
from feed.encoder import HashedEncoder
from feed.service import embed_clips
from feed.visibility import VisibilityWatch, changed
from tests.cameo.test_cameos import cameo
from tests.factories import make_clip
from tests.feed.conftest import until as _until
from tests.feed.test_feed import COOKING, PRANKS, publish_all


async def _first_page(client, viewer, limit=2):
    r = await client.get("/v1/feed/for-you", params={"limit": limit}, headers=viewer.headers)
    assert r.status_code == 200, r.text
    # The route answers its encoded body itself (backend.responses); the middleware still sees it.
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.headers["x-request-id"]
    return r.json()


async def _next(client, viewer, cursor, limit=2):
    r = await client.get(
        "/v1/feed/for-you", params={"limit": limit, "cursor": cursor}, headers=viewer.headers
    )
    assert r.status_code == 200, r.text
    return r.json()


async def _rest(client, viewer, cursor, limit=2):
    """Every clip left in the session."""
    ids = []
    while cursor:
        page = await _next(client, viewer, cursor, limit)
        ids += [item["clip"]["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    return ids


async def _queued(app, viewer, cursor) -> list[int]:
    """The clips the session will show next, read from Redis."""
    rt = runtime(app.state)
    session_id, offset, _ranked_at = rt.cursors.decode(f"feed:{viewer.id}", cursor)
    redis = create_redis(rt.settings.redis_url)
    try:
        raw = await redis.lrange(f"riffle:feed:session:{session_id}", offset, -1)
    finally:
        await redis.aclose()
    return [msgspec.msgpack.decode(r)[0] for r in raw]


async def test_later_pages_reuse_rendered_cards_and_match_the_clip_as_read(app, client, users, conn, watch):
    alice, bob, early, viewer = [await users.make(h) for h in ("alice", "bob", "early", "viewer")]
    clips = await publish_all(conn, client, alice, COOKING[:4]) + await publish_all(
        conn, client, bob, PRANKS[:4]
    )
    # Someone else's pages render every card first.
    page = await _first_page(client, early)
    await _rest(client, early, page["next_cursor"])
    assert len(runtime(app.state).cards) == len(clips)

    page = await _first_page(client, viewer)
    queued = await _queued(app, viewer, page["next_cursor"])
    assert len(queued) == len(clips) - 2
    as_read = {i: (await client.get(f"/v1/clips/{i}", headers=viewer.headers)).json() for i in queued}
    # A caption changed behind the API's back is not seen until the card is rendered again:
    # proof that these pages came from the rendered cards, not from PostgreSQL.
    await conn.execute("UPDATE clips SET caption = 'changed' WHERE id = ANY($1::bigint[])", clips)
    cursor, shown = page["next_cursor"], []
    while cursor:
        page = await _next(client, viewer, cursor)
        shown += page["items"]
        cursor = page["next_cursor"]
    assert [item["clip"]["id"] for item in shown] == queued
    for item in shown:
        assert item["clip"] == as_read[item["clip"]["id"]]  # the same JSON as the clip's own route
        assert item["reason"]


async def test_the_next_pages_cards_are_rendered_before_it_is_asked_for(
    app, client, users, conn, watch, monkeypatch
):
    alice, bob, viewer = [await users.make(h) for h in ("alice", "bob", "viewer")]
    await publish_all(conn, client, alice, COOKING[:4])
    await publish_all(conn, client, bob, PRANKS[:4])
    rt = runtime(app.state)
    page = await _first_page(client, viewer, limit=3)
    following = (await _queued(app, viewer, page["next_cursor"]))[:3]
    # While the viewer watches the first page, the process renders the next page's cards...
    assert await _until(lambda: all(rt.cards.get(i) is not None for i in following))
    queries = []
    real = cards_module.published_cards

    async def counted(conn, *, clip_ids, signer):
        queries.append(clip_ids)
        return await real(conn, clip_ids=clip_ids, signer=signer)

    monkeypatch.setattr(cards_module, "published_cards", counted)
    page = await _next(client, viewer, page["next_cursor"], limit=3)
    # ...so that page renders nothing while the viewer waits for it.
    assert [item["clip"]["id"] for item in page["items"]] == following
    assert not [q for q in queries if set(q) & set(following)]


async def test_a_card_about_to_expire_is_rendered_again_when_it_is_served(app, client, users, conn, watch):
    alice, early, viewer = [await users.make(h) for h in ("alice", "early", "viewer")]
    clips = await publish_all(conn, client, alice, COOKING[:4])
    rt = runtime(app.state)
    page = await _first_page(client, early, limit=4)
    assert await _until(lambda: all(rt.cards.get(i) is not None for i in clips))
    # Alice's clips' cards are about to expire; a page that shows them has them rendered again.
    soon = time.monotonic() + rt.cards.refresh_s / 2
    for clip_id in clips:
        card = rt.cards.get(clip_id)
        assert card is not None
        card.until = soon
    await conn.execute("UPDATE clips SET caption = 'renamed' WHERE id = ANY($1::bigint[])", clips)
    page = await _first_page(client, viewer, limit=4)
    shown = [item["clip"]["id"] for item in page["items"]]
    assert set(shown) == set(clips)

    def rendered_again() -> bool:
        return all((card := rt.cards.get(i)) is not None and card.until > soon for i in shown)

    assert await _until(rendered_again)
    for clip_id in shown:
        card = rt.cards.get(clip_id)
        assert card is not None
        assert b'"caption":"renamed"' in bytes(card.raw(liked=False, is_author=False))


async def test_a_clip_hidden_by_another_process_leaves_later_pages(app, client, users, conn, watch):
    alice, bob, viewer = [await users.make(h) for h in ("alice", "bob", "viewer")]
    await publish_all(conn, client, alice, COOKING[:4])
    await publish_all(conn, client, bob, PRANKS[:4])
    page = await _first_page(client, viewer)
    removed, private, *_ = await _queued(app, viewer, page["next_cursor"])
    # Another process (this connection) removes one and makes another private; only the
    # triggers' notifications tell this process.
    await conn.execute("UPDATE clips SET status = 'removed' WHERE id = $1", removed)
    await conn.execute("UPDATE clips SET visibility = 'private' WHERE id = $1", private)
    assert await _until(lambda: not watch.unchanged(0, clip=private, author=0, viewer=None, cameos=False))
    rest = await _rest(client, viewer, page["next_cursor"])
    assert rest
    assert removed not in rest
    assert private not in rest


async def test_a_block_or_suspension_elsewhere_hides_the_authors_clips(app, client, users, conn, watch):
    alice, bob, carol, viewer = [await users.make(h) for h in ("alice", "bob", "carol", "viewer")]
    await publish_all(conn, client, alice, COOKING[:3])
    await publish_all(conn, client, bob, PRANKS[:3])
    from_carol = await publish_all(conn, client, carol, COOKING[3:6])
    page = await _first_page(client, viewer, limit=1)
    await conn.execute("INSERT INTO blocks (blocker_id, blocked_id) VALUES ($1, $2)", alice.id, viewer.id)
    await conn.execute("UPDATE users SET status = 'suspended', suspended_until = now() + interval '1 day' "
                       "WHERE id = $1", bob.id)  # fmt: skip
    assert await _until(lambda: not watch.unchanged(0, clip=0, author=bob.id, viewer=None, cameos=False))
    assert await _until(lambda: not watch.unchanged(0, clip=0, author=0, viewer=viewer.id, cameos=False))
    rest = await _rest(client, viewer, page["next_cursor"], limit=1)
    assert rest
    assert set(rest) <= set(from_carol)


async def test_an_unfollow_ends_mutual_consent_for_every_viewer_and_other_unfollows_hide_nothing(
    app, client, users, conn, watch
):
    alice, bob, carol, viewer = [await users.make(h) for h in ("alice", "bob", "carol", "viewer")]
    made = await cameo(client, conn, alice, consent="mutuals")
    await client.put("/v1/users/alice/follow", headers=bob.headers)
    await client.put("/v1/users/bob/follow", headers=alice.headers)
    with_cameo = (await make_clip(conn, client, bob, cameo_ids=[made["id"]]))["id"]
    await embed_clips(conn, HashedEncoder(), [with_cameo])
    await publish_all(conn, client, carol, COOKING[:3])  # newer: ranked before it
    page = await _first_page(client, viewer, limit=1)
    assert with_cameo in await _queued(app, viewer, page["next_cursor"])
    # An unfollow between two accounts without such a cameo leaves their clips alone...
    await conn.execute("INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2)", viewer.id, carol.id)
    await conn.execute("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2", viewer.id, carol.id)
    assert await _until(lambda: not watch.unchanged(0, clip=0, author=0, viewer=viewer.id, cameos=False))
    assert watch.unchanged(0, clip=0, author=carol.id, viewer=None, cameos=False)
    # ...while Alice unfollowing Bob (elsewhere) ends her consent to his clip with her cameo.
    await conn.execute("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2", alice.id, bob.id)
    assert await _until(lambda: not watch.unchanged(0, clip=0, author=bob.id, viewer=None, cameos=False))
    other = await users.make("other")
    page_of_other = await _first_page(client, other, limit=1)  # a session ranked after: not offered
    assert with_cameo not in await _queued(app, other, page_of_other["next_cursor"])
    assert with_cameo not in await _rest(client, viewer, page["next_cursor"], limit=1)


async def test_changes_made_through_this_process_apply_at_once(client, users, conn, watch):
    alice, viewer = await users.make("alice"), await users.make("viewer")
    clips = await publish_all(conn, client, alice, COOKING[:4])
    page = await _first_page(client, viewer, limit=1)
    deleted = next(i for i in clips if i != page["items"][0]["clip"]["id"])
    assert (await client.delete(f"/v1/clips/{deleted}", headers=alice.headers)).status_code == 204
    # No waiting for the notification: the delete told this process before it committed.
    assert deleted not in await _rest(client, viewer, page["next_cursor"], limit=1)
    page = await _first_page(client, viewer, limit=1)  # (a new session: what is left)
    assert (await client.put("/v1/users/viewer/block", headers=alice.headers)).status_code in (200, 204)
    assert await _rest(client, viewer, page["next_cursor"], limit=1) == []


async def test_with_the_listener_down_every_later_page_is_checked(app, client, users, conn, watch):
    alice, viewer = await users.make("alice"), await users.make("viewer")
    await publish_all(conn, client, alice, COOKING[:4])
    page = await _first_page(client, viewer, limit=1)
    killed = await conn.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
    )
    assert killed >= 1
    assert await _until(lambda: watch.listening_since is None)
    # Its notification is lost, but a session ranked before the listener came back is not trusted.
    removed = (await _queued(app, viewer, page["next_cursor"]))[0]
    await conn.execute("UPDATE clips SET status = 'removed' WHERE id = $1", removed)
    assert removed not in await _rest(client, viewer, page["next_cursor"], limit=1)


async def test_with_the_pages_redis_connection_gone_a_page_is_a_503_and_the_cursor_still_works(
    app, client, users, conn
):
    alice, viewer = await users.make("alice"), await users.make("viewer")
    await publish_all(conn, client, alice, COOKING[:4])
    page = await _first_page(client, viewer, limit=1)
    rt = runtime(app.state)
    shared = rt.mux
    rt.mux = Multiplexed("redis://127.0.0.1:1/0")  # nobody listens there
    try:
        r = await client.get(
            "/v1/feed/for-you", params={"limit": 1, "cursor": page["next_cursor"]}, headers=viewer.headers
        )
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        r = await client.get("/v1/feed/for-you", params={"limit": 1}, headers=viewer.headers)
        assert r.status_code == 503, r.text
    finally:
        rt.mux = shared
    # Nothing was taken from the session while Redis could not be reached.
    assert len(await _rest(client, viewer, page["next_cursor"], limit=1)) == 3


# --- the parts on their own ----------------------------------------------------------------------


def test_a_watch_covers_sessions_ranked_while_it_listened_and_within_its_horizon():
    watch = VisibilityWatch()
    now = time.time()
    assert not watch.covers(now)  # not listening
    watch.started()
    assert not watch.covers(now - 60)  # ranked before it listened
    assert watch.covers(time.time() + watch.margin_s)
    assert not watch.covers(None)  # a cursor from before sessions carried the time
    watch.listening_since = now - 2 * watch.horizon_s
    assert not watch.covers(now - watch.horizon_s - 10)  # older than what it remembers
    watch.stopped()
    assert not watch.covers(time.time() + watch.margin_s)


def test_a_watch_says_which_clips_changed_after_a_session_was_ranked():
    watch = VisibilityWatch()
    watch.started()
    ranked = time.time() + watch.margin_s
    clip = {"clip": 1, "author": 10, "viewer": 100, "cameos": False}
    assert watch.unchanged(ranked, **clip)
    watch.notified(None, 0, "riffle_visibility", "c2")
    watch.notified(None, 0, "riffle_visibility", "a11")
    watch.notified(None, 0, "riffle_visibility", "u101")
    assert watch.unchanged(ranked, **clip)  # others' changes
    watch.notified(None, 0, "riffle_visibility", "k")
    assert watch.unchanged(ranked, **clip)
    assert not watch.unchanged(ranked, **(clip | {"cameos": True}))
    for payload in ("c1", "a10", "u100"):
        fresh = VisibilityWatch()
        fresh.notified(None, 0, "riffle_visibility", payload)
        assert not fresh.unchanged(ranked, **clip)
        assert fresh.unchanged(ranked + 2 * fresh.margin_s + 1, **clip)  # ranked after it
    changed(viewer=100)  # this process's own change, before it commits
    assert not watch.unchanged(ranked, **clip)
    watch.notified(None, 0, "riffle_visibility", "nonsense")  # unreadable: trust nothing older
    assert not watch.covers(ranked)


def test_a_watch_that_overflows_stops_covering_what_it_forgot():
    watch = VisibilityWatch()
    watch.max_entries = 10
    watch.started()
    ranked = time.time() + watch.margin_s
    for i in range(11):
        watch.record("c", i)
    assert len(watch) <= 10
    assert not watch.covers(ranked)


def _a_clip(**fields) -> Clip:
    body = {
        "id": 7,
        "author": {"id": 3, "handle": "alice", "display_name": "Alice", "avatar_url": None},
        "status": "published",
        "caption": "homemade pasta",
        "hashtags": ["cooking"],
        "mentions": [],
        "visibility": "public",
        "allow_remix": True,
        "allow_comments": True,
        "video": {"url": "https://x/v", "content_type": "video/mp4"},
        "poster": {"url": "https://x/p", "content_type": "image/jpeg"},
        "duration_ms": 4000,
        "width": 720,
        "height": 1280,
        "model": "veo-3",
        "ai_generated": True,
        "label": "AI-generated",
        "counts": {"views": 1, "likes": 2, "comments": 3, "shares": 4, "remixes": 5},
        "viewer": {"liked": True, "is_author": False},
        "remix": {"parent_id": None, "root_id": None, "depth": 0, "parent_available": True},
        "cameo_ids": [],
        "product_tags": [],
        "take_id": 9,
        "created_at": "2026-11-30T00:00:00Z",
        "published_at": "2026-11-30T00:00:00Z",
    }
    return msgspec.json.decode(msgspec.json.encode(body | fields), type=Clip)


def test_a_card_is_the_clip_as_json_with_each_viewers_part_put_back():
    # A caption that looks like the viewer part is escaped in JSON, so it cannot be mistaken.
    clip = _a_clip(caption='a caption with "viewer":{"liked":false,"is_author":false} in it')
    card = Card(clip, until=0)
    for liked in (False, True):
        for is_author in (False, True):
            mine = msgspec.structs.replace(clip, viewer=ViewerState(liked=liked, is_author=is_author))
            assert bytes(card.raw(liked=liked, is_author=is_author)) == msgspec.json.encode(mine)


def test_cards_are_kept_for_their_time_and_the_oldest_go_first(monkeypatch):
    cache = CardCache(10, max_entries=2)
    for i in (1, 2, 3):
        cache.put(_a_clip(id=i))
    assert cache.get(1) is None
    assert cache.get(2) is not None
    assert cache.get(3) is not None
    later = time.monotonic() + 11
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert cache.get(2) is None
    off = CardCache(0)
    off.put(_a_clip())
    assert len(off) == 0


def _loader(app, pool) -> CardLoader:
    """A card loader of its own, on the test's pool, signing as the app does."""
    rt = runtime(app.state)
    return CardLoader(CardCache(10), pool, Signer(rt.settings, rt.signing_key))


async def test_cards_missing_from_the_process_are_rendered_for_many_requests_in_one_query(
    app, client, users, conn, pool, monkeypatch
):
    alice = await users.make("alice")
    clips = await publish_all(conn, client, alice, COOKING[:4])
    removed = clips[3]
    await conn.execute("UPDATE clips SET status = 'removed' WHERE id = $1", removed)
    loader = _loader(app, pool)
    queries: list[list[int]] = []
    real = cards_module.published_cards

    async def counted(conn, *, clip_ids, signer):
        queries.append(sorted(clip_ids))
        return await real(conn, clip_ids=clip_ids, signer=signer)

    monkeypatch.setattr(cards_module, "published_cards", counted)
    # Ten requests at once, three of them cancelled before the answer: one query for all.
    asking = [asyncio.create_task(loader.load([clips[i % 4], clips[(i + 1) % 4]])) for i in range(10)]
    for task in asking[:3]:
        task.cancel()
    answers = await asyncio.gather(*asking[3:])
    assert queries == [sorted(clips)]
    for i, answer in zip(range(3, 10), answers, strict=True):
        assert set(answer) == {clips[i % 4], clips[(i + 1) % 4]} - {removed}  # published only
    as_read = (await client.get(f"/v1/clips/{clips[0]}", headers=alice.headers)).json()
    card = loader.cache.get(clips[0])
    assert card is not None
    assert msgspec.json.decode(bytes(card.raw(liked=False, is_author=True))) == as_read


async def test_cards_asked_for_ahead_are_rendered_once_and_a_request_joins_the_query_rendering_its_card(
    app, client, users, conn, pool, monkeypatch
):
    alice = await users.make("alice")
    clips = await publish_all(conn, client, alice, COOKING[:4])
    loader = _loader(app, pool)
    queries: list[list[int]] = []
    release = asyncio.Event()
    real = cards_module.published_cards

    async def slow(conn, *, clip_ids, signer):
        queries.append(sorted(clip_ids))
        await release.wait()
        return await real(conn, clip_ids=clip_ids, signer=signer)

    monkeypatch.setattr(cards_module, "published_cards", slow)
    assert loader.idle
    loader.prefetch(clips[:2])
    assert not loader.idle
    loader.prefetch(clips[:2])  # asked again before its query runs: the same query
    assert await _until(lambda: len(queries) == 1)
    assert not loader.idle
    loader.prefetch(clips[:2])  # asked while its query runs: nothing more
    asking = asyncio.create_task(loader.load(clips[:3]))  # two of them rendering, one new
    assert await _until(lambda: len(queries) == 2)
    release.set()
    assert set(await asking) == set(clips[:3])
    assert await _until(lambda: loader.idle)
    assert queries == [sorted(clips[:2]), [clips[2]]]
    assert all(loader.cache.get(i) is not None for i in clips[:3])
    assert loader.cache.get(clips[3]) is None
    assert loader.cache.wanted(clips) == [clips[3]]


async def test_a_failed_card_query_fails_the_requests_that_waited_on_it_and_the_next_one_runs(
    app, client, users, conn, pool, monkeypatch
):
    alice = await users.make("alice")
    clips = await publish_all(conn, client, alice, COOKING[:2])
    loader = _loader(app, pool)
    real = cards_module.published_cards

    async def broken(conn, *, clip_ids, signer):
        raise asyncpg.exceptions.ConnectionDoesNotExistError("gone")

    monkeypatch.setattr(cards_module, "published_cards", broken)
    results = await asyncio.gather(loader.load([clips[0]]), loader.load([clips[1]]), return_exceptions=True)
    assert all(isinstance(r, asyncpg.exceptions.ConnectionDoesNotExistError) for r in results)
    monkeypatch.setattr(cards_module, "published_cards", real)
    assert set(await loader.load(clips)) == set(clips)
