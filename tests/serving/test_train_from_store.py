"""`riskgraph train` and `evaluate` on the configured store, on both stores: a simulated world
loaded, further labels posted through ``POST /v1/labels`` over real HTTP, then a model trained
from the store with the labels known before its split time only, which matches the model trained
from the world's files."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import torch
from serving_world import SECRET, LiveServer

from gnn import (
    LendingGraph,
    ModelRegistry,
    PipelineConfig,
    TimeSplit,
    application_targets,
    evaluate_world,
    store_training_graph,
    train_store,
    train_world,
)
from gnn.data.lending_graph import NEVER
from graph import GraphStore, Pseudonymiser
from graph.loader import load_world
from graph.snapshot import GraphSnapshot
from graph.world_files import read_metadata
from serving.api import create_app
from serving.cli import main
from serving.scorers import load_live_graph, load_scorer
from serving.settings import Settings, get_settings
from tests.gnn.gnn_lending_world import tiny_train_config, world_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SAMPLER_SEED = 0


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@functools.lru_cache(maxsize=1)
def _files_model(root: str) -> tuple[ModelRegistry, str]:
    """The model trained from the world's files (the reference), once per session."""
    registry = ModelRegistry(Path(root) / "files-models")
    out = train_world(world_dir(), registry, pseudonymiser=Pseudonymiser(SECRET.encode()),
                      train_config=tiny_train_config(),
                      pipeline_config=PipelineConfig(sampler_seed=SAMPLER_SEED),
                      log=lambda s: None)
    return registry, out.version


@pytest.fixture(scope="session")
def files_graph() -> LendingGraph:
    return LendingGraph.from_world(world_dir(), pseudonymiser=Pseudonymiser(SECRET.encode()))


@pytest.fixture
def loaded(graph_store: GraphStore, settings: Settings) -> GraphStore:
    load_world(graph_store, world_dir(), settings.pseudonymiser(), progress=False)
    return graph_store


@pytest.fixture
def server(loaded: GraphStore, settings: Settings) -> Iterator[LiveServer]:
    live = load_live_graph(settings, loaded)
    app = create_app(settings, loaded, load_scorer(settings, live, loaded), live_graph=live)
    s = LiveServer(app).start()
    yield s
    s.stop()


def _post_labels(server: LiveServer, labels: list[dict[str, Any]]) -> None:
    with server.client() as c:
        for lo in range(0, len(labels), 500):
            r = c.post("/v1/labels", json={"labels": labels[lo:lo + 500]})
            assert r.status_code == 202, r.text
            assert r.json()["accepted"] == len(labels[lo:lo + 500]), r.text


def _late_labels() -> list[dict[str, Any]]:
    """The world's labels that became known after its window (the loader leaves them out):
    the confirmations a lender's investigators post later."""
    end = int(read_metadata(world_dir())["end_ts"])
    t = pq.read_table(world_dir() / "label_events.parquet").to_pylist()
    late = [r for r in t if r["visible_at"] > end]
    return [{"event_id": f"late-{i}", "entity_type": r["entity_type"],
             "entity_id": r["entity_id"], "kind": r["kind"], "at": _iso(r["visible_at"]),
             "source": r["source"]} for i, r in enumerate(late)]


def _honest_train_apps(graph: LendingGraph, split: TimeSplit, n: int) -> list[str]:
    """``n`` training-period applications without any label, in id order."""
    a = graph.attrs["Application"]
    free = ((a["ts"] < split.t1) & (graph.fraud_at["Application"] == NEVER)
            & (graph.cleared_at == NEVER) & (graph.default_at["Application"] == NEVER))
    return sorted(graph.ids["Application"][free].tolist())[:n]


def _label(event_id: str, app: str, kind: str, at: int) -> dict[str, Any]:
    return {"event_id": event_id, "entity_type": "Application", "entity_id": app,
            "kind": kind, "at": _iso(at), "source": "investigator:test"}


def test_no_label_known_after_the_split_time_reaches_training(
        server: LiveServer, loaded: GraphStore, files_graph: LendingGraph) -> None:
    split = TimeSplit.from_fractions(files_graph)
    before, after, flipped, late_only = _honest_train_apps(files_graph, split, 4)
    _post_labels(server, [
        _label("probe-before", before, "fraud", split.t2 - 86_400),
        _label("probe-after", after, "fraud", split.t2),
        # known fraud before T2, cleared after it: training must see the fraud
        _label("probe-flip-1", flipped, "fraud", split.t1),
        _label("probe-flip-2", flipped, "cleared", split.t2 + 3_600),
        _label("probe-late-default", late_only, "default", split.t2 + 86_400),
    ])
    server.drain()
    node = loaded.get_node("Application", flipped)
    assert node is not None and node.properties["fraud_label"] == "cleared"

    graph, got_split, info = store_training_graph(loaded)
    assert got_split == split
    assert info["label_events"] == 5 and info["labels_rewound"] >= 3
    # nothing the model is trained on was known at or after T2
    for family in (graph.fraud_at, graph.default_at):
        for t in ("User", "Application", "Merchant"):
            if t not in family:
                continue
            at = family[t]
            assert not ((at >= split.t2) & (at < NEVER)).any(), (t, at[at < NEVER].max())
    assert not ((graph.cleared_at >= split.t2) & (graph.cleared_at < NEVER)).any()
    targets = application_targets(graph, split)
    pos = {a: graph.position("Application", a) for a in (before, after, flipped, late_only)}
    assert targets.fraud[pos[before]] == 1
    assert targets.fraud[pos[after]] == 0
    assert targets.fraud[pos[flipped]] == 1
    assert targets.pd[pos[late_only]] == 0
    # the store itself keeps every label: the serving graph sees them as of their times
    full = LendingGraph.from_snapshot(GraphSnapshot.from_store(loaded))
    assert full.fraud_at["Application"][full.position("Application", after)] == split.t2


def test_a_model_trained_from_the_store_matches_the_files_within_noise(
        server: LiveServer, loaded: GraphStore, files_graph: LendingGraph,
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    split = TimeSplit.from_fractions(files_graph)
    late = _late_labels()
    assert late, "the test world has no label known after its window"
    # bait: fraud labels on honest training applications, known only at T2 or later
    bait = [_label(f"bait-{i}", app, "fraud", split.t2 + i * 3_600)
            for i, app in enumerate(_honest_train_apps(files_graph, split, 20))]
    _post_labels(server, late + bait)
    server.drain()

    registry = ModelRegistry(tmp_path / "store-models")
    out = train_store(loaded, registry, train_config=tiny_train_config(),
                      pipeline_config=PipelineConfig(sampler_seed=SAMPLER_SEED),
                      log=lambda s: None)
    manifest = registry.manifest(out.version)
    assert manifest["source"]["store"]["backend"] == loaded.backend
    assert manifest["source"]["store"]["label_events"] == len(late) + len(bait)
    assert TimeSplit(**manifest["split"]) == split
    files_registry, files_version = _files_model(str(tmp_path_factory.getbasetemp()))
    got = evaluate_world(world_dir(), files_graph, registry.load(out.version), split,
                         log=lambda s: None).overall["gnn"]
    want = evaluate_world(world_dir(), files_graph, files_registry.load(files_version), split,
                          log=lambda s: None).overall["gnn"]
    print(f"{loaded.backend}: store {got}, files {want}")
    assert got["n"] == want["n"] and got["positives"] == want["positives"]
    assert abs(got["auprc"] - want["auprc"]) <= 0.05
    assert abs(got["auroc"] - want["auroc"]) <= 0.03
    # the same command on the same store gives the same model (seeded, id-ordered export)
    again = train_store(loaded, registry, train_config=tiny_train_config(),
                        pipeline_config=PipelineConfig(sampler_seed=SAMPLER_SEED),
                        log=lambda s: None)
    a, b = (registry.load(v).model.state_dict() for v in (out.version, again.version))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean environment for the CLI: the embedded store under ``tmp_path``."""
    for key in list(os.environ):
        if key.startswith("RISKGRAPH_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RISKGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RISKGRAPH_PSEUDONYM_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_the_commands_train_and_evaluate_on_the_configured_store(
        cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate"]) == 2
    assert "no promoted model" in capsys.readouterr().err
    assert main(["load", str(world_dir())]) == 0
    capsys.readouterr()
    args = ["train", "--epochs", "2", "--patience", "2", "--batch-size", "256",
            "--user-seeds", "150", "--members", "2", "--promote", "--force"]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "registered" in out.err and "labels as of T2" in out.err
    registry = ModelRegistry(cli_env / "data" / "models")
    version = registry.promoted()
    assert version is not None
    assert registry.manifest(version)["source"]["store"]["backend"] == "ladybug"
    assert main(["train", "--label-maturity-days", "-1"]) == 2
    assert "--label-maturity-days must be >= 0" in capsys.readouterr().err
    # the tiny world's few test frauds were all confirmed within 30 days of its end
    assert main(["evaluate", "--label-maturity-days", "30"]) == 2
    assert "no fraud label among the 9 test applications" in capsys.readouterr().err
    assert main(["evaluate", "--label-maturity-days", "0"]) == 0
    out = capsys.readouterr()
    assert "HeteroRiskGNN" in out.out or "gnn" in out.out
    evaluation = json.loads(
        (cli_env / "data" / "models" / version / "evaluation.json").read_text())
    assert evaluation["info"]["truth"].startswith("store:ladybug:")
    assert (cli_env / "data" / "models" / version / "EVALUATION.md").exists()
