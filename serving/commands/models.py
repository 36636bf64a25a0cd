"""`riskgraph models list|show|promote`: the model registry under DATA_DIR/models."""

from __future__ import annotations

import argparse
import json
import sys

from gnn import ModelNotFoundError, ModelRegistry
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
