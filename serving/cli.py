"""`riskgraph`: the command line. Each command lives in :mod:`serving.commands` and calls the
same service functions as the API; the CLI holds no logic of its own."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gnn import FeatureSetMismatchError

# One module per command group under serving/commands/, each with `register(subparsers)`.
COMMAND_MODULES = (
    "serving.commands.store",
    "serving.commands.simulate",
    "serving.commands.benchmark",
    "serving.commands.serve",
    "serving.commands.keys",
    "serving.commands.demo",
    "serving.commands.train",
    "serving.commands.models",
    "serving.commands.rescore",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riskgraph",
        description="RiskGraph: graph fraud detection and credit risk for online lending.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # NOTE: the command line as given, for reports that say how to reproduce them (main may be
    # called with its own argv, as the tests do).
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except FeatureSetMismatchError as e:
        # NOTE: a model trained on other features is an operator's problem with one remedy
        # (retrain), not a crash: one line, no traceback.
        print(f"riskgraph {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
