"""Killing the worker mid-take loses nothing and duplicates nothing.

Real processes: `riffle worker` runs the takes; it is SIGKILLed while both takes of a job are
rendering (after they were submitted and showed progress), then a fresh worker is started. The
queue's sweep re-delivers the dead worker's jobs once their heartbeat lapses, the take lock
lapses too, and the new worker resumes each take from its recorded provider job.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.backend.generation.test_generations import BODY, key, wait_for
from tests.live import Process, kill, stop, worker


def start_worker(database_url: str, redis_url: str, data_dir: Path) -> Process:
    return worker(database_url, redis_url, data_dir, RIFFLE_TAKE_HEARTBEAT_S="2")


async def test_a_killed_worker_loses_and_duplicates_nothing(
    client, users, conn, database_url, redis_url, tmp_path
):
    alice = await users.make("alice")
    body = BODY | {"prompt": "a lighthouse in a storm [[slow:6]]", "takes": 2}
    r = await client.post("/v1/generations", json=body, headers=alice.headers | key())
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]

    first = start_worker(database_url, redis_url, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = await conn.fetch("SELECT status, progress FROM takes WHERE job_id = $1", job_id)
            if all(row["status"] == "in_progress" and row["progress"] > 0 for row in rows):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"takes never got going: {rows}")
    finally:
        kill(first)
    assert await conn.fetchval("SELECT count(*) FROM clips") == 0  # killed before anything was stored

    second = start_worker(database_url, redis_url, tmp_path)
    try:
        done = await wait_for(client, job_id, alice.headers, within_s=90)
    finally:
        out = stop(second)
    assert done["status"] == "succeeded", (done, out)
    takes = await conn.fetch("SELECT id, clip_id, provider_job_id FROM takes WHERE job_id = $1", job_id)
    clips = await conn.fetch("SELECT id, take_id FROM clips WHERE job_id = $1", job_id)
    assert len(clips) == 2
    assert sorted(c["take_id"] for c in clips) == sorted(t["id"] for t in takes)
    assert {t["clip_id"] for t in takes} == {c["id"] for c in clips}
    # One video and one poster per take: the dead worker stored nothing, the new one stored once.
    assert await conn.fetchval("SELECT count(*) FROM media WHERE deleted_at IS NULL") == 4
    assert await conn.fetchval("SELECT reserved_seconds FROM generation_quota") == 4
