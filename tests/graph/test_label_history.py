"""`labels_as_of`: a snapshot's labels as they stood before a cutoff, from the label events."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from graph.label_history import labels_as_of
from graph.snapshot import GraphSnapshot
from graph.store import node_arrow_schema
from graph.schema import SCHEMA


def _snapshot(apps: list[dict[str, object]]) -> GraphSnapshot:
    return GraphSnapshot.from_tables(
        {"Application": pa.Table.from_pylist(apps, schema=node_arrow_schema(
            SCHEMA.node("Application")))}, {})


def _events(rows: list[tuple[str, str, int]]) -> pa.Table:
    return pa.Table.from_pylist([
        {"id": f"e{i}", "target_label": "Application", "target_id": target, "kind": kind,
         "at": at, "source": "t", "body_hash": "h", "received_at": 0}
        for i, (target, kind, at) in enumerate(rows)],
        schema=node_arrow_schema(SCHEMA.node("LabelEvent")))


def test_a_later_label_is_taken_back_and_the_one_it_replaced_put_back() -> None:
    snap = _snapshot([
        {"id": "a", "ts": 1, "fraud_label": "cleared", "fraud_label_at": 300,
         "fraud_label_source": "t"},                      # fraud at 100, cleared at 300
        {"id": "b", "ts": 1, "fraud_label": "fraud", "fraud_label_at": 250,
         "fraud_label_source": "t"},                      # only known after the cutoff
        {"id": "c", "ts": 1, "fraud_label": "fraud", "fraud_label_at": 150,
         "fraud_label_source": "t", "default_label": True, "default_label_at": 400,
         "default_label_source": "ledger"},
        {"id": "d", "ts": 1},
    ])
    events = _events([("a", "fraud", 100), ("a", "cleared", 300), ("b", "fraud", 250)])
    got, changed = labels_as_of(snap, events, 200)
    cols = got.nodes["Application"].columns
    pos = {i: p for p, i in enumerate(got.nodes["Application"].ids.tolist())}
    assert changed == 3
    assert cols["fraud_label"][pos["a"]] == "fraud" and cols["fraud_label_at"][pos["a"]] == 100
    assert cols["fraud_label"][pos["b"]] is None and np.isnan(cols["fraud_label_at"][pos["b"]])
    assert cols["fraud_label"][pos["c"]] == "fraud" and cols["fraud_label_at"][pos["c"]] == 150
    assert np.isnan(cols["default_label_at"][pos["c"]])
    assert cols["fraud_label"][pos["d"]] is None
    # nothing at or after the cutoff: the same snapshot back
    same, none = labels_as_of(snap, events, 10_000)
    assert same is snap and none == 0
