"""The pool's connections prepare the hot statements as they open, before any request needs them."""

from __future__ import annotations

from backend import db
from backend.app import WARM_STATEMENTS
from backend.settings import load_settings

PREPARED = "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"


async def test_every_connection_prepares_the_warm_statements_as_it_opens(database_url):
    broken = ("SELECT * FROM no_such_table WHERE id = $1", (1,))
    pool = await db.create_pool(database_url, min_size=2, max_size=2, warm=[*WARM_STATEMENTS, broken])
    try:
        held = [await pool.acquire() for _ in range(2)]
        try:
            for conn in held:
                prepared = {r["statement"]: r for r in await conn.fetch(PREPARED)}
                for query, _ in WARM_STATEMENTS:
                    # Past the runs PostgreSQL plans one by one: a request's run finds the plan made.
                    assert prepared[query]["custom_plans"] == 5
                    assert prepared[query]["generic_plans"] >= 1
                # One that cannot run is left to fail when it is used; the connection serves.
                assert await conn.fetchval("SELECT 1") == 1
        finally:
            for conn in held:
                await pool.release(conn)
    finally:
        await pool.close()


def test_the_pool_is_of_fixed_size_unless_told_otherwise():
    assert load_settings({}).db_pool_min is None
    assert load_settings({"RIFFLE_DB_POOL_MIN": "2"}).db_pool_min == 2
