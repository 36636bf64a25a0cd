"""graph/exploration.py on both real stores: a neighbourhood with hubs collapsed and per-hop
caps, shortest paths around hubs, and the errors of both."""

from __future__ import annotations

from typing import Any

import neo4j
import pytest

import graph.ladybug_store
from graph import GraphStore, SchemaError
from graph.exploration import (
    EntityNotFoundError,
    entity_neighbourhood,
    shortest_paths,
    subgraph,
)
from graph.ladybug_store import LadybugStore
from graph.neo4j_store import Neo4jStore

HUB_USERS = 12


def _world(store: GraphStore) -> None:
    """u1 -D1- u2, u3; u2, u3 -P1- u4; u4 -A1- u5; every user and 6 more on the Wi-Fi W (a hub
    of 12); u1 logs in from its home IP three times."""
    users = [f"u{i}" for i in range(1, HUB_USERS + 1)]
    store.upsert_nodes("User", [{"id": u, "fraud_score": 0.1 * i}
                                for i, u in enumerate(users[:5], 1)] +
                       [{"id": u} for u in users[5:]])
    store.upsert_nodes("User", [{"id": "u2", "fraud_label": "fraud"},
                                {"id": "u3", "default_label": True}])
    store.upsert_edges("USES", [{"src": u, "dst": "D1", "first_seen": 1} for u in
                                ("u1", "u2", "u3")])
    store.upsert_edges("HAS_PHONE", [{"src": u, "dst": "P1"} for u in ("u2", "u3", "u4")])
    store.upsert_edges("LIVES_AT", [{"src": u, "dst": "A1"} for u in ("u4", "u5")])
    store.upsert_edges("LOGGED_IN_FROM", [
        {"src": u, "dst": "W", "event_id": f"w-{u}", "ts": 100} for u in users])
    store.upsert_edges("LOGGED_IN_FROM", [
        {"src": "u1", "dst": "H1", "event_id": f"h-{i}", "ts": 100 + i} for i in range(3)])


def test_a_hub_is_returned_with_its_size_but_not_expanded(store: GraphStore) -> None:
    _world(store)
    sub = entity_neighbourhood(store, "User", "u1", hops=2, per_hop=50, hub_size=5)
    got = {(n.label, n.id) for n in sub.nodes}
    assert sub.seed.id == "u1" and sub.nodes[0] == sub.seed
    assert {("Device", "D1"), ("IP", "W"), ("IP", "H1")} <= got
    assert sub.hubs == {("IP", "W"): HUB_USERS}
    # through D1 (not a hub) to u2 and u3; nobody else is reached through the Wi-Fi
    assert {("User", "u2"), ("User", "u3")} <= got
    assert not {("User", f"u{i}") for i in range(6, HUB_USERS + 1)} & got
    # with a larger hub size the Wi-Fi is expanded
    wide = entity_neighbourhood(store, "User", "u1", hops=2, per_hop=50, hub_size=50)
    assert wide.hubs == {}
    assert {("User", f"u{i}") for i in range(2, HUB_USERS + 1)} <= {
        (n.label, n.id) for n in wide.nodes}


def test_events_between_two_nodes_are_one_edge_with_their_count(store: GraphStore) -> None:
    _world(store)
    sub = entity_neighbourhood(store, "User", "u1", hops=1, per_hop=50, hub_size=5)
    home = [e for e in sub.edges if e.dst == "H1"]
    assert len(home) == 1 and home[0].count == 3 and home[0].properties["ts"] == 102
    assert len({(e.type, e.src, e.dst) for e in sub.edges}) == len(sub.edges)


def test_each_hop_takes_at_most_per_hop_new_nodes_in_turns(store: GraphStore) -> None:
    _world(store)
    sub = entity_neighbourhood(store, "IP", "W", hops=2, per_hop=4, hub_size=5)
    # the seed is expanded though it is a hub: 4 of its 12 users at hop one
    assert sub.seed.id == "W" and sub.hubs[("IP", "W")] == HUB_USERS
    assert [n.id for n in sub.nodes[1:5]] == ["u1", "u10", "u11", "u12"]
    # hop two: what those four reach besides W (u1's device and home IP)
    assert [n.id for n in sub.nodes[5:]] == ["D1", "H1"]
    capped = entity_neighbourhood(store, "Phone", "P1", hops=2, per_hop=2, hub_size=50)
    assert [n.id for n in capped.nodes] == ["P1", "u2", "u3", "D1", "W"]


def test_scores_and_labels_come_with_the_nodes(store: GraphStore) -> None:
    _world(store)
    sub = entity_neighbourhood(store, "Device", "D1", hops=1, per_hop=10, hub_size=50)
    by_id = {n.id: n.properties for n in sub.nodes}
    assert by_id["u2"]["fraud_label"] == "fraud"
    assert by_id["u3"]["default_label"] is True
    assert by_id["u1"]["fraud_score"] == pytest.approx(0.1)


def test_a_missing_seed_or_a_bad_argument_is_refused(store: GraphStore) -> None:
    _world(store)
    with pytest.raises(EntityNotFoundError, match="no Device with id 'nope'"):
        entity_neighbourhood(store, "Device", "nope")
    with pytest.raises(SchemaError):
        entity_neighbourhood(store, "Nope", "u1")
    with pytest.raises(ValueError, match="hops"):
        entity_neighbourhood(store, "User", "u1", hops=4)
    with pytest.raises(ValueError, match="label must be a label of the graph"):
        entity_neighbourhood(store, "Verdict", "u1")


def test_paths_are_the_shortest_and_walk_around_hubs(store: GraphStore) -> None:
    _world(store)
    # through the Wi-Fi: two steps
    short = shortest_paths(store, ("User", "u1"), ("User", "u5"), max_hops=6, hub_size=50)
    assert [[n.id for n in p.nodes] for p in short] == [["u1", "W", "u5"]]
    assert [e.type for e in short[0].edges] == ["LOGGED_IN_FROM", "LOGGED_IN_FROM"]
    # the Wi-Fi as a hub: u1 -D1- u2|u3 -P1- u4 -A1- u5, the two of length six
    around = shortest_paths(store, ("User", "u1"), ("User", "u5"), max_hops=6, hub_size=5,
                            limit=10)
    assert [[n.id for n in p.nodes] for p in around] == [
        ["u1", "D1", "u2", "P1", "u4", "A1", "u5"],
        ["u1", "D1", "u3", "P1", "u4", "A1", "u5"],
    ]
    for p in around:
        assert len(p.edges) == len(p.nodes) - 1
        for a, b, e in zip(p.nodes, p.nodes[1:], p.edges):
            assert {e.src, e.dst} == {a.id, b.id}
    assert len(shortest_paths(store, ("User", "u1"), ("User", "u5"), max_hops=6, hub_size=5,
                              limit=1)) == 1
    # none within five steps once the hub is skipped
    assert shortest_paths(store, ("User", "u1"), ("User", "u5"), max_hops=5, hub_size=5) == []


def test_a_path_may_start_at_a_hub_and_end_at_an_entity(store: GraphStore) -> None:
    _world(store)
    paths = shortest_paths(store, ("IP", "W"), ("Phone", "P1"), max_hops=4, hub_size=5)
    assert [[n.id for n in p.nodes] for p in paths] == [
        ["W", "u2", "P1"], ["W", "u3", "P1"], ["W", "u4", "P1"]]


def test_paths_refuse_bad_ends(store: GraphStore) -> None:
    _world(store)
    with pytest.raises(EntityNotFoundError, match="no User with id 'nobody'"):
        shortest_paths(store, ("User", "u1"), ("User", "nobody"))
    with pytest.raises(ValueError, match="from_label"):
        shortest_paths(store, ("Application", "a1"), ("User", "u1"))
    with pytest.raises(ValueError, match="same one twice"):
        shortest_paths(store, ("User", "u1"), ("User", "u1"))
    with pytest.raises(ValueError, match="max_hops"):
        shortest_paths(store, ("User", "u1"), ("User", "u2"), max_hops=7)


def test_a_subgraph_holds_the_relationships_among_its_nodes(store: GraphStore) -> None:
    _world(store)
    sub = subgraph(store, [("User", "u2"), ("User", "u3"), ("Device", "D1"), ("Phone", "P1"),
                           ("User", "ghost")])
    assert [n.id for n in sub.nodes] == ["u2", "u3", "D1", "P1"]
    assert sorted((e.type, e.src, e.dst) for e in sub.edges) == [
        ("HAS_PHONE", "u2", "P1"), ("HAS_PHONE", "u3", "P1"),
        ("USES", "u2", "D1"), ("USES", "u3", "D1")]


def _distinct_counts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ``count(DISTINCT ...)`` statements LadybugDB runs from now on."""
    seen: list[str] = []
    execute = graph.ladybug_store._execute

    def counted(conn: Any, query: Any, params: dict[str, Any] | None = None) -> Any:
        if "count(DISTINCT" in str(query):
            seen.append(str(params))
        return execute(conn, query, params)

    monkeypatch.setattr(graph.ladybug_store, "_execute", counted)
    return seen


def test_ladybug_counts_a_hubs_distinct_neighbours_once_while_writes_only_add(
        ladybug_store: LadybugStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # NOTE: on the 100k world a neighbourhood meets ~20 hubs, mostly the same merchants and
    # IPs, and counting one's distinct neighbours costs five times counting its relationships
    _world(ladybug_store)
    distinct = _distinct_counts(monkeypatch)
    first = entity_neighbourhood(ladybug_store, "User", "u1", hops=2, per_hop=50, hub_size=5)
    assert first.hubs == {("IP", "W"): HUB_USERS} and len(distinct) == 1
    # another user's neighbourhood meets the Wi-Fi again; an upsert in between only adds
    ladybug_store.upsert_edges("LOGGED_IN_FROM", [
        {"src": "u2", "dst": "W", "event_id": "w-u2-again", "ts": 200}])
    again = entity_neighbourhood(ladybug_store, "User", "u2", hops=1, per_hop=50, hub_size=5)
    assert again.hubs == {("IP", "W"): HUB_USERS + 1}  # its size read afresh
    assert len(distinct) == 1
    # a hub size the count kept does not exceed asks the store again (13 relationships, 12
    # distinct users)
    wide = entity_neighbourhood(ladybug_store, "User", "u2", hops=1, per_hop=50,
                                hub_size=HUB_USERS)
    assert wide.hubs == {} and len(distinct) == 2


def test_ladybug_forgets_its_counts_after_a_write_that_may_remove(
        ladybug_store: LadybugStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _world(ladybug_store)
    distinct = _distinct_counts(monkeypatch)
    entity_neighbourhood(ladybug_store, "User", "u1", hops=1, per_hop=50, hub_size=5)
    assert len(distinct) == 1
    ladybug_store.apply_schema()  # not an upsert: the store cannot tell what it changed
    sub = entity_neighbourhood(ladybug_store, "User", "u1", hops=1, per_hop=50, hub_size=5)
    assert sub.hubs == {("IP", "W"): HUB_USERS} and len(distinct) == 2


@pytest.mark.neo4j
def test_neo4j_reads_each_step_in_one_statement_whatever_its_labels(
        neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # NOTE: u1's first hop holds a device, two IPs and (through D1) users, phones next: read
    # one label at a time, a two-hop neighbourhood took 30 statements on the 100k world, each
    # a round trip.
    _world(neo4j_store)
    statements: list[str] = []
    run = neo4j.ManagedTransaction.run

    def counted(self: neo4j.ManagedTransaction, query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(query))
        return run(self, query, *args, **kwargs)

    monkeypatch.setattr(neo4j.ManagedTransaction, "run", counted)
    sub = entity_neighbourhood(neo4j_store, "User", "u1", hops=2, per_hop=50, hub_size=5)
    assert len({n.label for n in sub.nodes}) >= 3
    # the seed (exists, its degree), per hop its neighbours and their degrees, then the
    # nodes and the relationships among them
    assert len(statements) == 2 + 2 * 2 + 2
    statements.clear()
    assert shortest_paths(neo4j_store, ("User", "u1"), ("User", "u5"), max_hops=4)
    # the two ends, then one statement per layer and side (at most two: ends and the rest),
    # and the path's nodes and relationships
    assert len(statements) <= 1 + 2 * 4 + 2
