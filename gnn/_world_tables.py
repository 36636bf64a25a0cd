"""A simulated world directory as the :class:`GraphSnapshot` a store loaded from it would export.

Runs the loader's own plan (:data:`graph.ingest.PLAN`: the same pure row builders, the same
identifier hashing, the same ``as_of`` visibility) into in-memory Arrow tables instead of a
store, so a model trained on a world and a model scoring a store see one representation.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from gnn.errors import GraphDataError
from graph.ingest import PLAN, device_usage, label_writes, visible_as_of
from graph.privacy import Pseudonymiser
from graph.schema import SCHEMA
from graph.snapshot import GraphSnapshot
from graph.store import edge_arrow_schema, node_arrow_schema

OFFLINE_KEY: Final = b"riskgraph-offline-world-key"
"""Hash key used when no pseudonymiser is given: ids only link rows in memory."""


def read_world_table(world_dir: str | os.PathLike[str], name: str,
                     columns: list[str] | None = None) -> pa.Table:
    """One table of a world directory (``<name>.parquet``).

    Raises:
        GraphDataError: if the table is missing.
    """
    path = Path(world_dir) / f"{name}.parquet"
    if not path.exists():
        raise GraphDataError(f"world table {path} does not exist")
    return pq.read_table(path, columns=columns)


def world_snapshot(
    world_dir: str | os.PathLike[str],
    *,
    pseudonymiser: Pseudonymiser | None = None,
    as_of: int | None = None,
) -> GraphSnapshot:
    """The snapshot of ``world_dir`` as known at ``as_of`` (every row when ``None``).

    Args:
        world_dir (str or os.PathLike): a directory written by ``riskgraph simulate``.
        pseudonymiser (Pseudonymiser, optional): the identifier hasher; pass the service's to
            get the ids a store loaded with ``riskgraph load`` holds. (default: an offline key)
        as_of (int, optional): leave out later events, entities and labels. (default: none)

    Raises:
        GraphDataError: if a table is missing.
    """
    p = pseudonymiser or Pseudonymiser(OFFLINE_KEY)
    cache: dict[str, pa.Table] = {}

    def table(name: str) -> pa.Table:
        if name not in cache:
            if name == "device_usage":
                cache[name] = device_usage(table("logins"), table("applications"))
            else:
                cache[name] = visible_as_of(name, read_world_table(world_dir, name), as_of)
        return cache[name]

    node_rows: dict[str, list[Mapping[str, Any]]] = {}
    edge_tables: dict[str, pa.Table] = {}
    for step in PLAN:
        rows = step.build(table(step.table), p)
        if step.kind == "node":
            node_rows.setdefault(step.target, []).extend(rows)
        else:
            spec = SCHEMA.rel(step.target)
            edge_tables[step.target] = pa.Table.from_pylist(rows, schema=edge_arrow_schema(spec))
    # labels, applied in order as a store applies them (a later label overwrites)
    updates: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    for lab in label_writes(table("label_events")):
        updates[(lab.label, lab.id)].update(lab.properties())
    by_label: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (label, node_id), props in updates.items():
        by_label[label][node_id] = props
    node_tables: dict[str, pa.Table] = {}
    for label, rows in node_rows.items():
        unique = {r["id"]: r for r in rows}  # last row per id, as an upsert keeps it
        extra = by_label.get(label, {})
        merged: list[Mapping[str, Any]] = [{**r, **extra.get(i, {})} for i, r in unique.items()]
        node_tables[label] = pa.Table.from_pylist(merged, schema=node_arrow_schema(
            SCHEMA.node(label)))
    return GraphSnapshot.from_tables(node_tables, edge_tables)
