"""`riskgraph rescore`: score every user and merchant with the promoted model, write the scores
back to the store in resumable chunks, report what changed (Markdown + PNG).

Run alone, or as every rank of ``torchrun --nproc_per_node N -m serving.cli rescore`` (gloo on
CPU, NCCL on GPUs): each rank exports, scores and writes its share of the chunks."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from gnn import ModelRegistry
from gnn.rescoring import ProgressHook, rescore_store
from serving.commands._progress import progress
from serving.settings import get_settings
from serving.stores import build_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("rescore", help="rescore every user and merchant with the promoted model "
                       "and write the scores to the store (resumes an interrupted run)")
    p.add_argument("--version", default=None, help="model version (default: the promoted one)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="where features and model run (default: RISKGRAPH_DEVICE; auto means "
                   "cuda when available)")
    p.add_argument("--as-of", type=int, default=None,
                   help="score as of this epoch second (default: after the latest event)")
    p.add_argument("--high-risk", type=float, default=0.5,
                   help="fraud probability from which an account is high-risk (default 0.5)")
    p.add_argument("--chunk-size", type=int, default=16384,
                   help="accounts scored, written and recorded at once (default 16384)")
    p.add_argument("--max-edges", type=int, default=262144,
                   help="edges whose states inference holds at once: bounds its memory "
                   "(default 262144)")
    p.add_argument("--dry-run", action="store_true", help="score and report, write nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--clusters", type=int, default=10, help="clusters to print (default 10)")
    p.set_defaults(func=_rescore)


def _bars(enabled: bool) -> tuple[ProgressHook | None, Callable[[], None]]:
    """A progress hook drawing one bar per stage (rate and ETA) on stderr, and its closer."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def tick(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=f"rescore {stage}", unit="node",
                                     unit_scale=True, file=sys.stderr, dynamic_ncols=True)
        bar.update(done - bar.n)

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return tick, close


def _rescore(args: argparse.Namespace) -> int:
    from gnn.distributed_rescoring import start_ranks

    if args.chunk_size < 1:
        print(f"riskgraph rescore: --chunk-size must be positive, got {args.chunk_size}",
              file=sys.stderr)
        return 2
    if args.max_edges < 1:
        print(f"riskgraph rescore: --max-edges must be positive, got {args.max_edges}",
              file=sys.stderr)
        return 2
    settings = get_settings()
    device: str = settings.torch_device(args.device)
    # NOTE: torchrun's variables; a plain run has none and is one process.
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "cuda" and world_size > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        import torch

        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    ranks = start_ranks(world_size, device)
    say = progress("rescore" if ranks.world_size == 1 else f"rescore rank {ranks.rank}")
    pipeline = ModelRegistry(settings.models_dir).load(args.version)
    say(f"model {pipeline.version} on {device}; exporting the graph, then scoring every user "
        "and merchant" + ("" if args.dry_run else " and writing the scores back"))
    tick, close = _bars(not args.no_progress and ranks.rank == 0)
    try:
        with build_store(settings) as store:
            report = rescore_store(store, pipeline, device=device, as_of=args.as_of,
                                   high_risk=args.high_risk, write=not args.dry_run,
                                   run_dir=settings.DATA_DIR / "rescore",
                                   chunk_size=args.chunk_size, max_edges=args.max_edges,
                                   ranks=ranks, log=say, on_progress=tick)
    finally:
        close()
        ranks.close()
    if ranks.rank != 0:
        return 0
    out = report.to_dict()
    out["clusters"] = out["clusters"][: args.clusters]
    out["clusters_total"] = len(report.clusters)
    out["new_clusters"] = sum(1 for c in report.clusters if c.new_high_risk)
    print(json.dumps(out, indent=2))
    return 0
