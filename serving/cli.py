"""`riskgraph`: the command line. Each command lives in :mod:`serving.commands` and calls the
same service functions as the API; the CLI holds no logic of its own.

Only the module of the command being run is imported: the others (and PyTorch, which the
model commands need) stay unloaded, so that ``riskgraph --help`` answers at once. A known
condition (a missing setting, no promoted model, a store that does not answer, bad input
files) ends the command with one line that says what to do, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Final

COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "demo": ("serving.commands.demo", "simulate, load, train, serve on the embedded store and "
             "score an example application"),
    "simulate": ("serving.commands.simulate", "simulate a lending world with planted fraud "
                 "into Parquet files"),
    "load": ("serving.commands.simulate", "bulk-load a simulated world into the configured "
             "store (idempotent, resumable); needs the pseudonym secret"),
    "datacard": ("serving.commands.simulate", "base rates and the rule table of a world, "
                 "written into docs/SIMULATOR.md"),
    "schema": ("serving.commands.store", "apply the graph schema to the configured store"),
    "counts": ("serving.commands.store", "print node and relationship counts as JSON"),
    "export": ("serving.commands.store", "export the whole graph to Parquet files"),
    "train": ("serving.commands.train", "train the GNN on the configured store (or a "
              "simulated world's files) under a time split and register it"),
    "evaluate": ("serving.commands.train", "evaluate a registered model and the baselines on "
                 "the test period"),
    "models": ("serving.commands.models", "list, show, promote or roll back models; set a "
               "challenger and compare it with the champion"),
    "drift": ("serving.commands.drift", "PSI of every model input and both scores per product "
              "against the training reference, and decision shares: a Markdown + PNG report"),
    "rescore": ("serving.commands.rescore", "rescore every user and merchant with the promoted "
                "model and write the scores to the store"),
    "policy": ("serving.commands.policy", "replay a decision policy on the store's historical "
               "applications, alone or against another: rates, losses, grades, thin-file and "
               "province groups (Markdown + PNG)"),
    "benchmark": ("serving.commands.benchmark", "train and evaluate the GNN on a labelled "
                  "graph (tolokers or your own files)"),
    "serve": ("serving.commands.serve", "run the scoring API; needs the pseudonym secret"),
    "keys": ("serving.commands.keys", "create, list or revoke API keys"),
    "rings": ("serving.commands.rings", "find the rings of the graph and store them (refresh), "
              "or list the riskiest"),
    "erase": ("serving.commands.privacy", "erase a person's identifiers and documents; the "
              "graph's risk facts stay pseudonymous"),
    "rotate-key": ("serving.commands.privacy", "re-key every keyed hash of the store under a "
                   "new pseudonym secret (resumable); needs the pseudonym secret"),
}
"""Command -> (the module that registers it, its line in ``riskgraph --help``)."""

_SECRET_HINT: Final = ("export RISKGRAPH_PSEUDONYM_SECRET=$(openssl rand -hex 32), or point "
                       "RISKGRAPH_PSEUDONYM_SECRET_FILE at a file holding one")


def _buffer_pool_hint(error: BaseException) -> str:
    # NOTE: imported here: serving.stores imports the graph package, which `--help` must not.
    from serving.stores import buffer_pool_advice

    return buffer_pool_advice(int(getattr(error, "pool_bytes", 0)))


def _unavailable_hint(error: BaseException) -> str:
    # NOTE: LadybugDB's words when another process holds the file (graph.ladybug_store).
    if "Could not set lock on file" in str(error):
        return ("another process holds the embedded store (a running `riskgraph serve` or "
                "`riskgraph demo` on this RISKGRAPH_DATA_DIR): stop it first")
    return "start the store, or check RISKGRAPH_NEO4J_URI and its credentials"


_KNOWN_ERRORS: Final[tuple[tuple[str, str, str | Callable[[BaseException], str]], ...]] = (
    # (module, exception class, what to do, or a function of the error that says it); classes
    # are looked up only in modules already imported, so catching a model error never imports
    # torch.
    ("serving.settings", "ConfigurationError", "see README.md, Configuration"),
    ("serving.policy", "PolicyError", "serving/policy.toml documents every field"),
    ("pydantic", "ValidationError", "check the RISKGRAPH_ environment variables and .env"),
    ("gnn.features.feature_set", "FeatureSetMismatchError", ""),
    ("gnn.registry", "ModelNotFoundError", "train one with `riskgraph train --world DIR "
     "--promote`, or promote one with `riskgraph models promote VERSION` "
     "(`riskgraph models list` shows them)"),
    ("graph.loader", "LoadError", "make a world with `riskgraph simulate --out DIR`"),
    ("graph.key_rotation", "KeyChainError", ""),
    ("serving.spool", "SpoolError", ""),
    ("graph.errors", "StoreUnavailableError", _unavailable_hint),
    ("graph.errors", "BufferPoolFullError", _buffer_pool_hint),
    ("gnn.errors", "GraphDataError", "see docs/BENCHMARK_FORMAT.md"),
    ("gnn.errors", "ModelError", "check the input and the options (--help)"),
    ("graph.errors", "GraphError", "check the store and the input"),
)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the module of the command named in ``argv`` is imported.

    Args:
        argv (Sequence[str], optional): the arguments to be parsed; ``None`` imports no
            command module (enough for ``--help`` and for naming the commands).
            (default: ``None``)
    """
    parser = argparse.ArgumentParser(
        prog="riskgraph",
        description="RiskGraph: graph fraud detection and credit risk for online lending. "
                    "Settings come from RISKGRAPH_* environment variables (README.md, "
                    "Configuration); "
                    "`load` and `serve` need RISKGRAPH_PSEUDONYM_SECRET.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _chosen_command(argv)
    if chosen is not None:
        importlib.import_module(COMMANDS[chosen][0]).register(sub)
    for name, (_, text) in COMMANDS.items():
        if name in sub.choices:
            command = sub.choices[name]
            command.description = command.description or text
        else:
            sub.add_parser(name, help=text, description=text)
    return parser


def _chosen_command(argv: Sequence[str] | None) -> str | None:
    for arg in argv or ():
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    # NOTE: the command line as given, for reports that say how to reproduce them (main may be
    # called with its own argv, as the tests do).
    args.argv = args_list
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        message = known_error_message(e)
        if message is None:
            raise
        print(f"riskgraph {args.command}: {message}", file=sys.stderr)
        return 2


def known_error_message(error: BaseException) -> str | None:
    """One line for a known condition (what happened, then what to do), else ``None``."""
    for module_name, class_name, hint in _KNOWN_ERRORS:
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if isinstance(cls, type) and isinstance(error, cls):
            what = _one_line(error)
            advice = hint(error) if callable(hint) else hint
            if "PSEUDONYM_SECRET" in what and "not set" in what:
                advice = _SECRET_HINT
            return f"{what}; {advice}" if advice else what
    return None


def _one_line(error: BaseException) -> str:
    if type(error).__name__ == "ValidationError" and hasattr(error, "errors"):
        parts = [f"RISKGRAPH_{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"]
                 for e in error.errors()]
        return "invalid settings: " + "; ".join(parts)
    text = " ".join(str(error).split())
    return text if len(text) <= 400 else text[:397] + "..."


if __name__ == "__main__":
    sys.exit(main())
