"""`LiveGraph` reads against the obvious computation on the same rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graph.ladybug_store import LadybugStore
from serving.live_graph import LiveGraph


def test_merchant_evidence_is_the_newest_orders_before_the_time(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    store = LadybugStore(tmp_path / "g.lbug")
    try:
        store.apply_schema()
        # NOTE: two merchants, so that one's orders start part-way into the reverse relation.
        store.upsert_nodes("Merchant", [{"id": "m0"}, {"id": "m1"}])
        store.upsert_nodes("User", [{"id": f"u{i}"} for i in range(40)])
        ts = rng.permutation(np.arange(1_000, 1_120))  # distinct times, stored unordered
        rows = [{"src": f"u{i % 40}", "dst": f"m{i % 2}", "event_id": f"o{i}", "ts": int(t),
                 "amount": 10.0, "returned": bool(rng.random() < 0.3)}
                for i, t in enumerate(ts)]
        store.upsert_edges("ORDERED_AT", rows)
        live = LiveGraph.from_store(store, fanout=25)
        for merchant in ("m0", "m1"):
            mine = [r for r in rows if r["dst"] == merchant]
            for before in (999, 1_000, 1_001, 1_010, 1_060, 1_119, 1_120, 5_000):
                got = live.merchant_evidence(merchant, before)
                assert got is not None
                newest = sorted((r for r in mine if r["ts"] < before), key=lambda r: -r["ts"])
                assert got.orders == [r["returned"] for r in newest[:25]], (merchant, before)
    finally:
        store.close()


def test_merchant_evidence_of_a_store_without_any_order(tmp_path: Path) -> None:
    store = LadybugStore(tmp_path / "g.lbug")
    try:
        store.apply_schema()
        store.upsert_nodes("Merchant", [{"id": "m0"}])
        live = LiveGraph.from_store(store)
        got = live.merchant_evidence("m0", 5_000)
        assert got is not None and got.orders == []
    finally:
        store.close()


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
