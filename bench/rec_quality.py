"""Recommendation quality: leave-one-out HR@10 and NDCG@10 of the feed's own scoring, beside a
popularity baseline and an ALS baseline (the `implicit` package), in one run.

Protocol: each user's latest interaction is held out; it is ranked against 99 clips the user
never touched (sampled with a fixed seed); a hit is the held-out clip in the top 10, NDCG
credits its rank. Every method learns from the same training interactions only.

- feed: what the feed serves, computed by the feed's own code. Clip embeddings blend content
  (the built-in encoder over each clip's text) with behaviour learned from co-engagement
  (feed.behaviour: tastes R·C, behaviours R⁺ᵀ·U, feed.store.blend); the viewer's taste is the
  same weighted sum of what they engaged with; each candidate is scored by the ranker's
  `_score` (similarity, smoothed engagement; freshness is equal for all here);
- popularity: training interactions per clip;
- ALS: implicit's AlternatingLeastSquares on the training matrix (64 factors, 15 iterations,
  regularization 0.05, confidence = 20 x weight: the best of alpha 1, 5, 20 and 40 on the
  default log, so the baseline is not a straw man).

Input: any `user,item,timestamp[,weight]` CSV (`--csv`; items then need `--texts`, a CSV of
`item,text`, for the content encoder, else the feed runs on behaviour alone), or by default
a synthetic log with planted tastes: topics with their own vocabulary, users with 1-3
favourite topics, popular clips seen more, and noise.

Run: `.venv/bin/python bench/rec_quality.py [--users 3000] [--clips 6000] [--seed 7]`.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.settings import load_settings
from feed import behaviour
from feed.encoder import HashedEncoder
from feed.service import Candidate, _score

K = 10
NEGATIVES = 99


@dataclass
class Log:
    users: np.ndarray  # int, per interaction
    items: np.ndarray
    times: np.ndarray
    weights: np.ndarray
    texts: list[str]  # per item ("" when unknown)
    n_users: int
    n_items: int


# --- data --------------------------------------------------------------------------------------


def synthetic(n_users: int, n_items: int, seed: int, topics: int = 24) -> Log:
    rng = np.random.default_rng(seed)
    syllables = [
        "ka",
        "lo",
        "mi",
        "ren",
        "tu",
        "sa",
        "vo",
        "ne",
        "ri",
        "po",
        "zu",
        "ha",
        "qi",
        "ya",
        "mo",
        "te",
    ]
    vocab = [
        [rng.choice(syllables) + rng.choice(syllables) + rng.choice(syllables) for _ in range(30)]
        for _ in range(topics)
    ]
    shared = [rng.choice(syllables) + rng.choice(syllables) for _ in range(60)]  # words every topic uses
    topic_of = rng.integers(0, topics, n_items)
    texts = [
        " ".join([*rng.choice(vocab[t], 4), *rng.choice(shared, 4)]) + f" #{vocab[t][0]}" for t in topic_of
    ]
    popularity = rng.pareto(1.2, n_items) + 1
    by_topic = [np.flatnonzero(topic_of == t) for t in range(topics)]
    users, items, times, weights = [], [], [], []
    for user in range(n_users):
        favourites = rng.choice(topics, rng.integers(1, 4), replace=False)
        n = int(rng.integers(8, 40))
        for step in range(n):
            in_taste = rng.random() < 0.8
            pool = by_topic[int(rng.choice(favourites))] if in_taste else np.arange(n_items)
            p = popularity[pool] / popularity[pool].sum()
            item = int(rng.choice(pool, p=p))
            users.append(user)
            items.append(item)
            times.append(step)
            weights.append(float(rng.choice([1.0, 2.0, 2.5], p=[0.6, 0.3, 0.1])))  # complete, like, share
    return Log(
        np.asarray(users),
        np.asarray(items),
        np.asarray(times, dtype=float),
        np.asarray(weights, dtype=np.float32),
        texts,
        n_users,
        n_items,
    )


def from_csv(path: Path, texts_path: Path | None) -> Log:
    user_ids: dict[str, int] = {}
    item_ids: dict[str, int] = {}
    users, items, times, weights = [], [], [], []
    with path.open() as f:
        for row in csv.reader(f):
            if not row or row[0] == "user":
                continue
            users.append(user_ids.setdefault(row[0], len(user_ids)))
            items.append(item_ids.setdefault(row[1], len(item_ids)))
            times.append(
                float(row[2])
                if row[2].replace(".", "", 1).isdigit()
                else datetime.fromisoformat(row[2]).timestamp()
            )
            weights.append(float(row[3]) if len(row) > 3 and row[3] else 1.0)
    texts = [""] * len(item_ids)
    if texts_path is not None:
        with texts_path.open() as f:
            for row in csv.reader(f):
                if row and row[0] in item_ids:
                    texts[item_ids[row[0]]] = row[1]
    return Log(
        np.asarray(users), np.asarray(items), np.asarray(times), np.asarray(weights, dtype=np.float32),
        texts, len(user_ids), len(item_ids),
    )  # fmt: skip


def split(log: Log) -> tuple[np.ndarray, dict[int, int]]:
    """Training mask and each user's held-out (latest) item; users with one interaction are skipped."""
    train = np.ones(len(log.users), dtype=bool)
    held: dict[int, int] = {}
    order = np.lexsort((np.arange(len(log.users)), log.times, log.users))
    last_of: dict[int, int] = {}
    counts = np.bincount(log.users, minlength=log.n_users)
    for index in order:
        last_of[int(log.users[index])] = int(index)
    for user, index in last_of.items():
        if counts[user] >= 2:
            train[index] = False
            held[user] = int(log.items[index])
    return train, held


# --- the methods ---------------------------------------------------------------------------------


def feed_scores(log: Log, train: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Viewer tastes and clip embeddings as the feed computes them, plus each clip's statistics
    as the ranker reads them."""
    encoder = HashedEncoder()
    content = np.stack([encoder.encode_one(text) for text in log.texts]).astype(np.float32)
    r = behaviour.engagement_matrix(
        log.users[train], log.items[train], log.weights[train], n_users=log.n_users, n_clips=log.n_items
    )
    tastes = behaviour.tastes(r, content)
    likes = np.bincount(
        log.items[train], weights=(log.weights[train] >= 2).astype(float), minlength=log.n_items
    )
    completes = np.bincount(log.items[train], minlength=log.n_items)
    embeddings = behaviour.embeddings(content, behaviour.behaviours(r, tastes), likes + completes)
    now = datetime.now(UTC)
    stats = [
        {
            "impressions": int(completes[i] * 3),  # an interaction follows a few impressions
            "likes": int(likes[i]),
            "completes": int(completes[i]),
            "shares": 0,
            "skips": 0,
            "negatives": 0,
            "published_at": now,
        }
        for i in range(log.n_items)
    ]
    return tastes, embeddings, stats


def evaluate(log: Log, seed: int) -> dict[str, dict[str, float]]:
    train, held = split(log)
    rng = np.random.default_rng(seed)
    touched: dict[int, set[int]] = {}
    for u, i in zip(log.users, log.items, strict=True):
        touched.setdefault(int(u), set()).add(int(i))

    settings = load_settings({})
    tastes, embeddings, stats = feed_scores(log, train)
    popularity = np.bincount(log.items[train], minlength=log.n_items).astype(float)

    import implicit
    from scipy import sparse

    matrix = sparse.csr_matrix(
        (log.weights[train], (log.users[train], log.items[train])), shape=(log.n_users, log.n_items)
    )
    als = implicit.als.AlternatingLeastSquares(
        factors=64, iterations=15, regularization=0.05, alpha=20.0, random_state=seed
    )
    als.fit(matrix, show_progress=False)
    user_factors = np.asarray(
        als.user_factors.to_numpy() if hasattr(als.user_factors, "to_numpy") else als.user_factors
    )
    item_factors = np.asarray(
        als.item_factors.to_numpy() if hasattr(als.item_factors, "to_numpy") else als.item_factors
    )

    now = time.time()

    def feed_score(user: int, item: int) -> float:
        cand = Candidate(item)
        cand.similarity = float(tastes[user] @ embeddings[item])
        return _score(cand, stats[item], settings, now)

    methods = {
        "feed": feed_score,
        "popularity": lambda user, item: popularity[item] + 1e-6 * item,
        "ALS (implicit)": lambda user, item: float(user_factors[user] @ item_factors[item]),
    }
    totals = {name: [0.0, 0.0] for name in methods}
    for user, target in held.items():
        candidates = [target]
        while len(candidates) < NEGATIVES + 1:
            item = int(rng.integers(0, log.n_items))
            if item not in touched[user] and item not in candidates:
                candidates.append(item)
        for name, score in methods.items():
            scores = np.array([score(user, i) for i in candidates])
            rank = int((scores > scores[0]).sum())  # 0 = best; ties count in the target's favour
            if rank < K:
                totals[name][0] += 1
                totals[name][1] += 1 / math.log2(rank + 2)
    n = max(len(held), 1)
    return {name: {"HR@10": hits / n, "NDCG@10": gain / n} for name, (hits, gain) in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--clips", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--csv", type=Path, help="a user,item,timestamp[,weight] log instead of the synthetic one"
    )
    parser.add_argument("--texts", type=Path, help="item,text CSV for the content encoder (with --csv)")
    args = parser.parse_args()
    started = time.perf_counter()
    log = from_csv(args.csv, args.texts) if args.csv else synthetic(args.users, args.clips, args.seed)
    results = evaluate(log, args.seed)
    source = str(args.csv) if args.csv else f"synthetic, seed {args.seed}"
    print(f"data: {source}: {log.n_users} users, {log.n_items} clips, {len(log.users)} interactions")
    print(f"protocol: leave-one-out (latest per user), 1 held-out vs {NEGATIVES} sampled negatives, K = {K}")
    print()
    print("| method | HR@10 | NDCG@10 |")
    print("|---|---|---|")
    for name, figures in results.items():
        print(f"| {name} | {figures['HR@10']:.3f} | {figures['NDCG@10']:.3f} |")
    feed, pop, als = results["feed"], results["popularity"], results["ALS (implicit)"]
    print()
    print(
        f"feed vs popularity: HR@10 x{feed['HR@10'] / max(pop['HR@10'], 1e-9):.2f}; "
        f"feed vs ALS: HR@10 {100 * (feed['HR@10'] / max(als['HR@10'], 1e-9) - 1):+.1f}%, "
        f"NDCG@10 {100 * (feed['NDCG@10'] / max(als['NDCG@10'], 1e-9) - 1):+.1f}%"
    )
    print(f"took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
