"""The two store operations the serving layer added: many verdict claims in one call
(first writer wins per id) and several upserts in one write, on both real stores."""

from __future__ import annotations

import time

import pytest

from graph import GraphStore, SchemaError


def test_create_nodes_first_writer_wins(store: GraphStore) -> None:
    first = store.create_nodes("Verdict", [{"id": "a", "request_hash": "h1"},
                                           {"id": "b", "request_hash": "h2"}])
    assert first == [None, None]
    again = store.create_nodes("Verdict", [{"id": "a", "request_hash": "other"},
                                           {"id": "c", "request_hash": "h3"}])
    assert again[1] is None
    assert again[0] is not None and again[0].properties["request_hash"] == "h1"
    node = store.get_node("Verdict", "a")
    assert node is not None and node.properties["request_hash"] == "h1"
    with pytest.raises(ValueError, match="distinct"):
        store.create_nodes("Verdict", [{"id": "d"}, {"id": "d"}])
    assert store.create_nodes("Verdict", []) == []


def test_write_batch_writes_nodes_then_edges(store: GraphStore) -> None:
    n = store.write_batch(
        [("Application", [{"id": "app1", "amount": 10.0, "decision": "approve"}]),
         ("Device", [{"id": "dv_1", "masked": "***1"}])],
        [("APPLIED", [{"src": "u1", "dst": "app1", "ts": 5}]),
         ("USES", [{"src": "u1", "dst": "dv_1", "last_seen": 5}])])
    assert n == 4
    sub = store.neighbourhood("User", "u1", hops=1, fanout=10)
    assert sorted((e.type, e.dst) for e in sub.edges) == [("APPLIED", "app1"),
                                                          ("USES", "dv_1")]
    app = store.get_node("Application", "app1")
    assert app is not None and app.properties["decision"] == "approve"
    with pytest.raises(SchemaError):
        store.write_batch([("Application", [{"id": "app2", "amount": 1.0}])],
                          [("APPLIED", [{"src": "u1", "dst": "app2", "ts": "late"}])])
    assert store.get_node("Application", "app2") is None  # validated before any write


@pytest.mark.slow
def test_many_small_writes_stay_fast(store: GraphStore) -> None:
    """An online service writes a little, thousands of times: the 1,500th write must cost what
    the 100th did (LadybugDB's client once slowed to minutes per write there)."""
    times = []
    for i in range(1600):
        t0 = time.perf_counter()
        store.upsert_nodes("Application", [{"id": f"w{i}", "amount": 1.0}])
        times.append(time.perf_counter() - t0)
    early = sorted(times[100:300])[100]
    late = sorted(times[1400:1600])[100]
    assert late < 10 * early + 0.05, (early, late)
