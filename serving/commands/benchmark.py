"""`riskgraph benchmark tolokers|files`: train and judge the GNN on a labelled graph."""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import torch

from gnn import (
    TOLOKERS_CONFIG,
    TOLOKERS_PUBLISHED,
    BenchmarkConfig,
    BenchmarkResult,
    ModelConfig,
    NodeGraph,
    SplitResult,
    TrainConfig,
    TreeConfig,
    file_sha256,
    format_benchmark_table,
    load_tolokers,
    read_graph_files,
    read_node_ids,
    run_benchmark,
    write_predictions,
)

DEFAULT_TOLOKERS = Path("../shared/datasets/tolokers.npz")
_PREDICTION_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("benchmark", help="train and evaluate the GNN on a labelled graph")
    kinds = p.add_subparsers(dest="benchmark", metavar="DATASET", required=True)

    t = kinds.add_parser("tolokers", help="the ten-split ROC-AUC protocol on tolokers.npz")
    t.add_argument("--data", type=Path, default=DEFAULT_TOLOKERS,
                   help="path of tolokers.npz (default: %(default)s, relative to cwd)")
    t.add_argument("--no-degree", action="store_true",
                   help="do not add the degree features")
    _add_common(t, TOLOKERS_CONFIG)
    t.set_defaults(func=_tolokers)

    f = kinds.add_parser("files", help="any node-classification graph as nodes + edges files "
                                       "(docs/BENCHMARK_FORMAT.md)")
    f.add_argument("--nodes", type=Path, required=True, help="nodes table (.parquet or .csv)")
    f.add_argument("--edges", type=Path, required=True, help="edges table (.parquet or .csv)")
    f.add_argument("--directed", action="store_true", help="edges are directed")
    f.add_argument("--derive-features", choices=("auto", "always", "never"), default="auto",
                   help="features from the edges: when nodes have none (auto), added to theirs "
                        "(always), or not (never) (default: %(default)s)")
    f.add_argument("--edge-weight", choices=("auto", "mean", "features"), default="auto",
                   help="what the edges' weight column is for: weight the neighbour mean "
                        "(mean: weights must be >= 0), only the derived features (features), "
                        "or mean when every weight is >= 0 and features otherwise, e.g. signed "
                        "ratings (auto) (default: %(default)s)")
    f.add_argument("--num-splits", type=int, default=1,
                   help="random stratified splits when the nodes have no split columns "
                        "(default: %(default)s)")
    f.add_argument("--train-fraction", type=float, default=0.5, help="(default: %(default)s)")
    f.add_argument("--val-fraction", type=float, default=0.25, help="(default: %(default)s)")
    f.add_argument("--split-seed", type=int, default=0, help="(default: %(default)s)")
    _add_common(f, BenchmarkConfig())
    f.set_defaults(func=_files)


def _add_common(p: argparse.ArgumentParser, defaults: BenchmarkConfig) -> None:
    m, tr = defaults.model, defaults.train
    p.add_argument("--splits", type=_int_list, default=None,
                   help="comma-separated split indices to run (default: all)")
    p.add_argument("--seeds", type=int, default=len(defaults.seeds),
                   help="models per split, probabilities averaged (default: %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seeds[0],
                   help="first seed; seeds are seed, seed+1, ... (default: %(default)s)")
    p.add_argument("--hidden", type=int, default=m.hidden_channels, help="(default: %(default)s)")
    p.add_argument("--layers", type=int, default=m.num_layers, help="(default: %(default)s)")
    p.add_argument("--dropout", type=float, default=m.dropout, help="(default: %(default)s)")
    p.add_argument("--ffn-multiplier", type=int, default=m.ffn_multiplier,
                   help="(default: %(default)s)")
    p.add_argument("--norm", choices=("layer", "batch", "none"), default=m.norm,
                   help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=tr.lr, help="(default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=tr.weight_decay,
                   help="(default: %(default)s)")
    p.add_argument("--epochs", type=int, default=tr.max_epochs,
                   help="maximum epochs (default: %(default)s)")
    p.add_argument("--schedule", choices=("constant", "cosine"), default=tr.schedule,
                   help="learning rate after warm-up (default: %(default)s)")
    p.add_argument("--ema-decay", type=float, default=tr.ema_decay,
                   help="judge and keep an exponential moving average of the weights "
                        "(e.g. 0.99); off by default (default: %(default)s)")
    p.add_argument("--patience", type=int, default=tr.patience, help="(default: %(default)s)")
    p.add_argument("--eval-every", type=int, default=tr.eval_every, help="(default: %(default)s)")
    p.add_argument("--periodic-frequencies", type=int, default=m.periodic_frequencies,
                   help="periodic (PLR) embedding of each input feature with this many "
                        "frequencies; 0 turns it off (default: %(default)s)")
    p.add_argument("--periodic-dim", type=int, default=m.periodic_dim,
                   help="(default: %(default)s)")
    p.add_argument("--periodic-sigma", type=float, default=m.periodic_sigma,
                   help="(default: %(default)s)")
    p.add_argument("--trees", action="store_true",
                   help="binary labels: also fit gradient-boosted trees on neighbour-aggregated "
                        "features and report the GNN/trees rank blend chosen on validation")
    p.add_argument("--validation-only", action="store_true",
                   help="tuning mode: never read the test masks, report validation only")
    p.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    p.add_argument("--workers", type=_positive, default=None,
                   help="CPU: run splits in this many single-threaded processes (default: one "
                        "per core this process may use, at most one per split)")
    p.add_argument("--threads", type=_positive, default=None,
                   help="torch CPU threads of each process (default: 1 with several workers, "
                        "else the cores this process may use)")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    p.add_argument("--predictions", type=Path, default=None,
                   help="write each split's test nodes with their predicted score here "
                        "(.csv, .csv.gz, .parquet): id, split, label, score (binary) or "
                        "prob_<class>")
    p.add_argument("--verbose", action="store_true",
                   help="log each seed's best epoch and validation metric")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from e
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from e


def _config(args: argparse.Namespace) -> BenchmarkConfig:
    return BenchmarkConfig(
        model=ModelConfig(hidden_channels=args.hidden, num_layers=args.layers,
                          dropout=args.dropout, ffn_multiplier=args.ffn_multiplier,
                          norm=args.norm, periodic_frequencies=args.periodic_frequencies,
                          periodic_dim=args.periodic_dim, periodic_sigma=args.periodic_sigma),
        train=TrainConfig(lr=args.lr, weight_decay=args.weight_decay, max_epochs=args.epochs,
                          patience=args.patience, eval_every=args.eval_every,
                          schedule=args.schedule, ema_decay=args.ema_decay),
        seeds=tuple(range(args.seed, args.seed + args.seeds)),
        trees=TreeConfig() if args.trees else None,
    )


def _print_split(s: SplitResult) -> None:
    test = "not scored" if s.test != s.test else f"{s.test:.4f}"
    auprc = "" if s.val_auprc != s.val_auprc else (
        f" (AUPRC val {s.val_auprc:.4f}" + ("" if s.test_auprc != s.test_auprc else
                                           f" test {s.test_auprc:.4f}") + ")")
    print(f"split {s.split}: val {s.val:.4f} test {test}{auprc} best epochs "
          f"{list(s.best_epochs)} ({s.seconds:.0f}s wall, {s.cpu_seconds:.0f}s CPU)", flush=True)


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, options that cannot be honoured."""
    if args.predictions is None:
        return
    if args.validation_only:
        raise SystemExit("riskgraph benchmark: --predictions writes test scores; "
                         "--validation-only never scores the test nodes")
    if not args.predictions.name.lower().endswith(_PREDICTION_SUFFIXES):
        raise SystemExit(f"riskgraph benchmark: --predictions {args.predictions}: use a "
                         f"{', '.join(_PREDICTION_SUFFIXES)} file")


def _parallelism(args: argparse.Namespace, splits: int) -> tuple[int, int]:
    """``(workers, threads)``: what was asked, else as many processes as the cores hold (at
    most one per split), single-threaded when there are several, or one process with a thread
    per core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    if torch.device(args.device).type != "cpu":
        return 1, args.threads or 1
    workers = args.workers or max(1, min(splits, cores // (args.threads or 1)))
    threads = args.threads or (1 if workers > 1 else cores)
    return workers, threads


def _run(graph: NodeGraph, args: argparse.Namespace) -> BenchmarkResult:
    splits = len(args.splits) if args.splits is not None else graph.num_splits
    workers, threads = _parallelism(args, splits)
    torch.set_num_threads(threads)
    print(f"running {splits} split(s) x {args.seeds} seed(s) on {args.device}: "
          + (f"{workers} processes x 1 torch thread" if workers > 1 else
             f"1 process x {threads} torch threads"), flush=True)
    return run_benchmark(graph, _config(args), torch.device(args.device), args.splits,
                         on_split=_print_split, score_test=not args.validation_only,
                         workers=workers, keep_predictions=args.predictions is not None)


def _finish(
    result: BenchmarkResult, args: argparse.Namespace, header: str, extra: dict[str, str]
) -> int:
    published = TOLOKERS_PUBLISHED if args.benchmark == "tolokers" else ()
    print()
    print(header)
    print(format_benchmark_table(result, published))
    print(f"\nconfig: {json.dumps(result.config.as_dict())}")
    print(f"wall time {result.seconds:.0f}s, CPU time {result.cpu_seconds:.0f}s (process time "
          f"of the training processes) on {result.device} ({result.parallelism}); "
          f"{result.machine}; "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')}")
    if args.json is not None:
        payload = {
            **extra,
            "metric": result.metric,
            "test_mean": result.test_mean,
            "test_std": result.test_std,
            "val_mean": result.val_mean,
            "test_auprc_mean": result.test_auprc_mean,
            "test_auprc_std": result.test_auprc_std,
            "seconds": result.seconds,
            "cpu_seconds": result.cpu_seconds,
            "device": result.device,
            "machine": result.machine,
            "parallelism": result.parallelism,
            "config": result.config.as_dict(),
            "splits": [vars(s) | {"best_epochs": list(s.best_epochs)} for s in result.splits],
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


def _tolokers(args: argparse.Namespace) -> int:
    _check_outputs(args)
    if not args.data.is_file():
        raise SystemExit(f"riskgraph benchmark: no tolokers.npz at {args.data.absolute()}: pass "
                         "--data PATH (the file's source and checksum: "
                         "../shared/datasets/README.md, docs/TOLOKERS.md)")
    logging.getLogger("gnn").setLevel(logging.INFO if args.verbose else logging.WARNING)
    graph = load_tolokers(args.data, add_degree=not args.no_degree)
    digest = file_sha256(args.data)
    print(f"tolokers: {graph}\nsha256 {digest}", flush=True)
    result = _run(graph, args)
    if args.predictions is not None:
        ids = [str(i) for i in range(graph.num_nodes)]
        rows = write_predictions(args.predictions, ids, graph, result.predictions)
        print(f"wrote {rows} test predictions to {args.predictions}", flush=True)
    return _finish(result, args, f"tolokers, test ROC-AUC (%), {len(result.splits)} splits",
                   {"dataset": "tolokers", "sha256": digest})


def _files(args: argparse.Namespace) -> int:
    _check_outputs(args)
    logging.getLogger("gnn").setLevel(logging.INFO if args.verbose else logging.WARNING)
    graph = read_graph_files(
        args.nodes, args.edges, directed=args.directed, derive_features=args.derive_features,
        num_splits=args.num_splits, train_fraction=args.train_fraction,
        val_fraction=args.val_fraction, split_seed=args.split_seed,
        use_edge_weight=args.edge_weight)
    print(f"{args.nodes.name} + {args.edges.name}: {graph}", flush=True)
    print(f"features: {', '.join(graph.feature_names)}", flush=True)
    result = _run(graph, args)
    if args.predictions is not None:
        rows = write_predictions(args.predictions, read_node_ids(args.nodes), graph,
                                 result.predictions)
        print(f"wrote {rows} test predictions to {args.predictions}", flush=True)
    return _finish(result, args, f"{args.nodes.name}: test {result.metric}, "
                                 f"{len(result.splits)} splits",
                   {"nodes": str(args.nodes), "edges": str(args.edges)})
