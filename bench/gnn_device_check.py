"""CPU vs GPU scores of the GNN pipeline: the same users, merchants and applications scored on
two devices must agree within a tolerance (scripts/gpu_check.sh runs it on a CUDA machine).

    python bench/gnn_device_check.py --users 3000 --out gnn-gpu.md [--devices cpu,cuda]

Simulates a small world, trains a pipeline for a few epochs on CPU (the weights do not need to
be good, only the same), scores everything on both devices and compares. Exits 1 when any
difference exceeds ``--atol``, 2 when the second device is not available.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gnn import ApplicationQueries, LendingGraph, RiskTrainConfig, TimeSplit, train_risk_model
from gnn.rescoring import compare_devices
from simulator import WorldConfig, simulate_world, write_world


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--devices", default="cpu,cuda")
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--out", type=Path, default=None, help="Markdown summary file")
    args = ap.parse_args(argv)
    a, b = args.devices.split(",")
    if "cuda" in (a, b) and not torch.cuda.is_available():
        print("CUDA is not available to torch", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_world(simulate_world(WorldConfig(users=args.users, seed=args.seed,
                                               fraud_rate=0.05)), Path(tmp))
        graph = LendingGraph.from_world(tmp)
    split = TimeSplit.from_fractions(graph)
    result = train_risk_model(graph, split, train_config=RiskTrainConfig(
        epochs=2, user_seeds=1000, seed=args.seed), log=lambda s: print(s, file=sys.stderr))
    pipe = result.pipeline
    setup = time.perf_counter() - t0
    diffs = dict(compare_devices(pipe, graph, (a, b)))
    apps = ApplicationQueries.from_graph(graph, np.arange(graph.num_nodes("Application")))
    timings = {}
    scores = {}
    for dev in (a, b):
        # NOTE: features by the kernels on the device too (CuPy on CUDA)
        pipe.use_kernels(dev)
        pipe.score_applications(graph, apps.take(np.arange(min(64, len(apps)))), device=dev)
        t = time.perf_counter()
        scores[dev] = pipe.score_applications(graph, apps, device=dev)
        timings[dev] = time.perf_counter() - t
    for head in ("fraud", "pd"):
        diffs[f"Application.{head}"] = float(np.abs(getattr(scores[a], head)
                                                    - getattr(scores[b], head)).max())
    worst = max(diffs.values())
    ok = worst <= args.atol
    lines = [f"## GNN scores: {a} vs {b}", "",
             f"World of {args.users} users ({graph!r}); setup {setup:.0f}s. Tolerance "
             f"{args.atol:g}; worst difference {worst:.2e}: **{'ok' if ok else 'FAILED'}**.", "",
             "| scores | max abs difference |", "|---|---|"]
    lines += [f"| {k} | {v:.2e} |" for k, v in diffs.items()]
    lines += ["", "| device | seconds to score all applications |", "|---|---|"]
    lines += [f"| {d} ({torch.cuda.get_device_name(0) if d == 'cuda' else 'CPU'}) | {s:.2f} |"
              for d, s in timings.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
