"""Erasure of one person on both real stores: identifiers and documents go, risk facts stay."""

from __future__ import annotations

import json

import pytest

from graph import GraphStore, LabelWrite, Pseudonymiser, SchemaError, mask
from graph.erasure import USER_IDENTIFIERS, erase_user

P = Pseudonymiser(b"erasure-test-secret-0123")
RING_DEVICE = P.hash("device", "ring-device-1")
OWN_PHONE = P.hash("phone", "13800138000")
OWN_ADDRESS = P.hash("address", "上海市浦东新区世纪大道100号")
SHARED_IP = P.hash("ip", "10.66.0.1")
OWN_IP = P.hash("ip", "10.77.0.1")


def _redact(label: str, name: str, text: str) -> str:
    return json.dumps({"erased": name})


def _person(store: GraphStore) -> None:
    """``a`` and ``b`` share a device and an IP (a ring); ``a`` alone has a phone, an address
    and a second IP; ``a`` applied once and was decided, ``b`` once."""
    store.upsert_nodes("User", [
        {"id": "a", "id_hash": P.hash("national_id", "110101199003071234"),
         "name_masked": mask("name", "张三"), "home_city": "上海", "home_lat": 31.23,
         "home_lon": 121.47, "created_at": 1},
        {"id": "b", "id_hash": P.hash("national_id", "110101199003075678"),
         "name_masked": mask("name", "李四"), "home_city": "上海", "home_lat": 31.2,
         "home_lon": 121.4, "created_at": 1}])
    store.upsert_nodes("Device", [{"id": RING_DEVICE, "masked": "****ce-1", "os": "android"}])
    store.upsert_nodes("Phone", [{"id": OWN_PHONE, "masked": mask("phone", "13800138000")}])
    store.upsert_nodes("Address", [{"id": OWN_ADDRESS, "masked": "上海市浦***", "city": "上海",
                                    "lat": 31.23, "lon": 121.47}])
    store.upsert_nodes("IP", [{"id": SHARED_IP, "masked": "10.66.0.0/24", "kind": "mobile"},
                              {"id": OWN_IP, "masked": "10.77.0.0/24", "kind": "residential"}])
    store.upsert_edges("USES", [{"src": "a", "dst": RING_DEVICE}, {"src": "b", "dst": RING_DEVICE}])
    store.upsert_edges("HAS_PHONE", [{"src": "a", "dst": OWN_PHONE, "since": 5}])
    store.upsert_edges("LIVES_AT", [{"src": "a", "dst": OWN_ADDRESS, "since": 5}])
    store.upsert_edges("LOGGED_IN_FROM", [
        {"src": "a", "dst": SHARED_IP, "event_id": "la1", "ts": 10, "lat": 31.23, "lon": 121.47},
        {"src": "b", "dst": SHARED_IP, "event_id": "lb1", "ts": 11, "lat": 31.2, "lon": 121.4}])
    store.upsert_nodes("Application", [
        {"id": "app-a", "product": "cash_loan", "amount": 5000.0, "ts": 20, "lat": 31.23,
         "lon": 121.47, "decision": "review"},
        {"id": "app-b", "product": "cash_loan", "amount": 5000.0, "ts": 21, "lat": 31.2,
         "lon": 121.4, "decision": "review"}])
    store.upsert_edges("APPLIED", [{"src": "a", "dst": "app-a", "ts": 20},
                                   {"src": "b", "dst": "app-b", "ts": 21}])
    store.upsert_edges("APPLIED_FROM", [{"src": "app-a", "dst": OWN_IP},
                                        {"src": "app-b", "dst": SHARED_IP}])
    store.upsert_edges("APPLIED_ON", [{"src": "app-a", "dst": RING_DEVICE}])
    for app in ("app-a", "app-b"):
        store.upsert_nodes("Verdict", [{
            "id": app, "request_hash": f"h-{app}", "decision": "review",
            "fraud_probability": 0.7, "verdict_json": json.dumps({"reasons": ["上海 138****8000"]}),
            "features_json": "{\"dist_home_log_km\": 0.1}",
            "request_json": json.dumps({"phone_id": OWN_PHONE, "lat": 31.23})}])
    store.write_labels([LabelWrite("User", "a", "fraud", 30, "investigator:alice")])
    # the investigators' records: a ring case with both applications, b's own earlier case,
    # a note on each; the ring's device and a's own phone on the watchlist
    store.upsert_nodes("CaseItem", [
        {"id": "app-a", "user_id": "a", "product": "cash_loan", "amount": 5000.0,
         "case_id": "ring:r1:1"},
        {"id": "app-b", "user_id": "b", "product": "cash_loan", "amount": 5000.0,
         "case_id": "ring:r1:1"},
        {"id": "app-b0", "user_id": "b", "product": "bnpl", "amount": 300.0,
         "case_id": "user:b:1"}])
    store.upsert_nodes("Case", [{"id": "ring:r1:1", "scope": "ring:r1", "status": "closed",
                                 "disposition": "confirmed_fraud"},
                                {"id": "user:b:1", "scope": "user:b", "status": "open"}])
    store.upsert_nodes("CaseNote", [
        {"id": "n1", "case_id": "ring:r1:1", "author": "k1", "at": 40,
         "text": "张三 answered on 138****8000, lives at 世纪大道100号"},
        {"id": "n2", "case_id": "user:b:1", "author": "k1", "at": 41,
         "text": "李四 asked for a higher limit"}])
    store.upsert_nodes("WatchlistEntry", [
        {"id": "w1", "entity_label": "Phone", "entity_id": OWN_PHONE,
         "masked": mask("phone", "13800138000"), "reason": "张三's phone, used by a ring",
         "active": True, "added_by": "k1", "added_at": 42},
        {"id": "w2", "entity_label": "Device", "entity_id": RING_DEVICE, "masked": "****ce-1",
         "reason": "device farm", "active": True, "added_by": "k1", "added_at": 42}])


def test_erasure_removes_identifiers_and_documents_and_keeps_risk_facts(
        store: GraphStore) -> None:
    _person(store)
    edges_before = {t: store.export_edges(t).num_rows for t in store.schema.rel_types}
    report = erase_user(store, "a", _redact)
    assert report is not None
    assert (report.applications, report.logins, report.records) == (1, 1, 1)
    # the phone, the address and the second IP were only a's; the device and one IP are shared
    assert (report.private_entities, report.shared_entities) == (3, 2)
    a = store.get_node("User", "a")
    assert a is not None
    assert not set(USER_IDENTIFIERS) & set(a.properties)
    assert a.properties["fraud_label"] == "fraud"  # labels stay
    assert "masked" not in store.get_node("Phone", OWN_PHONE).properties  # type: ignore[union-attr]
    address = store.get_node("Address", OWN_ADDRESS)
    assert address is not None and not {"masked", "city", "lat", "lon"} & set(address.properties)
    assert "masked" not in store.get_node("IP", OWN_IP).properties  # type: ignore[union-attr]
    # what another account also reaches is that account's data too: kept
    assert store.get_node("Device", RING_DEVICE).properties["masked"] == "****ce-1"  # type: ignore[union-attr]
    assert store.get_node("IP", SHARED_IP).properties["masked"] == "10.66.0.0/24"  # type: ignore[union-attr]
    app_a = store.get_node("Application", "app-a")
    assert app_a is not None and not {"lat", "lon"} & set(app_a.properties)
    assert app_a.properties["decision"] == "review" and app_a.properties["amount"] == 5000.0
    verdict = store.get_node("Verdict", "app-a")
    assert verdict is not None
    assert {verdict.properties[n] for n in ("verdict_json", "features_json", "request_json")} == {
        json.dumps({"erased": n}) for n in ("verdict_json", "features_json", "request_json")}
    assert verdict.properties["decision"] == "review"
    assert verdict.properties["request_hash"] == "h-app-a"
    logins = {r["event_id"]: r for r in store.export_edges("LOGGED_IN_FROM").to_pylist()}
    assert logins["la1"]["lat"] is None and logins["la1"]["ts"] == 10
    # b is untouched
    b = store.get_node("User", "b")
    assert b is not None and set(USER_IDENTIFIERS) <= set(b.properties)
    assert logins["lb1"]["lat"] == 31.2
    assert "138****8000" in store.get_node("Verdict", "app-b").properties["verdict_json"]  # type: ignore[union-attr]
    assert store.get_node("Application", "app-b").properties["lat"] == 31.2  # type: ignore[union-attr]
    # the notes of a case that held a's applications go; the case and its disposition stay;
    # a watchlist entry of an entity only a used loses what identified it, a shared one stays
    assert store.get_node("CaseNote", "n1").properties["text"] == json.dumps({"erased": "text"})  # type: ignore[union-attr]
    assert store.get_node("CaseNote", "n2").properties["text"] == "李四 asked for a higher limit"  # type: ignore[union-attr]
    assert store.get_node("Case", "ring:r1:1").properties["disposition"] == "confirmed_fraud"  # type: ignore[union-attr]
    w1 = store.get_node("WatchlistEntry", "w1")
    assert w1 is not None and "masked" not in w1.properties and "张三" not in str(w1.properties)
    assert w1.properties["active"] is True and w1.properties["entity_id"] == OWN_PHONE
    assert store.get_node("WatchlistEntry", "w2").properties["reason"] == "device farm"  # type: ignore[union-attr]
    assert report.notes == 1 and report.watchlist_entries == 1
    # every relationship stays: the ring is still a ring
    assert {t: store.export_edges(t).num_rows for t in store.schema.rel_types} == edges_before
    assert {s.user_id for s in store.shared_accounts("a")} == {"b"}
    # idempotent; an unknown account is named, nothing written
    assert erase_user(store, "a", _redact) == report
    assert erase_user(store, "nobody", _redact) is None
    assert store.get_node("User", "nobody") is None


def test_ids_and_documents_cannot_be_removed(store: GraphStore) -> None:
    with pytest.raises(SchemaError, match="id"):
        store.remove_properties("User", ["a"], ["id"])
    with pytest.raises(SchemaError, match="request_json"):
        store.remove_properties("Verdict", ["a"], ["request_json"])
    with pytest.raises(SchemaError, match="event_id"):
        store.remove_edge_properties("LOGGED_IN_FROM", ["a"], ["event_id"])
