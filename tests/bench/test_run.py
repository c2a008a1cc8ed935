"""`make bench`'s page rewriting: its own blocks are replaced, everything written by hand stays."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "bench_run", Path(__file__).resolve().parents[2] / "bench" / "run.py"
)
assert _spec is not None
assert _spec.loader is not None
run = importlib.util.module_from_spec(_spec)
sys.modules["bench_run"] = run  # dataclasses look their module up while the class is made
_spec.loader.exec_module(run)

BENCH = run.Bench("stream", "Realtime stream", ("--sockets", "10"))


def test_a_missing_block_is_added_under_its_own_heading():
    page = "# Benchmarks\n\nProse.\n"
    out = run.rewrite(page, BENCH, "figures 1\n")
    assert out.startswith("# Benchmarks\n\nProse.\n")
    assert "## Realtime stream (`bench/stream.py`)" in out
    assert "<!-- make-bench:stream -->\nfigures 1\n<!-- /make-bench:stream -->" in out


def test_an_existing_block_is_replaced_and_the_prose_around_it_kept():
    page = run.rewrite("# B\n\nBefore.\n", BENCH, "old\n") + "\nAfter, by hand.\n"
    out = run.rewrite(page, BENCH, "new $1 \\1\n")  # replacement text is taken literally
    assert "old" not in out
    assert "new $1 \\1\n<!-- /make-bench:stream -->" in out
    assert out.count("<!-- make-bench:stream -->") == 1
    assert "Before." in out
    assert "After, by hand." in out


def test_the_block_names_the_machine_and_the_command():
    text = run.block(BENCH, "  | figure | value |\n", 12.3)
    assert "cores" in text
    assert "Command: `.venv/bin/python bench/stream.py --sockets 10`" in text
    assert "```\n| figure | value |\n```" in text
