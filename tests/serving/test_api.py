"""The scoring API over real HTTP (uvicorn on loopback), against both stores."""

from __future__ import annotations

import concurrent.futures
import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from serving_world import (
    BEIJING,
    NOW,
    SECRET,
    SHANGHAI,
    URUMQI,
    LiveServer,
    World,
    application,
    iso,
)

from graph import GraphStore, Pseudonymiser
from serving.settings import Settings

pytestmark = pytest.mark.timeout(300)


def _codes(verdict: dict[str, Any]) -> list[str]:
    return [r["code"] for r in verdict["reasons"]]


def _reason(verdict: dict[str, Any], code: str) -> dict[str, Any]:
    return next(r for r in verdict["reasons"] if r["code"] == code)


def _edges(store: GraphStore, user_id: str) -> Counter[tuple[str, str]]:
    sub = store.neighbourhood("User", user_id, hops=1, fanout=500)
    return Counter((e.type, str(e.properties.get("event_id") or e.dst)) for e in sub.edges)


def test_account_takeover_is_reviewed_with_location_and_amount(world: World,
                                                               live: LiveServer) -> None:
    user = world.user("ato", days_old=400, home=SHANGHAI)
    world.habits(user, device="phone-of-ato", place=SHANGHAI, logins=20,
                 orders=[180.0, 220.0, 150.0, 260.0, 199.0, 240.0, 170.0, 210.0], repayments=6)
    body = application(world.uid("app-ato"), user, amount=20_000.0,
                       device="brand-new-phone-9", place=URUMQI)
    with live.client() as c:
        r = c.post("/v1/score", json=body)
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["decision"] in ("review", "decline")
    assert not v["degraded"]
    codes = _codes(v)
    assert {"ATO_FAR_LOCATION", "ATO_AMOUNT_SPIKE", "ATO_NEW_DEVICE"} <= set(codes)
    place = _reason(v, "ATO_FAR_LOCATION")
    assert "Urumqi" in place["message_en"] and "Shanghai" in place["message_en"]
    assert "乌鲁木齐" not in place["message_zh"] and "Urumqi" in place["message_zh"]
    assert place["evidence"]["value"] > 2000  # km
    amount = _reason(v, "ATO_AMOUNT_SPIKE")
    assert "20,000" in amount["message_en"] and amount["evidence"]["value"] >= 50
    assert v["fraud_probability"] >= 0.3
    # the scorer's reasons say which way they moved the score, strongest against first; the
    # policy's carry no weight
    assert place["weight"] > 0 and amount["weight"] > 0
    policy = [r for r in v["reasons"] if r["code"] in ("FRAUD_REVIEW", "FRAUD_DECLINE")]
    assert policy and all(r["weight"] is None for r in policy)
    adverse = [r["weight"] for r in v["reasons"] if r["weight"] is not None and r["weight"] > 0]
    assert adverse == sorted(adverse, reverse=True)


def test_thin_file_clean_user_is_approved_with_a_small_limit(world: World,
                                                            live: LiveServer) -> None:
    user = world.user("thin", days_old=12, home=BEIJING)
    world.habits(user, device="thin-phone", place=BEIJING, logins=3, orders=[89.0], days=10)
    body = application(world.uid("app-thin"), user, amount=300.0, device="thin-phone",
                       place=BEIJING)
    with live.client() as c:
        v = c.post("/v1/score", json=body).json()
    assert v["decision"] == "approve", v
    assert 300 <= v["credit"]["recommended_limit"] <= 2000
    assert v["fraud_probability"] < 0.1
    assert "THIN_FILE" in _codes(v)
    assert all(r["message_en"] and r["message_zh"] for r in v["reasons"])
    assert _reason(v, "THIN_FILE")["weight"] > 0  # the code says which way: THIN_FILE raised it


def test_device_shared_with_confirmed_fraud_names_device_and_counts(
        world: World, live: LiveServer) -> None:
    farm = "shared-farm-device-1"
    ring = [world.user(f"ring{i}", days_old=20, home=SHANGHAI) for i in range(4)]
    for i, member in enumerate(ring):
        world.habits(member, device=farm, place=SHANGHAI, logins=2, orders=[], days=15,
                     ip=f"10.7.0.{i}")
    inv = live.new_key("investigator")
    labels = [{"event_id": world.uid(f"lab-{i}"), "entity_type": "User", "entity_id": ring[i],
               "kind": "fraud", "at": iso(NOW - timedelta(days=1)),
               "source": "investigator:alice"} for i in range(2)]
    with live.client(inv) as c:
        r = c.post("/v1/labels", json={"labels": labels})
    assert r.status_code == 202 and r.json()["accepted"] == 2, r.text
    applicant = world.user("ring-new", days_old=3, home=SHANGHAI)
    body = application(world.uid("app-ring"), applicant, amount=800.0, device=farm,
                       place=SHANGHAI)
    with live.client() as c:
        v = c.post("/v1/score", json=body).json()
    assert v["decision"] in ("review", "decline"), v
    shared = _reason(v, "SHARED_ENTITY_FRAUD")
    assert shared["evidence"]["entity_type"] == "Device"
    assert "4 other accounts, 2 confirmed fraud" in shared["message_en"]
    assert "其中2个已确认欺诈" in shared["message_zh"]


def test_same_id_same_body_returns_the_stored_verdict_and_writes_once(
        world: World, live: LiveServer, graph_store: GraphStore) -> None:
    user = world.user("idem", days_old=200, home=SHANGHAI)
    body = application(world.uid("app-idem"), user, amount=500.0, device="idem-phone",
                       place=SHANGHAI, address="上海市浦东新区世纪大道100号",
                       phone="+86 138 0013 8000")
    with live.client() as c:
        first = c.post("/v1/score", json=body)
        live.drain()
        before = _edges(graph_store, user)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            again = list(pool.map(lambda _: c.post("/v1/score", json=body), range(8)))
    live.drain()
    assert first.status_code == 200
    assert "idempotent-replayed" not in first.headers
    for r in again:
        assert r.status_code == 200
        assert r.json() == first.json()
        assert r.headers["idempotent-replayed"] == "true"
    assert _edges(graph_store, user) == before
    assert before[("APPLIED", body["application_id"])] == 1
    assert graph_store.get_node("Verdict", body["application_id"]) is not None
    # identifiers never reach the store in clear
    sub = graph_store.neighbourhood("User", user, hops=1, fanout=100)
    text = repr(sub)
    assert "13800138000" not in text and "世纪大道" not in text and "idem-phone" not in text


def test_no_clear_ip_or_fine_place_in_the_store_the_spool_or_the_logs(
        world: World, live: LiveServer, graph_store: GraphStore, settings: Settings,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    user = world.user("private", days_old=200, home=SHANGHAI)
    v6, v4 = "2001:db8:77::5", "203.0.113.77"
    world.events([{"type": "login", "event_id": world.uid("private-login"), "user_id": user,
                   "ts": iso(NOW - timedelta(hours=2)), "device_id": "private-phone",
                   "ip": v6, "lat": 31.230416, "lon": 121.473701}])
    body = application(world.uid("app-private"), user, amount=300.0, device="private-phone",
                       place=(31.230416, 121.473701, "Shanghai"), ip=v4)
    with live.client() as c:
        r = c.post("/v1/score", json=body)
        assert r.status_code == 200, r.text
        # NOTE: the same IP written another way is the same IP node.
        again = c.post("/v1/events", json={"events": [{
            "type": "login", "event_id": world.uid("private-login-2"), "user_id": user,
            "ts": iso(NOW - timedelta(hours=1)), "device_id": "private-phone",
            "ip": "::ffff:" + v4, "lat": 31.23, "lon": 121.47}]})
        assert again.status_code == 202, again.text
    live.drain()
    strings: list[str] = []
    coordinates: list[float] = []
    for _, _, table in graph_store.iter_export():
        for field, column in zip(table.schema, table.columns, strict=True):
            values = [v for v in column.to_pylist() if v is not None]
            if column.type == "string":
                strings.extend(values)
            elif field.name in ("lat", "lon", "home_lat", "home_lon"):
                coordinates.extend(values)
    text = "\x00".join(strings)
    assert body["application_id"] in text  # the export holds this test's writes
    for clear in (v4, v6, "2001:db8:77:0:0:0:0:5", "31.230416", "121.473701"):
        assert clear not in text
    assert 31.230416 not in coordinates and 31.23 in coordinates
    ips = {r["dst"] for r in graph_store.export_edges("LOGGED_IN_FROM").to_pylist()
           if r["src"] == user} | {r["dst"] for r in graph_store.export_edges(
               "APPLIED_FROM").to_pylist() if r["src"] == body["application_id"]}
    assert len(ips) == 2 and all(i.startswith("ip_") for i in ips)
    masks = {n.properties.get("masked") for n in graph_store.get_nodes("IP", sorted(ips)).values()}
    assert masks == {"203.0.113.0/24", "2001:db8:77::/48"}
    request = json.loads(graph_store.get_node("Verdict", body["application_id"])
                         .properties["request_json"])
    assert request["ip"] in ips and request["lat"] == 31.23
    # nothing on disk (embedded store, its documents, the spool) and no log line holds them
    for path in Path(settings.DATA_DIR).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert v4.encode() not in data and v6.encode() not in data, path
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert v4 not in logged and v6 not in logged


def test_same_id_different_body_is_409(world: World, live: LiveServer) -> None:
    user = world.user("conflict", days_old=200, home=SHANGHAI)
    body = application(world.uid("app-conflict"), user, amount=500.0, device="c-phone",
                       place=SHANGHAI)
    with live.client() as c:
        assert c.post("/v1/score", json=body).status_code == 200
        r = c.post("/v1/score", json={**body, "amount": 501.0})
    assert r.status_code == 409
    assert r.json()["loc"] == ["body", "application_id"]


def test_the_stated_term_or_the_products_longest_is_scored_and_stored(
        world: World, live: LiveServer, graph_store: GraphStore) -> None:
    """A BNPL application states 1 of its product's terms (1, 3, 6) or none: the store holds
    the term it was scored with (the longest, 6, when none is stated), the audit trail's
    features carry it, and a request without the field hashes without it (the idempotency of
    requests sent before the field existed)."""
    user = world.user("term", days_old=200, home=SHANGHAI)
    stated = application(world.uid("app-term-1"), user, amount=500.0, device="t-phone",
                         place=SHANGHAI, term_months=1)
    unstated = application(world.uid("app-term-none"), user, amount=500.0, device="t-phone",
                           place=SHANGHAI)
    inv = live.new_key("investigator")
    with live.client() as c:
        for body in (stated, unstated):
            assert c.post("/v1/score", json=body).status_code == 200
        live.drain()
        assert c.post("/v1/score", json=unstated).headers["idempotent-replayed"] == "true"
    with live.client(inv) as c:
        audits = [c.get(f"/v1/verdicts/{b['application_id']}").json()
                  for b in (stated, unstated)]
    for body, term, audit in zip((stated, unstated), (1, 6), audits, strict=True):
        node = graph_store.get_node("Application", body["application_id"])
        assert node is not None and node.properties["term_months"] == term
        assert audit["features"]["term_months"] == term
    assert audits[0]["request"]["term_months"] == 1
    assert "term_months" not in audits[1]["request"]


def test_audit_trail_explains_the_verdict(world: World, live: LiveServer) -> None:
    user = world.user("audit", days_old=100, home=SHANGHAI)
    body = application(world.uid("app-audit"), user, amount=400.0, device="a-phone",
                       place=SHANGHAI)
    inv = live.new_key("investigator")
    with live.client() as c:
        verdict = c.post("/v1/score", json=body).json()
    with live.client(inv) as c:
        pending = c.get(f"/v1/verdicts/{body['application_id']}").json()
        live.drain()  # the embedded store takes verdicts behind, in group commits
        r = c.get(f"/v1/verdicts/{body['application_id']}")
        missing = c.get("/v1/verdicts/no-such-application")
    assert pending["verdict"] == verdict and pending["stored_in"] in ("graph", "spool")
    assert r.status_code == 200, r.text
    audit = r.json()
    assert audit["verdict"] == verdict
    assert len(audit["request_hash"]) == 64
    assert audit["request"]["device_id"].startswith("dv_")
    assert "a-phone" not in str(audit)
    assert {"tenure_days", "device_shared_accounts", "monthly_spend"} <= set(audit["features"])
    assert audit["verdict"]["policy_version"] and audit["verdict"]["model_version"]
    assert audit["stored_in"] == "graph"
    assert missing.status_code == 404


def test_events_and_labels_are_idempotent_by_event_id(
        world: World, live: LiveServer, graph_store: GraphStore) -> None:
    user = world.user("events", days_old=100, home=SHANGHAI)
    merchant = world.uid("merchant")
    batch = [
        {"type": "login", "event_id": world.uid("e-login"), "user_id": user,
         "ts": iso(NOW - timedelta(hours=5)), "device_id": "ev-phone", "ip": "10.3.0.1",
         "lat": 31.2, "lon": 121.4},
        {"type": "order", "event_id": world.uid("e-order"), "user_id": user,
         "merchant_id": merchant, "ts": iso(NOW - timedelta(hours=4)), "amount": 99.5,
         "category": "books", "bnpl": True, "returned": False},
        {"type": "repayment", "event_id": world.uid("e-repay"), "user_id": user,
         "application_id": world.uid("old-app"), "ts": iso(NOW - timedelta(hours=3)),
         "due_at": iso(NOW - timedelta(hours=2)), "amount": 50.0, "status": "on_time"},
        {"type": "merchant_sales", "event_id": world.uid("e-sales"), "merchant_id": merchant,
         "day": (NOW - timedelta(days=1)).date().isoformat(), "gmv": 1200.0, "orders": 7,
         "refunds": 0.0, "inventory": 5000.0},
    ]
    for _ in range(2):
        world.events(batch)
    edges = _edges(graph_store, user)
    for kind, ev in (("LOGGED_IN_FROM", batch[0]), ("ORDERED_AT", batch[1]),
                     ("REPAID", batch[2])):
        assert edges[(kind, ev["event_id"])] == 1
    m = graph_store.neighbourhood("Merchant", merchant, hops=1, fanout=50)
    assert sum(1 for n in m.nodes if n.label == "SalesReport") == 1

    inv = live.new_key("investigator")
    label = {"event_id": world.uid("lab"), "entity_type": "User", "entity_id": user,
             "kind": "fraud", "at": iso(NOW - timedelta(hours=1)), "source": "investigator:bo"}
    with live.client(inv) as c:
        first = c.post("/v1/labels", json={"labels": [label]}).json()
        second = c.post("/v1/labels", json={"labels": [label]}).json()
        changed = c.post("/v1/labels", json={"labels": [{**label, "kind": "cleared"}]}).json()
        older = c.post("/v1/labels", json={"labels": [{
            **label, "event_id": world.uid("lab-old"), "kind": "cleared",
            "at": iso(NOW - timedelta(days=3))}]}).json()
    assert first == {"accepted": 1, "duplicates": [], "conflicts": [], "spooled": False}
    assert second["duplicates"] == [label["event_id"]] and second["accepted"] == 0
    assert changed["conflicts"] == [label["event_id"]]
    assert older["accepted"] == 1
    node = graph_store.get_node("User", user)
    assert node is not None
    assert node.properties["fraud_label"] == "fraud"  # the older "cleared" did not win
    assert node.properties["fraud_label_source"] == "investigator:bo"


def test_event_id_resent_with_another_body_is_a_conflict(
        world: World, live: LiveServer, graph_store: GraphStore) -> None:
    user = world.user("ev-conflict", days_old=100, home=SHANGHAI)
    merchant = world.uid("shop")
    login = {"type": "login", "event_id": world.uid("c-login"), "user_id": user,
             "ts": iso(NOW - timedelta(hours=5)), "device_id": "c-phone", "ip": "10.3.0.1",
             "lat": 31.2, "lon": 121.4}
    order = {"type": "order", "event_id": world.uid("c-order"), "user_id": user,
             "merchant_id": merchant, "ts": iso(NOW - timedelta(hours=4)), "amount": 99.5,
             "category": "books", "bnpl": True, "returned": False}
    world.events([login, order])
    same_instant = (NOW - timedelta(hours=5)).astimezone(timezone(timedelta(hours=8)))
    with live.client() as c:
        def post(*events: dict[str, Any]) -> dict[str, Any]:
            r = c.post("/v1/events", json={"events": list(events)})
            assert r.status_code == 202, r.text
            return dict(r.json())

        # the same event, its time written in another offset: a duplicate
        repeat = post({**login, "ts": same_instant.isoformat()}, order)
        # another endpoint (a second edge before), another amount (overwritten before)
        moved = post({**login, "ip": "10.3.0.99"}, {**order, "amount": 5000.0})
        # a new id twice in one batch, and a new id resent before it is written behind
        fresh = world.uid("c-fresh")
        twice = post({**login, "event_id": fresh}, {**login, "event_id": fresh,
                                                      "ip": "10.3.0.98"})
        late = world.uid("c-late")
        first = post({**order, "event_id": late})
        second = post({**order, "event_id": late, "merchant_id": world.uid("other-shop")})
    live.drain()
    assert repeat == {"accepted": 0, "duplicates": [login["event_id"], order["event_id"]],
                      "conflicts": [], "checked": True, "spooled": False}
    assert moved["accepted"] == 0 and moved["duplicates"] == []
    assert moved["conflicts"] == [login["event_id"], order["event_id"]]
    assert twice["accepted"] == 1 and twice["conflicts"] == [fresh]
    assert first["accepted"] == 1
    assert second["accepted"] == 0 and second["conflicts"] == [late]
    edges = [e for e in graph_store.neighbourhood("User", user, hops=1, fanout=500).edges
             if e.type in ("LOGGED_IN_FROM", "ORDERED_AT")]
    by_id = Counter(str(e.properties["event_id"]) for e in edges)
    assert by_id == {login["event_id"]: 1, order["event_id"]: 1, fresh: 1, late: 1}
    stored = {str(e.properties["event_id"]): e for e in edges}
    ip = Pseudonymiser(SECRET.encode()).hash("ip", "10.3.0.1")
    assert stored[login["event_id"]].dst == ip and stored[fresh].dst == ip
    assert stored[order["event_id"]].properties["amount"] == 99.5
    assert stored[late].dst == merchant
    with live.client() as c:
        metrics = c.get("/metrics").text
    assert ('riskgraph_event_conflicts_total{found="accepted",kind="event"} 4.0'
            in metrics)


def test_investigator_endpoints(world: World, live: LiveServer) -> None:
    a = world.user("inv-a", days_old=50, home=SHANGHAI)
    b = world.user("inv-b", days_old=50, home=SHANGHAI)
    for u in (a, b):
        world.habits(u, device="family-tablet", place=SHANGHAI, logins=1, orders=[], days=5)
    inv = live.new_key("investigator")
    with live.client(inv) as c:
        sub = c.get(f"/v1/users/{a}/neighbourhood", params={"hops": 2, "fanout": 20})
        shared = c.get(f"/v1/users/{a}/shared-accounts", params={"via": ["Device"]})
        missing = c.get("/v1/users/nobody-here/neighbourhood")
        bad = c.get(f"/v1/users/{a}/neighbourhood", params={"hops": 4})
    assert sub.status_code == 200, sub.text
    ids = {n["id"] for n in sub.json()["nodes"]}
    assert b in ids
    assert shared.status_code == 200
    rows = shared.json()["accounts"]
    assert [r["user_id"] for r in rows] == [b] and rows[0]["via_label"] == "Device"
    assert missing.status_code == 404
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "hops"]


def test_auth_roles_and_rate_limit(live: LiveServer, uid: Callable[[str], str]) -> None:
    scoring = live.new_key("scoring")
    inv = live.new_key("investigator")
    slow = live.new_key("scoring", rate_limit_per_s=1.0)
    body = application(uid("app-auth"), uid("u-auth"), amount=100.0, device="d",
                       place=SHANGHAI)
    with live.client(None) as anon:
        assert anon.post("/v1/score", json=body).status_code == 401
        assert anon.get("/v1/verdicts/x").status_code == 401
        assert anon.get("/metrics").status_code == 401
        assert anon.get("/healthz").status_code == 200
        assert anon.get("/readyz").status_code == 200
    with live.client("rgk_nothere_" + "x" * 40) as bogus:
        assert bogus.post("/v1/score", json=body).status_code == 401
    with live.client(inv) as c:
        assert c.post("/v1/score", json=body).status_code == 403
        assert c.post("/v1/keys", json={"name": "x", "role": "admin"}).status_code == 403
    with live.client(scoring) as c:
        assert c.post("/v1/score", json=body).status_code == 200
        assert c.get(f"/v1/verdicts/{body['application_id']}").status_code == 403
        assert c.get("/metrics").status_code == 403
    with live.client(slow) as c:
        codes = [c.post("/v1/score", json=body).status_code for _ in range(6)]
    assert codes[0] == 200 and 429 in codes
    key_id = scoring.split("_")[1]
    with live.client() as admin:
        assert admin.delete(f"/v1/keys/{key_id}").status_code == 204
        listed = {k["key_id"]: k for k in admin.get("/v1/keys").json()}
    assert listed[key_id]["revoked_at"] is not None
    assert "key" not in listed[key_id] and "key_hash" not in listed[key_id]
    with live.client(scoring) as c:
        assert c.post("/v1/score", json=body).status_code == 401


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": 60_000.0}, ["body", "amount"]),
    ({"amount": 0}, ["body", "amount"]),
    ({"amount": "100"}, ["body", "amount"]),
    ({"product": "payday"}, ["body", "product"]),
    ({"currency": "USD"}, ["body", "currency"]),
    ({"geo": {"lat": 91.0, "lon": 0.0}}, ["body", "geo", "lat"]),
    ({"applied_at": "2099-01-01T00:00:00Z"}, ["body", "applied_at"]),
    ({"applied_at": "2025-01-01T00:00:00"}, ["body", "applied_at"]),
    ({"merchant_id": None}, ["body", "merchant_id"]),
    ({"application_id": "x" * 65}, ["body", "application_id"]),
    ({"surprise": 1}, ["body", "surprise"]),
    ({"ip": "ip-of-the-caller"}, ["body", "ip"]),
    ({"ip": "10.0.0.256"}, ["body", "ip"]),
    ({"term_months": 12}, ["body", "term_months"]),
    ({"term_months": 0}, ["body", "term_months"]),
    ({"term_months": 3.5}, ["body", "term_months"]),
    ({"term_months": "3"}, ["body", "term_months"]),
    ({"term_months": True}, ["body", "term_months"]),
])
def test_bad_input_is_422_naming_the_field(live: LiveServer, uid: Callable[[str], str],
                                           change: dict[str, Any], field: list[str]) -> None:
    body = application(uid("app-bad"), uid("u"), amount=100.0, device="d", place=SHANGHAI)
    body.update(change)
    with live.client() as c:
        r = c.post("/v1/score", json=body)
    assert r.status_code == 422, r.text
    assert field in [d["loc"] for d in r.json()["detail"]]


def test_malformed_and_oversized_bodies_are_4xx(live: LiveServer) -> None:
    with live.client() as c:
        assert c.post("/v1/score", content=b"{not json",
                      headers={"content-type": "application/json"}).status_code == 422
        big = {"events": [{"type": "order"}] * 1001}
        r = c.post("/v1/events", json=big)
        assert r.status_code == 422
        assert c.post("/v1/events", content=b"x" * (5 * 1024 * 1024),
                      headers={"content-type": "application/json"}).status_code == 413


def _sample(text: str, name: str) -> float:
    """The value of one series in a /metrics text (0 when absent)."""
    return next((float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                 if line.startswith(name + " ")), 0.0)


def test_health_readiness_and_metrics(live: LiveServer, uid: Callable[[str], str]) -> None:
    body = application(uid("app-metrics"), uid("u"), amount=100.0, device="d", place=SHANGHAI)
    batch = 'riskgraph_model_batch_applications_sum{slot="champion"}'
    with live.client() as c:
        before = c.get("/metrics").text
        c.post("/v1/score", json=body, headers={"X-Request-ID": "req-123"})
        r = c.post("/v1/score", json=body, headers={"X-Request-ID": "req-124"})
        assert r.headers["x-request-id"] == "req-124"
        live.drain()
        ready = c.get("/readyz").json()
        text = c.get("/metrics").text
    assert ready["status"] == "ready" and ready["store"] == "up" and ready["model"] == "loaded"
    assert 'riskgraph_http_request_duration_seconds_bucket{' in text
    assert 'route="/v1/score"' in text
    assert 'riskgraph_score_duration_seconds_count{decision="approve",degraded="false",' \
           'product="bnpl"}' in text
    assert "riskgraph_spool_depth 0.0" in text
    assert "riskgraph_degraded_verdicts_total 0.0" in text
    assert "riskgraph_idempotent_replays_total 1.0" in text
    # the model scored the one new application (the replay is answered from the store), and
    # says what its batches cost
    assert _sample(text, batch) - _sample(before, batch) == 1.0
    busy = _sample(text, 'riskgraph_model_busy_seconds_total{slot="champion"}')
    cpu = _sample(text, 'riskgraph_model_cpu_seconds_total{slot="champion"}')
    assert busy > 0 and 0 < cpu <= busy + 0.01
    assert 'riskgraph_model_batch_duration_seconds_count{slot="champion",step="score"}' in text
