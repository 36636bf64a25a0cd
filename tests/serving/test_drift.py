"""Drift: a shift planted in a stream of applications (a new device farm; one product's amounts
doubled) is flagged where it was planted and nowhere else, and an unshifted stream (another world
of the same kind) is not flagged; the features are the model's own, from its pipeline over real
simulated worlds. Over real HTTP on both stores: /metrics exports the PSI and the decision shares,
and `riskgraph drift` writes its report from the store's verdicts."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from serving_world import LiveServer, make_settings

from gnn import (
    DRIFT_REFERENCE_FILE,
    ApplicationQueries,
    DriftReference,
    LendingGraph,
    ModelRegistry,
    build_drift_reference,
)
from gnn.data.time_split import TimeSplit, application_targets
from gnn.train.drift_reference import application_products
from graph import GraphStore
from serving.api import create_app
from serving.champion_challenger import ChampionVerdict
from serving.drift import (
    DriftMonitor,
    DriftThresholds,
    References,
    measure_drift,
    newest_version,
    verdict_samples,
    write_drift_report,
)
from serving.scorers import load_live_graph, load_scorer
from serving.scoring import ApplicationFacts
from serving.cli import main
from serving.settings import Settings, get_settings
from graph.world_files import world_snapshot
from simulator import WorldConfig, simulate_world, write_world
from simulator.config import PATTERNS
from tests.gnn.gnn_lending_world import lending_graph, trained
from tests.utils.neo4j import neo4j_auth, neo4j_uri

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

USERS = 6000
THRESHOLDS = DriftThresholds(warn=0.1, alert=0.25, min_count=200)


@functools.lru_cache(maxsize=None)
def _graph(seed: int, farm: bool = False) -> LendingGraph:
    config = WorldConfig(users=USERS, seed=seed, fraud_rate=0.08)
    if farm:
        # NOTE: a new device farm: every fraud application comes from many accounts on few
        # devices, and there is a lot of it.
        config = replace(config, fraud_rate=0.3,
                         pattern_mix={p: float(p == "device_farm") for p in PATTERNS})
    out = Path(tempfile.mkdtemp(prefix="rg-drift-"))
    write_world(simulate_world(config), out)
    graph = LendingGraph.from_snapshot(world_snapshot(out))
    shutil.rmtree(out, ignore_errors=True)
    return graph


def _training_halves(graph: LendingGraph) -> tuple[np.ndarray, np.ndarray]:
    """The training period's applications, shuffled (seeded) into two halves: one the
    reference, the other a stream the reference never saw from the same world and phase."""
    train = np.flatnonzero(application_targets(graph, TimeSplit.from_fractions(graph)).train)
    perm = np.random.default_rng(0).permutation(train)
    return np.sort(perm[::2]), np.sort(perm[1::2])


@functools.lru_cache(maxsize=1)
def _reference() -> DriftReference:
    """The trained pipeline's reference on half the training period of a world of seed 21."""
    graph = _graph(21)
    return build_drift_reference(trained().pipeline, graph, _training_halves(graph)[0])


def _stream(graph: LendingGraph, apps: np.ndarray, *, double: str | None = None
            ) -> list[ChampionVerdict]:
    """Applications of ``graph`` as the service would answer them: the pipeline's root
    features and scores (with ``double``'s amounts doubled before the features)."""
    pipeline = trained().pipeline
    q = ApplicationQueries.from_graph(graph, apps)
    products = application_products(graph, apps)
    if double is not None:
        q = replace(q, amount=np.where(products == double, q.amount * 2, q.amount))
    prepared = pipeline.prepare_applications(graph, q)
    scores = pipeline.predict(prepared)
    out = []
    for i in range(len(apps)):
        facts = ApplicationFacts(application_id=f"a{i}", product=str(products[i]),
                                 amount=float(q.amount[i]), currency="CNY", user_id="u",
                                 device_id=None, device_masked=None, ip=None, lat=0.0, lon=0.0,
                                 ts=int(q.ts[i]), merchant_id=None)
        features = dict(zip(prepared.root_names, prepared.root_x[i].tolist(), strict=True))
        out.append(ChampionVerdict(facts, "approve", float(scores.fraud[i]),
                                   float(scores.pd[i]), pipeline.version, False, features))
    return out


def _status(stream: list[ChampionVerdict]) -> dict[str, list[tuple[str, float]]]:
    samples = [DriftMonitor.sample(v) for v in stream]
    status = measure_drift(samples, _reference(), THRESHOLDS, trained().pipeline.version)
    judged = [p for p, d in status.products.items() if d.judged]
    assert "all" in judged and len(judged) >= 3, judged
    return status.shifted()


def test_an_unshifted_stream_is_not_flagged() -> None:
    graph = _graph(21)
    shifted = _status(_stream(graph, _training_halves(graph)[1]))
    assert shifted == {}, shifted


def test_one_products_amounts_doubled_are_flagged_there_only() -> None:
    graph = _graph(21)
    shifted = _status(_stream(graph, _training_halves(graph)[1], double="cash_loan"))
    print(shifted)
    assert set(shifted) <= {"cash_loan", "all"} and "cash_loan" in shifted, shifted
    assert {"log_amount"} <= {k for k, _ in shifted["cash_loan"]}, shifted["cash_loan"]
    assert all(k.startswith(("log_amount", "amount_", "score:")) for k, _ in shifted["cash_loan"])


def test_a_new_device_farm_is_flagged_on_the_device_inputs() -> None:
    """The same world (seed, honest population, merchants) with device farms planted."""
    farm = _graph(21, farm=True)
    shifted = _status(_stream(farm, _training_halves(farm)[1]))
    print(shifted)
    moved = {k for flagged in shifted.values() for k, _ in flagged}
    assert moved & {"device_shared_accounts", "device_users_log", "device_apps_log",
                    "device_os_emulator", "device_shared_capped",
                    "device_max_entity_degree"}, moved


def test_the_reference_round_trips_and_psi_is_zero_on_itself() -> None:
    ref = _reference()
    again = DriftReference.from_dict(ref.to_dict())
    assert again.inputs == ref.inputs and again.binned.keys() == ref.binned.keys()
    b = ref.binned["all"]["log_amount"]
    values = np.repeat((np.r_[b.edges, b.edges[-1] + 1] - 1e-9), 1)
    assert np.isfinite(ref.psi("all", "log_amount", values))
    # a served feature is rounded to 6 decimals: log(2) must stay in log(2)'s bin
    counts = np.log(np.asarray([1.0] * 50 + [2.0] * 40 + [3.0] * 10))
    products = np.asarray(["bnpl"] * 100)
    tiny = DriftReference.from_samples({"x": counts}, products)
    assert tiny.psi("bnpl", "x", np.round(counts, 6)) < 1e-9
    assert tiny.psi("bnpl", "x", np.round(counts, 6).astype(np.float32)) < 1e-9
    with pytest.raises(ValueError, match="bins must be >= 2"):
        DriftReference.from_samples({"x": np.zeros(3)}, np.asarray(["a"] * 3), bins=1)
    with pytest.raises(ValueError, match="warn <= alert"):
        DriftThresholds(warn=0.3, alert=0.2)


# -- over HTTP ------------------------------------------------------------------------------
@pytest.fixture
def drift_settings(tmp_path: Path, graph_store: GraphStore) -> Settings:
    settings = make_settings(tmp_path / "data", graph_store.backend, DRIFT_MIN_COUNT=20,
                             DRIFT_WINDOW=1000)
    registry = ModelRegistry(settings.models_dir)
    result = trained()
    graph = lending_graph()
    version = registry.save(result.pipeline, data_sha256=graph.fingerprint,
                            extra={"split": result.split.to_dict()})
    train = np.flatnonzero(application_targets(graph, result.split).train)
    registry.write_extra(version, DRIFT_REFERENCE_FILE,
                         build_drift_reference(result.pipeline, graph, train).to_dict())
    registry.promote(version)
    return settings


@pytest.fixture
def server(graph_store: GraphStore, drift_settings: Settings) -> Iterator[LiveServer]:
    live = load_live_graph(drift_settings, graph_store)
    app = create_app(drift_settings, graph_store,
                     load_scorer(drift_settings, live, graph_store), live_graph=live)
    s = LiveServer(app).start()
    yield s
    s.stop()


def test_metrics_and_the_report_show_drift_and_decisions(
        server: LiveServer, graph_store: GraphStore, drift_settings: Settings,
        tmp_path: Path) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    run = os.urandom(4).hex()
    with server.client() as c:
        for i in range(30):
            body = {"application_id": f"{run}-{i}", "product": "cash_loan",
                    "amount": 2000.0 + 50 * i, "currency": "CNY", "user_id": f"{run}-u{i}",
                    "device_id": f"FARM-{run}-{i % 2}", "ip": f"10.9.{i % 3}.1",
                    "geo": {"lat": 23.13, "lon": 113.26, "city": "Guangzhou"},
                    "applied_at": (t0 + timedelta(minutes=i)).isoformat()}
            assert c.post("/v1/score", json=body).status_code == 200
        text = c.get("/metrics").text
    assert 'riskgraph_drift_window_verdicts{product="cash_loan"} 30.0' in text
    shares = [line for line in text.splitlines()
              if line.startswith('riskgraph_decision_share{') and 'product="cash_loan"' in line]
    assert len(shares) == 3 and abs(sum(float(s.split()[-1]) for s in shares) - 1) < 1e-9
    assert 'riskgraph_degraded_share{product="cash_loan"} 0.0' in text
    assert 'riskgraph_drift_psi{input="device_shared_accounts",product="cash_loan"}' in text
    assert 'riskgraph_drift_psi{input="score:fraud",product="cash_loan"}' in text
    assert 'riskgraph_drift_psi_threshold{level="alert"} 0.25' in text
    server.drain()
    # the same windows read back from the store's verdicts
    samples = [s for s in verdict_samples(graph_store, window=1000)
               if s.product == "cash_loan"]
    assert len(samples) >= 30
    version = newest_version(samples)
    status = measure_drift(samples, References(ModelRegistry(drift_settings.models_dir))
                           .get(version), DriftThresholds(min_count=20), version)
    doc, image = write_drift_report(status, tmp_path / "drift.md", command="riskgraph drift")
    assert "## Inputs that moved" in doc.read_text() and image.stat().st_size > 1000
    if graph_store.backend != "neo4j":
        return  # NOTE: the embedded store's file is held by this process's server fixture
    # the command, on the same store, from a clean environment
    env = {"RISKGRAPH_DATA_DIR": str(drift_settings.DATA_DIR), "RISKGRAPH_NEO4J_URI": neo4j_uri(),
           "RISKGRAPH_NEO4J_USER": neo4j_auth()[0], "RISKGRAPH_NEO4J_PASSWORD": neo4j_auth()[1],
           "RISKGRAPH_DRIFT_MIN_COUNT": "20", "RISKGRAPH_DRIFT_WINDOW": "1000"}
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("RISKGRAPH_"):
                mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        try:
            rc = main(["drift", "--out", str(tmp_path / "cli" / "drift.md")])
        finally:
            get_settings.cache_clear()
    assert rc == (1 if status.shifted() else 0)
    report = (tmp_path / "cli" / "drift.md").read_text()
    assert "Command: `riskgraph drift --out" in report and "| cash_loan | 30 |" in report
    assert (tmp_path / "cli" / "drift.png").stat().st_size > 1000
