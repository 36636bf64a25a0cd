"""`riskgraph policy backtest`: a policy file replayed on the store's historical applications,
alone or against another, as a Markdown report with plots (docs/BACKTEST.md)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from serving.settings import get_settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("policy", help="replay a decision policy on the store's historical "
                       "applications (backtest)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser(
        "backtest", help="approval, review and decline rates, expected and realised loss, "
        "default rate per grade, limits granted, thin-file and province groups, per product; "
        "with --against, side by side with deltas",
        description="Replays POLICY.toml with the service's own decision function on every "
        "application of the configured store: on the scores of its stored verdict where it "
        "has one, else scored as of its own time by the promoted model (the rules when none "
        "is promoted). Realised loss counts the loans the incumbent funded whose outcome is "
        "known (at least --maturity-days old). Writes backtest.md and three PNGs into --out.")
    b.add_argument("policy", type=Path, metavar="POLICY.toml", help="the policy to replay")
    b.add_argument("--against", type=Path, default=None, metavar="OTHER.toml",
                   help="a second policy, replayed on the same scores and shown beside it "
                   "with the deltas (e.g. serving/policy.toml, the one deployed)")
    b.add_argument("--out", type=Path, default=None,
                   help="report directory (default: DATA_DIR/backtest/<UTC time>)")
    b.add_argument("--scores", choices=("stored", "verdicts", "model"), default="stored",
                   help="stored: a stored verdict's scores where there is one, the model for "
                   "the rest (default); verdicts: only applications with a stored verdict; "
                   "model: the model for every application")
    b.add_argument("--maturity-days", type=int, default=None,
                   help="age from which a funded loan's outcome is known (default: the "
                   "training split's pd_maturity_days, 75)")
    b.add_argument("--as-of", type=int, default=None,
                   help="read outcomes as known at this epoch second (default: the latest "
                   "application or repayment)")
    b.add_argument("--no-reasons", action="store_true",
                   help="score without attributions (faster; the rule that reviews an "
                   "approval on its strongest fraud reason then cannot fire for them)")
    b.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="where the model runs (default: RISKGRAPH_DEVICE)")
    b.set_defaults(func=_backtest)


def _backtest(args: argparse.Namespace) -> int:
    from gnn import TimeSplit
    from serving.backtest import (
        BacktestRun,
        load_history,
        location_only_reasons,
        replay,
        stored_scores,
        write_backtest_report,
    )
    from serving.commands._progress import progress
    from serving.policy import load_policy
    from serving.stores import build_store

    maturity = TimeSplit.pd_maturity_days if args.maturity_days is None else args.maturity_days
    if maturity < 0:
        print(f"riskgraph policy: --maturity-days must be >= 0, got {maturity}",
              file=sys.stderr)
        return 2
    # NOTE: both files are read before the store is opened: a typo fails at once.
    policy = load_policy(args.policy)
    against = None if args.against is None else load_policy(args.against)
    say = progress("policy backtest")
    settings = get_settings()
    model_version = None
    with build_store(settings, read_only=True) as store:
        history = load_history(store, maturity_days=maturity, as_of=args.as_of)
        say(f"{len(history):,} applications in the {store.backend} store")
        scores = {} if args.scores == "model" else stored_scores(store)
        say(f"{len(scores):,} of them with a stored verdict to replay")
        missing = [a for a in history.application_id.tolist() if a not in scores]
        if missing and args.scores != "verdicts":
            scored, model_version = _score_with_model(args, settings, store, missing,
                                                      policy.currency, say)
            scores.update(scored)
        store_name = f"{store.backend} ({_where(settings)})"
    if not scores:
        print("riskgraph policy: no application to replay"
              + (" has a stored verdict" if args.scores == "verdicts" else ""), file=sys.stderr)
        return 2
    names = ("policy", "against")
    if args.against is not None and args.policy.name != args.against.name:
        names = (args.policy.name, args.against.name)
    replays = [(names[0], replay(policy, history, scores,
                                 degraded_cap=settings.DEGRADED_MAX_APPROVE_AMOUNT))]
    if against is not None:
        replays.append((names[1], replay(against, history, scores,
                                         degraded_cap=settings.DEGRADED_MAX_APPROVE_AMOUNT)))
    out = args.out or settings.DATA_DIR / "backtest" / time.strftime("%Y%m%dT%H%M%SZ",
                                                                     time.gmtime())
    command = "riskgraph " + " ".join(shlex.quote(a) for a in args.argv)
    run = BacktestRun(command, store_name, replays, location_only_reasons(),
                      unscored=len(history) - len(replays[0][1]), model_version=model_version)
    doc = write_backtest_report(run, out)
    for label, r in replays:
        approved = r.approved
        print(f"{label:16s} {r.policy.version:24s} {len(r):7,d} applications  approve "
              f"{approved.mean():6.1%}  review {(r.decision == 'review').mean():6.1%}  "
              f"decline {(r.decision == 'decline').mean():6.1%}  expected loss "
              f"{r.expected_loss.sum():,.0f}  realised loss "
              f"{r.history.loss()[approved & r.history.known].sum():,.0f}")
    print(f"report: {doc}")
    return 0


def _score_with_model(args: argparse.Namespace, settings: Any, store: Any, ids: list[str],
                      currency: str, say: Any) -> tuple[dict[str, Any], str]:
    """Scores of ``ids`` by the model the service would load, over the live graph's arrays."""
    from serving.backtest import model_scores
    from serving.scorers import explain_batch, load_live_graph, load_model

    model = load_model(settings)
    say(f"scoring {len(ids):,} applications with {model.version} as of their own time"
        + ("" if args.no_reasons else ", with reasons"))
    graph = load_live_graph(settings, store).arrays()
    scored = model_scores(graph, model, ids, currency=currency,
                          explain_batch=None if args.no_reasons else explain_batch,
                          device=settings.torch_device(args.device), log_progress=say)
    return scored, model.version


def _where(settings: Any) -> str:
    return str(settings.NEO4J_URI) if settings.NEO4J_URI else str(settings.ladybug_path)
