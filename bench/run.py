"""`make bench`: seed the benchmark data set (or reuse it), run every benchmark, and rewrite the
figures in docs/BENCHMARKS.md with the machine and the commands.

Each benchmark is a script in this folder that prints its figures. The page keeps its
hand-written explanations; what this runner owns is the block between
``<!-- make-bench:NAME -->`` and ``<!-- /make-bench:NAME -->`` under each benchmark's heading
(added at the end of the page when missing): the date, the machine, the exact command and the
script's output as it printed it. A benchmark that fails keeps its previous block, and the run
exits non-zero after the others have run.

Run: `make bench`, or `.venv/bin/python bench/run.py [--only NAME ...] [--list]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "BENCHMARKS.md"


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    args: tuple[str, ...]


# In the order they run; the seed comes first so the feed benchmarks find their data.
BENCHES: tuple[Bench, ...] = (
    Bench("seed", "Benchmark data set", ()),
    Bench("generation", "Generation pipeline", ("--jobs", "200", "--users", "20")),
    Bench("stream", "Realtime stream", ("--sockets", "2000", "--users", "200", "--rounds", "10")),
    Bench("feed_load", "For You under load", ("--connections", "64", "--seconds", "10")),
    Bench("ingest", "Event ingestion", ("--events", "200000", "--connections", "32")),
    Bench("ann_recall", "ANN recall", ("--queries", "100")),
    Bench("rec_quality", "Recommendation quality", ()),
    Bench("mixed_load", "Mixed traffic, production layout", ("--users", "64", "--seconds", "30")),
)


def machine() -> str:
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores{memory}, "
        f"Python {platform.python_version()}"
    )


def command(bench: Bench) -> str:
    return " ".join([".venv/bin/python", f"bench/{bench.name}.py", *bench.args])


def block(bench: Bench, output: str, seconds: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Last `make bench` run: {when} on {machine()}, {seconds:.0f} s.\n"
        f"Command: `{command(bench)}`\n\n"
        f"```\n{output.strip()}\n```\n"
    )


def rewrite(page: str, bench: Bench, content: str) -> str:
    begin, end = f"<!-- make-bench:{bench.name} -->", f"<!-- /make-bench:{bench.name} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    replacement = f"{begin}\n{content}{end}"
    if pattern.search(page):
        return pattern.sub(lambda _: replacement, page)
    return page.rstrip("\n") + f"\n\n## {bench.title} (`bench/{bench.name}.py`)\n\n{replacement}\n"


def run(bench: Bench) -> tuple[bool, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{bench.name}.py"), *bench.args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    output = done.stdout + (f"\n{done.stderr}" if done.returncode else "")
    return done.returncode == 0, output, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="run just these benchmarks (by name)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and their commands")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHES if not args.only or b.name in args.only]
    if args.list:
        for bench in BENCHES:
            print(f"{bench.name:12} {command(bench)}")
        return 0
    unknown = set(args.only or ()) - {b.name for b in BENCHES}
    if unknown:
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    failed: list[str] = []
    for bench in chosen:
        print(f"== {bench.name}: {command(bench)}", flush=True)
        ok, output, seconds = run(bench)
        print(output, flush=True)
        if not ok:
            failed.append(bench.name)
            print(f"!! {bench.name} failed; its figures in {PAGE.name} are left as they were", flush=True)
            continue
        PAGE.write_text(rewrite(PAGE.read_text(), bench, block(bench, output, seconds)))
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
        return 1
    print(f"figures written to {PAGE.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
