"""Rotation of the pseudonymisation key on both real stores: every keyed hash re-keyed, links
kept, the chain kept in the store and checked; the key chain's hashing itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from graph import GraphStore, Pseudonymiser, mask
from graph.key_rotation import (
    KeyChainError,
    Rekeying,
    read_chain,
    rotate_key,
    store_pseudonymiser,
)
from graph.privacy import HASHED_ID, key_check, rekey_digest, rekey_id
from tests.utils.graphs import store_rows

OLD = b"rotation-test-old-key-0123456789"
NEW = b"rotation-test-new-key-9876543210"
NEWER = b"rotation-test-newer-key-abcdefgh"
P = Pseudonymiser(OLD)


def _keep(label: str, row: dict[str, Any], rekeying: Rekeying) -> dict[str, Any]:
    return row


# -- the chain's hashing (no store) -----------------------------------------------------------
def test_a_chain_hashes_what_rekeying_the_old_hash_gives() -> None:
    chained = Pseudonymiser(NEW, [OLD])
    for kind, value in (("phone", "13800138000"), ("ip", "10.1.2.3"), ("device", "SN-1"),
                        ("national_id", "110101199003071234"), ("address", "上海市100号")):
        old = P.hash(kind, value)  # type: ignore[arg-type]
        new = chained.hash(kind, value)  # type: ignore[arg-type]
        assert new == rekey_id(NEW, old) != old
        assert new[:3] == old[:3] and len(new) == len(old) and HASHED_ID.match(new)
    twice = Pseudonymiser(NEWER, [OLD, NEW])
    assert twice.hash("ip", "10.1.2.3") == rekey_id(NEWER, chained.hash("ip", "10.1.2.3"))
    assert twice.remembering().hash("ip", "10.1.2.3") == twice.hash("ip", "10.1.2.3")
    assert (chained.generation, twice.generation, chained.check) == (1, 2, key_check(NEW))


def test_rekeying_refuses_what_is_not_a_keyed_hash() -> None:
    with pytest.raises(ValueError, match="keyed hash"):
        rekey_id(NEW, "u-123")
    assert rekey_digest(NEW, "ab" * 32) != rekey_digest(NEWER, "ab" * 32)
    assert key_check(OLD) != key_check(NEW) and OLD.hex() not in key_check(OLD)
    with pytest.raises(ValueError, match="16 bytes"):
        Pseudonymiser(NEW, [b"short"])


# -- on the stores ------------------------------------------------------------------------------
DEVICE, SHARED_IP, PHONE, ADDRESS = (P.hash("device", "SN-ring-1"), P.hash("ip", "10.66.0.1"),
                                     P.hash("phone", "13800138000"),
                                     P.hash("address", "上海市浦东新区世纪大道100号"))
NID = P.hash("national_id", "110101199003071234")


def _world(store: GraphStore) -> None:
    """``a`` and ``b`` share a device and an IP; ``a`` has a phone, an address, a national id."""
    store.upsert_nodes("User", [{"id": "a", "id_hash": NID, "created_at": 1},
                                {"id": "b", "created_at": 2}])
    store.upsert_nodes("Device", [{"id": DEVICE, "masked": "****ng-1", "os": "android",
                                   "first_seen": 3}])
    store.upsert_nodes("Phone", [{"id": PHONE, "masked": mask("phone", "13800138000")}])
    store.upsert_nodes("Address", [{"id": ADDRESS, "masked": "上海市浦***", "city": "上海"}])
    store.upsert_nodes("IP", [{"id": SHARED_IP, "masked": "10.66.0.0/24", "kind": "mobile"}])
    store.upsert_edges("USES", [{"src": "a", "dst": DEVICE, "first_seen": 3},
                                {"src": "b", "dst": DEVICE, "first_seen": 4}])
    store.upsert_edges("HAS_PHONE", [{"src": "a", "dst": PHONE, "since": 5}])
    store.upsert_edges("LIVES_AT", [{"src": "a", "dst": ADDRESS, "since": 5}])
    store.upsert_edges("LOGGED_IN_FROM", [
        {"src": u, "dst": SHARED_IP, "event_id": f"l{u}{i}", "ts": 10 + i, "device_id": DEVICE}
        for u in ("a", "b") for i in range(7)])
    store.upsert_nodes("Application", [{"id": "app-a", "product": "cash_loan", "ts": 20}])
    store.upsert_edges("APPLIED", [{"src": "a", "dst": "app-a", "ts": 20}])
    store.upsert_edges("APPLIED_ON", [{"src": "app-a", "dst": DEVICE}])
    store.upsert_edges("APPLIED_FROM", [{"src": "app-a", "dst": SHARED_IP}])
    store.upsert_nodes("EventRecord", [{"id": f"e{i}", "type": "order", "body_hash": "x"}
                                       for i in range(5)])


def test_rotation_rekeys_every_hash_and_keeps_every_link(store: GraphStore) -> None:
    _world(store)
    counts = store.counts()
    report = rotate_key(store, OLD, NEW, _keep, chunk_rows=3, now=1000)
    assert report is not None and report.generation == 1 and not report.resumed
    chained = Pseudonymiser(NEW, [OLD])
    device, ip = chained.hash("device", "SN-ring-1"), chained.hash("ip", "10.66.0.1")
    for label, old, new in (("Device", DEVICE, device), ("IP", SHARED_IP, ip),
                            ("Phone", PHONE, chained.hash("phone", "13800138000")),
                            ("Address", ADDRESS,
                             chained.hash("address", "上海市浦东新区世纪大道100号"))):
        assert store.get_node(label, old) is None
        node = store.get_node(label, new)
        assert node is not None and node.properties.get("masked"), label
    assert store.get_node("Device", device).properties["os"] == "android"  # type: ignore[union-attr]
    assert store.get_node("User", "a").properties["id_hash"] == chained.hash(  # type: ignore[union-attr]
        "national_id", "110101199003071234")
    assert store.counts() == {**counts, "PseudonymKey": 2}
    uses = store.export_edges("USES").to_pylist()
    assert {(e["src"], e["dst"], e["first_seen"]) for e in uses} == {("a", device, 3),
                                                                    ("b", device, 4)}
    logins = store.export_edges("LOGGED_IN_FROM").to_pylist()
    assert len(logins) == 14 and {(e["dst"], e["device_id"]) for e in logins} == {(ip, device)}
    assert {e["dst"] for e in store.export_edges("APPLIED_ON").to_pylist()} == {device}
    shared = store.shared_accounts("a")
    assert {(s.via_label, s.via_id, s.user_id) for s in shared} == {
        ("Device", device, "b"), ("IP", ip, "b")}
    chain = read_chain(store)
    assert [(k.generation, k.state, k.check, k.retired_key) for k in chain] == [
        (0, "retired", key_check(OLD), OLD), (1, "current", key_check(NEW), None)]
    assert store_pseudonymiser(store, NEW).hash("ip", "10.66.0.1") == ip


def test_a_finished_rotation_run_again_changes_nothing_and_the_next_chains_on(
        store: GraphStore) -> None:
    _world(store)
    rotate_key(store, OLD, NEW, _keep, now=1000)
    before = store.export_nodes("Device").to_pylist()
    assert rotate_key(store, OLD, NEW, _keep, now=1001) is None
    assert store.export_nodes("Device").to_pylist() == before
    report = rotate_key(store, NEW, NEWER, _keep, now=1002)
    assert report is not None and report.generation == 2
    assert store.get_node("Device", Pseudonymiser(NEWER, [OLD, NEW]).hash(
        "device", "SN-ring-1")) is not None
    assert [k.state for k in read_chain(store)] == ["retired", "retired", "current"]


def test_the_store_refuses_a_key_that_is_not_its_current_one(store: GraphStore) -> None:
    _world(store)
    assert store_pseudonymiser(store, OLD, claim=True).hash("ip", "10.66.0.1") == SHARED_IP
    with pytest.raises(KeyChainError, match="not a key of the store's chain"):
        store_pseudonymiser(store, NEW)
    with pytest.raises(KeyChainError, match="not the store's current key"):
        rotate_key(store, NEW, NEWER, _keep)
    rotate_key(store, OLD, NEW, _keep)
    with pytest.raises(KeyChainError, match="generation 0, retired by a rotation"):
        store_pseudonymiser(store, OLD)
    with pytest.raises(KeyChainError, match="a key of the store's chain already"):
        rotate_key(store, NEW, OLD, _keep)


def test_a_rotation_that_failed_midway_resumes_and_ends_as_one_clean_run(
        store: GraphStore) -> None:
    _world(store)
    expected = _rotated_clean(store)
    store_reset(store)
    _world(store)

    class Stop(Exception):
        pass

    def stop_at_the_records(label: str, row: dict[str, Any], rekeying: Rekeying
                            ) -> dict[str, Any]:
        raise Stop

    # NOTE: on Neo4j the hashed labels and users are rewritten (and marked) by then.
    with pytest.raises(Stop):
        rotate_key(store, OLD, NEW, stop_at_the_records, chunk_rows=2, now=1000)
    assert read_chain(store)[-1].state == "rotating"
    with pytest.raises(KeyChainError, match="unfinished"):
        store_pseudonymiser(store, OLD)
    with pytest.raises(KeyChainError, match="unfinished rotation to another key"):
        rotate_key(store, OLD, NEWER, _keep)
    report = rotate_key(store, OLD, NEW, _keep, chunk_rows=2, now=1000)
    assert report is not None and report.resumed
    assert store_rows(store) == expected


def store_reset(store: GraphStore) -> None:
    clear = getattr(store, "clear", None)
    if clear is not None:
        clear()
        return
    # NOTE: LadybugDB: a new file in the same place (the fixture's), schema applied.
    from graph.ladybug_store import LadybugStore, _remove_database

    assert isinstance(store, LadybugStore)
    store.close()
    _remove_database(store.path)
    store._open()
    store.apply_schema()


def _rotated_clean(store: GraphStore) -> dict[str, list[dict[str, Any]]]:
    rotate_key(store, OLD, NEW, _keep, chunk_rows=2, now=1000)
    return store_rows(store)


def test_a_ladybug_swap_stopped_midway_is_finished_by_the_next_open(tmp_path: Path) -> None:
    from graph.ladybug_store import LadybugStore, _database_files

    path, staging = tmp_path / "graph.lbug", tmp_path / "graph.lbug.rewriting"
    for where, tag in ((path, "old"), (staging, "new")):
        with LadybugStore(where) as store:
            store.apply_schema()
            store.upsert_nodes("Device", [{"id": f"dv_{tag}"}])
            store.upsert_nodes("Verdict", [{"id": "app", "verdict_json": tag}])
    # the swap file is written and the database renamed; the stop comes before its documents
    Path(f"{path}.swap").write_text(str(staging))
    os.replace(staging, path)
    with LadybugStore(path) as store:
        assert store.node_ids("Device") == ["dv_new"]
        verdict = store.get_node("Verdict", "app")
        assert verdict is not None and verdict.properties["verdict_json"] == "new"
    assert not any(f.exists() for f in _database_files(staging))
    assert not Path(f"{path}.swap").exists()
