"""`riskgraph schema|counts|export`: look after the configured store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.parquet as pq

from graph import GraphStore
from serving.settings import Settings, get_settings
from serving.stores import build_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("schema", help="apply the graph schema to the configured store")
    p.set_defaults(func=_schema)
    p = sub.add_parser("counts", help="print node and relationship counts as JSON")
    p.set_defaults(func=_counts)
    p = sub.add_parser("export", help="export the whole graph to Parquet files")
    p.add_argument("out", type=Path, help="output directory")
    p.set_defaults(func=_export)


def _schema(args: argparse.Namespace) -> int:
    with build_store(get_settings()) as store:
        store.apply_schema()
    print("schema applied")
    return 0


def _existing_store(settings: Settings, command: str) -> GraphStore:
    """The configured store for reading; a missing embedded store is named, not created."""
    if settings.backend == "ladybug" and not settings.ladybug_path.exists():
        raise SystemExit(f"riskgraph {command}: no graph at {settings.ladybug_path}: load a world with "
                         "`riskgraph load DIR`, or set RISKGRAPH_DATA_DIR (or "
                         "RISKGRAPH_NEO4J_URI) to where one is")
    return build_store(settings, read_only=True)


def _counts(args: argparse.Namespace) -> int:
    with _existing_store(get_settings(), "counts") as store:
        print(json.dumps(store.counts(), indent=2, sort_keys=True))
    return 0


def _export(args: argparse.Namespace) -> int:
    with _existing_store(get_settings(), "export") as store:
        for kind, name, table in store.iter_export():
            folder = args.out / ("nodes" if kind == "node" else "edges")
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / f"{name}.parquet")
            print(f"{kind} {name}: {table.num_rows}")
    return 0
