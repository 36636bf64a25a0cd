"""One verdict per application id while the real Neo4j is stopped mid-run (docs/API.md,
"Idempotency while the store is down"): `riskgraph serve` processes over HTTP.

- One replica answers every id it answered before (the same verdict, or 409 for another body)
  during the outage and after a restart in it, and the store then holds those very verdicts.
- Replicas sharing a spool directory (one host) answer each other's verdicts.
- Replicas on separate hosts cannot agree while the store is down: at replay the first verdict
  to reach the store stands, each other answer is kept as a `VerdictConflict` record (in the
  audit record and counted), and the losing replica answers the stored verdict from then on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_world import SHANGHAI, ServeProcess, application, neo4j_script, wait_until

from graph import GraphStore

pytestmark = [pytest.mark.neo4j, pytest.mark.slow, pytest.mark.timeout(900)]

ENV = {"RISKGRAPH_STORE_TIMEOUT_S": "0.3", "RISKGRAPH_STORE_WRITE_TIMEOUT_S": "1",
       "RISKGRAPH_STORE_PROBE_INTERVAL_S": "0.5"}
# NOTE: a replica started while the store is down takes ~30 s to start (issue 18, defect 6).
START_S = 180.0


class _Outage:
    """Stops the test's Neo4j server and makes sure it runs again after the test."""

    def __init__(self) -> None:
        self.down = False

    def stop(self) -> None:
        neo4j_script("stop")
        self.down = True

    def start(self) -> None:
        neo4j_script("start")
        self.down = False


@pytest.fixture
def outage(neo4j_store: GraphStore) -> Iterator[_Outage]:
    """The real Neo4j (emptied, tests/conftest.py), to be stopped mid-test."""
    o = _Outage()
    yield o
    if o.down:
        o.start()


def _score(c: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return c.post("/v1/score", json=body)


def _other_body(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "amount": body["amount"] + 0.5}


def _check_answers(c: httpx.Client, bodies: list[dict[str, Any]],
                   answered: dict[str, Any]) -> None:
    """Each body gets the verdict answered before, as a replay; another body gets 409."""
    for body in bodies:
        r = _score(c, body)
        assert r.status_code == 200, r.text
        assert r.json() == answered[body["application_id"]], body["application_id"]
        assert r.headers.get("idempotent-replayed") == "true"
        other = _score(c, _other_body(body))
        assert other.status_code == 409, (body["application_id"], other.text)


def _drained(server: ServeProcess) -> bool:
    with server.client() as c:
        ready = c.get("/readyz").json()
    return bool(ready["spool_depth"] == 0 and ready["store"] == "up")


def _stored(store: GraphStore, app_id: str) -> Any:
    node = store.get_node("Verdict", app_id)
    assert node is not None, app_id
    return json.loads(node.properties["verdict_json"])


def _metric(server: ServeProcess, name: str) -> float:
    with server.client() as c:
        text = c.get("/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


def _errors(*logs: Path) -> list[str]:
    """The service's ERROR lines (the Neo4j driver logs its lost connections as errors)."""
    return [line for log in logs for line in log.read_text().splitlines()
            if '"level": "ERROR"' in line and '"logger": "serving.' in line]


def test_one_replica_keeps_its_answers_through_an_outage_and_a_restart(
        tmp_path: Path, neo4j_store: GraphStore, outage: _Outage,
        uid: Callable[[str], str]) -> None:
    log = tmp_path / "serve.log"
    server = ServeProcess(tmp_path / "data", log, **ENV)
    user = uid("u-idem")
    before = [application(uid(f"app-before-{i}"), user, amount=200.0 + i, device="idem-phone",
                          place=SHANGHAI) for i in range(5)]
    during = [application(uid(f"app-during-{i}"), user, amount=300.0 + i, device="idem-phone",
                          place=SHANGHAI) for i in range(5)]
    answered: dict[str, Any] = {}
    try:
        with server.client() as c:
            for body in before:
                r = _score(c, body)
                assert r.status_code == 200 and not r.json()["degraded"], r.text
                answered[body["application_id"]] = r.json()
        outage.stop()
        with server.client() as c:
            # decided before the outage: the same verdict, or 409
            _check_answers(c, before, answered)
            for body in during:
                r = _score(c, body)
                assert r.status_code == 200, r.text
                answered[body["application_id"]] = r.json()
            _check_answers(c, during, answered)
        server.stop()
        server = ServeProcess(tmp_path / "data", log, start_timeout_s=START_S, **ENV)
        with server.client() as c:  # restarted with the store still down
            _check_answers(c, before + during, answered)
        outage.start()
        wait_until(lambda: _drained(server), 180, 0.5)
        with server.client() as c:
            _check_answers(c, before + during, answered)
            assert c.get("/v1/verdict-conflicts").json() == []
    finally:
        server.stop()
    for app_id, verdict in answered.items():
        assert _stored(neo4j_store, app_id) == verdict
    assert neo4j_store.node_ids("VerdictConflict") == []
    assert _errors(log) == []


def test_replicas_on_one_host_answer_each_others_verdicts(
        tmp_path: Path, neo4j_store: GraphStore, outage: _Outage,
        uid: Callable[[str], str]) -> None:
    """Replicas sharing a data directory (`serve --workers N`, or several on one host)."""
    a = ServeProcess(tmp_path / "data", tmp_path / "a.log", **ENV)
    b = ServeProcess(tmp_path / "data", tmp_path / "b.log", **ENV)
    user = uid("u-host")
    bodies = [application(uid(f"app-host-{i}"), user, amount=250.0 + i, device="host-phone",
                          place=SHANGHAI) for i in range(6)]
    answered: dict[str, Any] = {}
    try:
        outage.stop()
        with a.client() as ca, b.client() as cb:
            for i, body in enumerate(bodies):
                first, second = (ca, cb) if i % 2 else (cb, ca)
                r = _score(first, body)
                assert r.status_code == 200, r.text
                answered[body["application_id"]] = r.json()
                _check_answers(second, [body], answered)
        outage.start()
        wait_until(lambda: _drained(a) and _drained(b), 180, 0.5)
    finally:
        a.stop()
        b.stop()
    for app_id, verdict in answered.items():
        assert _stored(neo4j_store, app_id) == verdict
    assert neo4j_store.node_ids("VerdictConflict") == []
    assert _errors(tmp_path / "a.log", tmp_path / "b.log") == []


def test_replicas_on_two_hosts_keep_the_first_stored_verdict_and_surface_the_other(
        tmp_path: Path, neo4j_store: GraphStore, outage: _Outage,
        uid: Callable[[str], str]) -> None:
    a = ServeProcess(tmp_path / "a", tmp_path / "a.log", **ENV)
    b = ServeProcess(tmp_path / "b", tmp_path / "b.log", **ENV)
    user = uid("u-hosts")
    decided, raced, differs = (
        application(uid(name), user, amount=amount, device="hosts-phone", place=SHANGHAI)
        for name, amount in (("app-decided", 210.0), ("app-raced", 220.0),
                             ("app-differs", 230.0)))
    try:
        with a.client() as ca, b.client() as cb:
            stored_before = _score(ca, decided).json()
            outage.stop()
            # b cannot know that a decided it: a second verdict
            b_decided = _score(cb, decided).json()
            a_raced, b_raced = _score(ca, raced).json(), _score(cb, raced).json()
            a_differs = _score(ca, differs)
            b_differs = _score(cb, _other_body(differs))
            assert a_differs.status_code == b_differs.status_code == 200
            assert b_decided != stored_before
            # each replica keeps to what it answered
            _check_answers(cb, [decided], {decided["application_id"]: b_decided})
        outage.start()
        wait_until(lambda: _drained(a) and _drained(b), 180, 0.5)

        stored = {body["application_id"]: _stored(neo4j_store, body["application_id"])
                  for body in (decided, raced, differs)}
        assert stored[decided["application_id"]] == stored_before
        assert stored[raced["application_id"]] in (a_raced, b_raced)
        assert stored[differs["application_id"]] in (a_differs.json(), b_differs.json())
        lost = {decided["application_id"]: ("verdict", b_decided),
                raced["application_id"]: ("verdict", b_raced if stored[
                    raced["application_id"]] == a_raced else a_raced),
                differs["application_id"]: ("request", b_differs.json() if stored[
                    differs["application_id"]] == a_differs.json() else a_differs.json())}
        # NOTE: whichever replica replayed first won `differs`; its body is the stored request
        # (the test took a's for it, and failed whenever b's replay came first).
        won = differs if stored[differs["application_id"]] == a_differs.json() else (
            _other_body(differs))
        with a.client() as ca, b.client() as cb:
            for app_id, (kind, answer) in lost.items():
                audit = cb.get(f"/v1/verdicts/{app_id}").json()
                assert audit["verdict"] == stored[app_id]
                assert [(x["kind"], x["verdict"]) for x in audit["conflicts"]] == [
                    (kind, answer)], audit["conflicts"]
            listed = ca.get("/v1/verdict-conflicts").json()
            assert sorted(x["application_id"] for x in listed) == sorted(lost)
            # both replicas answer the stored verdicts now
            _check_answers(ca, [decided, raced, won], stored)
            _check_answers(cb, [decided, raced, won], stored)
        assert _metric(a, "riskgraph_verdict_conflicts_total") + _metric(
            b, "riskgraph_verdict_conflicts_total") == 3

        # and keep to them through the next outage (their local records were corrected)
        outage.stop()
        with a.client() as ca, b.client() as cb:
            for c in (ca, cb):
                _check_answers(c, [decided, raced, won], stored)
        outage.start()
        wait_until(lambda: _drained(a) and _drained(b), 180, 0.5)
    finally:
        a.stop()
        b.stop()
    assert _errors(tmp_path / "a.log", tmp_path / "b.log") == []
