"""`LendingGraph.apply`: a world written one write at a time, in any order, gives the arrays,
the features and the scores of the one-pass build (the online and the batch mode of the one
feature definition)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gnn_lending_world import trained, world_dir

from gnn import ApplicationQueries, LendingGraph, RiskFeatures
from graph.world_files import read_world_table, world_snapshot
from gnn.data.lending_graph import NODE_TYPES, RELATIONS
from graph.ingest import label_writes
from graph.snapshot import GraphSnapshot

_LABEL_PROPS = ("fraud_label", "fraud_label_at", "fraud_label_source", "default_label",
                "default_label_at", "default_label_source")


def _node_rows(snap: GraphSnapshot, label: str) -> list[dict[str, Any]]:
    table = snap.nodes[label]
    rows = []
    for i, node_id in enumerate(table.ids.tolist()):
        row: dict[str, Any] = {"id": node_id}
        for name, col in table.columns.items():
            v = col[i]
            if name in _LABEL_PROPS or v is None or (isinstance(v, float) and v != v):
                continue
            row[name] = v.item() if hasattr(v, "item") else v
        rows.append(row)
    return rows


def _edge_rows(snap: GraphSnapshot, rel: str) -> list[dict[str, Any]]:
    r = snap.relations[rel]
    s, _, d = r.edge_type
    src = snap.nodes[s].ids[r.sources()].tolist()
    dst = snap.nodes[d].ids[r.indices].tolist()
    rows = []
    for i in range(len(src)):
        row: dict[str, Any] = {"src": src[i], "dst": dst[i]}
        for name, col in r.columns.items():
            v = col[i]
            if v is None or (isinstance(v, float) and v != v):
                continue
            row[name] = v.item() if hasattr(v, "item") else v
        rows.append(row)
    return rows


def _replayed(seed: int) -> tuple[LendingGraph, int]:
    """The test world written as a service receives it: every node, then every relationship
    row and every label event as its own write, in a random order."""
    snap = world_snapshot(world_dir())
    g = LendingGraph.empty()
    rng = np.random.default_rng(seed)
    nodes = [(label, row) for label in (*NODE_TYPES, "SalesReport")
             for row in _node_rows(snap, label)]
    for i in rng.permutation(len(nodes)):
        label, row = nodes[i]
        g.apply(nodes=[(label, [row])])
    writes: list[tuple[str, Any]] = [("edge", (rel, row)) for rel in snap.relations
                                     for row in _edge_rows(snap, rel)]
    labels = label_writes(read_world_table(world_dir(), "label_events"))
    order = rng.permutation(len(writes))
    # labels keep their own order (a later label of a node replaces an earlier one), spread
    # among the relationship writes
    slots = np.sort(rng.integers(0, len(writes) + 1, len(labels)))
    li = 0
    for k, i in enumerate(order.tolist()):
        while li < len(labels) and slots[li] <= k:
            g.apply(labels=[labels[li]])
            li += 1
        rel, row = writes[i][1]
        g.apply(edges=[(rel, [row])])
        # some writes come twice (a retry, a replayed spool): nothing changes
        if k % 97 == 0:
            g.apply(edges=[(rel, [row])])
    for lab in labels[li:]:
        g.apply(labels=[lab])
    return g, len(writes) + len(labels) + len(nodes)


@pytest.fixture(scope="module")
def graphs() -> tuple[LendingGraph, LendingGraph]:
    batch = LendingGraph.from_world(world_dir())
    live, writes = _replayed(seed=1)
    assert writes > 5000
    return batch, live


def _rows_by_id(g: LendingGraph, rel: str) -> dict[str, list[tuple[str, int]]]:
    p, c = RELATIONS[rel]
    out = {}
    ids_p, ids_c = g.ids[p], g.ids[c]
    adj = g.relations[rel]
    for i in range(g.num_nodes(p)):
        child, time, _ = adj.row(i)
        out[str(ids_p[i])] = [(str(ids_c[x]), int(t)) for x, t in zip(child.tolist(),
                                                                        time.tolist(),
                                                                        strict=True)]
    return out


def test_arrays_equal_the_one_pass_build(graphs: tuple[LendingGraph, LendingGraph]) -> None:
    batch, live = graphs
    assert live.garbage > 0  # it really was grown row by row
    for t in NODE_TYPES:
        assert sorted(batch.ids[t].tolist()) == sorted(live.ids[t].tolist()), t
        where = live.positions(t, batch.ids[t].tolist())
        for name, col in batch.attrs[t].items():
            other = live.attrs[t][name][where]
            if name in ("user", "device", "ip", "merchant"):
                ctype = {"user": "User", "device": "Device", "ip": "IP",
                         "merchant": "Merchant"}[name]
                col = np.where(col >= 0, batch.ids[ctype][np.maximum(col, 0)], None)
                other = np.where(other >= 0, live.ids[ctype][np.maximum(other, 0)], None)
            np.testing.assert_array_equal(col, other, err_msg=f"{t}.{name}")
    for t in batch.fraud_at:
        where = live.positions(t, batch.ids[t].tolist())
        np.testing.assert_array_equal(batch.fraud_at[t], live.fraud_at[t][where], err_msg=t)
    for t in batch.default_at:
        where = live.positions(t, batch.ids[t].tolist())
        np.testing.assert_array_equal(batch.default_at[t], live.default_at[t][where], err_msg=t)
    where = live.positions("Application", batch.ids["Application"].tolist())
    np.testing.assert_array_equal(batch.cleared_at, live.cleared_at[where])
    for rel in RELATIONS:
        assert _rows_by_id(batch, rel) == _rows_by_id(live, rel), rel
    for name in ("logins", "orders", "repayments"):
        assert len(batch.events[name]["ts"]) == len(live.events[name]["ts"]), name
    assert batch.as_of == live.as_of


def test_features_and_scores_equal_the_one_pass_build(
        graphs: tuple[LendingGraph, LendingGraph]) -> None:
    batch, live = graphs
    ids = batch.ids["Application"].tolist()
    b_apps = ApplicationQueries.from_graph(batch, np.arange(len(ids)))
    l_apps = ApplicationQueries.from_graph(live, live.positions("Application", ids))
    xb, names_b, _ = RiskFeatures(batch).application_features(b_apps)
    xl, names_l, _ = RiskFeatures(live).application_features(l_apps)
    assert names_b == names_l
    # NOTE: the same numbers in another order of summation at most (float32 features)
    np.testing.assert_allclose(xl, xb, rtol=1e-6, atol=1e-6)
    users = batch.ids["User"].tolist()
    t = np.full(len(users), batch.as_of + 1)
    ub = RiskFeatures(batch).user_features(np.arange(len(users)), t)[0]
    ul = RiskFeatures(live).user_features(live.positions("User", users), t)[0]
    np.testing.assert_allclose(ul, ub, rtol=1e-6, atol=1e-6)
    pipe = trained().pipeline
    sb = pipe.score_applications(batch, b_apps)
    sl = pipe.score_applications(live, l_apps)
    # NOTE: tolerance of the forward pass over the same inputs in another node order
    np.testing.assert_allclose(sl.fraud, sb.fraud, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sl.pd, sb.pd, rtol=1e-5, atol=1e-6)


def test_compaction_changes_nothing_but_the_layout(
        graphs: tuple[LendingGraph, LendingGraph]) -> None:
    _, live = graphs
    before = {rel: _rows_by_id(live, rel) for rel in ("user_device", "device_user", "user_ip")}
    live.compact()
    assert live.garbage == 0
    for rel, rows in before.items():
        assert _rows_by_id(live, rel) == rows


def test_a_write_is_idempotent_and_labels_keep_the_newest() -> None:
    g = LendingGraph.empty()
    g.apply(nodes=[("Application", [{"id": "a1", "ts": 1_000, "product": "bnpl",
                                      "amount": 100.0}])],
            edges=[("APPLIED", [{"src": "u1", "dst": "a1", "ts": 1_000}]),
                   ("APPLIED_ON", [{"src": "a1", "dst": "d1"}]),
                   ("LOGGED_IN_FROM", [{"src": "u1", "dst": "1.2.3.4", "event_id": "e1",
                                        "ts": 900, "lat": 1.0, "lon": 2.0}])])
    fingerprint = g.fingerprint
    g.apply(edges=[("LOGGED_IN_FROM", [{"src": "u1", "dst": "1.2.3.4", "event_id": "e1",
                                        "ts": 900, "lat": 1.0, "lon": 2.0}]),
                   ("APPLIED", [{"src": "u1", "dst": "a1", "ts": 1_000}])])
    assert g.fingerprint == fingerprint
    u = g.position("User", "u1")
    # a brand-new account dates from its first login, not from 1970
    assert g.attrs["User"]["created_at"][u] == 900
    assert g.relations["user_device"].count_before(np.array([u]), np.array([1_001])) == 1
    from graph import LabelWrite

    g.apply(labels=[LabelWrite("User", "u1", "fraud", 2_000, "t")])
    g.apply(labels=[LabelWrite("User", "u1", "cleared", 1_500, "t")])  # older: ignored
    assert g.fraud_at["User"][u] == 2_000
    g.apply(labels=[LabelWrite("Application", "a1", "default", 3_000, "ledger")])
    assert g.default_at["User"][u] == 3_000  # an account defaults with its loan
    g.apply(labels=[LabelWrite("Application", "a1", "fraud", 2_500, "t")])
    d = g.position("Device", "d1")
    assert g.labelled("device_app").count_before(np.array([d]), np.array([2_501])) == 1


@pytest.mark.parametrize("first", ["LIVES_AT", "WORKS_AT"])
def test_living_and_working_at_one_address_counts_from_the_later_edge(first: str) -> None:
    g = LendingGraph.empty()
    other = "WORKS_AT" if first == "LIVES_AT" else "LIVES_AT"
    g.apply(edges=[(first, [{"src": "u1", "dst": "ad1", "since": 100}])])
    g.apply(edges=[(other, [{"src": "u1", "dst": "ad1", "since": 300}])])
    g.apply(edges=[("LIVES_AT", [{"src": "u2", "dst": "ad1", "since": 50}])])
    a = g.position("Address", "ad1")
    both = g.both_addresses
    assert both.count_before(np.array([a, a]), np.array([299, 300]), inclusive=True).tolist() \
        == [0, 1]
    # an earlier dating of the later edge moves the pair's time
    g.apply(edges=[(other, [{"src": "u1", "dst": "ad1", "since": 200}])])
    assert both.count_before(np.array([a]), np.array([200]), inclusive=True).tolist() == [1]
    feats = RiskFeatures(g)
    rels = ("user_home", "user_work")
    assert feats._degree_at(rels, np.array([a, a]), np.array([150, 400])).tolist() == [2, 2]


def test_the_first_online_writes_copy_no_array_of_a_state_built_in_one_pass() -> None:
    """A state built in one pass had every per-node array, row table and edge buffer exactly
    full: the first new application doubled them all (0.5 s on the 100k-user world, then 50-250
    ms each time a large relation's edge buffer filled), stalls the scorer's batch waited on."""
    g = LendingGraph.from_world(world_dir())
    user = str(g.ids["User"][3])
    buffers = {
        "application amounts": g._nodes["Application"].attrs["amount"],
        "user_app rows": g.relations["user_app"]._start,
        "user_app edges": g.relations["user_app"].child,
        "device_app edges": g.relations["device_app"].child,
    }
    for i in range(50):
        ts = g.as_of + 60 + i
        g.apply(nodes=[("Application", [{"id": f"new-{i}", "ts": ts, "product": "cash_loan",
                                          "amount": 500.0}])],
                edges=[("APPLIED", [{"src": user, "dst": f"new-{i}", "ts": ts}]),
                       ("APPLIED_ON", [{"src": f"new-{i}", "dst": f"dev-{i % 3}"}])])
    now = {
        "application amounts": g._nodes["Application"].attrs["amount"],
        "user_app rows": g.relations["user_app"]._start,
        "user_app edges": g.relations["user_app"].child,
        "device_app edges": g.relations["device_app"].child,
    }
    assert [k for k in buffers if now[k] is not buffers[k]] == []
    u = g.position("User", user)
    assert g.relations["user_app"].count_before(np.array([u]), np.array([g.as_of + 200]))[0] \
        >= 50
