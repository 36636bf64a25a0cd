"""GraphSnapshot from plain tables (the store round trip lives in test_store_contract)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graph import SCHEMA, GraphError, GraphStore, Pseudonymiser
from graph.ingest import logged_in_edges
from graph.loader import load_world
from simulator import WorldConfig, simulate_world, write_world
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


def test_events_between_one_pair_are_ordered_by_time_then_by_key_whatever_the_input() -> None:
    nodes, _ = _tables()
    rows = [("u2", "e9", 20), ("u2", "e3", 10), ("u1", "e5", 20), ("u2", "e1", 20),
            ("u2", "e7", 20), ("u1", "e2", 20)]
    rng = np.random.default_rng(1)
    for _ in range(5):
        picked = [rows[i] for i in rng.permutation(len(rows))]
        edges = {"LOGGED_IN_FROM": pa.table({
            "src": [r[0] for r in picked], "dst": ["ip1"] * len(picked),
            "event_id": [r[1] for r in picked], "ts": [r[2] for r in picked]})}
        logins = GraphSnapshot.from_tables(nodes, edges).relations["LOGGED_IN_FROM"]
        assert logins.columns["event_id"].tolist() == ["e2", "e5", "e3", "e1", "e7", "e9"]


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


def test_store_round_trip_keeps_counts_and_edges(store: GraphStore, tmp_path: Path) -> None:
    """Load a world into the store, export it to a snapshot: same counts, same edges."""
    world_dir = tmp_path / "world"
    write_world(simulate_world(WorldConfig(users=300, seed=3, days=60)), world_dir)
    pseudonymiser = Pseudonymiser(b"round-trip-secret-32-bytes-long!")
    load_world(store, world_dir, pseudonymiser, progress=False)

    snap = GraphSnapshot.from_store(store)
    counts = store.counts()
    for label in SCHEMA.graph_labels:
        assert snap.num_nodes(label) == counts[label], label
    for rel in SCHEMA.rel_types:
        assert snap.relations[rel].num_edges == counts[rel], rel
    # the edges are the ones ingested from the raw files, computed without the store
    logins = pq.read_table(world_dir / "logins.parquet")
    expected = sorted((r["src"], r["dst"]) for r in logged_in_edges(logins, pseudonymiser))
    assert snap.edge_list("LOGGED_IN_FROM") == expected
    assert counts["LOGGED_IN_FROM"] == logins.num_rows > 0
    data = snap.to_hetero_data()
    assert data["User", "LOGGED_IN_FROM", "IP"].edge_index.shape[1] == logins.num_rows
    assert data["User"].num_nodes == counts["User"]


def _assert_same_snapshot(a: GraphSnapshot, b: GraphSnapshot) -> None:
    for label, table in a.nodes.items():
        np.testing.assert_array_equal(b.nodes[label].ids, table.ids, err_msg=label)
        for name, col in table.columns.items():
            np.testing.assert_array_equal(b.nodes[label].columns[name], col,
                                          err_msg=f"{label}.{name}")
    for rel, r in a.relations.items():
        other = b.relations[rel]
        np.testing.assert_array_equal(other.indptr, r.indptr, err_msg=rel)
        np.testing.assert_array_equal(other.indices, r.indices, err_msg=rel)
        for name, col in r.columns.items():
            np.testing.assert_array_equal(other.columns[name], col, err_msg=f"{rel}.{name}")


def test_a_snapshot_of_rows_in_any_order_is_the_same_graph(store: GraphStore,
                                                           tmp_path: Path) -> None:
    """The snapshot exports the store unordered (the store's sort was half of exporting the
    relationships at 1M users) and orders rows itself: the store's order, its ORDER BY and any
    shuffle give the same arrays, the events between one user and one IP included."""
    world_dir = tmp_path / "world"
    write_world(simulate_world(WorldConfig(users=300, seed=5, days=60)), world_dir)
    load_world(store, world_dir, Pseudonymiser(b"any-order-secret-32-bytes-long!!"),
               progress=False)
    tables = {ordered: ({label: store.export_nodes(label, ordered=ordered)
                         for label in SCHEMA.graph_labels},
                        {rel: store.export_edges(rel, ordered=ordered)
                         for rel in SCHEMA.rel_types}) for ordered in (True, False)}
    rng = np.random.default_rng(0)

    def shuffled(t: pa.Table) -> pa.Table:
        return t.take(pa.array(rng.permutation(t.num_rows), pa.int64()))

    nodes, edges = tables[True]
    reference = GraphSnapshot.from_tables(nodes, edges)
    logins = reference.relations["LOGGED_IN_FROM"]
    pairs = np.stack([logins.sources(), logins.indices], axis=1)
    assert len(np.unique(pairs, axis=0)) < logins.num_edges  # some pair has several logins
    _assert_same_snapshot(reference, GraphSnapshot.from_tables(*tables[False]))
    _assert_same_snapshot(reference, GraphSnapshot.from_tables(
        {k: shuffled(v) for k, v in nodes.items()}, {k: shuffled(v) for k, v in edges.items()}))
    _assert_same_snapshot(reference, GraphSnapshot.from_store(store))


def test_an_export_meets_writes_made_while_it_runs(store: GraphStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A store other processes write is exported one label or type at a time, not in one
    transaction: seen on Neo4j, an application written by a replica between the export of the
    nodes and that of the edges failed the export ('unknown node id') and the service started
    without its graph. Whatever is written mid-export, the snapshot holds every node its edges
    name (a write wholly after an edge type's export may miss it; the next refresh has it)."""
    store.upsert_edges("USES", [{"src": "u1", "dst": "d1", "first_seen": 1}])
    calls = 0
    real_nodes, real_edges = store.export_nodes, store.export_edges

    def midway() -> None:
        nonlocal calls
        calls += 1
        if calls == len(SCHEMA.graph_labels):  # as many exports before it as there are labels
            store.upsert_edges("USES", [{"src": "u-new", "dst": "d-new", "first_seen": 2}])
            store.upsert_edges("LOGGED_IN_FROM", [{"src": "u-new", "dst": "ip-new",
                                                   "event_id": "e-new", "ts": 2}])

    def export_nodes(label: str, *, ordered: bool = True) -> pa.Table:
        midway()
        return real_nodes(label, ordered=ordered)

    def export_edges(rel: str, *, ordered: bool = True) -> pa.Table:
        midway()
        return real_edges(rel, ordered=ordered)

    monkeypatch.setattr(store, "export_nodes", export_nodes)
    monkeypatch.setattr(store, "export_edges", export_edges)
    snap = GraphSnapshot.from_store(store)
    assert ("u1", "d1") in snap.edge_list("USES")
    assert "u-new" in set(snap.nodes["User"].ids.tolist())
