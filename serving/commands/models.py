"""`riskgraph models list|show|promote|rollback|challenger|compare`: the model registry under
DATA_DIR/models, and the champion against its challenger on matured labels."""

from __future__ import annotations

import argparse
import json
import sys

from gnn import ModelError, ModelNotFoundError, ModelRegistry
from serving.settings import get_settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("models", help="list, show or promote trained models")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    v = verbs.add_parser("list", help="every registered model, the promoted one marked")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=_list)
    v = verbs.add_parser("show", help="manifest and metrics of one model")
    v.add_argument("version", nargs="?", default=None, help="version (default: promoted)")
    v.set_defaults(func=_show)
    v = verbs.add_parser("promote", help="make a model the one the service loads (by hand: "
                         "the promotion gate is `riskgraph train --promote`'s)")
    v.add_argument("version", help="version to promote")
    v.set_defaults(func=_promote)
    v = verbs.add_parser("rollback", help="make the champion promoted before the current one "
                         "the champion again; a running service takes it without a restart "
                         "(within RISKGRAPH_MODEL_WATCH_S plus one rebuild of its graph state)")
    v.set_defaults(func=_rollback)
    v = verbs.add_parser("challenger", help="score every request with a model beside the "
                         "champion, off the latency path, its scores stored beside the verdict")
    who = v.add_mutually_exclusive_group(required=True)
    who.add_argument("version", nargs="?", default=None, help="version to set as challenger")
    who.add_argument("--clear", action="store_true", help="no challenger")
    v.set_defaults(func=_challenger)
    v = verbs.add_parser("compare", help="champion vs challenger on the applications whose "
                         "labels have matured: AUPRC, calibration, decisions that would have "
                         "changed, with 95%% intervals")
    v.add_argument("--challenger", default=None,
                   help="challenger version (default: the one scored most recently)")
    v.add_argument("--maturity-days", type=float, default=30.0,
                   help="an application counts once its scores are this old (default 30)")
    v.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples "
                   "(default 1000)")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=_compare)


def _registry() -> ModelRegistry:
    return ModelRegistry(get_settings().models_dir)


def _list(args: argparse.Namespace) -> int:
    infos = _registry().list()
    if args.json:
        print(json.dumps([{"version": i.version, "created_at": i.created_at,
                           "promoted": i.promoted, "data_sha256": i.data_sha256,
                           "val_auprc": i.metrics.get("val_Application.fraud_auprc"),
                           "refused": i.refused}
                          for i in infos], indent=2))
        return 0
    if not infos:
        print("no models registered")
    for i in infos:
        ap = i.metrics.get("val_Application.fraud_auprc")
        print(f"{'*' if i.promoted else ' '} {i.version}  {i.created_at}  data "
              f"{i.data_sha256[:12]}  val AUPRC {ap if ap is None else f'{ap:.4f}'}"
              + ("  REFUSED: trained on another feature set, retrain" if i.refused else ""))
    return 0


def _show(args: argparse.Namespace) -> int:
    reg = _registry()
    version = args.version or reg.promoted()
    if version is None:
        print(f"no model is promoted in {reg.root}: `riskgraph models list` shows the "
              "registered ones, `riskgraph train --world DIR --promote` makes one",
              file=sys.stderr)
        return 1
    try:
        info = reg.show(version)
    except ModelNotFoundError as e:
        print(e)
        return 1
    info["metrics"].pop("history", None)
    print(json.dumps(info, indent=2, sort_keys=True))
    return 0


def _promote(args: argparse.Namespace) -> int:
    reg = _registry()
    try:
        reg.promote(args.version)
    except ModelNotFoundError as e:
        print(e)
        return 1
    gate = reg.manifest(args.version).get("promotion_gate")
    print(f"promoted {args.version}"
          + (f" (at training, the gate said: {gate['reason']})" if gate else ""))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    try:
        old, new = _registry().rollback()
    except ModelError as e:
        print(e, file=sys.stderr)
        return 2
    print(f"rolled back from {old} to {new}; a running service takes it within "
          f"{get_settings().MODEL_WATCH_S:g} s plus one rebuild of its graph state")
    return 0


def _challenger(args: argparse.Namespace) -> int:
    try:
        _registry().set_challenger(None if args.clear else args.version)
    except ModelError as e:
        print(e, file=sys.stderr)
        return 2
    print("no challenger" if args.clear else f"challenger {args.version}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from serving.model_comparison import compare_models, render_comparison
    from serving.stores import build_store

    if args.resamples < 1:
        print(f"--resamples must be >= 1, got {args.resamples}", file=sys.stderr)
        return 2
    with build_store(get_settings(), read_only=True) as store:
        try:
            comparison = compare_models(store, challenger=args.challenger,
                                        maturity_days=args.maturity_days,
                                        resamples=args.resamples)
        except ValueError as e:
            print(e, file=sys.stderr)
            return 2
    print(json.dumps(comparison.to_dict(), indent=2) if args.json
          else render_comparison(comparison))
    return 0
