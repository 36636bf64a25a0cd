"""`riskgraph rescore`: score every user and merchant with the promoted model, write the scores
back to the store, report what changed."""

from __future__ import annotations

import argparse
import json

from gnn import ModelRegistry
from gnn.rescoring import rescore_store
from serving.commands._progress import progress
from serving.settings import get_settings
from serving.stores import build_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("rescore", help="rescore every user and merchant with the promoted model "
                       "and write the scores to the store")
    p.add_argument("--version", default=None, help="model version (default: the promoted one)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="where the model runs (default: RISKGRAPH_DEVICE; auto means cuda when "
                   "available)")
    p.add_argument("--as-of", type=int, default=None,
                   help="score as of this epoch second (default: after the latest event)")
    p.add_argument("--high-risk", type=float, default=0.5,
                   help="fraud probability from which an account is high-risk (default 0.5)")
    p.add_argument("--dry-run", action="store_true", help="score and report, write nothing")
    p.add_argument("--clusters", type=int, default=10, help="clusters to print (default 10)")
    p.set_defaults(func=_rescore)



def _rescore(args: argparse.Namespace) -> int:
    settings = get_settings()
    say = progress("rescore")
    pipeline = ModelRegistry(settings.models_dir).load(args.version)
    device = get_settings().torch_device(args.device)
    say(f"model {pipeline.version} on {device}; exporting the graph, then scoring every user "
        "and merchant" + ("" if args.dry_run else " and writing the scores back"))
    with build_store(settings) as store:
        report = rescore_store(store, pipeline, device=device, as_of=args.as_of,
                               high_risk=args.high_risk, write=not args.dry_run,
                               embeddings_dir=settings.DATA_DIR / "embeddings", log=say)
    out = report.to_dict()
    out["clusters"] = out["clusters"][: args.clusters]
    out["clusters_total"] = len(report.clusters)
    out["new_clusters"] = sum(1 for c in report.clusters if c.new_high_risk)
    print(json.dumps(out, indent=2))
    return 0
