"""`riskgraph train|evaluate`: fit the GNN on a simulated world; judge it against baselines."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from gnn import (
    ModelRegistry,
    PipelineConfig,
    RiskTrainConfig,
    evaluate_registered,
    train_world,
)
from graph import Pseudonymiser
from serving.settings import ConfigurationError, get_settings

_DOC = Path("docs/EVALUATION.md")
_IMG = Path("docs/img")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train", help="train the GNN on a simulated world under a time split and "
                       "register it")
    p.add_argument("--world", type=Path, required=True, help="a `riskgraph simulate` directory")
    p.add_argument("--train-fraction", type=float, default=0.6,
                   help="share of the application span before T1 (default 0.6)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share between T1 and T2 (default 0.2); the rest is test")
    p.add_argument("--epochs", type=int, default=20, help="most epochs (default 20)")
    p.add_argument("--patience", type=int, default=4,
                   help="epochs without a better validation AUPRC before stopping (default 4)")
    p.add_argument("--members", type=int, default=3,
                   help="networks trained from consecutive seeds and averaged (default 3)")
    p.add_argument("--max-minutes", type=float, default=10.0,
                   help="training-time budget of the first phase (default 10)")
    p.add_argument("--batch-size", type=int, default=512, help="seeds per step (default 512)")
    p.add_argument("--lr", type=float, default=3e-3, help="learning rate (default 3e-3)")
    p.add_argument("--user-seeds", type=int, default=20_000,
                   help="users sampled as seeds per period (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="seed of every draw (default 0)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="where the model trains (default: RISKGRAPH_DEVICE; auto means cpu "
                   "here unless CUDA is available)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: tree batches are small)")
    p.add_argument("--promote", action="store_true",
                   help="promote the new version if it passes the promotion gate: validation "
                   "fraud AUPRC at least --margin above the rules' and the promoted model's "
                   "(exit status 1 when the gate refuses; the model stays registered)")
    p.add_argument("--margin", type=float, default=None,
                   help="AUPRC the new model must gain (default RISKGRAPH_PROMOTION_MARGIN)")
    p.add_argument("--force", action="store_true",
                   help="with --promote: promote even when the gate refuses (logged)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="evaluate a registered model and the baselines on the "
                       "test period; write docs/EVALUATION.md and docs/img/")
    p.add_argument("--world", type=Path, required=True,
                   help="the world the model was trained on")
    p.add_argument("--version", default=None, help="model version (default: the promoted one)")
    p.add_argument("--doc", type=Path, default=_DOC, help=f"report file (default {_DOC})")
    p.add_argument("--img", type=Path, default=_IMG, help=f"plot directory (default {_IMG})")
    p.add_argument("--note", action="append", default=[],
                   help="a line for the report's notes (repeatable)")
    p.add_argument("--notes-file", type=Path, default=None,
                   help="Markdown appended verbatim after the generated sections")
    p.add_argument("--threads", type=int, default=1, help="LightGBM threads (default 1)")
    p.set_defaults(func=_evaluate)


def _device(choice: str | None) -> str:
    if choice is not None:
        return choice
    setting = get_settings().DEVICE
    if setting == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def _pseudonymiser() -> Pseudonymiser | None:
    try:
        return get_settings().pseudonymiser()
    except ConfigurationError:
        return None


def _registry() -> ModelRegistry:
    return ModelRegistry(get_settings().DATA_DIR / "models")


def _train(args: argparse.Namespace) -> int:
    tc = RiskTrainConfig(epochs=args.epochs, patience=args.patience, lr=args.lr,
                         batch_size=args.batch_size, user_seeds=args.user_seeds, seed=args.seed,
                         device=_device(args.device), threads=args.threads,
                         max_minutes=args.max_minutes, members=args.members)
    if args.force and not args.promote:
        raise SystemExit("riskgraph train: --force only makes sense with --promote")
    margin = get_settings().PROMOTION_MARGIN if args.margin is None else args.margin
    if not 0 <= margin <= 1:
        raise SystemExit(f"riskgraph train: --margin must be in [0, 1], got {margin}")
    out = train_world(args.world, _registry(), train_fraction=args.train_fraction,
                      val_fraction=args.val_fraction,
                      pipeline_config=PipelineConfig(sampler_seed=args.seed), train_config=tc,
                      pseudonymiser=_pseudonymiser(), promote=args.promote, margin=margin,
                      force=args.force, log=lambda s: print(s, file=sys.stderr, flush=True))
    r = out.result
    summary = {"version": out.version, "promoted": out.promoted, "forced": out.forced,
               "best_epoch": r.best_epoch,
               "seconds": {**r.seconds, "load": out.load_seconds},
               "validation": {k: v for k, v in r.metrics.items() if k.startswith("val_")},
               "promotion_gate": out.gate.to_dict()}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{out.version}: val AUPRC "
              f"{r.metrics.get('val_Application.fraud_auprc', float('nan')):.4f}, "
              f"{r.seconds['total'] + out.load_seconds:.0f}s"
              + (", promoted" if out.promoted and not out.forced else
                 ", promoted (forced past the gate)" if out.forced else ""))
        if args.promote and not out.promoted:
            print(out.gate.reason)
        elif out.forced:
            print(f"forced: {out.gate.reason}")
    return 1 if args.promote and not out.promoted else 0


def _evaluate(args: argparse.Namespace) -> int:
    command = "riskgraph " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    notes = list(args.note)
    if args.notes_file is not None:
        notes.append("\n" + args.notes_file.read_text())
    report = evaluate_registered(args.world, _registry(), version=args.version, doc=args.doc,
                                 img_dir=args.img, command=command, notes=notes,
                                 pseudonymiser=_pseudonymiser(), threads=args.threads,
                                 log=lambda s: print(s, file=sys.stderr, flush=True))
    for m, o in report.overall.items():
        print(f"{m:16s} AUROC {o['auroc']:.4f}  AUPRC {o['auprc']:.4f}  "
              f"R@1%FPR {o['recall_at_1pct_fpr']:.4f}")
    return 0
