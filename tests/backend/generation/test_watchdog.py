"""Nothing stays "processing" forever: the watchdog hands a stalled take back to the queue, and
fails it (giving the seconds back) once it is out of attempts."""

from __future__ import annotations

from backend.generation.tasks import watch_takes
from backend.worker import open_resources
from tests.backend.generation.test_generations import BODY, key


async def stalled_take(conn, client, user, *, attempts: int) -> int:
    r = await client.post("/v1/generations", json=BODY | {"takes": 1}, headers=user.headers | key())
    take_id = r.json()["takes"][0]["id"]
    await conn.execute(
        "UPDATE takes SET status = 'in_progress', provider = 'local', provider_job_id = $2, attempts = $3, "
        "progressed_at = now() - interval '2 hours' WHERE id = $1",
        take_id,
        f"local-{take_id:032x}",
        attempts,
    )
    return take_id


async def test_stalled_takes_are_retried_then_failed(client, users, conn, settings):
    alice = await users.make("alice")
    retried = await stalled_take(conn, client, alice, attempts=0)
    exhausted = await stalled_take(conn, client, alice, attempts=settings.take_max_attempts - 1)
    async with open_resources(settings) as res:
        assert await watch_takes({"riffle": res}) == 2
        jobs = (await res.queue.info(jobs=True))["jobs"]
    assert any(j["function"] == "run_take" and j["kwargs"] == {"take_id": retried} for j in jobs)
    row = await conn.fetchrow("SELECT status, attempts FROM takes WHERE id = $1", retried)
    assert (row["status"], row["attempts"]) == ("in_progress", 1)
    failed = await conn.fetchrow(
        "SELECT status, error_code, error_message FROM takes WHERE id = $1", exhausted
    )
    assert (failed["status"], failed["error_code"]) == ("failed", "stalled")
    assert "nothing was charged" in failed["error_message"]
    usage = (await client.get("/v1/generations/usage", headers=alice.headers)).json()
    assert usage["reserved_seconds"] == BODY["seconds"]  # only the retried take still holds seconds
