"""GraphSnapshot from plain tables (the store round trip lives in test_store_contract)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from graph import GraphError
from graph.snapshot import GraphSnapshot


def _tables() -> tuple[dict[str, pa.Table], dict[str, pa.Table]]:
    nodes = {
        "User": pa.table({"id": ["u3", "u1", "u2"], "created_at": [30, 10, None]}),
        "Device": pa.table({"id": ["d2", "d1"]}),
        "IP": pa.table({"id": ["ip1"]}),
    }
    edges = {
        "USES": pa.table({"src": ["u1", "u3", "u1", "u2"], "dst": ["d2", "d1", "d1", "d1"],
                          "first_seen": [1, 2, 3, 4]}),
        "LOGGED_IN_FROM": pa.table({"src": ["u2", "u2"], "dst": ["ip1", "ip1"],
                                    "event_id": ["e2", "e1"], "ts": [20, 10]}),
    }
    return nodes, edges


def test_positions_follow_sorted_ids_and_csr_matches_edges() -> None:
    snap = GraphSnapshot.from_tables(*_tables())
    assert snap.nodes["User"].ids.tolist() == ["u1", "u2", "u3"]
    uses = snap.relations["USES"]
    assert uses.indptr.tolist() == [0, 2, 3, 4]
    assert snap.nodes["Device"].ids[uses.indices].tolist() == ["d1", "d2", "d1", "d1"]
    assert uses.columns["first_seen"].tolist() == [3, 1, 4, 2]
    assert snap.edge_list("USES") == [("u1", "d1"), ("u1", "d2"), ("u2", "d1"), ("u3", "d1")]
    # two edges between the same pair survive: events are not deduplicated by pair
    assert snap.relations["LOGGED_IN_FROM"].num_edges == 2
    assert np.isnan(snap.nodes["User"].columns["created_at"][1])
    assert snap.num_nodes("Phone") == 0


def test_reverse_relation_holds_the_same_edges() -> None:
    snap = GraphSnapshot.from_tables(*_tables())
    rev = snap.relations["USES"].reverse(snap.num_nodes("Device"))
    assert rev.edge_type == ("Device", "rev_USES", "User")
    pairs = sorted(
        (snap.nodes["User"].ids[u], snap.nodes["Device"].ids[d])
        for d, u in zip(rev.sources(), rev.indices, strict=True)
    )
    assert pairs == snap.edge_list("USES")
    assert rev.columns["first_seen"].tolist() == [3, 4, 2, 1]  # d1: u1, u2, u3; d2: u1


def test_unknown_endpoint_is_an_error() -> None:
    nodes, edges = _tables()
    edges["USES"] = pa.table({"src": ["u1"], "dst": ["nope"]})
    with pytest.raises(GraphError, match="nope"):
        GraphSnapshot.from_tables(nodes, edges)


def test_hetero_data_has_every_type_and_reverse_edges() -> None:
    data = GraphSnapshot.from_tables(*_tables()).to_hetero_data()
    assert data["User"].num_nodes == 3
    ei = data["User", "USES", "Device"].edge_index
    assert ei.shape == (2, 4)
    assert (data["Device", "rev_USES", "User"].edge_index == ei.flip(0)).all()
    assert data["User", "USES", "Device"].edge_first_seen.tolist() == [3.0, 1.0, 4.0, 2.0]
