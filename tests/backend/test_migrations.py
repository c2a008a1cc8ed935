"""The migration runner: applies in order, records checksums, refuses edited history, serialises."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from backend import db


async def _fresh(pg_admin_url: str, name: str) -> str:
    admin = await asyncpg.connect(pg_admin_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    from tests.conftest import _database_url

    return _database_url(pg_admin_url, name)


async def test_applies_once_and_records_checksums(pg_admin_url, tmp_path):
    url = await _fresh(pg_admin_url, "riffle_mig_once")
    applied = await db.migrate_url(url)
    assert applied[0] == "0001_init"
    assert await db.migrate_url(url) == []
    conn = await asyncpg.connect(url)
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
    await conn.close()
    assert [r["version"] for r in rows] == [m.version for m in db.read_migrations()]
    assert all(len(r["checksum"]) == 64 for r in rows)


async def test_refuses_an_edited_migration(pg_admin_url, tmp_path):
    url = await _fresh(pg_admin_url, "riffle_mig_edit")
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_first.sql").write_text("CREATE TABLE t (id int);")
    assert await db.migrate_url(url, folder) == ["0001_first"]
    (folder / "0001_first.sql").write_text("CREATE TABLE t (id bigint);")
    with pytest.raises(db.MigrationError, match="edited"):
        await db.migrate_url(url, folder)
    (folder / "0001_first.sql").unlink()
    with pytest.raises(db.MigrationError, match="missing"):
        await db.migrate_url(url, folder)


async def test_a_failing_migration_leaves_nothing_behind(pg_admin_url, tmp_path):
    url = await _fresh(pg_admin_url, "riffle_mig_fail")
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (folder / "0002_broken.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(asyncpg.PostgresError):
        await db.migrate_url(url, folder)
    conn = await asyncpg.connect(url)
    assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 1
    assert await conn.fetchval("SELECT to_regclass('half')") is None
    await conn.close()


async def test_two_processes_migrating_at_once_apply_each_file_once(pg_admin_url, tmp_path):
    url = await _fresh(pg_admin_url, "riffle_mig_race")
    folder = tmp_path / "migrations"
    shutil.copytree(Path(db.MIGRATIONS_DIR), folder)
    results = await asyncio.gather(*[db.migrate_url(url, folder) for _ in range(4)])
    applied = [name for r in results for name in r]
    assert sorted(applied) == sorted(f"{m.version}_{m.name}" for m in db.read_migrations(folder))


def test_file_names_are_checked(tmp_path):
    (tmp_path / "1_bad.sql").write_text("")
    with pytest.raises(db.MigrationError):
        db.read_migrations(tmp_path)
