"""What one API process holds while it runs, and the dependencies handlers ask for.

Built in the app's lifespan (nothing connects at import time) and reached by handlers through
Litestar's dependency injection: ``conn`` (a connection in the request's transaction),
``viewer`` / ``maybe_viewer`` (the authenticated caller), ``limiter``, ``cursors`` and friends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Optional, TypeVar

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from saq import Queue

from backend.accounts import service as accounts
from backend.accounts.passwords import Passwords
from backend.accounts.session_cache import SessionCache
from backend.auth import Viewer, bearer_token, hash_token
from backend.clips.cards import CardCache, CardLoader
from backend.cursor import CursorCodec
from backend.db import Conn, Pool, in_transaction
from backend.errors import Unauthorized
from backend.generation.engine import GenerationEngine
from backend.media.storage import Storage
from backend.ratelimit import Limiter
from backend.realtime.hub import Hub
from backend.redis_mux import Multiplexed
from backend.redis_pool import Redis
from backend.settings import Settings
from feed import ready
from feed.cohorts import Heads
from feed.encoder import Encoder
from feed.visibility import VisibilityWatch

T = TypeVar("T")

# Handler parameters that Litestar fills by name from DEPENDENCIES below.
ConnDep = NamedDependency[Conn]
ViewerDep = NamedDependency[Viewer]
MaybeViewerDep = NamedDependency[Optional[Viewer]]  # noqa: UP045 (Litestar unwraps `X | None` here)
SettingsDep = NamedDependency[Settings]
LimiterDep = NamedDependency[Limiter]
CursorsDep = NamedDependency[CursorCodec]
PasswordsDep = NamedDependency[Passwords]
RedisDep = NamedDependency[Redis]
StorageDep = NamedDependency[Storage]
SigningKeyDep = NamedDependency[bytes]
GenerationDep = NamedDependency[GenerationEngine]
EncoderDep = NamedDependency[Encoder]


@dataclass
class Runtime:
    settings: Settings
    pool: Pool
    redis: Redis
    mux: Multiplexed  # the same Redis, one pipelined connection for feed pages (backend/redis_mux.py)
    queue: Queue
    limiter: Limiter
    cursors: CursorCodec
    passwords: Passwords
    signing_key: bytes
    storage: Storage
    generation: GenerationEngine
    encoder: Encoder
    hub: Hub
    sessions: SessionCache
    cards: CardCache
    loader: CardLoader  # renders the cards missing from ``cards``, many requests' at once
    visibility: VisibilityWatch
    rankings: asyncio.Semaphore  # feed rankings running at once (RIFFLE_FEED_RANKINGS)
    cohort_heads: Heads  # the taste cohorts' lists' heads (feed.cohorts)


def runtime(state: State) -> Runtime:
    rt: Runtime = state.runtime
    return rt


async def feed_changed(state: State, viewer_id: int, change: Awaitable[T]) -> T:
    """Make ``change``, which changes what the viewer's feed is made of (steering, follows,
    blocks, mutes, hidden creators, not interested), and then no ranking kept from before
    (feed.ready) opens their sessions; what the change returned."""
    done = await change
    rt = runtime(state)
    await ready.forget(rt.redis, rt.settings, viewer_id)
    return done


# Route option for handlers that only read: their statements run one by one, without the
# BEGIN and COMMIT round trips (two of a feed page's five). A read-only handler that needs
# several statements to see one snapshot, or SET LOCAL, opens its own transaction.
READ_ONLY = {"read_only": True}


async def provide_conn(request: Request[Any, Any, Any], state: State) -> AsyncIterator[Conn]:
    """A connection inside the request's transaction: committed after the handler returns and
    before the response is sent (so a 2xx means durable), rolled back if anything raised.
    Routes marked ``opt=READ_ONLY`` get the connection without a transaction."""
    async with runtime(state).pool.acquire() as conn:
        if request.route_handler.opt.get("read_only"):
            yield conn
        else:
            async with in_transaction(conn):
                yield conn


async def viewer_from(
    request: Request[Any, Any, Any], rt: Runtime, conn: Callable[[], Awaitable[Conn]]
) -> Viewer | None:
    """The caller, from the process's session cache or else from PostgreSQL through ``conn``
    (awaited only then); None without an Authorization header."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        if "authorization" in request.headers:
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        return None
    token_hash = hash_token(token)
    viewer = rt.sessions.get(token_hash)
    if viewer is not None:
        return viewer
    epoch = rt.sessions.epoch  # before the lookup: a revocation noticed meanwhile must win
    viewer = await accounts.authenticate(await conn(), token_hash, ttl_days=rt.settings.session_ttl_days)
    if viewer is None:
        raise Unauthorized("this token is not valid: it is unknown, expired or revoked", code="invalid_token")
    rt.sessions.put(token_hash, viewer, epoch=epoch)
    return viewer


async def provide_maybe_viewer(request: Request[Any, Any, Any], state: State, conn: ConnDep) -> Viewer | None:
    async def given() -> Conn:
        return conn

    return await viewer_from(request, runtime(state), given)


async def provide_viewer(maybe_viewer: MaybeViewerDep) -> Viewer:
    if maybe_viewer is None:
        raise Unauthorized()
    return maybe_viewer


def provide_settings(state: State) -> Settings:
    return runtime(state).settings


def provide_limiter(state: State) -> Limiter:
    return runtime(state).limiter


def provide_cursors(state: State) -> CursorCodec:
    return runtime(state).cursors


def provide_passwords(state: State) -> Passwords:
    return runtime(state).passwords


def provide_redis(state: State) -> Redis:
    return runtime(state).redis


def provide_storage(state: State) -> Storage:
    return runtime(state).storage


def provide_signing_key(state: State) -> bytes:
    return runtime(state).signing_key


def provide_generation(state: State) -> GenerationEngine:
    return runtime(state).generation


def provide_encoder(state: State) -> Encoder:
    return runtime(state).encoder


DEPENDENCIES = {
    "conn": Provide(provide_conn),
    "maybe_viewer": Provide(provide_maybe_viewer),
    "viewer": Provide(provide_viewer),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "limiter": Provide(provide_limiter, sync_to_thread=False),
    "cursors": Provide(provide_cursors, sync_to_thread=False),
    "passwords": Provide(provide_passwords, sync_to_thread=False),
    "redis": Provide(provide_redis, sync_to_thread=False),
    "storage": Provide(provide_storage, sync_to_thread=False),
    "signing_key": Provide(provide_signing_key, sync_to_thread=False),
    "generation": Provide(provide_generation, sync_to_thread=False),
    "encoder": Provide(provide_encoder, sync_to_thread=False),
}
