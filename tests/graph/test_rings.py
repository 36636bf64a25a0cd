"""graph/rings.py on both real stores: rings found over shared entities with hubs left out,
stored with their id on the members, ids kept across refreshes, leavers cleared, gone rings
retired."""

from __future__ import annotations

import pytest

from graph import GraphStore
from graph.rings import detect_rings, get_ring, ranked_rings, refresh_rings

RING_A = [f"a{i}" for i in range(5)]
RING_B = [f"b{i}" for i in range(5)]
LONERS = [f"x{i}" for i in range(8)]
COUPLES = 40




def _world(store: GraphStore) -> None:
    """Ring A: five accounts on two devices and one phone, two labelled fraud, 1,000 applied
    (one 500 declined); ring B: five accounts at one address; a Wi-Fi of 18 (these accounts);
    40 couples, each at an address of its own.

    NOTE: the couples make the graph's total weight that of a world, where modularity does not
    split a ring of five (on a graph of two rings alone it would).
    """
    users = RING_A + RING_B + LONERS
    store.upsert_nodes("User", [{"id": u} for u in users])
    store.upsert_edges("LIVES_AT", [{"src": f"c{i}{who}", "dst": f"AC{i}"}
                                    for i in range(COUPLES) for who in "mf"])
    store.upsert_nodes("User", [{"id": "a0", "fraud_label": "fraud"},
                                {"id": "a1", "fraud_label": "fraud"},
                                {"id": "a2", "fraud_label": "cleared"},
                                {"id": "b0", "fraud_score": 0.4}])
    store.upsert_edges("USES", [{"src": u, "dst": "DA1" if i < 3 else "DA2"}
                                for i, u in enumerate(RING_A)])
    store.upsert_edges("HAS_PHONE", [{"src": u, "dst": "PA"} for u in RING_A[2:]])
    store.upsert_edges("LIVES_AT", [{"src": u, "dst": "AB"} for u in RING_B])
    store.upsert_edges("LOGGED_IN_FROM", [{"src": u, "dst": "WIFI", "event_id": f"e-{u}"}
                                          for u in users])
    store.upsert_nodes("Application", [{"id": "app1", "amount": 600.0},
                                       {"id": "app2", "amount": 400.0, "decision": "approve"},
                                       {"id": "app3", "amount": 500.0, "decision": "decline"}])
    store.upsert_edges("APPLIED", [{"src": "a0", "dst": "app1"}, {"src": "a3", "dst": "app2"},
                                   {"src": "a4", "dst": "app3"}])


def test_rings_are_found_ranked_and_stored_on_their_members(store: GraphStore) -> None:
    _world(store)
    done = refresh_rings(store, hub_size=10, min_size=3, seed=0, now=1000)
    assert (done.rings, done.members, done.retired, done.users_left) == (2, 10, 0, 0)
    a, b = ranked_rings(store, limit=10, entities=True)
    assert [r.shared_entities for r in ranked_rings(store, limit=10)] == [3, 1]
    assert a.members == tuple(RING_A) and b.members == tuple(RING_B)
    # risk: mean of 1, 1, 0, 0, 0 (two fraud, one cleared, two unknown); B: 0.4 / 5
    assert a.risk == pytest.approx(0.4) and a.confirmed_fraud_share == pytest.approx(0.4)
    assert b.risk == pytest.approx(0.08) and b.confirmed_fraud_share == 0
    assert a.money_at_stake == pytest.approx(1000.0) and b.money_at_stake == 0
    assert {(e.label, e.id, e.members) for e in a.entities} == {
        ("Device", "DA1", 3), ("Device", "DA2", 2), ("Phone", "PA", 3)}
    assert a.refreshed_at == 1000
    for ring in (a, b):
        users = store.get_nodes("User", ring.members)
        assert {n.properties.get("ring_id") for n in users.values()} == {ring.ring_id}
    assert store.get_node("User", "x0").properties.get("ring_id") is None  # type: ignore[union-attr]
    assert [r.ring_id for r in ranked_rings(store, limit=1, min_size=5)] == [a.ring_id]
    assert ranked_rings(store, limit=10, min_size=6) == []
    assert get_ring(store, a.ring_id) == a


def test_the_same_graph_and_seed_give_the_same_rings(store: GraphStore) -> None:
    _world(store)
    first = detect_rings(store, hub_size=10, min_size=3, seed=3, now=5)
    assert detect_rings(store, hub_size=10, min_size=3, seed=3, now=5) == first


def test_a_hub_links_nobody(store: GraphStore) -> None:
    _world(store)
    # the Wi-Fi (18 users) kept in: the loners join a ring through it
    rings = detect_rings(store, hub_size=100, min_size=3)
    assert any(set(LONERS) & set(r.members) for r in rings)
    rings = detect_rings(store, hub_size=17, min_size=3)
    assert not any(set(LONERS) & set(r.members) for r in rings)


def test_a_refresh_keeps_ids_clears_leavers_and_retires_gone_rings(store: GraphStore) -> None:
    _world(store)
    refresh_rings(store, hub_size=10, min_size=3, now=1000)
    a, b = ranked_rings(store, limit=10)
    # a sixth account joins ring A on DA1 (now 4 users); ring B's address (5) becomes a hub
    store.upsert_edges("USES", [{"src": "x0", "dst": "DA1"}])
    done = refresh_rings(store, hub_size=4, min_size=3, now=2000)
    assert (done.retired, done.users_left) == (1, len(RING_B))
    (a2,) = ranked_rings(store, limit=10)
    assert a2.ring_id == a.ring_id and "x0" in a2.members and a2.refreshed_at == 2000
    assert store.get_node("User", "x0").properties["ring_id"] == a.ring_id  # type: ignore[union-attr]
    for user in RING_B:
        assert "ring_id" not in store.get_node("User", user).properties  # type: ignore[union-attr]
    gone = get_ring(store, b.ring_id)
    assert gone is not None and gone.members == b.members
    assert store.get_node("Ring", b.ring_id).properties["retired_at"] == 2000  # type: ignore[union-attr]
    # B found again: its id back, no longer retired
    refresh_rings(store, hub_size=10, min_size=3, now=3000)
    assert b.ring_id in [r.ring_id for r in ranked_rings(store, limit=10)]
    assert "retired_at" not in store.get_node("Ring", b.ring_id).properties  # type: ignore[union-attr]


def test_bad_arguments_are_refused(store: GraphStore) -> None:
    with pytest.raises(ValueError, match="hub_size"):
        detect_rings(store, hub_size=1)
    with pytest.raises(ValueError, match="min_size"):
        refresh_rings(store, min_size=1)


def test_an_empty_graph_has_no_rings(store: GraphStore) -> None:
    done = refresh_rings(store, now=1)
    assert done.rings == 0 and ranked_rings(store) == []
