"""The mixed traffic of `bench/mixed_load.py`, as a locust file (locust runs it headless in its
own process): 70% For You pages, 20% event batches, 10% likes and comments.

Each locust user is one keep-alive connection playing a rotating set of seeded viewers (so no
viewer exceeds the per-user limits a real person would not reach): a viewer opens a feed
session and pages through it with its cursor, reports what it was shown, and now and then
likes or comments on a clip it saw. ``RIFFLE_MIXED_CONFIG`` names the JSON file the benchmark
writes: ``{"viewers": [token, ...]}``.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

CONFIG: dict[str, Any] = json.loads(open(os.environ["RIFFLE_MIXED_CONFIG"]).read())  # noqa: SIM115
PAGE = 10
PAGES_PER_SESSION = 20
_next_user = itertools.count()


class Viewer:
    def __init__(self, token: str) -> None:
        self.headers = {"Authorization": f"Bearer {token}"}
        self.cursor: str | None = None
        self.pages = 0
        self.shown: list[int] = []


class Swiper(FastHttpUser):
    wait_time = between(0, 0)  # closed loop: the next request when the answer arrives

    def on_start(self) -> None:
        tokens: list[str] = CONFIG["viewers"]
        users = int(os.environ.get("RIFFLE_MIXED_USERS", "64"))
        mine = tokens[next(_next_user) % users :: users] or tokens
        self.viewers = [Viewer(t) for t in mine]

    def viewer(self) -> Viewer:
        """The viewer this connection is playing: they swipe a whole session (PAGES_PER_SESSION
        pages, with events, likes and comments in between), then the next viewer takes over,
        as on a phone. (Picking a viewer at random per request made nearly every feed request a
        first page, which is not how people swipe.)"""
        current = self.viewers[0]
        if current.pages >= PAGES_PER_SESSION:
            current.cursor, current.pages = None, 0
            self.viewers.append(self.viewers.pop(0))
        return self.viewers[0]

    @task(70)
    def feed_page(self) -> None:
        v = self.viewer()
        if v.cursor is None:
            url, name = f"/v1/feed/for-you?limit={PAGE}", "GET /v1/feed/for-you (first page)"
        else:
            url, name = (
                f"/v1/feed/for-you?limit={PAGE}&cursor={v.cursor}",
                "GET /v1/feed/for-you (later page)",
            )
        with self.client.get(url, headers=v.headers, name=name, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text[:200]}")
                v.cursor = None
                return
            page = r.json()
            v.cursor = page.get("next_cursor")
            v.pages += 1
            v.shown = [item["clip"]["id"] for item in page["items"]] or v.shown

    @task(20)
    def events(self) -> None:
        v = self.viewer()
        if not v.shown:
            return self.feed_page()
        now = datetime.now(UTC).isoformat()
        batch = [
            {
                "client_event_id": uuid.uuid4().hex,
                "type": kind,
                "clip_id": clip_id,
                "at": now,
                **({"watch_ms": random.randint(500, 15_000)} if kind == "watch" else {}),
            }
            for clip_id in v.shown
            for kind in ("impression", random.choice(("watch", "skip", "complete")))
        ]
        with self.client.post(
            "/v1/events",
            json={"events": batch},
            headers=v.headers,
            name="POST /v1/events",
            catch_response=True,
        ) as r:
            if r.status_code != 202:
                r.failure(f"{r.status_code}: {r.text[:200]}")
        return None

    @task(10)
    def engage(self) -> None:
        v = self.viewer()
        if not v.shown:
            return self.feed_page()
        clip_id = random.choice(v.shown)
        if random.random() < 0.5:
            name, call = "PUT /v1/clips/{id}/like", self.client.put
            kwargs: dict[str, Any] = {}
            url = f"/v1/clips/{clip_id}/like"
        else:
            name, call = "POST /v1/clips/{id}/comments", self.client.post
            kwargs = {"json": {"body": random.choice(("so good", "again!", "how?", "love this"))}}
            url = f"/v1/clips/{clip_id}/comments"
        with call(url, headers=v.headers, name=name, catch_response=True, **kwargs) as r:
            if r.status_code not in (200, 201):
                r.failure(f"{r.status_code}: {r.text[:200]}")
        return None
