"""`riskgraph train|evaluate`: fit the GNN on a simulated world; judge it against baselines
(on that world, or on several fresh worlds at once)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from gnn import (
    DEVELOPMENT_SEED,
    ModelError,
    ModelRegistry,
    PipelineConfig,
    RiskTrainConfig,
    WorkDirMismatch,
    check_seeds,
    evaluate_registered,
    evaluate_seeds,
    evaluate_store,
    train_store,
    train_world,
    write_seeds_report,
)
from graph import Pseudonymiser
from simulator import DIFFICULTIES, WorldConfig, with_difficulty
from serving.commands._progress import progress
from serving.settings import ConfigurationError, get_settings
from serving.stores import build_store

_DOC = Path("docs/EVALUATION.md")
_IMG = Path("docs/img")
_USERS = 100_000


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train", help="train the GNN on the configured store (or a simulated "
                       "world's files) under a time split and register it",
                       description="Without --world: the configured store (Neo4j or the "
                       "embedded one), split by its own application times, with the labels "
                       "known before T2 only (labels from POST /v1/labels included, each as of "
                       "its `at`). With --world: a `riskgraph simulate` directory's files.")
    p.add_argument("--world", type=Path, default=None,
                   help="a `riskgraph simulate` directory (default: the configured store)")
    p.add_argument("--train-fraction", type=float, default=0.6,
                   help="share of the application span before T1 (default 0.6)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share between T1 and T2 (default 0.2); the rest is test")
    p.add_argument("--label-maturity-days", type=int, default=14,
                   help="validation applications younger than this at T2 are not chosen on: "
                   "their fraud labels may not be in yet (default 14)")
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

    p = sub.add_parser(
        "evaluate", help="judge models against the baselines on test periods: one registered "
        "model on its world (--world), or fresh worlds simulated, trained and evaluated "
        "per seed and aggregated (--seeds)",
        description="With --world: the registered model (default: the promoted one) and the "
        "baselines on that world's test period. With --seeds: for each seed, simulate a world "
        "(if absent), train on it with `riskgraph train`'s recipe, evaluate; then mean ± std "
        "and bootstrap intervals over the worlds. The report goes beside the model (--world) "
        "or into --work-dir (--seeds); docs/EVALUATION.md only with --write-docs or --doc.")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--world", type=Path, help="the world the model was trained on "
                       "(default, without --seeds: the configured store, judged on its labels)")
    which.add_argument("--seeds", type=_seeds,
                       help="comma-separated world seeds, e.g. 11,12,13 (never the "
                       f"development seed {DEVELOPMENT_SEED})")
    p.add_argument("--version", default=None,
                   help="with --world or the store: model version (default: the promoted one)")
    p.add_argument("--label-maturity-days", type=int, default=14,
                   help="on the store: a test application counts once this old at the store's "
                   "latest event (default 14)")
    p.add_argument("--users", type=int, default=None,
                   help=f"with --seeds: honest users per world (default {_USERS})")
    p.add_argument("--fraud-rate", type=float, default=None,
                   help="with --seeds: fraud share of applications, as `riskgraph simulate` "
                   f"(default {WorldConfig().fraud_rate})")
    p.add_argument("--difficulty", choices=sorted(DIFFICULTIES), default=None,
                   help="with --seeds: the worlds' fraud, as `riskgraph simulate "
                   "--difficulty` (default: default; adaptive is fraud that hides, "
                   "docs/SIMULATOR.md)")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="with --seeds (required): worlds, models and results, one "
                   "seed-<S>/ directory per seed; a seed already evaluated there is kept")
    p.add_argument("--resamples", type=int, default=1000,
                   help="with --seeds: bootstrap resamples per world (default 1000)")
    p.add_argument("--bootstrap-seed", type=int, default=0,
                   help="with --seeds: seed of the resampling (default 0)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="with --seeds: where the models train (default: as `riskgraph train`)")
    p.add_argument("--write-docs", action="store_true",
                   help=f"write the report to {_DOC} and its plots to {_IMG}/ (run from the "
                   "repository root)")
    p.add_argument("--doc", type=Path, default=None,
                   help="report file (default: EVALUATION.md beside the model with --world, "
                   "in --work-dir with --seeds)")
    p.add_argument("--img", type=Path, default=None,
                   help="plot directory (default: img/ beside the report)")
    p.add_argument("--note", action="append", default=[],
                   help="a line for the report's notes (repeatable)")
    p.add_argument("--notes-file", type=Path, default=None,
                   help="Markdown appended verbatim after the generated sections")
    p.add_argument("--threads", type=int, default=1, help="LightGBM threads (default 1)")
    p.set_defaults(func=_evaluate)


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}"
                                         ) from e
    if not seeds:
        raise argparse.ArgumentTypeError("no seed given")
    return seeds



def _pseudonymiser() -> Pseudonymiser | None:
    try:
        return get_settings().pseudonymiser()
    except ConfigurationError:
        return None


def _registry() -> ModelRegistry:
    return ModelRegistry(get_settings().models_dir)


def _train(args: argparse.Namespace) -> int:
    tc = RiskTrainConfig(epochs=args.epochs, patience=args.patience, lr=args.lr,
                         batch_size=args.batch_size, user_seeds=args.user_seeds, seed=args.seed,
                         device=get_settings().torch_device(args.device), threads=args.threads,
                         max_minutes=args.max_minutes, members=args.members)
    if args.force and not args.promote:
        raise SystemExit("riskgraph train: --force only makes sense with --promote")
    margin = get_settings().PROMOTION_MARGIN if args.margin is None else args.margin
    if not 0 <= margin <= 1:
        raise SystemExit(f"riskgraph train: --margin must be in [0, 1], got {margin}")
    say = progress("train")
    common: dict[str, Any] = {
        "train_fraction": args.train_fraction, "val_fraction": args.val_fraction,
        "pipeline_config": PipelineConfig(sampler_seed=args.seed), "train_config": tc,
        "promote": args.promote, "margin": margin, "force": args.force, "log": say}
    if args.world is not None:
        out = train_world(args.world, _registry(), pseudonymiser=_pseudonymiser(), **common)
    else:
        if args.label_maturity_days < 0:
            print(f"--label-maturity-days must be >= 0, got {args.label_maturity_days}",
                  file=sys.stderr)
            return 2
        with build_store(get_settings(), read_only=True) as store:
            out = train_store(store, _registry(),
                              label_maturity_days=args.label_maturity_days, **common)
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


def _report_paths(args: argparse.Namespace, default_dir: Path) -> tuple[Path, Path] | None:
    """Where the report and its plots go; None (after saying why) if --write-docs cannot."""
    if args.write_docs:
        if args.doc is not None:
            print("--write-docs and --doc name two report files: give one", file=sys.stderr)
            return None
        if not _DOC.parent.is_dir():
            print(f"--write-docs writes {_DOC} of the repository, but there is no "
                  f"{_DOC.parent}/ here: run from the repository root, or give --doc PATH",
                  file=sys.stderr)
            return None
        return _DOC, args.img or _IMG
    doc = args.doc or default_dir / "EVALUATION.md"
    return doc, args.img or doc.parent / "img"


def _notes(args: argparse.Namespace) -> list[str]:
    notes = list(args.note)
    if args.notes_file is not None:
        notes.append("\n" + args.notes_file.read_text())
    return notes


def _evaluate(args: argparse.Namespace) -> int:
    command = "riskgraph " + " ".join(shlex.quote(a) for a in args.argv)
    if args.seeds is not None:
        return _evaluate_seeds(args, command)
    for flag, value in (("--users", args.users), ("--fraud-rate", args.fraud_rate),
                        ("--difficulty", args.difficulty), ("--work-dir", args.work_dir),
                        ("--device", args.device)):
        if value is not None:
            print(f"{flag} goes with --seeds, not --world", file=sys.stderr)
            return 2
    registry = _registry()
    version = args.version or registry.promoted()
    if version is None:
        where = "" if args.world is None else f" --world {args.world}"
        print(f"no promoted model in {registry.root}: run `riskgraph train{where} --promote` "
              "first, or give --version", file=sys.stderr)
        return 2
    paths = _report_paths(args, registry.root / version)
    if paths is None:
        return 2
    doc, img = paths
    say = progress("evaluate")
    if args.world is not None:
        report = evaluate_registered(args.world, registry, version=version, doc=doc,
                                     img_dir=img, command=command, notes=_notes(args),
                                     pseudonymiser=_pseudonymiser(), threads=args.threads,
                                     log=say)
    else:
        if args.label_maturity_days < 0:
            print("--label-maturity-days must be >= 0, got "
                  f"{args.label_maturity_days}", file=sys.stderr)
            return 2
        with build_store(get_settings(), read_only=True) as store:
            try:
                report = evaluate_store(store, registry, version=version,
                                        label_maturity_days=args.label_maturity_days,
                                        doc=doc, img_dir=img, command=command,
                                        notes=_notes(args), threads=args.threads, log=say)
            except ValueError as e:
                print(str(e), file=sys.stderr)
                return 2
    for m, o in report.overall.items():
        print(f"{m:16s} AUROC {o['auroc']:.4f}  AUPRC {o['auprc']:.4f}  "
              f"R@1%FPR {o['recall_at_1pct_fpr']:.4f}")
    print(f"report: {doc}")
    return 0


def _world_config(args: argparse.Namespace) -> WorldConfig:
    config = WorldConfig(users=args.users or _USERS)
    if args.fraud_rate is not None:
        config = replace(config, fraud_rate=args.fraud_rate)
    return with_difficulty(config, args.difficulty or "default")


def _evaluate_seeds(args: argparse.Namespace, command: str) -> int:
    if args.version is not None:
        print("--version goes with --world: --seeds trains a model per world", file=sys.stderr)
        return 2
    if args.work_dir is None:
        print("--seeds needs --work-dir DIR (worlds, models and results go there)",
              file=sys.stderr)
        return 2
    try:
        check_seeds(args.seeds)
    except ValueError as e:
        print(f"refused: {e}", file=sys.stderr)
        return 2
    paths = _report_paths(args, args.work_dir)
    if paths is None:
        return 2
    doc, img = paths
    notes = _notes(args)
    try:
        evaluation = evaluate_seeds(
            args.seeds, args.work_dir, world_config=_world_config(args),
            train_config=RiskTrainConfig(device=get_settings().torch_device(args.device)),
            pipeline_config=PipelineConfig(sampler_seed=RiskTrainConfig().seed),
            threads=args.threads, resamples=args.resamples,
            bootstrap_seed=args.bootstrap_seed,
            log=lambda s: print(s, file=sys.stderr, flush=True))
    except WorkDirMismatch as e:
        print(str(e), file=sys.stderr)
        return 2
    except ModelError as e:
        print(f"stopped: {e} (the seeds done so far are kept in {args.work_dir})",
              file=sys.stderr)
        return 1
    write_seeds_report(evaluation, doc, img, command=command, notes=notes)
    s = evaluation.summary
    names = evaluation.model_names
    overall = s.row("fraud", "overall")
    for m in s.models:
        auprc = overall.metrics[m]["auprc"]
        print(f"{names[m]:40s} fraud AUPRC {auprc.mean:.4f} ± {auprc.std:.4f} "
              f"[{auprc.lo:.4f}, {auprc.hi:.4f}]")
    standings = s.standings()
    behind = [x for x in standings if not x.leads]
    print(f"{names[s.deployed]} does not lead on {len(behind)} of {len(standings)} rows "
          "checked (see the report)")
    print(f"report: {doc}; numbers: {args.work_dir / 'summary.json'}")
    return 0
