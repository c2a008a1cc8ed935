"""ANN recall: the HNSW (halfvec) index against exact search, on the seeded 200,000 clips.

For QUERIES random seeded users, the query is their taste vector as the feed computes it
(`feed.service.taste_vector`), and the candidate query is the feed's own (`feed.queries.NEAREST`:
published, public, not the viewer's own clips, top 100 by cosine distance on the halfvec
expression the index serves, with `hnsw.iterative_scan = relaxed_order` as the feed sets it).
Exact answers come from the same query with index scans turned off (a sequential scan that
computes every distance). recall@100 = |ANN ∩ exact| / 100, averaged over the queries, for a
range of `hnsw.ef_search` values (the feed uses FEED_EF_SEARCH), with the query latency.

Run: `.venv/bin/python bench/ann_recall.py [--queries 200] [--ef 40,100,200,400]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, ms, percentile, servers
from seed import ensure_seeded

from backend import db
from feed import queries as q
from feed.service import EF_SEARCH, taste_vector

K = 100


async def measure(database_url: str, queries: int, efs: list[int], seed: int = 5) -> dict[str, Any]:
    pool = await db.create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            users = [
                r["user_id"] for r in await conn.fetch("SELECT user_id FROM user_vectors ORDER BY user_id")
            ]
            chosen = random.Random(seed).sample(users, min(queries, len(users)))
            tastes = [(u, await taste_vector(conn, u)) for u in chosen]
            tastes = [(u, t) for u, t in tastes if t is not None]

            exact: dict[int, set[int]] = {}
            exact_s = []
            async with conn.transaction():
                await conn.execute("SET LOCAL enable_indexscan = off")
                await conn.execute("SET LOCAL enable_bitmapscan = off")
                # A plan per execution: PostgreSQL's cached generic plan of the prepared query
                # does not follow SET LOCAL, so the exact run could reuse an index plan (and
                # the ANN run a sequential one).
                await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                for user_id, taste in tastes:
                    started = time.perf_counter()
                    rows = await conn.fetch(q.NEAREST, user_id, taste, K)
                    exact_s.append(time.perf_counter() - started)
                    exact[user_id] = {r["clip_id"] for r in rows}
                plan = await conn.fetch("EXPLAIN " + q.NEAREST, tastes[0][0], tastes[0][1], K)
                assert not any("hnsw" in r[0].lower() for r in plan), "the exact run used the index"

            out: dict[str, Any] = {
                "queries": len(tastes),
                "k": K,
                "exact_p50_ms": ms(percentile(exact_s, 0.5)),
                "feed_ef_search": EF_SEARCH,
            }
            for ef in efs:
                recalls, took = [], []
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
                    await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                    plan = await conn.fetch("EXPLAIN " + q.NEAREST, tastes[0][0], tastes[0][1], K)
                    assert any("clip_vectors_hnsw" in r[0] for r in plan), "the ANN run did not use the index"
                    for user_id, taste in tastes:
                        started = time.perf_counter()
                        rows = await conn.fetch(q.NEAREST, user_id, taste, K)
                        took.append(time.perf_counter() - started)
                        recalls.append(len(exact[user_id] & {r["clip_id"] for r in rows}) / K)
                out[f"ef_search={ef}"] = {
                    "recall@100_mean": round(sum(recalls) / len(recalls), 4),
                    "recall@100_min": round(min(recalls), 2),
                    "p50_ms": ms(percentile(took, 0.5)),
                    "p99_ms": ms(percentile(took, 0.99)),
                }
            return out
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef", default="40,100,200,400")
    args = parser.parse_args()
    before = machine()
    with servers(need_redis=False) as svc:
        seeded = ensure_seeded(svc.database_url, admin_url=svc.admin_url)
        result = asyncio.run(measure(svc.database_url, args.queries, [int(x) for x in args.ef.split(",")]))
    result = {"data_set": {k: seeded[k] for k in ("clips", "users")}} | result | {"machine": before}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
