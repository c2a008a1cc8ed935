"""ANN recall: the HNSW (halfvec) index against exact search, on the seeded 200,000 clips.

For QUERIES random seeded users, the vectors are what the feed asks the index about
(`feed.service.interest_queries`: one query per interest, the 100 split between them), and, for
comparison, the single blended taste vector the feed used to ask with. The candidate query is
the feed's own (`feed.queries.NEAREST`: published, public, not the viewer's own clips, top n by
cosine distance on the halfvec expression the index serves, with `hnsw.iterative_scan =
relaxed_order` as the feed sets it). Exact answers come from the same queries with index scans
turned off (a sequential scan that computes every distance). recall@100 = |ANN ∩ exact| /
|exact| over the union of a viewer's queries, averaged over viewers, for a range of
`hnsw.ef_search` values (the feed uses EF_SEARCH), with the latency of all of a viewer's queries.

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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, ms, percentile, servers
from seed import ensure_seeded

from backend import db
from feed import queries as q
from feed.service import EF_SEARCH, interest_queries

K = 100


Retrieval = list[tuple[np.ndarray, int]]  # the vectors asked of the index, with how many each


async def _run(conn: Any, user_id: int, retrieval: Retrieval) -> set[int]:
    found: set[int] = set()
    for vector, limit in retrieval:
        found |= {r["clip_id"] for r in await conn.fetch(q.NEAREST, user_id, vector, limit)}
    return found


async def measure(database_url: str, queries: int, efs: list[int], seed: int = 5) -> dict[str, Any]:
    pool = await db.create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            users = [
                r["user_id"] for r in await conn.fetch("SELECT user_id FROM user_vectors ORDER BY user_id")
            ]
            chosen = random.Random(seed).sample(users, min(queries, len(users)))
            # Two ways of asking for K neighbours: what the feed does (each interest its own
            # query, K split between them) and, for comparison, the one blended taste vector.
            modes: dict[str, dict[int, Retrieval]] = {"feed_interests": {}, "single_taste_vector": {}}
            for user_id in chosen:
                taste, asked = await interest_queries(conn, user_id)
                if taste is None or not asked:
                    continue
                modes["feed_interests"][user_id] = [(v, K // len(asked)) for v in asked]
                modes["single_taste_vector"][user_id] = [(taste, K)]
            sample_user, sample = next(iter(modes["feed_interests"].items()))
            sample_args = (sample_user, sample[0][0], K)

            out: dict[str, Any] = {
                "queries": len(modes["feed_interests"]),
                "k": K,
                "feed_ef_search": EF_SEARCH,
                "interest_queries_per_viewer_mean": round(
                    sum(len(r) for r in modes["feed_interests"].values()) / len(modes["feed_interests"]), 2
                ),
            }
            for mode, retrievals in modes.items():
                exact: dict[int, set[int]] = {}
                exact_s = []
                async with conn.transaction():
                    await conn.execute("SET LOCAL enable_indexscan = off")
                    await conn.execute("SET LOCAL enable_bitmapscan = off")
                    # A plan per execution: PostgreSQL's cached generic plan of the prepared
                    # query does not follow SET LOCAL, so the exact run could reuse an index
                    # plan (and the ANN run a sequential one).
                    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                    for user_id, retrieval in retrievals.items():
                        started = time.perf_counter()
                        exact[user_id] = await _run(conn, user_id, retrieval)
                        exact_s.append(time.perf_counter() - started)
                    plan = await conn.fetch("EXPLAIN " + q.NEAREST, *sample_args)
                    assert not any("hnsw" in r[0].lower() for r in plan), "the exact run used the index"
                out[mode] = {"exact_p50_ms": ms(percentile(exact_s, 0.5))}
                for ef in efs:
                    recalls, took = [], []
                    async with conn.transaction():
                        await conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
                        await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                        plan = await conn.fetch("EXPLAIN " + q.NEAREST, *sample_args)
                        used = any("clip_vectors_hnsw" in r[0] for r in plan)
                        assert used, "the ANN run did not use the index"
                        for user_id, retrieval in retrievals.items():
                            started = time.perf_counter()
                            found = await _run(conn, user_id, retrieval)
                            took.append(time.perf_counter() - started)
                            recalls.append(len(exact[user_id] & found) / len(exact[user_id]))
                    out[mode][f"ef_search={ef}"] = {
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
    parser.add_argument("--ef", default="40,100,200")
    args = parser.parse_args()
    before = machine()
    with servers(need_redis=False) as svc:
        seeded = ensure_seeded(svc.database_url, admin_url=svc.admin_url)
        result = asyncio.run(measure(svc.database_url, args.queries, [int(x) for x in args.ef.split(",")]))
    result = {"data_set": {k: seeded[k] for k in ("clips", "users")}} | result | {"machine": before}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
