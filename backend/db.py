"""PostgreSQL: the pool, type codecs, transactions and the migration runner.

Services take a connection (``Conn``) and never commit; the request, job or CLI command that
called them owns the transaction. Migrations are plain SQL files under ``migrations/`` applied
in order by one runner that the CLI, the app's tests and the benchmarks all share.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import asyncpg.pool
import msgspec
import structlog

log = structlog.get_logger()

if TYPE_CHECKING:
    Conn: TypeAlias = asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
else:  # Litestar resolves handler annotations at run time, so the aliases must be real types.
    Conn = asyncpg.Connection
    Pool = asyncpg.Pool

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK = 0x52_49_46_46_4C_45  # "RIFFLE"
_MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


# A statement and arguments it can run with harmlessly (matching nothing), to prepare it.
Warm = tuple[str, tuple[Any, ...]]


# PostgreSQL plans a prepared statement's first five runs for their parameters (custom plans),
# and from the sixth weighs its generic plan, planned once, against them. Run once, a warm
# statement left its next four runs on the connection, the first requests', to plan each time:
# 1.1 ms of planning for the cohort exclusion query (300 ids) against 0.2 of execution; 120 For
# You statements on a new connection took 39 ms after one warm run each, 17 ms after six.
WARM_RUNS = 6


async def _init_connection(conn: asyncpg.Connection[asyncpg.Record], *, warm: Sequence[Warm] = ()) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: msgspec.json.encode(value).decode(),
        decoder=msgspec.json.decode,
        schema="pg_catalog",
    )
    if await conn.fetchval("SELECT 1 FROM pg_type WHERE typname = 'vector'"):
        from pgvector.asyncpg import register_vector

        await register_vector(conn)
    for query, args in warm:
        try:
            for _ in range(WARM_RUNS):
                await conn.fetch(query, *args)
        except asyncpg.PostgresError as exc:  # the statement is prepared when it is first used instead
            log.warning("db.warm_failed", error=repr(exc), query=query[:80])


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """What a connection needs on its way back to the pool: nothing beyond what asyncpg always
    does (roll back a transaction left open, drop listeners).

    asyncpg's default reset runs ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
    on every release: a round trip per request, a fifth of a feed page's. Riffle never leaves
    session state behind: settings are ``SET LOCAL``, advisory locks are transaction-level
    (the migration runner's session lock uses its own connection), cursors live inside
    transactions, and the one LISTEN (the outbox relay) removes its listener before release.
    """


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 20, warm: Sequence[Warm] = ()) -> Pool:
    """The process's pool. Each connection runs the ``warm`` statements as it opens: on a
    new connection a statement is prepared on first use, and a new PostgreSQL backend loads the
    catalog entries of every table it touches first; the first For You statement on a backend
    took 8-16 ms against 0.7 after (bench database). A process that started under load served
    its first 64 first pages in 300-400 ms, its requests waiting while connections opened and
    statements were prepared and planned (bench/feed_load.py); with a pool of fixed size (the
    default), all of that is done before the process takes traffic (see WARM_RUNS)."""
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=functools.partial(_init_connection, warm=warm),
        reset=_keep_session,
        command_timeout=60,
        # JIT off: the planner's estimate for an HNSW scan is high enough to trigger it, and
        # compiling took 16 ms of a 22 ms nearest-neighbour query (short queries never win).
        server_settings={"application_name": "riffle", "timezone": "UTC", "jit": "off"},
    )
    assert pool is not None
    return pool


# How a lost PostgreSQL connection shows itself through asyncpg: the server ended it (an
# administrator, a restart, a failover), the network dropped it, or the protocol was left in
# the middle of an operation by such a loss. None of these is the caller's fault or ours.
CONNECTION_LOST: tuple[type[Exception], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)


def lost(conn: Conn, exc: BaseException) -> bool:
    return isinstance(exc, CONNECTION_LOST) or (
        isinstance(exc, asyncpg.exceptions.InterfaceError) and conn.is_closed()
    )


@contextlib.asynccontextmanager
async def in_transaction(conn: Conn) -> AsyncIterator[Conn]:
    """``conn.transaction()``, made safe against a connection lost on the way.

    A lost connection is terminated, so the pool opens a fresh one instead of handing this
    one out again half-broken, and the loss is what propagates (not a second error from
    rolling back over a dead socket). Nothing is committed unless the block finished.
    """
    tx = conn.transaction()
    try:
        await tx.start()
    except BaseException as exc:
        if lost(conn, exc):
            conn.terminate()
        raise
    try:
        yield conn
    except BaseException as exc:
        if lost(conn, exc) or conn.is_closed():
            conn.terminate()
        else:
            try:
                await tx.rollback()
            except Exception as again:
                if not lost(conn, again):
                    raise
                conn.terminate()
        raise
    try:
        await tx.commit()
    except BaseException as exc:
        if lost(conn, exc):
            conn.terminate()
        raise


@contextlib.asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[Conn]:
    """A connection inside a transaction: committed on normal exit, rolled back on error."""
    async with pool.acquire() as conn, in_transaction(conn):
        yield conn


class LazyConn:
    """A pooled connection taken on first use and held until the ``async with`` ends, for a
    read-only route that often needs no database at all (a later feed page served from Redis
    and the process's caches)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._stack = contextlib.AsyncExitStack()
        self._conn: Conn | None = None

    async def __call__(self) -> Conn:
        if self._conn is None:
            self._conn = await self._stack.enter_async_context(self._pool.acquire())
        return self._conn

    async def release(self) -> None:
        """Give the connection back now (a later call takes one again): before waiting on
        something else, so that waiting never holds a connection others need."""
        if self._conn is None:
            return
        self._conn = None
        await self._stack.aclose()
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> LazyConn:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


# --- migrations -----------------------------------------------------------------------------


class MigrationError(RuntimeError):
    """The database's migration history does not match the files on disk."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def read_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        found.append(Migration(match["version"], match["name"], path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return found


async def migrate(conn: Conn, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction; return their names.

    Holds a session advisory lock for the whole run so two processes never migrate at once,
    and refuses to go on if a file that was already applied has since been edited or removed.
    """
    migrations = read_migrations(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    text PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        applied = {
            r["version"]: (r["name"], r["checksum"])
            for r in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        }
        on_disk = {m.version: m for m in migrations}
        for version, (name, checksum) in sorted(applied.items()):
            migration = on_disk.get(version)
            if migration is None:
                raise MigrationError(f"migration {version}_{name}.sql was applied but is missing on disk")
            if migration.checksum != checksum:
                raise MigrationError(
                    f"migration {version}_{name}.sql was edited after it was applied; "
                    "add a new migration instead of changing an applied one"
                )
        done: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("db.migration.applied", version=migration.version, name=migration.name)
            done.append(f"{migration.version}_{migration.name}")
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)


async def migrate_url(url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    conn: Conn = await asyncpg.connect(url)
    try:
        return await migrate(conn, directory)
    finally:
        await conn.close()


async def ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` on the server behind ``admin_url`` if it does not exist."""
    conn: Conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def id_array(ids: Iterable[int]) -> str:
    """Ids as a PostgreSQL array literal, for a ``$n::text::bigint[]`` parameter: asyncpg
    encodes a ``bigint[]`` parameter element by element, about 0.8 µs each (a list of 300 ids:
    250 µs of the caller's CPU against 10 for its text, measured), and PostgreSQL parses the
    text in C."""
    return "{" + ",".join(map(str, ids)) + "}"


def unique_violation(exc: BaseException, constraint: str) -> bool:
    """True when ``exc`` is PostgreSQL refusing a duplicate under the named constraint or index."""
    return isinstance(exc, asyncpg.UniqueViolationError) and exc.constraint_name == constraint


def record_to(struct: type[Any], record: asyncpg.Record | None) -> Any:
    """Turn a row into a msgspec Struct at the service boundary (records never leak upward)."""
    if record is None:
        return None
    return msgspec.convert(dict(record.items()), struct, from_attributes=False)
