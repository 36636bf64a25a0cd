"""Investigators' cases, watchlist and read audit over real HTTP on both stores: review verdicts
of a ring gather in one case, the queue is ordered and filtered, a disposition labels the case
through the labels path (idempotent, a second different one refused) and the next ring
member's verdict names the labels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from serving_world import (
    ADMIN_KEY,
    NOW,
    SECRET,
    FlakyStore,
    LiveServer,
    World,
    application,
    iso,
    make_settings,
    wait_until,
)

from graph import GraphStore, Pseudonymiser
from serving.api import create_app
from serving.commands.serve import build_app
from serving.graph_writes import application_ops, to_facts
from serving.key_rotation import rotate
from serving.schemas.application import ApplicationCreate
from serving.scorers import load_live_graph, load_scorer
from serving.settings import Settings

HOME = (31.23, 121.47, "Shanghai")


def _score(server: LiveServer, body: dict[str, Any]) -> dict[str, Any]:
    with server.client() as c:
        r = c.post("/v1/score", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _ring(world: World, store: GraphStore, ring_id: str, n: int) -> list[str]:
    """``n`` new accounts the ring refresh put in ``ring_id`` (the property it writes)."""
    users = [world.user(f"ring-{i}", days_old=3, home=HOME) for i in range(n)]
    store.upsert_nodes("User", [{"id": u, "ring_id": ring_id} for u in users])
    return users


def _apply(world: World, user: str, n: int, *, device: str, amount: float,
           product: str = "cash_loan", **extra: Any) -> dict[str, Any]:
    body = application(world.uid(f"{user}-app-{n}"), user, amount=amount, device=device,
                       place=HOME, product=product,
                       merchant=world.uid("shop") if product == "bnpl" else None,
                       phone="+86 139 0000 0001", address=f"环路{world.uid('addr')}号", **extra)
    return _score(world.server, body)


def _watch_device(server: LiveServer, key: str, device: str) -> dict[str, Any]:
    with server.client(key) as c:
        r = c.post("/v1/watchlist", json={"entity_type": "Device", "value": device,
                                          "reason": "device farm"})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_review_verdict_writes_a_case_item_with_its_rows() -> None:
    p = Pseudonymiser(b"k" * 32)
    app = ApplicationCreate.model_validate(application(
        "a-1", "u-1", amount=500.0, device="D1", place=HOME, product="cash_loan", merchant=None))
    facts = to_facts(app, p)
    for decision, items in (("review", 1), ("approve", 0), ("decline", 0)):
        row = {"id": "a-1", "request_hash": "h", "decision": decision,
               "fraud_probability": 0.3, "decided_at": 1_700_000_000}
        (op,) = application_ops(facts, row, p, app)
        found = [r for o in op["then"] if o["op"] == "nodes" and o["label"] == "CaseItem"
                 for r in o["rows"]]
        assert len(found) == items
        if items:
            assert found[0] == {"id": "a-1", "user_id": "u-1", "product": "cash_loan",
                                "amount": 500.0, "risk": 0.3, "decided_at": 1_700_000_000}


def test_ring_reviews_gather_in_one_case_which_a_disposition_labels(
        graph_store: GraphStore, world: World, live: LiveServer,
        uid: Callable[[str], str]) -> None:
    investigator = live.new_key("investigator", name="alice")
    device = uid("RING-DEVICE")
    entry = _watch_device(live, investigator, device)
    assert entry["entity_id"].startswith("dv_") and device not in str(entry)
    ring_id = uid("r1")
    ring = _ring(world, graph_store, ring_id, 4)
    loner = world.user("loner", days_old=3, home=HOME)
    verdicts = [_apply(world, u, 0, device=device, amount=2000.0 + 500 * i)
                for i, u in enumerate(ring[:3])]
    lone = _apply(world, loner, 0, device=device, amount=9000.0, product="bnpl")
    for v in [*verdicts, lone]:
        assert v["decision"] == "review", v
        assert "WATCHLISTED_DEVICE" in [r["code"] for r in v["reasons"]]
        # a watchlist hit and the policy's review are rules: no log-odds to show
        assert all(r["weight"] is None for r in v["reasons"]
                   if r["code"] in ("WATCHLISTED_DEVICE", "FRAUD_REVIEW", "FRAUD_MAIN_REASON"))
    live.drain()

    with live.client(investigator) as c:
        queue = c.get("/v1/cases").json()["cases"]
        mine = [q for q in queue if q["ring_id"] == ring_id or q["user_id"] == loner]
        assert len(mine) == 2
        ring_case = next(q for q in mine if q["ring_id"] == ring_id)
        assert ring_case["case_id"] == f"ring:{ring_id}:1"
        assert ring_case["items"] == 3 and ring_case["amount"] == 2000.0 + 2500.0 + 3000.0
        assert ring_case["products"] == ["cash_loan"]
        assert "WATCHLISTED_DEVICE" in ring_case["reasons"]
        # riskiest first, then the largest amount
        keys = [(-q["risk"], -q["amount"]) for q in queue]
        assert keys == sorted(keys)
        assert [q["case_id"] for q in c.get("/v1/cases", params={"product": "bnpl"}).json()[
            "cases"] if q["user_id"] == loner] == [f"user:{loner}:1"]
        assert all(q["ring_id"] != ring_id for q in c.get(
            "/v1/cases", params={"product": "bnpl"}).json()["cases"])
        assert c.get("/v1/cases", params={"reason": "NO_SUCH_REASON"}).json()["cases"] == []

        case_id = ring_case["case_id"]
        detail = c.get(f"/v1/cases/{case_id}").json()
        assert sorted(v["user_id"] for v in detail["verdicts"]) == sorted(ring[:3])
        assert all(v["verdict"]["decision"] == "review" for v in detail["verdicts"])

        r = c.post(f"/v1/cases/{case_id}/assign", json={"assignee": "alice"})
        assert r.status_code == 200 and r.json()["assignee"] == "alice"
        assert [q["case_id"] for q in c.get("/v1/cases", params={"assignee": "alice"}).json()[
            "cases"]] == [case_id]
        r = c.post(f"/v1/cases/{case_id}/notes", json={"text": "one device, three accounts"})
        assert r.status_code == 201 and r.json()["author_name"] == "alice"
        assert [n["text"] for n in c.get(f"/v1/cases/{case_id}").json()["notes"]] == [
            "one device, three accounts"]

        # bad input names the field; an unknown case is 404
        r = c.post(f"/v1/cases/{case_id}/disposition", json={"disposition": "guilty"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "disposition"]
        r = c.post(f"/v1/cases/{case_id}/notes", json={"text": ""})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "text"]
        r = c.post(f"/v1/cases/{case_id}/assign", json={"assignee": "a b"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "assignee"]
        assert c.get(f"/v1/cases/ring:{uid('nope')}:1").status_code == 404
        assert c.get("/v1/cases/not-a-case").status_code == 422

        r = c.post(f"/v1/cases/{case_id}/disposition", json={"disposition": "confirmed_fraud"})
        assert r.status_code == 200, r.text
        closed = r.json()
        assert closed["status"] == "closed" and closed["disposition"] == "confirmed_fraud"
        again = c.post(f"/v1/cases/{case_id}/disposition",
                       json={"disposition": "confirmed_fraud"})
        assert again.status_code == 200 and again.json()["disposed_at"] == closed["disposed_at"]
        other = c.post(f"/v1/cases/{case_id}/disposition", json={"disposition": "cleared"})
        assert other.status_code == 409
        assert c.post(f"/v1/cases/{case_id}/assign",
                      json={"assignee": "bob"}).status_code == 409
    live.drain()

    # the labels reached the store, once each (the second disposition was a duplicate)
    users = graph_store.get_nodes("User", ring[:3])
    assert {u: n.properties.get("fraud_label") for u, n in users.items()} == {
        u: "fraud" for u in ring[:3]}
    assert all(n.properties["fraud_label_source"].startswith("investigator:")
               for n in users.values())
    assert graph_store.get_node("User", ring[3]).properties.get("fraud_label") is None
    # the next ring member's verdict names them, and opens a new case of the ring
    # NOTE: a label counts for applications made after the second it became known.
    nxt = _apply(world, ring[3], 0, device=device, amount=2500.0,
                 applied_at=(datetime.now(UTC) + timedelta(seconds=2)).isoformat())
    shared = [r for r in nxt["reasons"] if r["code"] == "SHARED_ENTITY_FRAUD"]
    assert shared, [(r["code"], r["message_en"]) for r in nxt["reasons"]]
    assert max(int(r["message_en"].rsplit(", ", 1)[1].split()[0]) for r in shared) >= 3
    assert nxt["decision"] in ("review", "decline")


def test_a_disposed_case_is_not_joined_again(graph_store: GraphStore, world: World,
                                            live: LiveServer, uid: Callable[[str], str]) -> None:
    investigator = live.new_key("investigator", name="carol")
    device = uid("D-solo")
    _watch_device(live, investigator, device)
    user = world.user("solo", days_old=3, home=HOME)
    solo = {"phone": "+86 138 1111 2222", "address": f"单路{uid('a')}号"}
    first = _score(live, application(uid("a1"), user, amount=800.0, device=device, place=HOME,
                                     product="cash_loan", merchant=None, **solo))
    assert first["decision"] == "review"
    live.drain()
    with live.client(investigator) as c:
        r = c.post(f"/v1/cases/user:{user}:1/disposition", json={"disposition": "cleared"})
        assert r.status_code == 200, r.text
        assert [v["application_id"] for v in r.json()["verdicts"]] == [uid("a1")]
    live.drain()
    assert graph_store.get_node("User", user).properties["fraud_label"] == "cleared"
    assert graph_store.get_node("Application", uid("a1")).properties["fraud_label"] == "cleared"
    second = _score(live, application(uid("a2"), user, amount=900.0, device=device, place=HOME,
                                      product="cash_loan", merchant=None, **solo))
    assert second["decision"] == "review"
    live.drain()
    with live.client(investigator) as c:
        cases = {q["case_id"]: q for q in c.get("/v1/cases", params={"status": "open"}).json()[
            "cases"] if q["user_id"] == user}
        assert list(cases) == [f"user:{user}:2"] and cases[f"user:{user}:2"]["items"] == 1
        done = c.get("/v1/cases", params={"status": "closed"}).json()["cases"]
        assert [q["disposition"] for q in done if q["user_id"] == user] == ["cleared"]


def test_watchlist_and_read_audit(graph_store: GraphStore, world: World, live: LiveServer,
                                  uid: Callable[[str], str]) -> None:
    investigator = live.new_key("investigator", name="bob")
    user = world.user("someone", days_old=400, home=HOME)
    graph_store.upsert_nodes("User", [{"id": user, "id_hash": "nid_secret_hash"}])
    device = uid("D-plain")
    world.habits(user, device=device, place=HOME, logins=3, orders=[100.0])
    with live.client(investigator) as c:
        # what the graph shows an investigator (the keyed hash) is what the watchlist takes
        hood = c.get(f"/v1/users/{user}/neighbourhood", params={"hops": 1}).json()
        seed = hood["seed"]
        assert "id_hash" not in seed["properties"] and "home_lat" not in seed["properties"]
        shown = next(n for n in hood["nodes"] if n["label"] == "Device")
        r = c.post("/v1/watchlist", json={"entity_type": "Device", "entity_id": shown["id"],
                                          "reason": "seen in a ring"})
        assert r.status_code == 201, r.text
        assert r.json()["masked"] == shown["properties"]["masked"]
        assert [e["entity_id"] for e in c.get("/v1/watchlist").json()["entries"]] == [
            shown["id"]]
        for body, field in (({"entity_type": "Device", "reason": "x"}, "entity_id"),
                            ({"entity_type": "User", "entity_id": user, "reason": "x"},
                             "entity_type"),
                            ({"entity_type": "Device", "entity_id": "dv_nope",
                              "reason": "x"}, "entity_id"),
                            ({"entity_type": "Phone", "value": "no digits", "reason": "x"},
                             "value"),
                            ({"entity_type": "Merchant", "value": "m 1", "reason": "x"},
                             "value")):
            r = c.post("/v1/watchlist", json=body)
            assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == field, r.text
    with live.client() as admin:
        full = admin.get(f"/v1/users/{user}/neighbourhood", params={"hops": 1}).json()
        assert full["seed"]["properties"]["id_hash"] == "nid_secret_hash"

    v = _score(live, application(uid("app"), user, amount=200.0, device=device, place=HOME))
    assert v["decision"] in ("review", "decline")
    assert [r["evidence"]["entity_id"] for r in v["reasons"]
            if r["code"] == "WATCHLISTED_DEVICE"] == [shown["id"]]
    with live.client(investigator) as c:
        assert c.delete(f"/v1/watchlist/Device/{shown['id']}").status_code == 204
        assert c.delete(f"/v1/watchlist/Device/{shown['id']}").status_code == 404
        assert c.get("/v1/watchlist").json()["entries"] == []
        assert c.get("/v1/read-audit").status_code == 403
    v = _score(live, application(uid("app2"), user, amount=200.0, device=device, place=HOME))
    assert "WATCHLISTED_DEVICE" not in [r["code"] for r in v["reasons"]]

    live.drain()
    key_id = investigator.split("_")[1]
    with live.client() as admin:
        reads = admin.get("/v1/read-audit", params={"key_id": key_id}).json()["reads"]
    assert [(r["route"], r["entity_id"]) for r in reads][::-1][:1] == [
        ("/v1/users/{user_id}/neighbourhood", user)]
    assert {r["route"] for r in reads} >= {"/v1/users/{user_id}/neighbourhood", "/v1/watchlist"}
    assert all(r["key_id"] == key_id and r["role"] == "investigator" for r in reads)
    assert iso(NOW)  # the world's clock is the one the events used


def test_a_review_decided_while_the_store_is_down_opens_its_case_after_replay(
        settings: Settings, graph_store: GraphStore, uid: Callable[[str], str]) -> None:
    flaky = FlakyStore(graph_store)
    graph = load_live_graph(settings, flaky)
    live = LiveServer(create_app(settings, flaky, load_scorer(settings, graph, flaky),
                                 live_graph=graph)).start()
    try:
        device = uid("D-outage")
        _watch_device(live, ADMIN_KEY, device)
        user = uid("u-outage")
        body = application(uid("app-outage"), user, amount=300.0, device=device, place=HOME,
                           product="cash_loan", merchant=None)
        flaky.down = True
        with live.client() as c:
            v = c.post("/v1/score", json=body).json()
            assert v["degraded"] is True and v["decision"] == "review", v
            assert "WATCHLISTED_DEVICE" in [r["code"] for r in v["reasons"]]
            assert c.get("/v1/cases").status_code == 503
            flaky.down = False
            wait_until(lambda: c.get("/readyz").json()["spool_depth"] == 0, 60)
            cases = [q for q in c.get("/v1/cases").json()["cases"] if q["user_id"] == user]
        assert [(q["case_id"], q["items"]) for q in cases] == [(f"user:{user}:1", 1)]
    finally:
        live.stop()


def test_a_watchlisted_device_is_still_named_after_a_key_rotation(
        graph_store: GraphStore, tmp_path: Path, uid: Callable[[str], str]) -> None:
    old, new = SECRET.encode(), b"cases-rotation-new-key-0123456789abcd"
    settings = make_settings(tmp_path / "data", graph_store.backend)
    device, user = uid("SN-watched"), uid("u-rotated")
    server = LiveServer(build_app(settings, graph_store)).start()
    try:
        _watch_device(server, ADMIN_KEY, device)
        server.drain()
    finally:
        server.stop()
    assert rotate(graph_store, old, new, spool_dir=settings.spool_dir,
                  data_dir=settings.DATA_DIR) is not None
    settings = make_settings(tmp_path / "data", graph_store.backend,
                             PSEUDONYM_SECRET=new.decode())
    server = LiveServer(build_app(settings, graph_store)).start()
    try:
        v = _score(server, application(uid("app"), user, amount=300.0, device=device,
                                       place=HOME, product="cash_loan", merchant=None))
        with server.client() as c:
            entries = c.get("/v1/watchlist").json()["entries"]
    finally:
        server.stop()
    hashed = Pseudonymiser(new, [old]).hash("device", device)
    assert [e["entity_id"] for e in entries] == [hashed]
    assert [r["evidence"]["entity_id"] for r in v["reasons"]
            if r["code"] == "WATCHLISTED_DEVICE"] == [hashed]


def test_sync_places_reviews_sets_aside_other_verdicts_and_waits_for_missing_ones(
        graph_store: GraphStore, uid: Callable[[str], str]) -> None:
    from serving.cases import sync_cases

    items = [{"id": uid(f"a{i}"), "user_id": uid("u"), "product": "bnpl", "amount": 10.0 * i,
              "risk": 0.1 * i, "decided_at": 1_700_000_000} for i in range(1, 4)]
    graph_store.upsert_nodes("CaseItem", items)
    # the first is a stored review, the second's stored verdict is an approval (the same
    # request answered again with another replica's verdict), the third's is not stored yet
    graph_store.upsert_nodes("Verdict", [
        {"id": uid("a1"), "decision": "review", "verdict_json": '{"reasons": [{"code": "X"}]}'},
        {"id": uid("a2"), "decision": "approve", "verdict_json": "{}"}])
    assert sync_cases(graph_store, 1_700_000_100) == (3, 2)
    placed = graph_store.get_nodes("CaseItem", [i["id"] for i in items])
    assert {k: n.properties.get("case_id") for k, n in placed.items()} == {
        uid("a1"): f"user:{uid('u')}:1", uid("a2"): "-", uid("a3"): None}
    case = graph_store.get_node("Case", f"user:{uid('u')}:1")
    assert case is not None and case.properties["items"] == 1
    assert case.properties["reasons"] == "X" and case.properties["status"] == "open"
    assert sync_cases(graph_store, 1_700_000_200) == (1, 0)
