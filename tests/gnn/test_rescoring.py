"""`rescore_store`: every user and merchant scored through the shared pipeline, written back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gnn_lending_world import trained, world_dir

from gnn import LendingGraph
from gnn.rescoring import compare_devices, rescore_store, score_graph
from graph import Pseudonymiser
from graph.ladybug_store import LadybugStore
from graph.loader import load_world
from graph.snapshot import GraphSnapshot


@pytest.fixture(scope="module")
def loaded_store(tmp_path_factory: pytest.TempPathFactory) -> LadybugStore:
    path = tmp_path_factory.mktemp("rescore") / "graph.lbug"
    store = LadybugStore(path)
    load_world(store, world_dir(), Pseudonymiser(b"rescoring-test-secret-key"), progress=False)
    return store


def test_rescoring_writes_the_pipeline_scores(loaded_store: LadybugStore, tmp_path: Path) -> None:
    pipe = trained().pipeline
    pipe.version = "gnn-20260101-000000-0000abcd"
    report = rescore_store(loaded_store, pipe, embeddings_dir=tmp_path, high_risk=0.3)
    graph = LendingGraph.from_snapshot(GraphSnapshot.from_store(loaded_store))
    assert report.scored == {"User": graph.num_nodes("User"),
                             "Merchant": graph.num_nodes("Merchant")}
    expected = score_graph(pipe, graph, as_of=report.as_of)
    for label in ("User", "Merchant"):
        for i in (0, graph.num_nodes(label) - 1):
            node = loaded_store.get_node(label, str(graph.ids[label][i]))
            assert node is not None
            assert node.properties["model_version"] == pipe.version
            assert node.properties["scored_at"] == report.scored_at
            assert node.properties["fraud_score"] == pytest.approx(
                float(expected[label].fraud[i]), abs=1e-6)
            assert node.properties["pd_score"] == pytest.approx(
                float(expected[label].pd[i]), abs=1e-6)
    assert (tmp_path / f"{pipe.version}-User.parquet").exists()
    assert report.shifts["User"]["previously_scored"] == 0
    assert report.high_risk["User"]["new"] == report.high_risk["User"]["now"]
    for c in report.clusters:
        assert c.size >= 2 and 0 <= c.new_high_risk <= c.size

    again = rescore_store(loaded_store, pipe, write=False, high_risk=0.3)
    assert again.shifts["User"]["previously_scored"] == graph.num_nodes("User")
    assert again.shifts["User"]["mean_abs_shift"] == pytest.approx(0.0, abs=1e-6)
    assert again.high_risk["User"]["new"] == 0


def test_device_comparison_on_cpu_is_exact(loaded_store: LadybugStore) -> None:
    graph = LendingGraph.from_snapshot(GraphSnapshot.from_store(loaded_store))
    diffs = compare_devices(trained().pipeline, graph, ("cpu", "cpu"), limit=50)
    assert max(diffs.values()) == 0.0
    assert np.isfinite(list(diffs.values())).all()
