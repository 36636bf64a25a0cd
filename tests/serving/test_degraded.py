"""Degraded mode and the spool: a store that is down or slow never breaks scoring, never lets
a degraded verdict approve above the cap, and loses no accepted write."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from serving_world import (
    NOW,
    SECRET,
    SHANGHAI,
    FlakyStore,
    LiveServer,
    application,
    iso,
    make_settings,
    wait_until,
)

from graph import GraphStore, Pseudonymiser
from serving.api import create_app
from serving.scorers import load_live_graph, load_scorer
from serving.settings import Settings
from serving.stores import build_store

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def flaky(graph_store: GraphStore) -> FlakyStore:
    return FlakyStore(graph_store)


def _serve(settings: Settings, store: GraphStore) -> LiveServer:
    graph = load_live_graph(settings, store)
    return LiveServer(create_app(settings, store, load_scorer(settings, graph, store),
                                 live_graph=graph)).start()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in metrics")


def _logins(user: str, uid: Callable[[str], str], n: int, tag: str) -> list[dict[str, Any]]:
    return [{"type": "login", "event_id": uid(f"{tag}-{i}"), "user_id": user,
             "ts": iso(NOW - timedelta(minutes=n - i)), "device_id": "deg-phone",
             "ip": "10.5.0.1", "lat": 31.2, "lon": 121.4} for i in range(n)]


def test_store_down_degrades_spools_and_replays_exactly_once(
        settings: Settings, flaky: FlakyStore, graph_store: GraphStore,
        uid: Callable[[str], str]) -> None:
    live = _serve(settings, flaky)
    try:
        user = uid("u-deg")
        small = application(uid("app-small"), user, amount=500.0, device="deg-phone",
                            place=SHANGHAI)
        large = application(uid("app-large"), user, amount=5000.0, device="deg-phone",
                            place=SHANGHAI)
        with live.client() as c:
            before = c.post("/v1/events", json={"events": _logins(user, uid, 3, "pre")})
            assert before.json() == {"accepted": 3, "duplicates": [], "conflicts": [],
                                     "checked": True, "spooled": False}
            live.drain()
            flaky.down = True
            t0 = time.perf_counter()
            v_small = c.post("/v1/score", json=small)
            elapsed = time.perf_counter() - t0
            v_large = c.post("/v1/score", json=large).json()
            again = c.post("/v1/score", json=small)
            conflict = c.post("/v1/score", json={**small, "amount": 501.0})
            events = c.post("/v1/events", json={"events": _logins(user, uid, 5, "down")})
            audit = c.get(f"/v1/verdicts/{small['application_id']}")
            ready = c.get("/readyz")
            metrics = c.get("/metrics").text
        assert v_small.status_code == 200 and elapsed < 2.0
        vs = v_small.json()
        assert vs["degraded"] is True
        # the verdict still reads the live graph as this replica knows it
        assert vs["graph_version"].startswith("live:")
        assert "DEGRADED_MODE" in [r["code"] for r in vs["reasons"]]
        assert vs["decision"] == "approve" and vs["credit"]["recommended_limit"] <= 2000
        assert v_large["degraded"] is True and v_large["decision"] != "approve"
        assert {"DEGRADED_AMOUNT_CAP", "AMOUNT_ABOVE_LIMIT"} & {
            r["code"] for r in v_large["reasons"]}
        assert again.json() == vs and again.headers["idempotent-replayed"] == "true"
        assert conflict.status_code == 409
        assert events.status_code == 202 and events.json() == {
            "accepted": 5, "duplicates": [], "conflicts": [], "checked": False, "spooled": True}
        assert audit.status_code == 200 and audit.json()["stored_in"] == "spool"
        assert ready.status_code == 503 and ready.json()["store"] == "down"
        assert _metric(metrics, "riskgraph_degraded_verdicts_total") == 2
        assert _metric(metrics, "riskgraph_spool_depth") == 3
        assert _metric(metrics, "riskgraph_store_up") == 0

        flaky.down = False
        with live.client() as c:
            wait_until(lambda: c.get("/readyz").json()["spool_depth"] == 0, 60)
            replayed = c.post("/v1/score", json=small)
            after = c.get(f"/v1/verdicts/{small['application_id']}").json()
        assert replayed.json() == vs and after["stored_in"] == "graph"
    finally:
        live.stop()
    sub = graph_store.neighbourhood("User", user, hops=1, fanout=100)
    seen = Counter(str(e.properties.get("event_id") or e.dst) for e in sub.edges
                   if e.type in ("LOGGED_IN_FROM", "APPLIED"))
    expected = [uid(f"pre-{i}") for i in range(3)] + [uid(f"down-{i}") for i in range(5)]
    expected += [small["application_id"], large["application_id"]]
    assert {k: seen[k] for k in expected} == dict.fromkeys(expected, 1)
    for app in (small, large):
        node = graph_store.get_node("Verdict", app["application_id"])
        assert node is not None and node.properties["degraded"] is True


def test_conflict_found_only_when_a_spooled_write_is_stored_is_refused_and_counted(
        tmp_path: Path, graph_store: GraphStore, uid: Callable[[str], str]) -> None:
    """Replica A stores an event and a label; replica B, cut off from the store, accepts the
    same ids with other bodies (it cannot check them: ``checked`` false). When B's spool
    reaches the store, those writes are refused (the first bodies stand), counted and logged;
    B's other writes are stored once."""
    backend = graph_store.backend
    a = _serve(make_settings(tmp_path / "a", backend), graph_store)
    cut_off = FlakyStore(graph_store)
    b = _serve(make_settings(tmp_path / "b", backend), cut_off)
    user = uid("u-race")
    login, fresh = _logins(user, uid, 2, "race")
    label = {"event_id": uid("race-label"), "entity_type": "User", "entity_id": user,
             "kind": "fraud", "at": iso(NOW - timedelta(hours=1)), "source": "investigator:a"}
    try:
        with a.client() as c:
            assert c.post("/v1/events", json={"events": [login]}).json()["accepted"] == 1
            assert c.post("/v1/labels", json={"labels": [label]}).json()["accepted"] == 1
            a.drain()
        cut_off.down = True
        with b.client() as c:
            events = c.post("/v1/events", json={"events": [{**login, "ip": "10.5.0.66"},
                                                           fresh]}).json()
            labels = c.post("/v1/labels", json={"labels": [{**label, "kind": "cleared"}]})
            cut_off.down = False
            wait_until(lambda: c.get("/readyz").json()["spool_depth"] == 0, 60)
            metrics = c.get("/metrics").text
    finally:
        b.stop()
        a.stop()
    assert events == {"accepted": 2, "duplicates": [], "conflicts": [], "checked": False,
                      "spooled": True}
    assert labels.json()["spooled"] is True
    logins = [e for e in graph_store.neighbourhood("User", user, hops=1, fanout=100).edges
              if e.type == "LOGGED_IN_FROM"]
    ip = Pseudonymiser(SECRET.encode()).hash("ip", "10.5.0.1")
    assert sorted((str(e.properties["event_id"]), e.dst) for e in logins) == sorted(
        [(login["event_id"], ip), (fresh["event_id"], ip)])
    node = graph_store.get_node("User", user)
    assert node is not None and node.properties["fraud_label"] == "fraud"
    assert 'riskgraph_event_conflicts_total{found="written",kind="event"} 1.0' in metrics
    assert 'riskgraph_event_conflicts_total{found="written",kind="label"} 1.0' in metrics


def test_a_verdict_another_replica_stored_during_an_outage_stands_and_ours_is_surfaced(
        tmp_path: Path, settings: Settings, flaky: FlakyStore, graph_store: GraphStore,
        uid: Callable[[str], str]) -> None:
    """Replica ``here`` cannot read the store; replica ``there`` (another host: its own spool
    directory) can, and decides the same ids first."""
    here = _serve(settings, flaky)
    there = _serve(make_settings(tmp_path / "there", graph_store.backend), graph_store)
    user = uid("u-else")
    same, other = (application(uid(name), user, amount=amount, device="else-phone",
                               place=SHANGHAI)
                   for name, amount in (("app-same", 400.0), ("app-other", 410.0)))
    try:
        flaky.down = True
        with here.client() as ch, there.client() as ct:
            theirs = ct.post("/v1/score", json=same).json()
            theirs_other = ct.post("/v1/score", json={**other, "amount": 411.0}).json()
            there.drain()
            mine = ch.post("/v1/score", json=same)
            mine_other = ch.post("/v1/score", json=other)
            assert mine.status_code == mine_other.status_code == 200
            assert mine.json() != theirs
        flaky.down = False
        with here.client() as c:
            wait_until(lambda: c.get("/readyz").json()["spool_depth"] == 0, 60)
            audit_same = c.get(f"/v1/verdicts/{same['application_id']}").json()
            audit_other = c.get(f"/v1/verdicts/{other['application_id']}").json()
            listed = c.get("/v1/verdict-conflicts").json()
            metrics = c.get("/metrics").text
            again = c.post("/v1/score", json=same)
            refused = c.post("/v1/score", json=other)
    finally:
        here.stop()
        there.stop()
    assert audit_same["verdict"] == theirs
    assert [(x["kind"], x["verdict"]) for x in audit_same["conflicts"]] == [
        ("verdict", mine.json())]
    assert audit_other["verdict"] == theirs_other
    assert [(x["kind"], x["verdict"], x["request_hash"] != x["stored_request_hash"])
            for x in audit_other["conflicts"]] == [("request", mine_other.json(), True)]
    assert sorted((x["application_id"], x["kind"]) for x in listed) == sorted(
        [(same["application_id"], "verdict"), (other["application_id"], "request")])
    assert _metric(metrics, 'riskgraph_verdict_conflicts_total{kind="verdict"}') == 1
    assert _metric(metrics, 'riskgraph_verdict_conflicts_total{kind="request"}') == 1
    # from now on the stored verdicts are answered here too
    assert again.json() == theirs and again.headers["idempotent-replayed"] == "true"
    assert refused.status_code == 409
    app = graph_store.get_node("Application", same["application_id"])
    assert app is not None and app.properties["decision"] == theirs["decision"]


def test_a_slow_store_does_not_slow_a_verdict(
        tmp_path: Path, uid: Callable[[str], str]) -> None:
    settings = make_settings(tmp_path / "data", STORE_TIMEOUT_S=0.1,
                             STORE_WRITE_TIMEOUT_S=0.1, DEGRADED_MAX_APPROVE_AMOUNT=300.0)
    store = build_store(settings)
    store.apply_schema()
    flaky = FlakyStore(store)
    live = _serve(settings, flaky)
    try:
        flaky.delay_s = 0.5
        body = application(uid("app-slow"), uid("u-slow"), amount=500.0, device="p",
                           place=SHANGHAI)
        with live.client() as c:
            t0 = time.perf_counter()
            r = c.post("/v1/score", json=body)
            elapsed = time.perf_counter() - t0
        v = r.json()
        # the live graph decides; the store's look-up and claim wait at most their timeouts
        assert r.status_code == 200 and v["degraded"] is False
        assert v["graph_version"].startswith("live:")
        assert elapsed < 0.45  # read timeout + write timeout, not the store's 0.5 s per call
        flaky.delay_s = 0.0
        with live.client() as c:
            wait_until(lambda: c.get("/readyz").json()["spool_depth"] == 0, 60)
        assert store.get_node("Verdict", body["application_id"]) is not None
    finally:
        live.stop()
        store.close()


def test_spool_left_by_a_dead_process_is_replayed_at_start(
        tmp_path: Path, uid: Callable[[str], str]) -> None:
    settings = make_settings(tmp_path / "data")
    store = build_store(settings)
    store.apply_schema()
    flaky = FlakyStore(store)
    flaky.down = True
    from serving.commands.serve import build_app

    live = LiveServer(build_app(settings, flaky)).start()
    user = uid("u-dead")
    try:
        with live.client() as c:
            r = c.post("/v1/events", json={"events": _logins(user, uid, 4, "dead")})
            assert r.json()["spooled"] is True
    finally:
        live.stop()  # the spool file stays on disk, unreplayed
    live = _serve(settings, store)
    try:
        with live.client() as c:
            wait_until(lambda: c.get("/readyz").json()["spool_depth"] == 0, 60)
    finally:
        live.stop()
    sub = store.neighbourhood("User", user, hops=1, fanout=100)
    ids = sorted(str(e.properties["event_id"]) for e in sub.edges if e.type == "LOGGED_IN_FROM")
    assert ids == sorted(uid(f"dead-{i}") for i in range(4))
    store.close()



class _OnlyWriter(FlakyStore):
    """:class:`FlakyStore` over a store only this process writes (as LadybugDB is)."""

    exclusive_writer = True


def test_a_store_that_does_not_give_its_graph_at_start_gets_degraded_verdicts_until_it_does(
        settings: Settings, flaky: FlakyStore, graph_store: GraphStore,
        uid: Callable[[str], str]) -> None:
    """Seen on Neo4j under load: the store answered the ping, then ended the start-up export
    at its transaction timeout, and the service scored every application against an empty
    graph (all 6,000 of a benchmark's verdicts 'review', none flagged). Verdicts are the prior,
    flagged degraded, until the refresh thread has built the graph; then the graph decides."""
    from serving.commands.serve import build_app

    user = uid("u-export")
    graph_store.upsert_nodes("User", [{"id": user, "created_at": int(NOW.timestamp()) - 9_000_000}])
    flaky.failed_exports = 1_000_000
    app = build_app(settings, flaky)
    server = LiveServer(app).start()
    try:
        with server.client() as c:
            first = c.post("/v1/score", json=application(uid("app-export-0"), user, amount=200.0,
                                                          device="exp-phone", place=SHANGHAI))
            assert first.status_code == 200 and first.json()["degraded"] is True
            assert "DEGRADED_MODE" in {r["code"] for r in first.json()["reasons"]}
            flaky.failed_exports = 0
            wait_until(app.state.runtime.scorer.ready, 60, 0.05)
            live = app.state.runtime.live_graph
            node = live.node("User", user) if live is not None else None
            assert node is not None and "created_at" in node.properties  # from the store
            later = c.post("/v1/score", json=application(uid("app-export-1"), user, amount=200.0,
                                                          device="exp-phone", place=SHANGHAI))
            assert later.status_code == 200 and later.json()["degraded"] is False
    finally:
        server.stop()


def test_embedded_store_look_ups_of_new_applications_skip_the_store(
        tmp_path: Path, uid: Callable[[str], str]) -> None:
    """A store only this process writes holds no verdict this process did not claim: a new
    application is decided without reading the store (whose reads stall while LadybugDB
    checkpoints), and one decided by an earlier process is still found there."""
    settings = make_settings(tmp_path / "data", STORE_TIMEOUT_S=5.0)
    store = build_store(settings)
    store.apply_schema()
    first = application(uid("app-old"), uid("u-old"), amount=300.0, device="p", place=SHANGHAI)
    flaky = _OnlyWriter(store)
    live = _serve(settings, flaky)
    try:
        with live.client() as c:
            answered = c.post("/v1/score", json=first).json()
            wait_until(lambda: c.get("/readyz").json()["spool_depth"] == 0, 60)
    finally:
        live.stop()
    assert store.get_node("Verdict", first["application_id"]) is not None

    flaky = _OnlyWriter(store)
    live = _serve(settings, flaky)
    try:
        flaky.calls.clear()
        new = application(uid("app-new"), uid("u-new"), amount=300.0, device="q",
                          place=SHANGHAI)
        with live.client() as c:
            r = c.post("/v1/score", json=new)
            assert r.status_code == 200 and r.json()["degraded"] is False
            assert "get_node" not in flaky.calls
            # decided by the earlier process: read from the store, the same verdict
            again = c.post("/v1/score", json=first)
            assert again.status_code == 200 and again.json() == answered
            assert "get_node" in flaky.calls
            assert c.get(f"/v1/verdicts/{uid('app-unknown')}").status_code == 404
            wait_until(lambda: c.get("/readyz").json()["spool_depth"] == 0, 60)
    finally:
        live.stop()
        store.close()


def test_app_built_with_the_store_down_waits_on_nothing_and_catches_up(
        settings: Settings, flaky: FlakyStore, graph_store: GraphStore,
        uid: Callable[[str], str]) -> None:
    """Issue 18, defect 6: the app factory pings once; with the store down it reads nothing
    (no retries to wait out), serves degraded, and when the store answers applies the schema
    and loads the in-memory graph before verdicts use the store again."""
    from serving.commands.serve import build_app

    user = uid("u-late")
    graph_store.upsert_nodes("User", [{"id": user, "created_at": int(NOW.timestamp()) - 9_000_000}])
    flaky.down = True
    app = build_app(settings, flaky)
    assert flaky.calls == ["ping"]
    server = LiveServer(app).start()
    try:
        with server.client() as c:
            down = c.post("/v1/score", json=application(uid("app-late-0"), user, amount=200.0,
                                                         device="late-phone", place=SHANGHAI))
            assert down.status_code == 200 and down.json()["degraded"] is True
            assert {"export_nodes", "apply_schema"}.isdisjoint(flaky.calls)
            flaky.down = False
            wait_until(lambda: app.state.runtime.guard.up, 30, 0.05)
            first_export = flaky.calls.index("export_nodes")
            assert flaky.calls.index("apply_schema") < first_export
            live = app.state.runtime.live_graph
            node = live.node("User", user) if live is not None else None
            assert node is not None and "created_at" in node.properties  # from the store
            # the model's state is rebuilt once the writes accepted meanwhile are stored
            wait_until(app.state.runtime.scorer.ready, 60, 0.05)
            up = c.post("/v1/score", json=application(uid("app-late-1"), user, amount=200.0,
                                                       device="late-phone", place=SHANGHAI))
            assert up.status_code == 200 and up.json()["degraded"] is False
    finally:
        server.stop()
