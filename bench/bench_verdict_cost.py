"""What an explained batch costs the model's process: the features and sampled trees
(``prepare_applications``) and the scores with their attributions (``gnn.attribute``), per batch
size, on a registered model and the world it learned.

    python bench/bench_verdict_cost.py --models DIR --world DIR [--applications 400]

Needs RISKGRAPH_PSEUDONYM_SECRET (the world's identifiers are hashed as the model saw them).
Torch on one thread, as in the scorer's child process. Prints the median ms per batch of each
step and per application (docs/BENCHMARKS.md, "GNN: explaining a score").
"""

from __future__ import annotations

import argparse
import time

import champion
import numpy as np

from gnn import ApplicationQueries
from gnn.attribution import attribute


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    champion.add_arguments(ap)
    ap.add_argument("--applications", type=int, default=400, help="applications timed per size")
    ap.add_argument("--sizes", default="1,4,16", help="batch sizes, comma-separated")
    args = ap.parse_args()
    _, pipe, graph = champion.load(args)
    ids = np.random.default_rng(0).choice(graph.num_nodes("Application"), args.applications,
                                          replace=False)
    print("| batch | prepare ms | attribute ms | per application ms |")
    print("|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        prepare_s, attribute_s = [], []
        for lo in range(0, ids.shape[0], size):
            t0 = time.perf_counter()
            prepared = pipe.prepare_applications(
                graph, ApplicationQueries.from_graph(graph, ids[lo:lo + size]))
            t1 = time.perf_counter()
            attribute(pipe, prepared)
            prepare_s.append(t1 - t0)
            attribute_s.append(time.perf_counter() - t1)
        # NOTE: the first batches warm the caches and torch's allocator
        p, a = (1e3 * float(np.median(v[3:])) for v in (prepare_s, attribute_s))
        print(f"| {size} | {p:.2f} | {a:.2f} | {(p + a) / size:.2f} |", flush=True)


if __name__ == "__main__":
    main()
