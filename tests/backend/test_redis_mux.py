"""The shared, pipelined Redis connection feed pages use (backend/redis_mux.py), against a real
Redis: replies reach the callers that asked, errors are redis-py's, and a lost, slow or
unreachable Redis is noticed and recovered from."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest
import uvloop
from redis import exceptions as redis_errors

from backend.redis_mux import Multiplexed, pack
from backend.redis_pool import Script, create_redis

# Holds Redis for about ARGV[1] milliseconds, then answers ARGV[2].
SPIN = (
    "local t = redis.call('TIME'); local stop = t[1] * 1e6 + t[2] + ARGV[1] * 1000; "
    "repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] >= stop; return ARGV[2]"
)


async def client_id(plain: Any, name: str) -> int:
    listing: bytes = await plain.execute_command("CLIENT", "LIST")
    for line in listing.decode().splitlines():
        fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
        if fields.get("name") == name:
            return int(fields["id"])
    raise AssertionError(f"no Redis client named {name}")


def with_db(url: str, db: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{db}"


async def test_many_callers_at_once_each_get_their_own_reply(redis_url: str) -> None:
    mux = Multiplexed(redis_url)
    try:
        values = [f"v{i}".encode() * (i % 7 + 1) for i in range(300)]
        await asyncio.gather(*(mux.execute("SET", f"mux:{i}", v) for i, v in enumerate(values)))
        got = await asyncio.gather(*(mux.execute("GET", f"mux:{i}") for i in range(300)))
        assert got == values
        assert await mux.execute("INCRBY", "mux:n", 5) == 5
        assert await mux.execute("LRANGE", "mux:none", 0, -1) == []
        assert await mux.execute("GET", "mux:none") is None
    finally:
        await mux.aclose()


async def test_numbers_and_text_are_sent_as_redis_py_sends_them(redis_url: str) -> None:
    assert pack(("SET", "k", 1.5)) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n1.5\r\n"
    mux = Multiplexed(redis_url)
    try:
        await mux.execute("SET", "mux:é", "ünï")
        await mux.execute("ZADD", "mux:z", 2.25, 7)
        plain = create_redis(redis_url)
        assert await plain.get("mux:é") == "ünï".encode()
        assert await plain.zscore("mux:z", "7") == 2.25
        await plain.aclose()
        with pytest.raises(redis_errors.DataError):
            await mux.execute("SET", "mux:b", True)  # type: ignore[arg-type]
    finally:
        await mux.aclose()


async def test_an_error_reply_raises_for_its_caller_only(redis_url: str) -> None:
    mux = Multiplexed(redis_url)
    try:
        await mux.execute("SET", "mux:s", "text")
        results = await asyncio.gather(
            mux.execute("INCR", "mux:s"), mux.execute("GET", "mux:s"), return_exceptions=True
        )
        assert isinstance(results[0], redis_errors.ResponseError)
        assert results[1] == b"text"
    finally:
        await mux.aclose()


async def test_scripts_run_by_digest_and_are_loaded_when_redis_lacks_them(redis_url: str) -> None:
    mux = Multiplexed(redis_url)
    script = Script("return {KEYS[1], ARGV[1], 7}")
    try:
        await mux.execute("SCRIPT", "FLUSH")
        with pytest.raises(redis_errors.NoScriptError):
            await mux.evalsha(script.sha, 1, "k", "a")
        assert await script(mux, ["k"], ["a"]) == [b"k", b"a", 7]  # EVAL, then cached by Redis
        assert await mux.evalsha(script.sha, 1, "k", "b") == [b"k", b"b", 7]
    finally:
        await mux.aclose()


async def test_a_cancelled_call_leaves_the_replies_in_step(redis_url: str) -> None:
    mux = Multiplexed(redis_url)
    try:
        slow = asyncio.create_task(mux.execute("EVAL", SPIN, 0, 100, "slow"))
        await asyncio.sleep(0.02)  # sent, not answered
        after = asyncio.create_task(mux.execute("ECHO", "mine"))
        slow.cancel()
        assert await after == b"mine"
        assert await mux.execute("ECHO", "next") == b"next"
    finally:
        await mux.aclose()


async def test_no_reply_in_time_is_a_timeout_and_the_next_call_gets_a_new_connection(redis_url: str) -> None:
    mux = Multiplexed(redis_url, timeout_s=0.1)
    try:
        assert await mux.execute("PING") == b"PONG"
        waiting = asyncio.gather(
            mux.execute("EVAL", SPIN, 0, 400, "late"), mux.execute("ECHO", "behind"), return_exceptions=True
        )
        late, behind = await waiting
        assert isinstance(late, redis_errors.TimeoutError)
        assert isinstance(behind, redis_errors.TimeoutError)  # owed on the same connection
        await asyncio.sleep(0.4)  # the script finishes
        assert await mux.execute("ECHO", "fresh") == b"fresh"
    finally:
        await mux.aclose()


async def test_a_killed_connection_fails_its_callers_and_is_made_again(redis_url: str) -> None:
    mux = Multiplexed(redis_url, name="mux-test-kill")
    plain = create_redis(redis_url)
    try:
        assert await mux.execute("PING") == b"PONG"
        pending = asyncio.create_task(mux.execute("EVAL", SPIN, 0, 150, "x"))
        await asyncio.sleep(0.02)
        # CLIENT KILL is served after the script: the reply and the kill race, so accept
        # either outcome for the call in flight.
        killed = await plain.execute_command("CLIENT", "KILL", "ID", await client_id(plain, "mux-test-kill"))
        assert killed == 1
        outcome: Any = await asyncio.gather(pending, return_exceptions=True)
        assert outcome[0] == b"x" or isinstance(outcome[0], redis_errors.ConnectionError)
        await asyncio.sleep(0.05)
        assert await mux.execute("ECHO", "again") == b"again"
        assert await client_id(plain, "mux-test-kill")  # connected again, under its name
    finally:
        await mux.aclose()
        await plain.aclose()


async def test_the_database_in_the_url_is_the_one_used(redis_url: str) -> None:
    mux = Multiplexed(with_db(redis_url, 5))
    plain = create_redis(with_db(redis_url, 5))
    try:
        await mux.execute("SET", "mux:db", "five")
        assert await plain.get("mux:db") == b"five"
    finally:
        await plain.delete("mux:db")
        await mux.aclose()
        await plain.aclose()


async def test_a_wrong_password_is_refused_as_redis_py_refuses_it(redis_url: str) -> None:
    host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
    mux = Multiplexed(f"redis://riffle:wrong@{host_port}/0")
    with pytest.raises(redis_errors.AuthenticationError):
        await mux.execute("PING")


async def test_redis_away_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    mux = Multiplexed(f"redis://127.0.0.1:{port}/0")
    with pytest.raises(redis_errors.ConnectionError):
        await mux.execute("PING")


def test_it_works_on_uvloop_as_the_server_runs_it(redis_url: str) -> None:
    """`riffle serve` runs uvloop, whose transports are not asyncio's classes."""
    result: list[Any] = []

    async def main() -> None:
        mux = Multiplexed(redis_url)
        try:
            result.append(await asyncio.gather(*(mux.execute("ECHO", str(i)) for i in range(50))))
        finally:
            await mux.aclose()

    thread = threading.Thread(target=lambda: uvloop.run(main()))
    thread.start()
    thread.join(10)
    assert result == [[str(i).encode() for i in range(50)]]
