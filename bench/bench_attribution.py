"""What explaining a score costs: `gnn.attribute` and `serving.explanations.explain` against
`ScoringPipeline.predict`, for online batches of 1 and 8 applications, torch on one thread.

    python bench/bench_attribution.py [--users 2000] [--members 3] [--runs 200] [--out FILE]

Simulates a world, trains a pipeline briefly (the cost does not depend on how good it is, only
on its shape: ``--members`` networks stacked, as served), prepares batches of applications once
(features and sample are the score's own cost, not the explanation's) and times, per batch,
the median of ``--runs`` calls of each step: wall time, and CPU time of the calling thread (what
the step costs on a machine shared with other work). ``attribute`` returns the batch's scores
too, so a scorer that explains every verdict calls it instead of ``predict``: the added cost is
the difference of the two rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine_info import machine, today  # noqa: E402

from gnn import (  # noqa: E402
    ApplicationQueries,
    LendingGraph,
    Prepared,
    RiskTrainConfig,
    ScoringPipeline,
    TimeSplit,
    attribute,
    train_risk_model,
)
from gnn.attribution import DEFAULT_STEPS  # noqa: E402
from simulator import WorldConfig, simulate_world, write_world  # noqa: E402
from serving.explanations import explain  # noqa: E402
from serving.policy import load_policy  # noqa: E402
from serving.scoring import ApplicationFacts  # noqa: E402


def _median_ms(fn: Callable[[Prepared], object], batches: list[Prepared], runs: int
               ) -> tuple[float, float]:
    """Median wall and thread-CPU milliseconds of ``fn`` over ``runs`` calls (batches cycled)."""
    for p in batches[:5]:
        fn(p)
    wall, cpu = [], []
    for i in range(runs):
        p = batches[i % len(batches)]
        w0, c0 = time.perf_counter(), time.thread_time()
        fn(p)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    return 1e3 * float(np.median(wall)), 1e3 * float(np.median(cpu))


def _facts(g: LendingGraph, positions: np.ndarray) -> list[ApplicationFacts]:
    a = g.attrs["Application"]
    return [ApplicationFacts(
        application_id=str(g.ids["Application"][p]), product="cash_loan",
        amount=float(a["amount"][p]), currency="CNY",
        user_id=str(g.ids["User"][max(int(a["user"][p]), 0)]), device_id="dv_bench",
        device_masked="****bnch", ip="10.0.0.1", lat=float(a["lat"][p]),
        lon=float(a["lon"][p]), ts=int(a["ts"][p]), merchant_id=None) for p in positions]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--out", type=Path, default=None, help="Markdown summary file")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        write_world(simulate_world(WorldConfig(users=args.users, seed=args.seed,
                                               fraud_rate=0.05)), Path(tmp))
        graph = LendingGraph.from_world(tmp)
    pipe: ScoringPipeline = train_risk_model(
        graph, TimeSplit.from_fractions(graph), train_config=RiskTrainConfig(
            epochs=args.epochs, user_seeds=500, seed=args.seed, members=args.members,
            threads=1), log=lambda s: print(s, file=sys.stderr)).pipeline
    min_weight = load_policy().reasons.min_weight
    rng = np.random.default_rng(args.seed)
    n = graph.num_nodes("Application")
    rows = [f"## Explaining a score ({today()})", "",
            f"{machine()}; torch {torch.__version__}, 1 thread; world of {args.users} users, "
            f"{args.members} members stacked, {args.steps} integration points; median of "
            f"{args.runs} runs per step; load average {load_start:.1f} at the start.", "",
            "| batch | step | wall ms | CPU ms | nodes per batch |", "|---|---|---|---|---|"]
    for size in (1, 8):
        picks = [np.sort(rng.choice(n, size, replace=False)) for _ in range(40)]
        batches = [pipe.prepare_applications(graph, ApplicationQueries.from_graph(graph, p))
                   for p in picks]
        facts = {id(b): _facts(graph, p) for b, p in zip(batches, picks, strict=True)}
        nodes = float(np.mean([b.trees.num_nodes() for b in batches]))

        def explain_all(b: Prepared) -> None:
            a = attribute(pipe, b, steps=args.steps)
            for i, f in enumerate(facts[id(b)]):
                explain(a.root(i), f, min_weight=min_weight)

        steps: list[tuple[str, Callable[[Prepared], object]]] = [
            ("predict", lambda b: pipe.predict(b)),
            ("attribute, features only", lambda b: attribute(pipe, b, steps=args.steps,
                                                             relations=False)),
            ("attribute", lambda b: attribute(pipe, b, steps=args.steps)),
            ("attribute + explain", explain_all),
        ]
        for name, fn in steps:
            wall, cpu = _median_ms(fn, batches, args.runs)
            rows.append(f"| {size} | {name} | {wall:.2f} | {cpu:.2f} | {nodes:.0f} |")
    rows += ["", f"Load average at the end: {os.getloadavg()[0]:.1f}."]
    text = "\n".join(rows) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
