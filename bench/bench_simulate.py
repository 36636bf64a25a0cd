"""Benchmark: simulate a world (default 1M users x 180 days) and write it; wall time and peak
memory against the targets (<= 10 min, <= 8 GiB).

    python bench/bench_simulate.py --users 1000000 --days 180 --seed 1

Prints per-stage progress, then one Markdown row for docs/BENCHMARKS.md. The world is written to
a temporary directory and deleted unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from machine_info import machine, peak_rss_gib, today

from simulator import WorldConfig, simulate_world, write_world

HEADER = ("| date | machine | users | days | rows written | files | simulate s | write s | "
          "total s | peak RSS GiB |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="keep the world here")
    args = ap.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="bench-sim-"))
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s, peak {peak_rss_gib():.2f} GiB] {msg}",
              file=sys.stderr, flush=True)

    world = simulate_world(WorldConfig(users=args.users, days=args.days, seed=args.seed), log=log)
    simulated = time.perf_counter()
    log("simulated")
    rows = write_world(world, out)
    done = time.perf_counter()
    log("written")
    size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    if args.out is None:
        shutil.rmtree(out)
    print(HEADER)
    print(f"| {today()} | {machine()} | {args.users:,} | {args.days} | {sum(rows.values()):,} | "
          f"{size:,.0f} MiB | {simulated - started:.0f} | {done - simulated:.0f} | "
          f"{done - started:.0f} | {peak_rss_gib():.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
