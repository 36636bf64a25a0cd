"""Comparing two stores' graphs whole: every node, relationship and property."""

from __future__ import annotations

from typing import Any

from graph import GraphStore
from graph.schema import SCHEMA

Snapshot = dict[str, set[tuple[tuple[str, Any], ...]]]
"""Per label and type, its rows as sorted ``(column, value)`` tuples."""


def snapshot(store: GraphStore) -> Snapshot:
    """Every node of every label (records included) and every relationship of every type, as
    sets of rows: ids, ends and every property (documents included)."""
    tables = {label: store.export_nodes(label) for label in SCHEMA.labels}
    tables |= {rel: store.export_edges(rel) for rel in SCHEMA.rel_types}
    return {name: {tuple(sorted(row.items())) for row in table.to_pylist()}
            for name, table in tables.items()}


def assert_same_graph(got: GraphStore, want: GraphStore) -> None:
    """``got`` holds every node, relationship and property of ``want`` and nothing else (the
    store's identity aside)."""
    assert_same_snapshot(snapshot(got), snapshot(want))


def assert_same_snapshot(mine: Snapshot, theirs: Snapshot) -> None:
    """:func:`assert_same_graph` on two :func:`snapshot` results."""
    for name in theirs:
        if name == "StoreIdentity":
            continue  # one per store instance, drawn at random
        assert len(mine[name]) == len(theirs[name]), name
        missing, extra = theirs[name] - mine[name], mine[name] - theirs[name]
        assert not missing and not extra, (
            f"{name}: {len(missing)} rows missing, e.g. {sorted(missing)[:2]}; "
            f"{len(extra)} rows not in the upsert load, e.g. {sorted(extra)[:2]}")
