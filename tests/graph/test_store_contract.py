"""The `GraphStore` contract, run on both real backends (LadybugDB and the Neo4j server)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from graph import GraphError, GraphStore, LabelWrite, SchemaError, SharedAccount, StoreIdentity
from graph.ladybug_store import LadybugStore
from graph.snapshot import GraphSnapshot
from graph.store import edge_arrow_schema, node_arrow_schema, rows_to_pylist


def _edges(store: GraphStore, rel_type: str) -> list[dict[str, Any]]:
    rows = store.export_edges(rel_type).to_pylist()
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


# -- schema and counts -------------------------------------------------------------------------
def test_apply_schema_twice_and_counts_name_every_label_and_type(store: GraphStore) -> None:
    store.apply_schema()
    store.apply_schema()
    counts = store.counts()
    assert set(counts) == set(store.schema.labels) | set(store.schema.rel_types)
    assert _nonzero(counts) == {}


def test_counts_after_a_load(store: GraphStore) -> None:
    store.upsert_nodes("User", [{"id": "u1"}, {"id": "u2"}])
    store.upsert_edges("USES", [{"src": "u1", "dst": "d1"}, {"src": "u2", "dst": "d1"}])
    store.upsert_edges("LOGGED_IN_FROM", [{"src": "u1", "dst": "ip1", "event_id": "e1"}])
    assert _nonzero(store.counts()) == {
        "User": 2, "Device": 1, "IP": 1, "USES": 2, "LOGGED_IN_FROM": 1,
    }


# -- the store's identity ----------------------------------------------------------------------
def test_a_store_draws_one_identity_and_keeps_it_out_of_exports(store: GraphStore) -> None:
    store.upsert_edges("USES", [{"src": "u1", "dst": "d1"}])
    before = {(kind, name): table for kind, name, table in store.iter_export()}
    found: list[StoreIdentity] = []
    barrier = threading.Barrier(6)

    def ask() -> None:
        barrier.wait()
        found.append(store.identity())

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    first = found[0]
    assert re.fullmatch("[0-9a-f]{32}", first.instance_id) and first.created_at > 0
    assert found == [first] * 6 and store.identity() == first
    assert _nonzero(store.counts()) == {"User": 1, "Device": 1, "USES": 1, "StoreIdentity": 1}
    assert {(kind, name): table for kind, name, table in store.iter_export()} == before
    assert set(GraphSnapshot.from_store(store).nodes) == set(store.schema.graph_labels)
    assert "StoreIdentity" not in store.schema.graph_labels


# -- idempotent upserts ------------------------------------------------------------------------
def test_same_event_twice_is_one_edge(store: GraphStore) -> None:
    row = {"src": "u1", "dst": "ip1", "event_id": "e1", "ts": 100, "lat": 31.2}
    store.upsert_edges("LOGGED_IN_FROM", [row])
    store.upsert_edges("LOGGED_IN_FROM", [row])
    assert store.counts()["LOGGED_IN_FROM"] == 1
    assert _edges(store, "LOGGED_IN_FROM") == [row]


def test_same_event_twice_in_one_batch_is_one_edge_with_both_properties(
    store: GraphStore,
) -> None:
    store.upsert_edges(
        "ORDERED_AT",
        [
            {"src": "u1", "dst": "m1", "event_id": "o1", "amount": 99.5},
            {"src": "u1", "dst": "m1", "event_id": "o1", "returned": True, "amount": None},
        ],
    )
    assert _edges(store, "ORDERED_AT") == [
        {"src": "u1", "dst": "m1", "event_id": "o1", "amount": 99.5, "returned": True}
    ]


def test_different_event_ids_are_two_edges(store: GraphStore) -> None:
    store.upsert_edges(
        "LOGGED_IN_FROM",
        [
            {"src": "u1", "dst": "ip1", "event_id": "e1", "ts": 1},
            {"src": "u1", "dst": "ip1", "event_id": "e2", "ts": 2},
        ],
    )
    assert [e["event_id"] for e in _edges(store, "LOGGED_IN_FROM")] == ["e1", "e2"]


def test_same_structural_edge_twice_is_one(store: GraphStore) -> None:
    store.upsert_edges("USES", [{"src": "u1", "dst": "d1", "first_seen": 5}])
    store.upsert_edges("USES", [{"src": "u1", "dst": "d1", "last_seen": 9}])
    store.upsert_edges("USES", [{"src": "u1", "dst": "d1"}, {"src": "u1", "dst": "d1"}])
    assert _edges(store, "USES") == [
        {"src": "u1", "dst": "d1", "first_seen": 5, "last_seen": 9}
    ]


def test_missing_end_nodes_are_created_bare_and_existing_ones_kept(store: GraphStore) -> None:
    store.upsert_nodes("User", [{"id": "u1", "home_city": "Hangzhou"}])
    store.upsert_edges("HAS_PHONE", [{"src": "u1", "dst": "ph_1", "since": 3}])
    user = store.get_node("User", "u1")
    phone = store.get_node("Phone", "ph_1")
    assert user is not None and user.properties == {"home_city": "Hangzhou"}
    assert phone is not None and phone.properties == {}
    assert _nonzero(store.counts()) == {"User": 1, "Phone": 1, "HAS_PHONE": 1}


def test_properties_merge_and_null_means_not_given(store: GraphStore) -> None:
    store.upsert_nodes("User", [{"id": "u1", "created_at": 10, "home_city": "Xi'an"}])
    store.upsert_nodes("User", [{"id": "u1", "home_lat": 34.3, "home_city": None}])
    store.upsert_nodes("User", [{"id": "u1", "created_at": 11}])
    node = store.get_node("User", "u1")
    assert node is not None
    assert dict(node.properties) == {"created_at": 11, "home_city": "Xi'an", "home_lat": 34.3}
    assert store.counts()["User"] == 1


def test_same_node_twice_in_one_batch_folds_in_order(store: GraphStore) -> None:
    store.upsert_nodes(
        "Device",
        [
            {"id": "d1", "os": "android", "first_seen": 1},
            {"id": "d1", "os": "emulator", "first_seen": None},
        ],
    )
    node = store.get_node("Device", "d1")
    assert node is not None and dict(node.properties) == {"os": "emulator", "first_seen": 1}


def test_writes_larger_than_a_batch(store: GraphStore) -> None:
    store.batch_size = 7
    store.upsert_nodes("User", [{"id": f"u{i:03d}", "created_at": i} for i in range(50)])
    store.upsert_edges(
        "LOGGED_IN_FROM",
        [{"src": f"u{i % 10:03d}", "dst": "ip1", "event_id": f"e{i}"} for i in range(50)],
    )
    assert _nonzero(store.counts()) == {"User": 50, "IP": 1, "LOGGED_IN_FROM": 50}


# -- validation --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("label", "bad"),
    [
        ("User", {"id": "u9", "created_at": "yesterday"}),
        ("User", {"id": "u9", "created_at": True}),
        ("User", {"id": "u9", "home_lat": False}),
        ("User", {"id": "u9", "no_such_property": 1}),
        ("User", {"created_at": 1}),
        ("User", {"id": ""}),
        ("Nope", {"id": "u9"}),
    ],
)
def test_a_bad_node_row_writes_nothing(store: GraphStore, label: str, bad: dict[str, Any]) -> None:
    good = [{"id": f"u{i}"} for i in range(5)]
    with pytest.raises(SchemaError):
        store.upsert_nodes(label, [*good, bad])
    assert _nonzero(store.counts()) == {}


@pytest.mark.parametrize(
    ("rel_type", "bad"),
    [
        ("LOGGED_IN_FROM", {"src": "u1", "dst": "ip1"}),
        ("LOGGED_IN_FROM", {"src": "u1", "dst": "ip1", "event_id": "e", "ts": 1.5}),
        ("USES", {"src": "u1"}),
        ("USES", {"src": "u1", "dst": "d1", "since": 1}),
        ("FOLLOWS", {"src": "u1", "dst": "u2"}),
    ],
)
def test_a_bad_edge_row_writes_nothing(
    store: GraphStore, rel_type: str, bad: dict[str, Any]
) -> None:
    good = {"src": "u0", "dst": "x0", "event_id": "ok"} if rel_type == "LOGGED_IN_FROM" else {
        "src": "u0", "dst": "x0"
    }
    with pytest.raises(SchemaError):
        store.upsert_edges(rel_type, [good, bad])
    assert _nonzero(store.counts()) == {}


def test_bad_label_writes_are_rejected_before_writing(store: GraphStore) -> None:
    with pytest.raises(SchemaError):
        store.write_labels([LabelWrite("Device", "d1", "fraud", 1, "investigator:a")])
    with pytest.raises(SchemaError):
        LabelWrite("User", "u1", "suspicious", 1, "investigator:a")  # type: ignore[arg-type]
    assert _nonzero(store.counts()) == {}


# -- injection ---------------------------------------------------------------------------------
_EVIL_NAMES = [
    "User` {id: 'x'}) DETACH DELETE n //",
    "User`) MATCH (m) DETACH DELETE m //",
    "User:Device",
    "`User`",
    "User\n",
]


@pytest.mark.parametrize("name", _EVIL_NAMES)
def test_identifiers_outside_the_schema_never_reach_a_query(store: GraphStore, name: str) -> None:
    store.upsert_nodes("User", [{"id": "u1"}])
    calls: list[Callable[[], object]] = [
        lambda: store.upsert_nodes(name, [{"id": "x"}]),
        lambda: store.upsert_edges(name, [{"src": "a", "dst": "b"}]),
        lambda: store.upsert_nodes("User", [{"id": "x", name: 1}]),
        lambda: store.get_node(name, "u1"),
        lambda: store.neighbourhood(name, "u1"),
        lambda: store.export_nodes(name),
        lambda: store.export_edges(name),
    ]
    for call in calls:
        with pytest.raises(SchemaError):
            call()
    assert _nonzero(store.counts()) == {"User": 1}


def test_cypher_in_values_is_stored_as_data(store: GraphStore) -> None:
    evil = "x'}) MATCH (m) DETACH DELETE m //` $rows"
    store.upsert_nodes("User", [{"id": "u1"}, {"id": evil, "home_city": evil}])
    store.upsert_edges("USES", [{"src": evil, "dst": evil}])
    node = store.get_node("User", evil)
    assert node is not None and node.properties == {"home_city": evil}
    assert _nonzero(store.counts()) == {"User": 2, "Device": 1, "USES": 1}


# -- label writes ------------------------------------------------------------------------------
def test_label_writes_set_kind_time_and_source(store: GraphStore) -> None:
    store.upsert_nodes("User", [{"id": "u1", "created_at": 5}])
    written = store.write_labels(
        [
            LabelWrite("User", "u1", "fraud", 100, "investigator:alice"),
            LabelWrite("User", "u1", "default", 200, "ledger"),
            LabelWrite("Merchant", "m1", "fraud", 300, "investigator:bob"),
        ]
    )
    assert written == 3
    user = store.get_node("User", "u1")
    assert user is not None and dict(user.properties) == {
        "created_at": 5,
        "fraud_label": "fraud",
        "fraud_label_at": 100,
        "fraud_label_source": "investigator:alice",
        "default_label": True,
        "default_label_at": 200,
        "default_label_source": "ledger",
    }
    merchant = store.get_node("Merchant", "m1")
    assert merchant is not None and merchant.properties["fraud_label"] == "fraud"

    store.write_labels([LabelWrite("User", "u1", "cleared", 400, "investigator:carol")])
    user = store.get_node("User", "u1")
    assert user is not None
    assert (user.properties["fraud_label"], user.properties["fraud_label_at"]) == ("cleared", 400)
    assert user.properties["default_label"] is True


# -- create_node -------------------------------------------------------------------------------
def test_create_node_first_writer_wins(store: GraphStore) -> None:
    assert store.create_node("Verdict", {"id": "v1", "decision": "approve"}) is None
    existing = store.create_node("Verdict", {"id": "v1", "decision": "decline"})
    assert existing is not None and existing.properties["decision"] == "approve"
    node = store.get_node("Verdict", "v1")
    assert node is not None and node.properties["decision"] == "approve"


def test_create_node_from_many_threads_creates_once(store: GraphStore) -> None:
    results: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results.append(store.create_node("Verdict", {"id": "v1", "decision": f"d{i}"}))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r is None for r in results) == 1
    assert store.counts()["Verdict"] == 1


def test_claim_nodes_returns_what_each_id_holds_first_writer_winning(store: GraphStore) -> None:
    first = store.claim_nodes("EventRecord", [{"id": "e1", "body_hash": "a"},
                                              {"id": "e2", "body_hash": "b", "type": "login"}])
    assert [(n.id, dict(n.properties)) for n in first] == [
        ("e1", {"body_hash": "a"}), ("e2", {"body_hash": "b", "type": "login"})]
    again = store.claim_nodes("EventRecord", [{"id": "e3", "body_hash": "c"},
                                              {"id": "e1", "body_hash": "other"}])
    assert [(n.id, n.properties["body_hash"]) for n in again] == [("e3", "c"), ("e1", "a")]
    node = store.get_node("EventRecord", "e1")
    assert node is not None and node.properties["body_hash"] == "a"
    with pytest.raises(ValueError, match="distinct"):
        store.claim_nodes("EventRecord", [{"id": "e4"}, {"id": "e4"}])
    assert store.claim_nodes("EventRecord", []) == []


def test_claim_nodes_from_many_threads_agree_on_one_winner(store: GraphStore) -> None:
    held: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        try:
            barrier.wait()
            # overlapping ids in opposite orders: the claims must neither deadlock nor split
            rows = [{"id": f"e{k}", "body_hash": f"h{i}"} for k in range(5)]
            nodes = store.claim_nodes("EventRecord", rows if i % 2 else rows[::-1])
            held.extend(f"{n.id}={n.properties['body_hash']}" for n in nodes)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(held) == 40 and len(set(held)) == 5
    assert store.counts()["EventRecord"] == 5


# -- reads -------------------------------------------------------------------------------------
def test_get_node_returns_none_for_an_unknown_id(store: GraphStore) -> None:
    assert store.get_node("User", "nobody") is None


def test_get_nodes_returns_those_that_exist_by_id(store: GraphStore) -> None:
    store.upsert_nodes("EventRecord", [{"id": "e1", "type": "login", "body_hash": "h1"},
                                       {"id": "e2", "type": "order", "body_hash": "h2"}])
    found = store.get_nodes("EventRecord", ["e2", "missing", "e1", "e2"])
    assert {k: (v.label, v.id, dict(v.properties)) for k, v in found.items()} == {
        "e1": ("EventRecord", "e1", {"type": "login", "body_hash": "h1"}),
        "e2": ("EventRecord", "e2", {"type": "order", "body_hash": "h2"}),
    }
    assert store.get_nodes("EventRecord", []) == {}
    with pytest.raises(SchemaError):
        store.get_nodes("Nope", ["e1"])


def test_node_ids_are_every_id_of_the_label(store: GraphStore) -> None:
    assert store.node_ids("Verdict") == []
    store.upsert_nodes("User", [{"id": f"ids-u{i}"} for i in range(5)])
    store.upsert_nodes("Device", [{"id": "ids-d0"}])
    assert sorted(store.node_ids("User")) == [f"ids-u{i}" for i in range(5)]
    assert store.node_ids("Device") == ["ids-d0"]
    with pytest.raises(SchemaError):
        store.node_ids("Nope")


def _ring(store: GraphStore) -> None:
    """u0 and ten users on device d0; u0 also on phone p0 with u1; u1 and u2 are contacts."""
    store.upsert_nodes(
        "User", [{"id": f"u{i}", "created_at": i} for i in range(11)] + [{"id": "far"}]
    )
    store.upsert_nodes("Device", [{"id": "d0", "os": "emulator"}])
    store.upsert_edges("USES", [{"src": f"u{i}", "dst": "d0", "first_seen": i} for i in range(11)])
    store.upsert_edges("HAS_PHONE", [{"src": "u0", "dst": "p0"}, {"src": "u1", "dst": "p0"}])
    store.upsert_edges("CONTACT", [{"src": "u1", "dst": "u2", "since": 7}])
    store.upsert_edges("LOGGED_IN_FROM", [{"src": "u10", "dst": "ip9", "event_id": "e1"}])
    store.upsert_edges("USES", [{"src": "far", "dst": "d9"}])


def test_neighbourhood_one_hop(store: GraphStore) -> None:
    _ring(store)
    sub = store.neighbourhood("User", "u0", hops=1)
    assert sub.seed.id == "u0" and sub.seed.properties == {"created_at": 0}
    assert [(n.label, n.id) for n in sub.nodes] == [
        ("User", "u0"),
        ("Device", "d0"),
        ("Phone", "p0"),
    ]
    assert [(e.type, e.src, e.dst) for e in sub.edges] == [
        ("HAS_PHONE", "u0", "p0"),
        ("USES", "u0", "d0"),
    ]
    device = sub.nodes[1]
    assert device.properties == {"os": "emulator"}
    assert sub.edges[1].properties == {"first_seen": 0}


def test_neighbourhood_caps_new_neighbours_per_node_and_hop(store: GraphStore) -> None:
    _ring(store)
    sub = store.neighbourhood("User", "u0", hops=2, fanout=3)
    # Hop 1: d0 and p0. Hop 2: d0 (first in order) takes its first three new users by id;
    # p0 would bring u1, already taken by d0.
    assert [(n.label, n.id) for n in sub.nodes] == [
        ("User", "u0"),
        ("Device", "d0"),
        ("Phone", "p0"),
        ("User", "u1"),
        ("User", "u10"),
        ("User", "u2"),
    ]
    # Every edge between visited nodes, including the contact between two hop-2 users.
    assert [(e.type, e.src, e.dst) for e in sub.edges] == [
        ("CONTACT", "u1", "u2"),
        ("HAS_PHONE", "u0", "p0"),
        ("HAS_PHONE", "u1", "p0"),
        ("USES", "u0", "d0"),
        ("USES", "u1", "d0"),
        ("USES", "u10", "d0"),
        ("USES", "u2", "d0"),
    ]
    assert sub.edges[0].properties == {"since": 7}


def test_neighbourhood_fanout_one(store: GraphStore) -> None:
    _ring(store)
    sub = store.neighbourhood("User", "u0", hops=3, fanout=1)
    assert [(n.label, n.id) for n in sub.nodes] == [
        ("User", "u0"),
        ("Device", "d0"),
        ("User", "u1"),
        ("Phone", "p0"),
    ]


def test_neighbourhood_hop_limit(store: GraphStore) -> None:
    _ring(store)
    two = store.neighbourhood("User", "u0", hops=2, fanout=50)
    three = store.neighbourhood("User", "u0", hops=3, fanout=50)
    assert ("IP", "ip9") not in {(n.label, n.id) for n in two.nodes}
    assert ("IP", "ip9") in {(n.label, n.id) for n in three.nodes}
    assert len(two.nodes) == 1 + 2 + 10
    assert "far" not in {n.id for n in three.nodes}
    assert three == store.neighbourhood("User", "u0", hops=3, fanout=50)


@pytest.mark.parametrize(("hops", "fanout"), [(0, 5), (4, 5), (2, 0), (-1, 5)])
def test_neighbourhood_rejects_bad_bounds(store: GraphStore, hops: int, fanout: int) -> None:
    store.upsert_nodes("User", [{"id": "u0"}])
    with pytest.raises(ValueError):
        store.neighbourhood("User", "u0", hops=hops, fanout=fanout)


def test_neighbourhood_of_a_missing_seed_raises(store: GraphStore) -> None:
    with pytest.raises(GraphError, match="nobody"):
        store.neighbourhood("User", "nobody")


def test_neighbourhood_self_loop_and_isolated_seed(store: GraphStore) -> None:
    store.upsert_nodes("User", [{"id": "alone"}])
    store.upsert_edges("CONTACT", [{"src": "me", "dst": "me"}])
    alone = store.neighbourhood("User", "alone")
    assert alone.nodes == (alone.seed,) and alone.edges == ()
    sub = store.neighbourhood("User", "me", hops=3)
    assert [n.id for n in sub.nodes] == ["me"]
    assert [(e.type, e.src, e.dst) for e in sub.edges] == [("CONTACT", "me", "me")]


def test_shared_accounts_exclude_the_user_and_report_labels(store: GraphStore) -> None:
    store.upsert_edges(
        "USES", [{"src": u, "dst": "d1"} for u in ("me", "fraudster", "honest")]
    )
    store.upsert_edges("HAS_PHONE", [{"src": "me", "dst": "p1"}, {"src": "defaulter", "dst": "p1"}])
    # NOTE: two logins by the user itself from one IP: a walk could bring the user back.
    store.upsert_edges(
        "LOGGED_IN_FROM",
        [
            {"src": "me", "dst": "ip1", "event_id": "e1"},
            {"src": "me", "dst": "ip1", "event_id": "e2"},
            {"src": "honest", "dst": "ip1", "event_id": "e3"},
            {"src": "honest", "dst": "ip1", "event_id": "e4"},
        ],
    )
    store.upsert_edges("LIVES_AT", [{"src": "me", "dst": "a1"}])
    store.write_labels(
        [
            LabelWrite("User", "fraudster", "fraud", 10, "investigator:a"),
            LabelWrite("User", "defaulter", "default", 20, "ledger"),
        ]
    )
    shared = store.shared_accounts("me")
    assert shared == [
        SharedAccount("Device", "d1", "fraudster", "fraud", None),
        SharedAccount("Device", "d1", "honest", None, None),
        SharedAccount("Phone", "p1", "defaulter", None, True),
        SharedAccount("IP", "ip1", "honest", None, None),
    ]
    assert all(a.user_id != "me" for a in shared)
    assert store.shared_accounts("me", via=("IP",)) == [
        SharedAccount("IP", "ip1", "honest", None, None)
    ]
    assert store.shared_accounts("me", limit=1) == shared[:1]
    assert store.shared_accounts("nobody") == []


def test_shared_accounts_rejects_bad_arguments(store: GraphStore) -> None:
    with pytest.raises(ValueError):
        store.shared_accounts("me", via=("Merchant",))
    with pytest.raises(ValueError):
        store.shared_accounts("me", limit=0)


# -- export ------------------------------------------------------------------------------------
def test_export_round_trip_keeps_types_values_and_order(store: GraphStore) -> None:
    users = [
        {"id": "u2", "created_at": 2**40, "home_lat": 30.25, "home_city": "杭州",
         "default_label": False, "fraud_score": 0.125},
        {"id": "u1", "created_at": -5, "home_lat": 12, "default_label": True},
        {"id": "u3"},
    ]
    store.upsert_nodes("User", users)
    orders = [
        {"src": "u2", "dst": "m1", "event_id": "o2", "ts": 7, "amount": 10.5, "bnpl": True,
         "returned": False, "category": "phones"},
        {"src": "u1", "dst": "m1", "event_id": "o1", "amount": 3},
        {"src": "u1", "dst": "m1", "event_id": "o0"},
    ]
    store.upsert_edges("ORDERED_AT", orders)

    nodes = store.export_nodes("User")
    assert nodes.schema == node_arrow_schema(store.schema.node("User"))
    assert nodes.column("id").to_pylist() == ["u1", "u2", "u3"]
    by_id = {r["id"]: {k: v for k, v in r.items() if v is not None} for r in nodes.to_pylist()}
    assert by_id["u2"] == users[0]
    assert by_id["u1"] == {**users[1], "home_lat": 12.0}
    assert by_id["u3"] == {"id": "u3"}

    edges = store.export_edges("ORDERED_AT")
    assert edges.schema == edge_arrow_schema(store.schema.rel("ORDERED_AT"))
    assert _edges(store, "ORDERED_AT") == [
        {"src": "u1", "dst": "m1", "event_id": "o0"},
        {"src": "u1", "dst": "m1", "event_id": "o1", "amount": 3.0},
        orders[0],
    ]
    assert pa.types.is_float64(edges.schema.field("amount").type)


def test_export_of_an_empty_graph_has_the_schema(store: GraphStore) -> None:
    for kind, name, table in store.iter_export():
        assert table.num_rows == 0
        if kind == "node":
            assert table.schema == node_arrow_schema(store.schema.node(name))
        else:
            assert table.schema == edge_arrow_schema(store.schema.rel(name))


def test_export_reloads_into_an_empty_store_as_the_same_graph(
    store: GraphStore, tmp_path: Path
) -> None:
    _ring(store)
    exported = {(kind, name): table for kind, name, table in store.iter_export()}
    with LadybugStore(tmp_path / "copy.lbug") as copy:
        copy.apply_schema()
        for kind in ("node", "edge"):
            for (k, name), table in exported.items():
                if k == kind and table.num_rows:
                    load = copy.upsert_nodes if kind == "node" else copy.upsert_edges
                    load(name, rows_to_pylist(table))
        assert copy.counts() == store.counts()
        assert {(k, n): t for k, n, t in copy.iter_export()} == exported
    # Loading the export back into the same store changes nothing.
    for (kind, name), table in exported.items():
        load = store.upsert_nodes if kind == "node" else store.upsert_edges
        load(name, rows_to_pylist(table))
    assert {(k, n): t for k, n, t in store.iter_export()} == exported


# -- concurrency -------------------------------------------------------------------------------
def test_concurrent_writers_and_readers_lose_nothing(store: GraphStore) -> None:
    threads_n, batches, per_batch = 8, 10, 25
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n + 2)
    stop = threading.Event()

    def writer(t: int) -> None:
        try:
            barrier.wait()
            for b in range(batches):
                ids = [f"w{t}-{b}-{i}" for i in range(per_batch)]
                store.upsert_nodes("User", [{"id": i, "created_at": b} for i in ids])
                # Shared devices: every thread MERGEs the same ten device nodes.
                store.upsert_edges(
                    "USES", [{"src": i, "dst": f"d{k % 10}"} for k, i in enumerate(ids)]
                )
                store.upsert_edges(
                    "LOGGED_IN_FROM",
                    [{"src": i, "dst": "ip-shared", "event_id": f"e-{i}"} for i in ids],
                )
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def reader() -> None:
        try:
            barrier.wait()
            while not stop.is_set():
                store.counts()
                store.get_node("Device", "d0")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    writers = [threading.Thread(target=writer, args=(t,)) for t in range(threads_n)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for th in writers + readers:
        th.start()
    for th in writers:
        th.join()
    stop.set()
    for th in readers:
        th.join()
    assert errors == []
    n = threads_n * batches * per_batch
    assert _nonzero(store.counts()) == {
        "User": n, "Device": 10, "IP": 1, "USES": n, "LOGGED_IN_FROM": n,
    }


def test_a_pairs_since_only_moves_earlier(store: GraphStore) -> None:
    # NOTE: an application re-declares a phone the account has had for a year; the edge must
    # keep its first date, as the live graph does (online == batch rescoring of the export).
    store.upsert_edges("HAS_PHONE", [{"src": "u1", "dst": "ph1", "since": 100}])
    store.upsert_edges("HAS_PHONE", [{"src": "u1", "dst": "ph1", "since": 200}])
    store.write_batch([], [("HAS_PHONE", [{"src": "u2", "dst": "ph1", "since": 300},
                                          {"src": "u2", "dst": "ph1", "since": 250},
                                          {"src": "u1", "dst": "ph1", "since": 90}])])
    store.upsert_edges("USES", [{"src": "u1", "dst": "d1", "first_seen": 40, "last_seen": 40}])
    store.upsert_edges("USES", [{"src": "u1", "dst": "d1", "first_seen": 70, "last_seen": 70}])
    since = {(r["src"], r["dst"]): r["since"] for r in store.export_edges("HAS_PHONE").to_pylist()}
    assert since == {("u1", "ph1"): 90, ("u2", "ph1"): 250}
    (uses,) = store.export_edges("USES").to_pylist()
    assert (uses["first_seen"], uses["last_seen"]) == (40, 70)


def test_find_nodes_by_a_property_or_its_absence(store: GraphStore) -> None:
    store.upsert_nodes("CaseItem", [{"id": f"a{i}", "user_id": f"u{i}",
                                     **({"case_id": "c1"} if i % 2 else {})} for i in range(7)])
    store.upsert_nodes("CaseNote", [{"id": "n1", "case_id": "c1", "text": "a long note"}])
    assert [n.id for n in store.find_nodes("CaseItem", "case_id", "c1")] == ["a1", "a3", "a5"]
    pending = store.find_nodes("CaseItem", "case_id", None, limit=3)
    assert [n.id for n in pending] == ["a0", "a2", "a4"]
    assert pending[0].properties == {"user_id": "u0"}
    assert store.find_nodes("CaseItem", "case_id", "nope") == []
    # documents come back with the node (LadybugDB keeps them beside its tables)
    (note,) = store.find_nodes("CaseNote", "case_id", "c1")
    assert note.properties["text"] == "a long note"
    with pytest.raises(SchemaError):
        store.find_nodes("CaseItem", "no_such_property", "x")
    with pytest.raises(SchemaError):
        store.find_nodes("CaseNote", "text", "a long note")
    with pytest.raises(ValueError):
        store.find_nodes("CaseItem", "case_id", "c1", limit=0)
