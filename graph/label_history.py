"""`labels_as_of`: a snapshot's labels as they stood at a past time, from the store's label events.

A node keeps only its newest label of each family (fraud / cleared, or default): a later label
replaces an earlier one (:meth:`graph.GraphStore.write_labels`, the service's
``_apply_label``). A model trained as of a split time ``T`` must see the labels known before
``T``, and nothing later: a label set at or after ``T`` is taken away, and the one it replaced,
if the store's ``LabelEvent`` records (every label posted to ``/v1/labels``, with the time it
became known, ``at``, and the time the service received it, ``received_at``) say there was one
known before ``T``, is put back. Labels written by a bulk load leave no ``LabelEvent`` record:
for them only the newest label is known, and one set at or after ``T`` is taken away with
nothing put back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

import numpy as np
import pyarrow as pa

from graph.snapshot import GraphSnapshot, NodeTable
from graph.typing import NodeType

FAMILIES: Final[dict[str, tuple[NodeType, ...]]] = {
    "fraud": ("User", "Application", "Merchant"),
    "default": ("User", "Application"),
}
"""Label family -> the labels that carry it (the ``<family>_label*`` properties)."""


def labels_as_of(snapshot: GraphSnapshot, events: pa.Table, cutoff: int
                 ) -> tuple[GraphSnapshot, int]:
    """The snapshot with every label as known strictly before ``cutoff``.

    Args:
        snapshot (GraphSnapshot): the store's snapshot (newest labels).
        events (pa.Table): the store's ``LabelEvent`` records
            (:meth:`graph.GraphStore.export_nodes`): ``target_label``, ``target_id``,
            ``kind``, ``at``, ``source``.
        cutoff (int): epoch seconds; a label known at or after it is not in the result.

    Returns:
        tuple[GraphSnapshot, int]: the snapshot (the same object when nothing changes) and the
        number of node labels taken away or put back.
    """
    history = _history(events)
    nodes: dict[NodeType, NodeTable] = dict(snapshot.nodes)
    changed = 0
    for family, labels in FAMILIES.items():
        for label in labels:
            table = nodes[label]
            cols = dict(table.columns)
            at = _times(cols.get(f"{family}_label_at"), len(table))
            late = np.flatnonzero(at >= cutoff)
            if late.size == 0:
                continue
            value = _column(cols, f"{family}_label", len(table))
            when = _column(cols, f"{family}_label_at", len(table))
            source = _column(cols, f"{family}_label_source", len(table))
            ids = table.ids[late].tolist()
            for i, node_id in zip(late.tolist(), ids, strict=True):
                earlier = _latest_before(history.get((label, node_id, family), ()), cutoff)
                if earlier is None:
                    value[i], when[i], source[i] = None, None, None
                else:
                    kind, t, src = earlier
                    value[i] = True if family == "default" else kind
                    when[i], source[i] = t, src
            changed += int(late.size)
            cols[f"{family}_label"] = _typed(value, cols.get(f"{family}_label"))
            cols[f"{family}_label_at"] = _typed(when, cols.get(f"{family}_label_at"))
            cols[f"{family}_label_source"] = _typed(source, cols.get(f"{family}_label_source"))
            nodes[label] = NodeTable(table.ids, cols)
    if not changed:
        return snapshot, 0
    return replace(snapshot, nodes=nodes), changed


def _history(events: pa.Table) -> dict[tuple[str, str, str], list[tuple[str, int, Any]]]:
    """``(label, id, family) -> [(kind, at, source)]`` of the label event records."""
    out: dict[tuple[str, str, str], list[tuple[str, int, Any]]] = {}
    if events.num_rows == 0:
        return out
    cols = {name: events.column(name).to_pylist()
            for name in ("target_label", "target_id", "kind", "at", "source")}
    for label, node_id, kind, at, source in zip(*cols.values(), strict=True):
        if label is None or node_id is None or kind is None or at is None:
            continue
        family = "default" if kind == "default" else "fraud"
        out.setdefault((label, node_id, family), []).append((kind, int(at), source))
    return out


def _latest_before(events: Any, cutoff: int) -> tuple[str, int, Any] | None:
    """The newest event known before ``cutoff`` (ties: the later record), or ``None``."""
    best: tuple[str, int, Any] | None = None
    for ev in events:
        if ev[1] < cutoff and (best is None or ev[1] >= best[1]):
            best = ev
    return best


def _times(col: np.ndarray | None, n: int) -> np.ndarray:
    """A label-time column as float seconds, NaN where unset (never at or after a cutoff)."""
    if col is None:
        return np.full(n, np.nan)
    return np.asarray([np.nan if v is None else float(v) for v in col.tolist()]
                      if col.dtype == object else col, dtype=np.float64)


def _column(cols: Mapping[str, np.ndarray], name: str, n: int) -> list[Any]:
    col = cols.get(name)
    if col is None:
        return [None] * n
    return [None if (isinstance(v, float) and np.isnan(v)) else v for v in col.tolist()]


def _typed(values: list[Any], like: np.ndarray | None) -> np.ndarray:
    """``values`` in the typing of :class:`graph.snapshot.NodeTable` columns: floats with NaN
    for ints and bools with nulls, object arrays for strings."""
    if like is not None and like.dtype == object:
        return np.asarray(values, dtype=object)
    present = [v for v in values if v is not None]
    if any(isinstance(v, str) for v in present):
        return np.asarray(values, dtype=object)
    if len(present) == len(values):
        kind = bool if present and all(isinstance(v, bool | np.bool_) for v in present) else None
        if kind is bool:
            return np.asarray(values, dtype=bool)
        return np.asarray(values, dtype=np.int64)
    return np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)
