"""The trees' TreeSHAP by LightGBM (``pred_contrib``) and by :class:`gnn.nn.TreeShap`, on a
registered model's fraud blend and credit model: alone on the inputs of real applications, and
inside whole explained batches (features, sampling, scores and every attribution), interleaved.

    python bench/bench_tree_shap.py --models DIR --world DIR [--rounds 60] [--batches 1,3,8]

Needs RISKGRAPH_PSEUDONYM_SECRET (the world's identifiers are hashed as the model saw them).
Prints Markdown tables of median ms; torch on one thread. Each measurement alternates the two
(ABAB... then BABA...), so a slower minute of the shared machine weighs on both alike.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import champion
import numpy as np

from gnn import ApplicationQueries
from gnn.attribution import attribute
from gnn.data.lending_graph import LendingGraph
from gnn.nn import TreeShap
from gnn.pipeline import ScoringPipeline

Explainer = Callable[[np.ndarray], np.ndarray]


def _models(pipe: ScoringPipeline) -> dict[str, tuple[object, object]]:
    """Per tree model: the object whose ``_tree_shap`` the scorer calls, and its booster."""
    out: dict[str, tuple[object, object]] = {}
    if pipe.fraud_blend is not None:
        out["fraud blend"] = (pipe.fraud_blend, pipe.fraud_blend.booster)
    if pipe.credit is not None:
        out["credit model"] = (pipe.credit, pipe.credit.booster)
    return out


@functools.cache
def _explainer(booster: object, which: str) -> Explainer:
    """The booster's TreeSHAP by ``which`` (built once: TreeShap flattens the trees)."""
    if which == "TreeShap":
        return TreeShap.from_booster(booster)
    return functools.partial(booster.predict, pred_contrib=True, num_threads=1)


def _use(models: dict[str, tuple[object, object]], which: str) -> None:
    for owner, booster in models.values():
        owner.__dict__["_tree_shap"] = _explainer(booster, which)  # the cached property's slot


def _inputs(models: dict[str, tuple[object, object]], pipe: ScoringPipeline, g: LendingGraph,
            ids: np.ndarray) -> dict[str, np.ndarray]:
    """The rows each tree model explains for applications ``ids`` (recorded as they pass)."""
    seen: dict[str, list[np.ndarray]] = {name: [] for name in models}
    for name, (owner, booster) in models.items():
        inner = functools.partial(booster.predict, pred_contrib=True, num_threads=1)

        def record(x: np.ndarray, name: str = name, inner: Explainer = inner) -> np.ndarray:
            seen[name].append(np.array(x))
            return inner(x)

        owner.__dict__["_tree_shap"] = record
    for lo in range(0, ids.shape[0], 16):
        attribute(pipe, pipe.prepare_applications(g, ApplicationQueries.from_graph(
            g, ids[lo:lo + 16])))
    return {name: np.concatenate(rows) for name, rows in seen.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    champion.add_arguments(ap)
    ap.add_argument("--rounds", type=int, default=60, help="measurements of each per size")
    ap.add_argument("--batches", default="1,3,8", help="applications per batch")
    args = ap.parse_args()
    sizes = [int(s) for s in args.batches.split(",")]
    version, pipe, g = champion.load(args)
    models = _models(pipe)
    if not models:
        raise SystemExit("the promoted model has no tree model to explain")
    need = 256 + 2 * args.rounds * sum(sizes) + 20
    ids = np.random.default_rng(0).choice(g.num_nodes("Application"), need, replace=False)
    rows = _inputs(models, pipe, g, ids[:256])
    print(f"model {version}, {args.rounds} measurements each, alternating\n")
    print("| tree model | trees | inputs | max abs difference | rows | LightGBM ms | "
          "TreeShap ms | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, (_, booster) in models.items():
        x = rows[name]
        ours = _explainer(booster, "TreeShap")
        diff = float(np.abs(ours(x) - booster.predict(x, pred_contrib=True)).max())
        for r in sizes:
            a, b = [], []
            for k in range(args.rounds):
                xs = x[(k * r) % (x.shape[0] - r):][:r]  # a different batch each time
                order = ((booster, a), (ours, b)) if k % 2 == 0 else ((ours, b), (booster, a))
                for f, acc in order:
                    t = time.perf_counter()
                    if f is booster:
                        booster.predict(xs, pred_contrib=True, num_threads=1)
                    else:
                        ours(xs)
                    acc.append(time.perf_counter() - t)
            print(f"| {name} | {booster.num_trees()} | {x.shape[1]} | {diff:.1e} | {r} | "
                  f"{1e3 * np.median(a):.3f} | {1e3 * np.median(b):.3f} | "
                  f"{np.median(a) / np.median(b):.2f} |")
    print("\n| applications a batch | explained batch, LightGBM ms | explained batch, TreeShap ms "
          "| saved ms an application |")
    print("|---:|---:|---:|---:|")
    for which in ("LightGBM", "TreeShap"):  # warm both (Numba compiles on first use)
        _use(models, which)
        attribute(pipe, pipe.prepare_applications(g, ApplicationQueries.from_graph(
            g, ids[256:256 + 10])))
    pos = 266
    for r in sizes:
        a, b = [], []
        for k in range(args.rounds):
            for which, acc in ((("LightGBM", a), ("TreeShap", b)) if k % 2 == 0 else
                               (("TreeShap", b), ("LightGBM", a))):
                _use(models, which)
                apps = ApplicationQueries.from_graph(g, ids[pos:pos + r])
                pos += r
                t = time.perf_counter()
                attribute(pipe, pipe.prepare_applications(g, apps))
                acc.append(time.perf_counter() - t)
        ma, mb = 1e3 * np.median(a), 1e3 * np.median(b)
        print(f"| {r} | {ma:.2f} | {mb:.2f} | {(ma - mb) / r:.2f} |")


if __name__ == "__main__":
    main()
