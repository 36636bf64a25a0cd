"""Champion and challenger over real HTTP on both stores: every verdict is decided by the
champion alone, the challenger scores it afterwards and its scores are stored beside the verdict;
`riskgraph models compare` reads them against labels posted through the API; `riskgraph models
rollback` reaches the running service without a restart; a slow challenger does not slow a
verdict."""

from __future__ import annotations

import functools
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from serving_world import LiveServer, make_settings

from gnn import ModelRegistry, RiskTrainConfig, TimeSplit, train_risk_model
from graph import GraphStore
from serving.api import create_app
from serving.champion_challenger import ChallengerScorer, ModelSlots
from serving.cli import main
from serving.model_comparison import compare_models
from serving.scorers import load_live_graph, load_scorer
from serving.settings import Settings, get_settings
from tests.gnn.gnn_lending_world import lending_graph, tiny_train_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@functools.lru_cache(maxsize=1)
def _models(root: str) -> tuple[str, str]:
    """Two models of the small world, trained from two seeds, registered in ``root`` (A then
    B promoted: B is the champion, A the one before it)."""
    registry = ModelRegistry(root)
    graph = lending_graph()
    split = TimeSplit.from_fractions(graph)
    versions = []
    for seed in (0, 1):
        config: RiskTrainConfig = tiny_train_config(seed=seed)
        result = train_risk_model(graph, split, train_config=config, log=lambda s: None)
        versions.append(registry.save(result.pipeline, data_sha256=graph.fingerprint,
                                      extra={"split": split.to_dict()}))
    return versions[0], versions[1]


@pytest.fixture
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "cc-models"


@pytest.fixture
def cc_settings(tmp_path: Path, graph_store: GraphStore, registry_dir: Path) -> Settings:
    a, b = _models(str(registry_dir))
    settings = make_settings(tmp_path / "data", graph_store.backend, MODEL_WATCH_S=0.2)
    settings.models_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(registry_dir, settings.models_dir)
    registry = ModelRegistry(settings.models_dir)
    for f in ("PROMOTED", "CHALLENGER", "promotions.jsonl"):
        (settings.models_dir / f).unlink(missing_ok=True)
    registry.promote(a)
    registry.promote(b)
    registry.set_challenger(a)
    return settings


@pytest.fixture
def server(graph_store: GraphStore, cc_settings: Settings) -> Iterator[LiveServer]:
    live = load_live_graph(cc_settings, graph_store)
    app = create_app(cc_settings, graph_store, load_scorer(cc_settings, live, graph_store),
                     live_graph=live)
    s = LiveServer(app).start()
    yield s
    s.stop()


def test_a_challenger_named_at_start_costs_no_export_of_the_store(server: LiveServer) -> None:
    """Started with a challenger in the registry, the service builds its state from the live
    graph it already holds; asking the refresh thread for a rebuild exported the whole store
    again once traffic ran (63 s on the 100k-user world, verdicts queued for seconds)."""
    c = _challenger_ready(server)
    a = _Applicant(server)
    for i in range(4):
        a.apply(i, ring=False)
    assert c.wait_idle(60)
    time.sleep(1.0)  # five registry reads (MODEL_WATCH_S=0.2): none asks for a rebuild
    live = server.app.state.runtime.live_graph
    assert live.refreshes == 0
    assert _metrics(server).count('riskgraph_challenger_scores_total{outcome="stored"} 4.0') == 1


def _slots(server: LiveServer) -> ModelSlots:
    models = server.app.state.runtime.models
    assert isinstance(models, ModelSlots)
    return models


def _challenger_ready(server: LiveServer, timeout_s: float = 60.0) -> ChallengerScorer:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        c = _slots(server).challenger
        if c is not None and c.scorer.ready():
            return c
        time.sleep(0.05)
    raise AssertionError("the challenger never got a graph state")


class _Applicant:
    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.run = uuid.uuid4().hex[:8]
        self.t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)

    def apply(self, i: int, *, ring: bool) -> dict[str, Any]:
        user = f"{self.run}-u{i}"
        at = self.t0 + timedelta(minutes=i)
        shared = f"RING-{self.run}" if ring else f"D-{self.run}-{i}"
        body = {"application_id": f"{self.run}-app-{i}", "product": "cash_loan",
                "amount": 3000.0 + 100 * i, "currency": "CNY", "user_id": user,
                "device_id": shared, "ip": f"10.{60 + int(ring)}.{i}.1",
                "geo": {"lat": 23.13, "lon": 113.26, "city": "Guangzhou"},
                "phone": "+86 139 0000 0001" if ring else f"+86 137 0000 {i:04d}",
                "address": f"环路{self.run}号" if ring else f"独立路{self.run}号{i}室",
                "applied_at": at.isoformat()}
        with self.server.client() as c:
            r = c.post("/v1/score", json=body)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def test_challenger_scores_are_stored_beside_the_verdicts_and_compared(
        server: LiveServer, graph_store: GraphStore, cc_settings: Settings) -> None:
    registry = ModelRegistry(cc_settings.models_dir)
    champion, challenger = registry.promoted(), registry.challenger()
    assert champion is not None and challenger is not None
    c = _challenger_ready(server)
    assert c.version == challenger
    a = _Applicant(server)
    verdicts = [a.apply(i, ring=i % 4 == 0) for i in range(24)]
    assert {v["model_version"] for v in verdicts} == {champion}
    assert c.wait_idle(60)
    stored = {r["application_id"]: r for r in
              graph_store.export_nodes("ChallengerScore").to_pylist()
              if r["application_id"].startswith(a.run)}
    assert set(stored) == {v["application_id"] for v in verdicts}
    for v in verdicts:
        r = stored[v["application_id"]]
        assert r["model_version"] == challenger and r["champion_version"] == champion
        assert r["champion_decision"] == v["decision"]
        assert r["champion_fraud_probability"] == pytest.approx(v["fraud_probability"])
        assert r["decision"] in ("approve", "review", "decline")
        assert 0.0 <= r["fraud_probability"] <= 1.0
    # two models from two seeds do not score alike
    assert any(abs(r["fraud_probability"] - r["champion_fraud_probability"]) > 1e-6
               for r in stored.values())
    # the ring's applications are confirmed fraud through the API
    frauds = [v["application_id"] for i, v in enumerate(verdicts) if i % 4 == 0]
    with server.client() as cl:
        r = cl.post("/v1/labels", json={"labels": [
            {"event_id": f"{a.run}-lab-{n}", "entity_type": "Application", "entity_id": app,
             "kind": "fraud", "at": datetime.now(UTC).isoformat(), "source": "investigator:t"}
            for n, app in enumerate(frauds)]})
    assert r.status_code == 202, r.text
    comparison = compare_models(graph_store, maturity_days=0, resamples=200)
    assert comparison.challenger == challenger and comparison.champions == [champion]
    assert comparison.applications == 24 and comparison.frauds == len(frauds)
    changed = sum(stored[v["application_id"]]["decision"] != v["decision"] for v in verdicts)
    assert comparison.changed_count == changed
    for m in ("auprc", "auroc", "brier", "ece"):
        x = comparison.champion[m]
        assert x.lo <= x.value <= x.hi, (m, x)
    # young applications do not count
    with pytest.raises(ValueError, match="days old yet"):
        compare_models(graph_store, maturity_days=30)
    metrics = _metrics(server)
    assert 'riskgraph_challenger_scores_total{outcome="stored"} 24.0' in metrics


def _metrics(server: LiveServer) -> str:
    with server.client() as c:
        r = c.get("/metrics")
    assert r.status_code == 200
    return r.text


@pytest.fixture
def registry_env(cc_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("RISKGRAPH_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RISKGRAPH_DATA_DIR", str(cc_settings.DATA_DIR))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_rollback_reaches_the_running_service_without_a_restart(
        server: LiveServer, cc_settings: Settings, registry_env: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    registry = ModelRegistry(cc_settings.models_dir)
    before, earlier = registry.promoted(), registry.challenger()
    _challenger_ready(server)
    a = _Applicant(server)
    assert a.apply(0, ring=False)["model_version"] == before
    assert main(["models", "rollback"]) == 0
    assert f"rolled back from {before} to {earlier}" in capsys.readouterr().out
    assert registry.promoted() == earlier and registry.challenger() is None
    # every request is answered while the new state is built; then the earlier model decides
    seen: list[str] = []
    deadline = time.monotonic() + 90
    i = 1
    while time.monotonic() < deadline:
        v = a.apply(i, ring=False)
        seen.append(v["model_version"])
        if v["model_version"] == earlier:
            break
        i += 1
        time.sleep(0.1)
    assert seen[-1] == earlier, seen
    assert set(seen) <= {before, earlier}
    assert _slots(server).challenger is None
    assert 'riskgraph_model_changes_total{slot="champion"} 1.0' in _metrics(server)
    # a second rollback walks one promotion further back: there is none before it
    assert main(["models", "rollback"]) == 2
    assert "no earlier champion" in capsys.readouterr().err


def test_a_slow_challenger_does_not_slow_a_verdict(server: LiveServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    c = _challenger_ready(server)
    release = threading.Event()
    real = c.scorer.score_many

    def stuck(applications: Any) -> Any:
        release.wait(30)
        return real(applications)

    monkeypatch.setattr(c.scorer, "score_many", stuck)
    a = _Applicant(server)
    a.apply(0, ring=False)  # the challenger's thread now waits on this one
    times = []
    for i in range(1, 11):
        t0 = time.perf_counter()
        a.apply(i, ring=False)
        times.append(time.perf_counter() - t0)
    release.set()
    assert c.wait_idle(60)
    print(f"verdict seconds while the challenger was stuck: {sorted(times)}")
    assert max(times) < 2.0
