"""bench/rec_quality.py at a small scale on its synthetic log: the feed's own scoring must
clearly beat popularity, and the numbers must be sane."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import rec_quality


def test_the_feed_beats_popularity_on_planted_tastes():
    results = rec_quality.evaluate(rec_quality.synthetic(400, 800, seed=3), seed=3)
    feed, popularity, als = results["feed"], results["popularity"], results["ALS (implicit)"]
    for figures in results.values():
        assert 0.0 <= figures["NDCG@10"] <= figures["HR@10"] <= 1.0
    assert feed["HR@10"] > 1.15 * popularity["HR@10"]
    assert feed["NDCG@10"] > popularity["NDCG@10"]
    assert als["HR@10"] > popularity["HR@10"]  # the baseline itself learned something


def test_a_csv_log_is_read(tmp_path):
    log_path = tmp_path / "log.csv"
    log_path.write_text(
        "user,item,timestamp,weight\n"
        + "".join(f"u{u},i{(u * 7 + k) % 50},{k},1\n" for u in range(30) for k in range(6))
    )
    texts = tmp_path / "texts.csv"
    texts.write_text("".join(f"i{i},clip number {i % 5}\n" for i in range(50)))
    log = rec_quality.from_csv(log_path, texts)
    assert (log.n_users, log.n_items, len(log.users)) == (30, 50, 180)
    train, held = rec_quality.split(log)
    assert len(held) == 30
    assert int(train.sum()) == 150
