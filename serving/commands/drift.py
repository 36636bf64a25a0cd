"""`riskgraph drift`: drift and decision shares of the store's latest verdicts, as a report."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from gnn import ModelRegistry
from serving.settings import get_settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "drift", help="PSI of every model input and both scores per product against the "
        "deciding model's training reference, and the decision shares, over the latest "
        "verdicts in the store: a Markdown report with a PNG",
        description="Reads the last RISKGRAPH_DRIFT_WINDOW verdicts of each product from the "
        "configured store (what /metrics shows for one replica's own verdicts) and the "
        "reference the deciding model keeps beside its weights; flags inputs from "
        "RISKGRAPH_DRIFT_PSI_WARN (moved) and RISKGRAPH_DRIFT_PSI_ALERT (shifted). Exit status "
        "1 when an input has shifted.")
    p.add_argument("--out", type=Path, default=None,
                   help="report file (default: DATA_DIR/drift/drift-<UTC time>.md; the PNG "
                   "goes beside it)")
    p.add_argument("--window", type=int, default=None,
                   help="verdicts per product (default RISKGRAPH_DRIFT_WINDOW)")
    p.add_argument("--since-days", type=float, default=None,
                   help="only verdicts decided in the last N days (default: no limit)")
    p.set_defaults(func=_drift)


def _drift(args: argparse.Namespace) -> int:
    from serving.drift import (
        DriftThresholds,
        References,
        measure_drift,
        newest_version,
        verdict_samples,
        write_drift_report,
    )
    from serving.stores import build_store

    settings = get_settings()
    window = settings.DRIFT_WINDOW if args.window is None else args.window
    if window < 1:
        print(f"--window must be >= 1, got {window}", file=sys.stderr)
        return 2
    if args.since_days is not None and args.since_days <= 0:
        print(f"--since-days must be > 0, got {args.since_days}", file=sys.stderr)
        return 2
    since = None if args.since_days is None else int(time.time() - args.since_days * 86_400)
    with build_store(settings, read_only=True) as store:
        samples = verdict_samples(store, window=window, since=since)
    if not samples:
        print("no verdicts in the store" + ("" if since is None else " in that period"),
              file=sys.stderr)
        return 2
    version = newest_version(samples)
    thresholds = DriftThresholds(settings.DRIFT_PSI_WARN, settings.DRIFT_PSI_ALERT,
                                 settings.DRIFT_MIN_COUNT)
    status = measure_drift(samples, References(ModelRegistry(settings.models_dir)).get(version),
                           thresholds, version)
    doc = args.out or settings.DATA_DIR / "drift" / time.strftime(
        "drift-%Y%m%dT%H%M%SZ.md", time.gmtime())
    command = "riskgraph " + " ".join(shlex.quote(a) for a in args.argv)
    doc, image = write_drift_report(status, doc, command=command)
    shifted = status.shifted()
    for product, d in status.products.items():
        moved = d.flagged(thresholds.warn)
        print(f"{product:16s} {d.verdicts:6d} verdicts  " + (
            "too few to judge" if not d.judged else
            "no reference" if not status.has_reference else
            f"{len(moved)} moved, {len(shifted.get(product, []))} shifted"
            + ("" if not moved else f" (top: {moved[0][0]} {moved[0][1]:.2f})")))
    print(f"report: {doc} ({image.name})")
    return 1 if shifted else 0
