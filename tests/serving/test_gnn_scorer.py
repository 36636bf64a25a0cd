"""`GnnScorer`: the serving Scorer over the shared GNN pipeline."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gnn"))

from gnn_lending_world import lending_graph, trained  # noqa: E402

from gnn import ApplicationQueries  # noqa: E402
from serving.gnn_scorer import GnnScorer  # noqa: E402
from serving.rules_scorer import RulesScorer  # noqa: E402
from serving.scoring import ApplicationFacts, Scorer  # noqa: E402


def _facts(user: str, device: str, ts: int) -> ApplicationFacts:
    return ApplicationFacts(application_id="app-x", product="cash_loan", amount=8000.0,
                            currency="CNY", user_id=user, device_id=device,
                            device_masked="****1234", ip="10.0.0.1", lat=31.2, lon=121.5, ts=ts)


def test_gnn_scorer_gives_the_pipeline_score_and_keeps_the_explainers_reasons() -> None:
    g = lending_graph()
    pipe = trained().pipeline
    scorer = GnnScorer(pipe, explainer=RulesScorer())
    assert isinstance(scorer, Scorer)
    assert not scorer.ready()
    with pytest.raises(RuntimeError, match="no graph state"):
        scorer.score(_facts("u", "d", 1), None)
    scorer.set_graph(g)
    assert scorer.ready() and scorer.graph_version.startswith(f"snapshot:{g.as_of}:")
    user = str(g.ids["User"][3])
    device = str(g.ids["Device"][int(g.relations["user_device"].child[
        g.relations["user_device"].indptr[3]])])
    facts = _facts(user, device, g.as_of + 60)
    result = scorer.score(facts, None)
    expected = pipe.score_applications(g, ApplicationQueries.from_facts(
        g, application_id="app-x", user_id=user, product="cash_loan", amount=8000.0,
        ts=g.as_of + 60, lat=31.2, lon=121.5, device_id=device, ip="10.0.0.1",
        merchant_id=None))
    assert result.fraud_probability == pytest.approx(float(expected.fraud[0]), abs=1e-9)
    assert result.pd == pytest.approx(float(expected.pd[0]), abs=1e-9)
    assert result.model_version == pipe.version
    assert result.graph_version == scorer.graph_version
    assert "gnn_tenure_log_d" in result.features and "tenure_days" in result.features
    assert result.signals == RulesScorer().score(facts, None).signals
    assert np.isfinite(result.features["gnn_fraud_logit"])  # type: ignore[arg-type]
