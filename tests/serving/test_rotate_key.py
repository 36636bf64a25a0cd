"""`riskgraph rotate-key` on both real stores: after a rotation the API meets the same nodes
(links kept) and answers stored verdicts; the stored records are re-keyed; a run killed midway
and run again ends as one clean run; serving with the retired key is refused in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from serving_world import (
    NOW,
    ROOT,
    SECRET,
    SHANGHAI,
    FlakyStore,
    LiveServer,
    World,
    application,
    iso,
    make_settings,
)

from graph import GraphStore, Pseudonymiser
from graph.key_rotation import HASHED_LABELS, KeyChainError, read_chain, rotate_key
from graph.privacy import rekey_digest, rekey_id
from serving.commands.serve import build_app
from serving.graph_writes import canonical_json, sha256_hex
from serving.key_rotation import AUDIT_FILE, rewrite_record, rotate
from serving.settings import ConfigurationError
from serving.spool import claim_spool
from tests.utils.graphs import store_rows
from tests.utils.neo4j import NEO4J_DATABASE, neo4j_auth, neo4j_uri

OLD = SECRET.encode()
NEW = b"serving-rotation-new-key-0123456789ab"
PHONE, ADDRESS = "13800138000", "上海市浦东新区世纪大道100号"


def test_after_rotation_the_api_meets_the_same_nodes_and_answers_stored_verdicts(
        graph_store: GraphStore, tmp_path: Path, uid: Callable[[str], str]) -> None:
    settings = make_settings(tmp_path / "data", graph_store.backend)
    server = LiveServer(build_app(settings, graph_store)).start()
    world = World(graph_store, server, uid)
    a = world.user("a", days_old=400, home=SHANGHAI)
    login = {"type": "login", "event_id": uid("login-a"), "user_id": a, "ts": iso(NOW),
             "device_id": "SN-shared-1", "ip": "10.7.0.1", "lat": SHANGHAI[0],
             "lon": SHANGHAI[1]}
    world.events([login])
    first = application(uid("app-a"), a, amount=500.0, device="SN-shared-1", place=SHANGHAI,
                        phone=PHONE, address=ADDRESS)
    with server.client() as c:
        r = c.post("/v1/score", json=first)
        assert r.status_code == 200, r.text
        decided = r.json()
    server.drain()
    server.stop()
    before = {label: set(graph_store.node_ids(label)) for label in HASHED_LABELS}
    assert all(before.values())

    report = rotate(graph_store, OLD, NEW, spool_dir=settings.spool_dir,
                    data_dir=settings.DATA_DIR)
    assert report is not None and report.generation == 1
    after = {label: set(graph_store.node_ids(label)) for label in HASHED_LABELS}
    assert after == {label: {rekey_id(NEW, i) for i in ids} for label, ids in before.items()}
    (line,) = (settings.DATA_DIR / AUDIT_FILE).read_text().splitlines()
    assert json.loads(line)["action"] == "rotate-key" and OLD.hex() not in line
    with pytest.raises(KeyChainError, match="generation 0, retired by a rotation"):
        build_app(settings, graph_store)

    settings = make_settings(tmp_path / "data", graph_store.backend,
                             PSEUDONYM_SECRET=NEW.decode())
    chained = Pseudonymiser(NEW, [OLD])
    # a replica starting while the store is down hashes with the chain this host last read
    down = FlakyStore(graph_store)
    down.down = True
    degraded = LiveServer(build_app(settings, down)).start()
    try:
        assert degraded.app.state.runtime.scoring.pseudonymiser.hash("ip", "10.9.0.1") == \
            chained.hash("ip", "10.9.0.1")
    finally:
        degraded.stop()
    with pytest.raises(ConfigurationError, match="not the newest key of the chain this host"):
        build_app(make_settings(tmp_path / "data", graph_store.backend), down)
    server = LiveServer(build_app(settings, graph_store)).start()
    world = World(graph_store, server, uid)
    try:
        with server.client() as c:
            again = c.post("/v1/score", json=first)
            assert again.status_code == 200, again.text
            assert again.headers.get("Idempotent-Replayed") == "true"
            assert {k: again.json()[k] for k in ("application_id", "decision", "credit")} == {
                k: decided[k] for k in ("application_id", "decision", "credit")}
            other = c.post("/v1/score", json={**first, "amount": 600.0})
            assert other.status_code == 409, other.text
            resent = c.post("/v1/events", json={"events": [login]})
            assert resent.status_code == 202 and resent.json()["conflicts"] == [login["event_id"]]
        b = world.user("b", days_old=30, home=SHANGHAI)
        with server.client() as c:
            r = c.post("/v1/score", json=application(
                uid("app-b"), b, amount=300.0, device="SN-shared-1", place=SHANGHAI,
                phone=PHONE, address=ADDRESS))
            assert r.status_code == 200, r.text
        server.drain()
    finally:
        server.stop()
    # no new device, phone, address or IP: b's application met a's nodes
    assert {label: set(graph_store.node_ids(label)) for label in HASHED_LABELS} == after
    shared = {(s.via_label, s.user_id) for s in graph_store.shared_accounts(b)}
    assert shared == {("Device", a), ("Phone", a), ("Address", a)}
    applied_from = {e["src"]: e["dst"] for e in graph_store.export_edges("APPLIED_FROM").to_pylist()}
    assert applied_from[uid("app-b")] == applied_from[uid("app-a")]
    assert len(graph_store.export_edges("LOGGED_IN_FROM")) == 1


# -- the stored records, and a run killed midway -------------------------------------------------
def _records(store: GraphStore) -> None:
    """Twelve decided applications with their devices, IPs and phones, one of them erased, a
    conflict, and a login and an order event record."""
    p = Pseudonymiser(OLD)
    for i in range(12):
        device, ip, phone = (p.hash("device", f"SN-{i}"), p.hash("ip", f"10.0.0.{i}"),
                             p.hash("phone", f"1380013800{i % 10}"))
        store.upsert_nodes("Device", [{"id": device, "masked": f"****{i}"}])
        store.upsert_nodes("IP", [{"id": ip, "masked": "10.0.0.0/24"}])
        store.upsert_nodes("Phone", [{"id": phone, "masked": "138****800"}])
        store.upsert_edges("USES", [{"src": f"u{i}", "dst": device}])
        request = canonical_json({"application_id": f"app-{i}", "device_id": device, "ip": ip,
                                  "phone_id": phone, "address_id": None, "amount": 100.0 + i})
        verdict = {"application_id": f"app-{i}", "decision": "review", "reasons": [{
            "code": "SHARED_ENTITY", "message_en": f"phone {phone[:12]} shared",
            "message_zh": f"手机{phone[:12]}共用", "evidence": {
                "entity_type": "Phone", "entity_id": phone, "display": phone[:12],
                "metric": "shared_accounts", "value": 2.0}}]}
        erased = i == 11
        store.upsert_nodes("Verdict", [{
            "id": f"app-{i}", "decision": "review",
            "request_hash": "e" * 64 if erased else sha256_hex(request),
            "request_json": "{}" if erased else request,
            "verdict_json": json.dumps(verdict), "features_json": "{\"x\":1.0}"}])
    store.upsert_nodes("VerdictConflict", [{
        "id": "app-3/r1", "application_id": "app-3", "kind": "request",
        "request_hash": "c" * 64, "stored_request_hash": sha256_hex(canonical_json({
            "application_id": "app-3", "device_id": p.hash("device", "SN-3"),
            "ip": p.hash("ip", "10.0.0.3"), "phone_id": p.hash("phone", "13800138003"),
            "address_id": None, "amount": 103.0})),
        "verdict_json": "{}", "request_json": "{}"}])
    store.upsert_nodes("EventRecord", [{"id": "ev-login", "type": "login", "body_hash": "a" * 64},
                                       {"id": "ev-order", "type": "order", "body_hash": "b" * 64}])


def test_records_are_rekeyed_so_that_what_can_be_hashed_again_matches(
        graph_store: GraphStore) -> None:
    _records(graph_store)
    rotate_key(graph_store, OLD, NEW, rewrite_record, chunk_rows=5)
    chained = Pseudonymiser(NEW, [OLD])
    verdict = graph_store.get_node("Verdict", "app-3").properties  # type: ignore[union-attr]
    request = canonical_json({"application_id": "app-3",
                              "device_id": chained.hash("device", "SN-3"),
                              "ip": chained.hash("ip", "10.0.0.3"),
                              "phone_id": chained.hash("phone", "13800138003"),
                              "address_id": None, "amount": 103.0})
    assert (verdict["request_json"], verdict["request_hash"]) == (request, sha256_hex(request))
    phone = chained.hash("phone", "13800138003")
    (reason,) = json.loads(verdict["verdict_json"])["reasons"]
    assert reason["evidence"]["entity_id"] == phone
    assert reason["evidence"]["display"] == phone[:12] and phone[:12] in reason["message_en"]
    erased = graph_store.get_node("Verdict", "app-11").properties  # type: ignore[union-attr]
    assert erased["request_hash"] == rekey_digest(NEW, "e" * 64)
    conflict = graph_store.get_node("VerdictConflict", "app-3/r1").properties  # type: ignore[union-attr]
    assert conflict["stored_request_hash"] == verdict["request_hash"]
    assert conflict["request_hash"] == rekey_digest(NEW, "c" * 64)
    events = {n.id: n.properties["body_hash"] for n in graph_store.get_nodes(
        "EventRecord", ["ev-login", "ev-order"]).values()}
    assert events == {"ev-login": rekey_digest(NEW, "a" * 64), "ev-order": "b" * 64}


_KILLED = """
import sys, time
from graph.key_rotation import rotate_key
from serving.key_rotation import rewrite_record
backend, where, old, new = sys.argv[1:5]
if backend == "ladybug":
    from graph.ladybug_store import LadybugStore
    store = LadybugStore(where)
else:
    from graph.neo4j_store import Neo4jStore
    store = Neo4jStore.from_uri(where, auth=(sys.argv[5], sys.argv[6]), database=sys.argv[7])

def slow(label, row, rekeying):
    print(label, flush=True)
    time.sleep(0.05)
    return rewrite_record(label, row, rekeying)

rotate_key(store, old.encode(), new.encode(), slow, chunk_rows=2, now=1000)
print("finished", flush=True)
"""


def test_a_rotation_killed_midway_and_run_again_ends_as_one_clean_run(
        graph_store: GraphStore, tmp_path: Path) -> None:
    _records(graph_store)
    rotate_key(graph_store, OLD, NEW, rewrite_record, chunk_rows=2, now=1000)
    clean = store_rows(graph_store)
    graph_store = _emptied(graph_store)
    _records(graph_store)
    if graph_store.backend == "ladybug":
        where = str(graph_store.path)  # type: ignore[attr-defined]
        graph_store.close()
        extra: list[str] = []
    else:
        where, extra = neo4j_uri(), [*neo4j_auth(), NEO4J_DATABASE]
    script = tmp_path / "rotate.py"
    script.write_text(_KILLED)
    with subprocess.Popen(
            [sys.executable, str(script), graph_store.backend, where, OLD.decode(),
             NEW.decode(), *extra], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        verdicts = 0
        for line in proc.stdout:
            verdicts += line.strip() == "Verdict"
            assert line.strip() != "finished", "the rotation ended before it was killed"
            if verdicts == 5:
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    if graph_store.backend == "ladybug":
        graph_store._open()  # type: ignore[attr-defined]
    assert read_chain(graph_store)[-1].state == "rotating"
    report = rotate_key(graph_store, OLD, NEW, rewrite_record, chunk_rows=2, now=1000)
    assert report is not None and report.resumed
    assert store_rows(graph_store) == clean


def _emptied(store: GraphStore) -> GraphStore:
    clear = getattr(store, "clear", None)
    if clear is not None:
        clear()
        return store
    from graph.ladybug_store import LadybugStore, _remove_database

    assert isinstance(store, LadybugStore)
    store.close()
    _remove_database(store.path)
    store._open()
    store.apply_schema()
    return store


# -- the command line ---------------------------------------------------------------------------
def _cli(tmp_path: Path, *args: str, secret: str = SECRET) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGRAPH_")}
    env.update(RISKGRAPH_DATA_DIR=str(tmp_path), RISKGRAPH_PSEUDONYM_SECRET=secret,
               PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "serving.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return [ln for ln in proc.stderr.splitlines() if ln.strip()][-1]


def test_rotate_key_command_refuses_a_spool_with_writes_then_rotates_and_serve_refuses_the_old_key(
        tmp_path: Path) -> None:
    from graph.ladybug_store import LadybugStore

    device = Pseudonymiser(OLD).hash("device", "SN-1")
    with LadybugStore(tmp_path / "graph.lbug") as store:
        store.apply_schema()
        store.upsert_nodes("Device", [{"id": device, "masked": "****SN-1"}])
    new_file = tmp_path / "new.key"
    new_file.write_text(NEW.decode() + "\n")
    spool = claim_spool(tmp_path / "spool")
    spool.append("events", {"ops": []})
    spool.close()
    refused = _cli(tmp_path, "rotate-key", "--new-secret-file", str(new_file))
    assert refused.returncode == 2
    assert _last_line(refused).startswith("riskgraph rotate-key: ") and \
        "holds 1 writes" in _last_line(refused)
    spool = claim_spool(tmp_path / "spool")
    (entry,) = spool.peek()
    spool.ack(entry.seq)
    spool.close()

    done = _cli(tmp_path, "rotate-key", "--new-secret-file", str(new_file))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["generation"] == 1
    again = _cli(tmp_path, "rotate-key", "--new-secret-file", str(new_file))
    assert again.returncode == 0 and "nothing to do" in again.stdout
    for command in (("serve", "--port", "1"), ("load", str(tmp_path / "world"))):
        refused = _cli(tmp_path, *command)
        assert refused.returncode == 2
        assert _last_line(refused).startswith(
            f"riskgraph {command[0]}: the configured pseudonym secret is not the store's "
            "current key (generation 1); it is generation 0, retired by a rotation")
    with LadybugStore(tmp_path / "graph.lbug", read_only=True) as store:
        assert store.node_ids("Device") == [rekey_id(NEW, device)]
