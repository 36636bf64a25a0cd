"""The fraud blend's cost on one online application: predict and attribute with the blend
and with the GNN alone (the same weights), interleaved, on a registered model and its world.

    python bench/bench_blend_cost.py --models DIR --world DIR [--samples 200]

Needs RISKGRAPH_PSEUDONYM_SECRET (the world's identifiers are hashed as the model saw them).
Prints median and p99 ms per step; torch on one thread.
"""

from __future__ import annotations

import argparse
import time
import timeit

import champion
import numpy as np

from gnn import ApplicationQueries
from gnn.attribution import attribute
from gnn.pipeline import ScoringPipeline


def _gnn_alone(pipe: ScoringPipeline) -> ScoringPipeline:
    state = pipe.state()
    state["fraud_blend"] = None
    return ScoringPipeline.from_state(state, pipe.model.state_dict())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    champion.add_arguments(ap)
    ap.add_argument("--samples", type=int, default=200, help="applications timed per round")
    args = ap.parse_args()
    _, blend, g = champion.load(args)
    if blend.fraud_blend is None:
        raise SystemExit("the promoted model has no fraud blend")
    alone = _gnn_alone(blend)
    ids = np.random.default_rng(0).choice(g.num_nodes("Application"), args.samples,
                                          replace=False)
    print("| round | model | predict p50 / p99 ms | attribute p50 / p99 ms |")
    print("|---|---|---|---|")
    for k, (name, p) in enumerate((("GNN alone", alone), ("blend", blend)) * 2):
        tp, ta = [], []
        for i in ids:
            prep = p.prepare_applications(g, ApplicationQueries.from_graph(g, np.array([i])))
            t = time.perf_counter()
            p.predict(prep)
            tp.append(time.perf_counter() - t)
            t = time.perf_counter()
            attribute(p, prep)
            ta.append(time.perf_counter() - t)
        print(f"| {k // 2 + 1} | {name} | {1e3 * np.median(tp):.2f} / "
              f"{1e3 * np.quantile(tp, 0.99):.2f} | {1e3 * np.median(ta):.2f} / "
              f"{1e3 * np.quantile(ta, 0.99):.2f} |")
    prep = blend.prepare_applications(g, ApplicationQueries.from_graph(g, ids[:1]))
    b = blend.fraud_blend
    x = blend.blend_inputs(prep)
    assert x is not None
    for name, f in (("neighbour aggregates + inputs", lambda: blend.blend_inputs(prep)),
                    ("trees' log-odds", lambda: b.trees_logit(x)),
                    ("trees' TreeSHAP shares", lambda: b.trees_contributions(x))):
        best = min(timeit.repeat(f, number=20, repeat=5)) / 20
        print(f"{name}: {1e3 * best:.2f} ms (best of 5 x 20, one application)")


if __name__ == "__main__":
    main()
