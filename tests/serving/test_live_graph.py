"""`LiveGraph`: one write path for the model's arrays and the investigators' properties;
refreshes that keep the overlay bounded and rebuild the arrays without losing a write."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gnn import GraphWrites, LendingGraph
from graph.ladybug_store import LadybugStore
from serving.live_graph import LiveGraph


def _uses(user: str, device: str, ts: int) -> dict[str, object]:
    return {"op": "edges", "rel": "USES", "rows": [{"src": user, "dst": device,
                                                   "last_seen": ts}]}


def test_a_refresh_drops_from_the_overlay_what_the_new_base_holds(tmp_path: Path) -> None:
    store = LadybugStore(tmp_path / "g.lbug")
    try:
        store.apply_schema()
        store.upsert_nodes("User", [{"id": "u1"}, {"id": "u2"}])
        live = LiveGraph.from_store(store)
        early = [{"op": "nodes", "label": "Device", "rows": [{"id": "d1", "masked": "**1"}]},
                 _uses("u1", "d1", 100)]
        live.apply(early)
        assert live.overlay_size == 3  # d1's properties, u1's USES bucket, d1's reverse one
        # The writes reach the store (the writer's job); one more arrives while the refresh
        # waits for them, so it is not in the new base and must stay in the overlay.
        store.upsert_nodes("Device", [{"id": "d1", "masked": "**1"}])
        store.upsert_edges("USES", [{"src": "u1", "dst": "d1", "last_seen": 100}])

        def settle() -> bool:
            live.apply([_uses("u2", "d1", 200)])
            return True

        live.refresh(store, settle=settle, grace_s=0)
        # d1's properties and u1's bucket are in the base now; d1's reverse bucket changed
        # (u2 joined it) and u2's bucket is new: both kept.
        assert live.overlay_size == 2
        assert {e.dst for e in live.edges_from("USES", "u1")} == {"d1"}
        assert {e.dst for e in live.edges_from("USES", "u2")} == {"d1"}
        assert live.sources_of("USES", "d1") == {"u1", "u2"}
        node = live.node("Device", "d1")
        assert node is not None and node.properties["masked"] == "**1"

        # Writes that did not reach the store are never dropped.
        live.refresh(store, settle=lambda: False, grace_s=0)
        assert live.overlay_size == 2
        live.refresh(store, grace_s=0)
        assert live.overlay_size == 2
    finally:
        store.close()


def test_every_accepted_write_reaches_the_models_arrays_in_order(tmp_path: Path) -> None:
    store = LadybugStore(tmp_path / "g.lbug")
    try:
        store.apply_schema()
        store.upsert_nodes("User", [{"id": "u1"}])
        live = LiveGraph.from_store(store)
        arrays = live.arrays()
        got: list[GraphWrites] = []
        live.connect(got.append, lambda g, w: None, on_refresh=False)
        ops = [{"op": "nodes", "label": "Device", "rows": [{"id": "d1", "masked": "**1"}]},
               _uses("u1", "d1", 100),
               {"op": "label", "event": {"id": "e1"}, "label": {
                   "label": "User", "id": "u1", "kind": "fraud", "at": 150, "source": "t"}}]
        live.apply(ops)
        assert len(got) == 1 and got[0].labels[0].kind == "fraud"
        for w in got:
            arrays.apply_writes(w)
        u = arrays.position("User", "u1")
        assert arrays.fraud_at["User"][u] == 150
        assert arrays.relations["user_device"].count_before(np.array([u]),
                                                            np.array([10**9])).tolist() == [1]
    finally:
        store.close()


def test_a_rebuild_hands_over_new_arrays_with_every_write_since_it_began(tmp_path: Path
                                                                         ) -> None:
    store = LadybugStore(tmp_path / "g.lbug")
    try:
        store.apply_schema()
        store.upsert_nodes("User", [{"id": "u1"}, {"id": "u2"}])
        live = LiveGraph.from_store(store)
        handed: list[tuple[LendingGraph, list[GraphWrites]]] = []
        live.connect(lambda w: None, lambda g, w: handed.append((g, w)), on_refresh=False)
        live.apply([_uses("u1", "d1", 100)])
        store.upsert_nodes("Device", [{"id": "d1"}])
        store.upsert_edges("USES", [{"src": "u1", "dst": "d1", "first_seen": 100}])

        def settle() -> bool:
            # a write accepted while the refresh waits: not in the export, must be handed over
            live.apply([_uses("u2", "d1", 200)])
            return True

        live.refresh(store, settle=settle, grace_s=0)
        assert handed == []  # not a store other processes write: no rebuild at a refresh
        live.refresh(store, settle=settle, grace_s=0, rebuild=True)
        (arrays, since), = handed
        for w in since:
            arrays.apply_writes(w)
        d = arrays.position("Device", "d1")
        assert arrays.relations["device_user"].count_before(np.array([d]),
                                                            np.array([10**9])).tolist() == [2]
        handed.clear()
        live.refresh(store, settle=lambda: False, grace_s=0, rebuild=True)
        assert handed == []  # writes not all stored: the arrays are not rebuilt
    finally:
        store.close()
