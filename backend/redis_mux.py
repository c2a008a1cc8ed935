"""One Redis connection that many requests share at once, for the hottest calls.

redis-py gives each call in flight a connection of its own from its pool: with 64 feed pages
in flight a process holds 64 sockets to Redis, and every reply wakes the event loop for one
read on one socket and walks redis-py's layers (pool, retry, timeouts, events). Here the
commands every caller sends in one turn of the event loop are written to one socket together
and the replies, which Redis sends in the same order, are read in batches and handed back in
that order (RESP pipelining), with hiredis parsing them. Measured on a Litestar route that
makes one Lua call under 64 connections, the call cost the server 50-85 µs of CPU this way
against about 200 through redis-py (the route served 3,300-4,200 requests/s against
2,400-2,700) and no less through coredis's multiplexing pool (2,300-2,450/s); writing each
turn's commands together saved 20 µs more. For You later pages went from 16% to 19% of the
bare route's throughput with the first step (docs/BENCHMARKS.md).

It is deliberately small: commands and Lua scripts only (no pub/sub, blocking commands or
transactions, which need a connection of their own; those stay on redis-py), RESP2, one
connection made on first use and made again after it is lost. Errors are redis-py's, so
callers and the API's error handlers treat both clients alike: a lost or unreachable Redis
is ``ConnectionError``, no reply within the timeout ``TimeoutError`` (the connection is then
dropped: the replies still owed on it cannot be matched to anyone), an error reply
``ResponseError`` (``NoScriptError`` for NOSCRIPT).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Any, cast

import hiredis
from redis import exceptions as redis_errors
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url

Arg = str | int | float | bytes

CONNECT_TIMEOUT_S = 5.0


def _encode(value: Arg) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):  # an int, but redis-py refuses it too: say 0 or 1
        raise redis_errors.DataError("a boolean is not a Redis value: pass 0 or 1")
    if isinstance(value, int | float):
        return repr(value).encode()
    raise redis_errors.DataError(f"not a Redis value: {type(value).__name__}")


def pack(args: tuple[Arg, ...]) -> bytes:
    """A command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _encode(arg)
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _error(reply: redis_errors.ResponseError) -> redis_errors.RedisError:
    message = str(reply)
    if message.startswith("NOSCRIPT"):
        return redis_errors.NoScriptError(message)
    if message.startswith(("NOAUTH", "WRONGPASS")):
        return redis_errors.AuthenticationError(message)
    return reply


class _Protocol(asyncio.Protocol):
    """The connection: callers waiting for replies in the order they sent, and one timer that
    checks the oldest of them is answered within ``timeout_s`` (a timer per call cost a page
    6.5 µs of the event loop's time)."""

    def __init__(self, timeout_s: float) -> None:
        self.reader = hiredis.Reader(replyError=redis_errors.ResponseError)
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.deadlines: collections.deque[float] = collections.deque()
        self.timeout_s = timeout_s
        self.timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.outgoing: list[bytes] = []  # sent in this turn of the event loop, written at its end

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.close(redis_errors.ConnectionError(f"Redis sent what is not RESP: {exc}"))
                return
            if reply is False:
                return
            if not self.waiting:  # nobody asked: the stream can no longer be trusted
                self.close(redis_errors.ConnectionError("Redis sent a reply nobody asked for"))
                return
            future = self.waiting.popleft()
            self.deadlines.popleft()
            if future.done():  # its caller was cancelled; the reply is still theirs
                continue
            if isinstance(reply, redis_errors.ResponseError):
                future.set_exception(_error(reply))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(redis_errors.ConnectionError(f"lost the connection to Redis: {exc or 'closed'}"))

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        if self.closed or self.transport is None:
            raise redis_errors.ConnectionError("the connection to Redis is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self.outgoing:
            loop.call_soon(self.flush)
        self.outgoing.append(payload)
        self.waiting.append(future)
        self.deadlines.append(loop.time() + self.timeout_s)
        if self.timer is None:
            self.timer = loop.call_at(self.deadlines[0], self.check)
        return future

    def flush(self) -> None:
        """Write what callers sent in one turn of the event loop in one system call (a write
        per call was the largest single line of a later page's profile; 8% less server CPU on
        a route that makes one call, with 64 connections)."""
        if self.outgoing and not self.closed and self.transport is not None:
            self.transport.write(b"".join(self.outgoing) if len(self.outgoing) > 1 else self.outgoing[0])
        self.outgoing.clear()

    def check(self) -> None:
        """The oldest reply still owed is late: everything after it on this connection is
        stuck behind it, so the connection is given up. Otherwise look again at its deadline."""
        self.timer = None
        if not self.deadlines or self.closed:
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self.deadlines[0]:
            self.close(redis_errors.TimeoutError(f"no reply from Redis within {self.timeout_s} s"))
        else:
            self.timer = loop.call_at(self.deadlines[0], self.check)

    def close(self, reason: redis_errors.RedisError) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.deadlines.clear()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(reason)
        if self.transport is not None:
            self.transport.close()


class Multiplexed:
    """Redis commands over one shared, pipelined connection (see the module's text).

    ``timeout_s`` bounds each call from when it is sent to its reply (when one is late, every
    call waiting on the connection fails with ``TimeoutError``); ``name`` is the
    connection's name in Redis (``CLIENT LIST``)."""

    def __init__(self, url: str, *, timeout_s: float = 5.0, name: str = "riffle-mux") -> None:
        self.timeout_s = timeout_s
        self.name = name
        self._options = parse_url(url)
        self._protocol: _Protocol | None = None
        self._connecting = asyncio.Lock()

    async def execute(self, *args: Arg) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connect()
        return await protocol.send(pack(args))

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Arg) -> Any:
        return await self.execute("EVALSHA", sha, numkeys, *keys_and_args)

    async def eval(self, script: str, numkeys: int, *keys_and_args: Arg) -> Any:
        return await self.execute("EVAL", script, numkeys, *keys_and_args)

    async def aclose(self) -> None:
        if self._protocol is not None:
            self._protocol.close(redis_errors.ConnectionError("the client was closed"))
            self._protocol = None

    async def _connect(self) -> _Protocol:
        async with self._connecting:
            if self._protocol is not None and not self._protocol.closed:
                return self._protocol  # another caller connected meanwhile
            options = self._options
            loop = asyncio.get_running_loop()
            protocol = _Protocol(self.timeout_s)
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    if options.get("connection_class") is UnixDomainSocketConnection:
                        await loop.create_unix_connection(lambda: protocol, options["path"])
                    else:
                        host, port = options.get("host", "localhost"), options.get("port", 6379)
                        tls = self._tls() if options.get("connection_class") is SSLConnection else None
                        await loop.create_connection(lambda: protocol, host, port, ssl=tls)
                    hello: list[asyncio.Future[Any]] = []
                    if options.get("password"):
                        user = options.get("username")
                        auth = ("AUTH", user, options["password"]) if user else ("AUTH", options["password"])
                        hello.append(protocol.send(pack(auth)))
                    if options.get("db"):
                        hello.append(protocol.send(pack(("SELECT", options["db"]))))
                    hello.append(protocol.send(pack(("CLIENT", "SETNAME", self.name))))
                    for answer in hello:
                        await answer
            except TimeoutError:
                protocol.close(redis_errors.TimeoutError("connecting to Redis timed out"))
                raise redis_errors.TimeoutError("connecting to Redis timed out") from None
            except OSError as exc:
                protocol.close(redis_errors.ConnectionError(str(exc)))
                raise redis_errors.ConnectionError(f"cannot connect to Redis: {exc}") from exc
            except BaseException:  # refused (AUTH, SELECT) or the caller cancelled: nothing half made stays
                protocol.close(redis_errors.ConnectionError("the connection to Redis was not completed"))
                raise
            self._protocol = protocol
            return protocol

    def _tls(self) -> ssl.SSLContext:
        cafile = self._options.get("ssl_ca_certs")
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        if self._options.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context
