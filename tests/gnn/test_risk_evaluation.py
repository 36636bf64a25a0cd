"""`evaluate_world` and its metrics: the GNN and the baselines on the test period."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gnn_lending_world import lending_graph, trained, world_dir

from gnn import ApplicationQueries, ModelRegistry, binary_metrics, evaluate_registered
from gnn.features.neighbour_aggregates import aggregate_names, neighbour_aggregates
from gnn.train.risk_evaluation import MODELS


def test_binary_metrics() -> None:
    y = np.array([0, 0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.95])
    m = binary_metrics(y, s)
    assert m["auroc"] == pytest.approx(7 / 8)
    assert m["positives"] == 2 and m["n"] == 6
    assert m["recall_at_1pct_fpr"] == pytest.approx(0.5)
    assert np.isnan(binary_metrics(np.zeros(3), np.ones(3))["auprc"])


def test_neighbour_aggregates_are_per_root() -> None:
    g = lending_graph()
    pipe = trained().pipeline
    p = pipe.prepare_applications(g, ApplicationQueries.from_graph(g, np.arange(25)))
    fanouts = pipe.config.fanouts["Application"]
    x, names = neighbour_aggregates(p.trees, p.x, fanouts), aggregate_names(fanouts)
    assert x.shape == (25, len(names)) and len(set(names)) == len(names)
    one_p = p.select(np.array([7]))
    one = neighbour_aggregates(one_p.trees, one_p.x, fanouts)
    assert one.shape == (1, len(names))
    np.testing.assert_allclose(one[0], x[7], rtol=1e-6)
    assert "h1_app_device_users_log_mean" in names


def test_evaluate_a_registered_model_end_to_end(tmp_path: Path) -> None:
    g = lending_graph()
    result = trained()
    reg = ModelRegistry(tmp_path / "models")
    version = reg.save(result.pipeline, data_sha256=g.fingerprint,
                       extra={"split": result.split.to_dict()})
    doc = tmp_path / "docs" / "EVALUATION.md"
    report = evaluate_registered(world_dir(), reg, version=version, doc=doc,
                                 img_dir=tmp_path / "docs" / "img", command="riskgraph evaluate",
                                 notes=["a note"], log=lambda s: None)
    assert set(report.overall) == set(MODELS)
    for m in MODELS:
        assert 0.5 < report.overall[m]["auroc"] <= 1.0, m
    text = doc.read_text()
    assert "| Deployed (HeteroRiskGNN + trees blend) |" in text
    assert "| HeteroRiskGNN alone |" in text
    assert "a note" in text and "](img/pr_curves.png)" in text
    assert (tmp_path / "docs" / "img" / "pr_curves.png").stat().st_size > 1000
    assert (tmp_path / "docs" / "img" / "reliability.png").exists()
    assert (reg.root / version / "evaluation.json").exists()
    with pytest.raises(ValueError, match="not the world"):
        other = reg.save(result.pipeline, data_sha256="0" * 64,
                         extra={"split": result.split.to_dict()})
        evaluate_registered(world_dir(), reg, version=other, log=lambda s: None)


def test_decile_feasibility_measures_the_sampling_noise_of_the_targets() -> None:
    """A calibrated model passes the decile targets by sampling alone almost always on huge bins
    and almost never on small ones; the draws are seeded."""
    from gnn.train.risk_evaluation import decile_feasibility

    pred = [0.01 * (k + 1) for k in range(10)]
    huge = decile_feasibility([{"predicted": p, "n": 1e6} for p in pred])
    assert huge.within == 1.0 and huge.monotone == 1.0 and huge.both == 1.0
    small = [{"predicted": p, "n": 200} for p in pred]
    noisy = decile_feasibility(small, draws=500, seed=3)
    assert noisy.within < 0.2 and noisy.monotone < 0.2
    assert noisy == decile_feasibility(small, draws=500, seed=3)
    assert "500 draws" in noisy.summary()
    with pytest.raises(ValueError, match="draws"):
        decile_feasibility(small, draws=0)
