"""`DurableWriter` on both real stores: a verdict spooled while the store was down that finds
another verdict of its application id at replay loses, and is kept, not logged away."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serving_world import FlakyStore, wait_until

from graph import GraphStore
from serving.spool import Answer, Spool
from serving.store_guard import StoreGuard
from serving.writer import DurableWriter, Op, VerdictConflict


def _verdict(app_id: str, request_hash: str, decision: str, by: str) -> Op:
    """A verdict claim as :func:`serving.graph_writes.application_ops` makes one."""
    verdict = json.dumps({"application_id": app_id, "decision": decision, "by": by})
    row: dict[str, Any] = {
        "id": app_id, "request_hash": request_hash, "decision": decision,
        "fraud_probability": 0.1, "pd": 0.05, "grade": "B", "credit_limit": 500.0,
        "degraded": by == "here", "model_version": "m", "graph_version": "g",
        "policy_version": "p", "decided_at": 1_700_000_000, "verdict_json": verdict,
        "features_json": "{}", "request_json": json.dumps({"by": by})}
    then: list[Op] = [
        {"op": "nodes", "label": "Application", "rows": [{
            "id": app_id, "product": "bnpl", "amount": 100.0, "currency": "CNY",
            "ts": 1_700_000_000, "lat": 31.2, "lon": 121.4, "decision": decision}]},
        {"op": "edges", "rel": "APPLIED", "rows": [
            {"src": f"u-{app_id}", "dst": app_id, "ts": 1_700_000_000}]}]
    return {"op": "verdict", "row": row, "then": then}


def test_a_spooled_verdict_that_finds_another_stored_loses_and_is_kept(
        tmp_path: Path, store: GraphStore) -> None:
    flaky = FlakyStore(store)
    guard = StoreGuard(flaky, read_timeout_s=1, write_timeout_s=1, probe_interval_s=0.05,
                       threads=4)
    spool = Spool(tmp_path / "s.sqlite")
    heard: list[VerdictConflict] = []
    writer = DurableWriter(guard, spool, on_verdict_conflict=heard.append, replica="here")
    same, other, alone = (_verdict("app-same", "h-same", "review", "here"),
                          _verdict("app-other", "h-mine", "approve", "here"),
                          _verdict("app-alone", "h-alone", "approve", "here"))
    theirs = {"app-same": _verdict("app-same", "h-same", "decline", "there"),
              "app-other": _verdict("app-other", "h-theirs", "decline", "there")}
    guard.start()
    try:
        flaky.down = True
        for op in (same, other, alone):
            assert writer.claim("score", op, op["row"]["id"]) is None  # spooled
            assert writer.answered(op["row"]["id"]) == Answer(
                op["row"]["id"], op["row"]["request_hash"], op["row"]["verdict_json"])
        entries = spool.peek(10)
        # another replica's verdicts reached the store first
        store.create_nodes("Verdict", [op["row"] for op in theirs.values()])
        writer.start()
        flaky.down = False
        assert writer.wait_drained(30)

        def stored(app_id: str) -> Any:
            node = store.get_node("Verdict", app_id)
            assert node is not None
            return node.properties["verdict_json"]

        for app_id, op in theirs.items():
            assert stored(app_id) == op["row"]["verdict_json"]
        assert stored("app-alone") == alone["row"]["verdict_json"]
        assert sorted((c.application_id, c.kind) for c in heard) == [
            ("app-other", "request"), ("app-same", "verdict")]
        records = {}
        for record_id in store.node_ids("VerdictConflict"):
            node = store.get_node("VerdictConflict", record_id)
            assert node is not None
            records[node.properties["application_id"]] = node.properties
        assert sorted(records) == ["app-other", "app-same"]
        for app_id, answered in (("app-same", same), ("app-other", other)):
            r = records[app_id]
            assert r["verdict_json"] == answered["row"]["verdict_json"]
            assert r["request_hash"] == answered["row"]["request_hash"]
            assert r["stored_request_hash"] == theirs[app_id]["row"]["request_hash"]
            assert r["replica"] == "here" and r["decision"] == answered["row"]["decision"]
            assert r["request_json"] == answered["row"]["request_json"]
            # what this replica answers from now on: the stored verdict
            assert writer.answered(app_id) == Answer(
                app_id, theirs[app_id]["row"]["request_hash"],
                theirs[app_id]["row"]["verdict_json"])
        # the rows of a request that stands carry the stored decision; another request's are
        # not written
        app = store.get_node("Application", "app-same")
        assert app is not None and app.properties["decision"] == "decline"
        assert store.get_node("Application", "app-other") is None
        app = store.get_node("Application", "app-alone")
        assert app is not None and app.properties["decision"] == "approve"

        # a replay retried after a crash before its acknowledgement: one record per answer
        again, _ = writer._commit(store, entries)
        assert sorted(c.record_id for c in again) == sorted(c.record_id for c in heard)
        assert len(store.node_ids("VerdictConflict")) == 2
    finally:
        writer.close()
        guard.close()
        spool.close()


def test_the_first_of_two_answers_in_one_spool_file_is_claimed(
        tmp_path: Path, store: GraphStore) -> None:
    """A spool file left by a dead process can hold an id a later process answered too."""
    guard = StoreGuard(store, read_timeout_s=1, write_timeout_s=1, probe_interval_s=0.05,
                       threads=2)
    spool = Spool(tmp_path / "s.sqlite")
    first = _verdict("app-twice", "h-1", "approve", "here")
    second = _verdict("app-twice", "h-2", "review", "here")
    for op in (first, second):
        spool.append("score", {"ops": [op]}, "app-twice")
    heard: list[VerdictConflict] = []
    writer = DurableWriter(guard, spool, on_verdict_conflict=heard.append, replica="here")
    try:
        wait_until(lambda: writer.replay() >= 0 and spool.depth == 0, 30)
        node = store.get_node("Verdict", "app-twice")
        assert node is not None and node.properties["request_hash"] == "h-1"
        assert [(c.kind, c.answered["request_hash"]) for c in heard] == [("request", "h-2")]
        assert len(store.node_ids("VerdictConflict")) == 1
    finally:
        writer.close()
        guard.close()
        spool.close()
