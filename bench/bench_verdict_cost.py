"""What an explained batch costs the model's process: the features and sampled trees
(``prepare_applications``) and the scores with their attributions (``gnn.attribute``), per batch
size, on a registered model and the world it learned.

    python bench/bench_verdict_cost.py --models DIR --world DIR [--applications 400] [--parts]

Needs RISKGRAPH_PSEUDONYM_SECRET (the world's identifiers are hashed as the model saw them).
Torch on one thread, as in the scorer's child process. Prints the median ms per batch of each
step and per application (docs/BENCHMARKS.md, "GNN: explaining a score"). ``--parts`` also
times the named parts of a batch (:data:`PARTS`, each wrapped in a timer for the run; a part's
time includes the parts it calls) and prints their mean ms per batch.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import champion
import numpy as np

from gnn import ApplicationQueries
from gnn.attribution import attribute

PARTS = (
    # prepare_applications
    "gnn.data.neighbour_sampler:NeighbourSampler.sample",
    "gnn.features.risk_features:RiskFeatures.node_features",
    "gnn.features.risk_features:RiskFeatures.application_features",
    "gnn.features.risk_features:RiskFeatures.user_block",
    "gnn.features.risk_features:RiskFeatures._shared_groups",
    "gnn.features.risk_features:RiskFeatures.merchant_block",
    # attribute
    "gnn.attribution:_Variants.batch",
    "gnn.nn.stacked_ensemble:StackedEnsemble.forward_with_context",
    "gnn.nn.stacked_ensemble:StackedEnsemble.root_output",
    "gnn.pipeline:ScoringPipeline.blend_inputs",
    "gnn.pipeline:ScoringPipeline.scores",
    "gnn.nn.fraud_blend:FraudBlend.logit",
    "gnn.nn.credit_hazard:CreditHazardModel.predict",
    "gnn.attribution:_blend_attributions",
    "gnn.attribution:_credit_attributions",
)
"""Parts of an explained batch ``module:attribute path``, grouped by the step that runs them."""


def _time_parts(spent: dict[str, float]) -> None:
    """Wrap each of :data:`PARTS` so that its wall time adds to ``spent[name]``."""
    for spec in PARTS:
        module, path = spec.split(":")
        *owners, name = path.split(".")
        owner: Any = importlib.import_module(module)
        for o in owners:
            owner = getattr(owner, o)
        setattr(owner, name, _timed(getattr(owner, name), path, spent))


def _timed(fn: Callable[..., Any], label: str, spent: dict[str, float]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - t0
    return timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    champion.add_arguments(ap)
    ap.add_argument("--applications", type=int, default=400, help="applications timed per size")
    ap.add_argument("--sizes", default="1,4,16", help="batch sizes, comma-separated")
    ap.add_argument("--parts", action="store_true", help="also time the parts of a batch")
    args = ap.parse_args()
    _, pipe, graph = champion.load(args)
    spent: dict[str, float] = defaultdict(float)
    if args.parts:
        _time_parts(spent)
    sizes = [int(s) for s in args.sizes.split(",")]
    parts: dict[int, dict[str, float]] = {}
    ids = np.random.default_rng(0).choice(graph.num_nodes("Application"), args.applications,
                                          replace=False)
    print("| batch | prepare ms | attribute ms | per application ms |")
    print("|---:|---:|---:|---:|")
    for size in sizes:
        prepare_s, attribute_s = [], []
        for lo in range(0, ids.shape[0], size):
            if lo == 3 * size:
                spent.clear()  # NOTE: as the medians, without the first batches
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
        timed = max(len(prepare_s) - 3, 1)
        parts[size] = {k: 1e3 * v / timed for k, v in spent.items()}
    if args.parts:
        print("\n| part (mean ms a batch) | " + " | ".join(f"batch of {s}" for s in sizes) + " |")
        print("|---|" + "---:|" * len(sizes))
        for spec in PARTS:
            label = spec.split(":")[1]
            print(f"| `{label}` | "
                  + " | ".join(f"{parts[s].get(label, 0.0):.2f}" for s in sizes) + " |")


if __name__ == "__main__":
    main()
