"""`rescore_store`: every user and merchant scored by full-graph inference of the shared
pipeline, written back in recorded chunks; a run killed midway and started again ends as one
clean run; the report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gnn_lending_world import trained, world_dir

from gnn import LendingGraph, ModelRegistry
from gnn.full_graph_inference import FullGraphInference
from gnn.rescoring import compare_devices, open_run, rescore_store
from graph import GraphStore, Pseudonymiser
from graph.ladybug_store import LadybugStore
from graph.loader import load_world
from graph.schema import RESCORE_CHUNK, RESCORE_RUN
from graph.snapshot import GraphSnapshot
from tests.utils.neo4j import NEO4J_DATABASE, neo4j_auth, neo4j_uri

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"rescoring-test-secret-key"


@pytest.fixture(scope="module")
def loaded_store(tmp_path_factory: pytest.TempPathFactory) -> LadybugStore:
    path = tmp_path_factory.mktemp("rescore") / "graph.lbug"
    store = LadybugStore(path)
    load_world(store, world_dir(), Pseudonymiser(SECRET), progress=False)
    return store


def test_rescoring_writes_the_pipeline_scores(loaded_store: LadybugStore, tmp_path: Path) -> None:
    pipe = trained().pipeline
    pipe.version = "gnn-20260101-000000-0000abcd"
    report = rescore_store(loaded_store, pipe, run_dir=tmp_path, high_risk=0.3, chunk_size=128)
    graph = LendingGraph.from_snapshot(GraphSnapshot.from_store(loaded_store))
    assert report.scored == {"User": graph.num_nodes("User"),
                             "Merchant": graph.num_nodes("Merchant")}
    assert report.chunks == {"total": 6 + 1, "written": 7, "skipped": 0}
    full = FullGraphInference(pipe, graph, as_of=report.as_of)
    for label in ("User", "Merchant"):
        expected = full.score(label)
        for i in (0, graph.num_nodes(label) - 1):
            node = loaded_store.get_node(label, str(graph.ids[label][i]))
            assert node is not None
            assert node.properties["model_version"] == pipe.version
            assert node.properties["scored_at"] == report.scored_at
            assert node.properties["fraud_score"] == pytest.approx(
                float(expected.fraud[i]), abs=1e-6)
            assert node.properties["pd_score"] == pytest.approx(float(expected.pd[i]), abs=1e-6)
    run = loaded_store.get_node(RESCORE_RUN, report.run_id)
    assert run is not None and run.properties["state"] == "done"
    assert len(loaded_store.node_ids(RESCORE_CHUNK)) == 7
    out = tmp_path / report.run_id
    assert (out / "User-000000.parquet").exists()
    assert Path(report.files["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = Path(report.files["markdown"]).read_text()
    assert report.run_id in md and "High-risk clusters" in md
    assert report.shifts["User"]["previously_scored"] == 0
    # nothing to compare with: no shift, and the report stays strict JSON (no NaN)
    assert report.shifts["User"]["mean_abs_shift"] is None
    json.loads(json.dumps(report.to_dict()), parse_constant=_refuse)
    assert report.high_risk["User"]["new"] == report.high_risk["User"]["now"]
    assert sum(report.distribution["User"]["now"]) == graph.num_nodes("User")
    for c in report.clusters:
        assert c.size >= 2 and 0 <= c.new_high_risk <= c.size

    again = rescore_store(loaded_store, pipe, write=False, high_risk=0.3)
    assert again.shifts["User"]["previously_scored"] == graph.num_nodes("User")
    assert again.shifts["User"]["mean_abs_shift"] == pytest.approx(0.0, abs=1e-6)
    assert again.high_risk["User"]["new"] == 0
    assert again.movers["User"] == []


def _refuse(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def test_device_comparison_on_cpu_is_exact(loaded_store: LadybugStore) -> None:
    graph = LendingGraph.from_snapshot(GraphSnapshot.from_store(loaded_store))
    diffs = compare_devices(trained().pipeline, graph, ("cpu", "cpu"), limit=50)
    assert max(diffs.values()) == 0.0
    assert np.isfinite(list(diffs.values())).all()


# -- a real run killed midway, then started again -------------------------------------------------
_KILLED = """
import sys, time
import torch
torch.set_num_threads(1)
from gnn import ModelRegistry
from gnn.rescoring import rescore_store
backend, where, models, runs = sys.argv[1:5]
if backend == "ladybug":
    from graph.ladybug_store import LadybugStore
    store = LadybugStore(where, batch_size=10)
else:
    from graph.neo4j_store import Neo4jStore
    store = Neo4jStore.from_uri(where, auth=(sys.argv[5], sys.argv[6]), database=sys.argv[7],
                                batch_size=10)

score_writes = 0
write_batch = store._write_batch


def counting(nodes, edges, **kw):
    global score_writes
    score_writes += any(label == "User" for label, _ in nodes)
    return write_batch(nodes, edges, **kw)


def stall():
    # NOTE: inside the third chunk's transaction, its first user scores sent, not committed:
    # the kill lands there.
    print("a chunk's scores sent, not committed", flush=True)
    time.sleep(120)


if backend == "ladybug":
    import graph.ladybug_store as module
    write_rows = module._write_rows

    def stalling_rows(conn, batch, *args):
        write_rows(conn, batch, *args)
        if score_writes == 3 and "fraud_score" in batch.column_names:
            stall()

    module._write_rows = stalling_rows
else:
    transaction = store._transaction

    def stalling_transaction(work, routing, **kw):
        def proxied(tx):
            class Tx:
                def run(self, query, parameters=None, **params):
                    result = tx.run(query, parameters, **params)
                    rows = {**(parameters or {}), **params}.get("rows") or [{}]
                    if score_writes == 3 and "fraud_score" in rows[0].get("props", {}):
                        result.consume()
                        stall()
                    return result
            return work(Tx())
        return transaction(proxied, routing, **kw)

    store._transaction = stalling_transaction
store._write_batch = counting
rescore_store(store, ModelRegistry(models).load(), run_dir=runs, chunk_size=50)
print("finished", flush=True)
"""


def _scores(store: GraphStore) -> dict[str, dict[str, tuple[Any, ...]]]:
    out = {}
    for label in ("User", "Merchant"):
        table = store.export_nodes(label).to_pydict()
        out[label] = {i: (f, p, v) for i, f, p, v in zip(
            table["id"], table["fraud_score"], table["pd_score"], table["model_version"],
            strict=True)}
    return out


def test_a_run_killed_midway_and_started_again_ends_as_one_clean_run(
        store: GraphStore, tmp_path: Path) -> None:
    pipe = trained().pipeline
    registry = ModelRegistry(tmp_path / "models")
    version = registry.save(pipe, data_sha256="0" * 64)
    registry.promote(version)
    pipe = registry.load()
    load_world(store, world_dir(), Pseudonymiser(SECRET), progress=False)
    counts = store.counts()
    clean = rescore_store(store, pipe, run_dir=tmp_path / "clean", chunk_size=50)
    want = _scores(store)
    assert all(v[0] is not None for v in want["User"].values())
    # the same world in an emptied store, so that the killed run starts where the clean one did
    store = _emptied(store)
    load_world(store, world_dir(), Pseudonymiser(SECRET), progress=False)

    if store.backend == "ladybug":
        where, extra = str(store.path), []  # type: ignore[attr-defined]
        store.close()  # type: ignore[attr-defined]
    else:
        where, extra = neo4j_uri(), [*neo4j_auth(), NEO4J_DATABASE]
    script = tmp_path / "rescore.py"
    script.write_text(_KILLED)
    runs = tmp_path / "runs"
    with subprocess.Popen(
            [sys.executable, str(script), store.backend, where, str(tmp_path / "models"),
             str(runs), *extra], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            assert line.strip() != "finished", "the run ended before it was killed"
            if line.strip() == "a chunk's scores sent, not committed":
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    if store.backend == "ladybug":
        store._open()  # type: ignore[attr-defined]
    (run_id,) = store.node_ids(RESCORE_RUN)
    assert store.get_node(RESCORE_RUN, run_id).properties["state"] == "running"  # type: ignore[union-attr]
    assert sorted(store.node_ids(RESCORE_CHUNK)) == [f"{run_id}/User/{i}" for i in (0, 1)]
    # the third chunk's scores went with its transaction: the chunks recorded, nothing else
    scored = [i for i, (f, _, _) in _scores(store)["User"].items() if f is not None]
    assert len(scored) == 100

    report = rescore_store(store, pipe, run_dir=runs, chunk_size=50)
    assert report.run_id == run_id
    assert report.chunks == {"total": clean.chunks["total"],
                             "written": clean.chunks["total"] - 2, "skipped": 2}
    assert _scores(store) == want
    assert store.counts() == {**counts, RESCORE_RUN: 1, RESCORE_CHUNK: clean.chunks["total"]}
    stamps = {store.get_node("User", i).properties["scored_at"]  # type: ignore[union-attr]
              for i in list(want["User"])[::40]}
    assert stamps == {report.scored_at}
    assert store.get_node(RESCORE_RUN, run_id).properties["state"] == "done"  # type: ignore[union-attr]
    assert report.shifts["User"]["previously_scored"] == 0  # what the graph held at the start
    np.testing.assert_array_equal(report.distribution["User"]["now"],
                                  clean.distribution["User"]["now"])


def _emptied(store: GraphStore) -> GraphStore:
    clear = getattr(store, "clear", None)
    if clear is not None:
        clear()
        return store
    from graph.ladybug_store import _remove_database

    assert isinstance(store, LadybugStore)
    store.close()
    _remove_database(store.path)
    store._open()
    store.apply_schema()
    return store


def test_an_unfinished_run_is_resumed_only_on_the_same_graph_and_time(
        ladybug_store: LadybugStore) -> None:
    counts = {"User": 10, "Merchant": 2}
    first = open_run(ladybug_store, "v1", 1000, counts, chunk_size=4, now=5000)
    assert not first.resumed and first.previous_run is None
    again = open_run(ladybug_store, "v1", 2000, counts, chunk_size=8, now=6000)
    assert again.resumed and (again.id, again.as_of, again.chunk_size) == (first.id, 1000, 4)
    other_time = open_run(ladybug_store, "v1", 2000, counts, chunk_size=4, now=7000,
                          as_of_given=True)
    assert not other_time.resumed and other_time.as_of == 2000
    bigger = open_run(ladybug_store, "v1", 2000, {"User": 11, "Merchant": 2}, chunk_size=4,
                      now=8000)
    assert not bigger.resumed and bigger.users == 11
    runs = ladybug_store.get_nodes(RESCORE_RUN, ladybug_store.node_ids(RESCORE_RUN))
    states = {i: n.properties["state"] for i, n in runs.items()}
    assert states == {first.id: "abandoned", other_time.id: "abandoned", bigger.id: "running"}
    with pytest.raises(ValueError, match="chunk_size"):
        rescore_store(ladybug_store, trained().pipeline, chunk_size=0)
