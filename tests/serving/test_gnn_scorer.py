"""`GnnScorer`: the serving Scorer over the shared GNN pipeline."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gnn"))

from gnn_lending_world import lending_graph, trained  # noqa: E402

from gnn import ApplicationQueries, LendingGraph  # noqa: E402
from serving.gnn_scorer import GnnScorer  # noqa: E402
from serving.rules_scorer import RulesScorer  # noqa: E402
from serving.scoring import ApplicationFacts, Scorer  # noqa: E402


def _facts(user: str, device: str, ts: int) -> ApplicationFacts:
    return ApplicationFacts(application_id="app-x", product="cash_loan", amount=8000.0,
                            currency="CNY", user_id=user, device_id=device,
                            device_masked="****1234", ip="10.0.0.1", lat=31.2, lon=121.5, ts=ts)


def _applications(g: LendingGraph, n: int) -> list[ApplicationFacts]:
    """``n`` cash-loan applications by the graph's first users, some sharing devices and IPs."""
    users = [str(u) for u in g.ids["User"][:n]]
    return [ApplicationFacts(application_id=f"app-{i}", product="cash_loan",
                             amount=1000.0 * (i + 1), currency="CNY", user_id=u,
                             device_id=f"dev-{i % 5}", device_masked="****1234",
                             ip=f"10.0.0.{i % 7}", lat=31.2, lon=121.5,
                             ts=g.as_of + 60 + i)
            for i, u in enumerate(users)]


def test_gnn_scorer_gives_the_pipeline_score_and_keeps_the_explainers_reasons() -> None:
    g = lending_graph()
    pipe = trained().pipeline
    scorer = GnnScorer(pipe, explainer=RulesScorer())
    assert isinstance(scorer, Scorer)
    assert not scorer.ready()
    # No graph state and no store (degraded at start): the explainer's verdict, not none.
    assert scorer.score(_facts("u", "d", 1), None) == RulesScorer().score(_facts("u", "d", 1),
                                                                          None)
    with pytest.raises(RuntimeError, match="no graph state"):
        GnnScorer(pipe).score(_facts("u", "d", 1), None)
    scorer.set_graph(g)
    assert scorer.ready() and scorer.graph_version.startswith(f"snapshot:{g.as_of}:")
    user = str(g.ids["User"][3])
    device = str(g.ids["Device"][int(g.relations["user_device"].row(3)[0][0])])
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


def test_concurrent_requests_are_batched_and_score_as_they_would_alone() -> None:
    g = lending_graph()
    pipe = trained().pipeline
    facts = _applications(g, 24)
    alone = GnnScorer(pipe, graph=g)
    expected = [alone.score(f, None) for f in facts]

    batched = GnnScorer(pipe, graph=g)
    calls: list[int] = []
    prepare = pipe.prepare_applications

    def counting(graph: object, apps: ApplicationQueries) -> object:
        calls.append(len(apps))
        return prepare(graph, apps)  # type: ignore[arg-type]

    gate = threading.Event()
    with mock.patch.object(pipe, "prepare_applications", side_effect=counting):
        # The first request holds the scoring thread until the others have queued.
        real = batched._score_batch

        def held(jobs: list) -> None:  # type: ignore[type-arg]
            gate.wait(10)
            real(jobs)

        with mock.patch.object(batched._batcher, "_score", held), \
                ThreadPoolExecutor(len(facts)) as pool:
            futures = [pool.submit(batched.score, f, None) for f in facts]
            time.sleep(0.3)
            gate.set()
            results = [f.result(timeout=60) for f in futures]
    assert sum(calls) == len(facts) and len(calls) < len(facts) and max(calls) > 1
    for got, want in zip(results, expected, strict=True):
        assert got.fraud_probability == pytest.approx(want.fraud_probability, abs=1e-6)
        assert got.pd == pytest.approx(want.pd, abs=1e-6)
        assert got.features["gnn_fraud_logit"] == pytest.approx(
            want.features["gnn_fraud_logit"], abs=1e-5)


def test_a_failed_batch_fails_each_of_its_requests_and_the_next_batch_runs() -> None:
    g = lending_graph()
    pipe = trained().pipeline
    scorer = GnnScorer(pipe, graph=g)
    user = str(g.ids["User"][0])
    with mock.patch.object(pipe, "prepare_applications", side_effect=ValueError("boom")), \
            pytest.raises(ValueError, match="boom"):
        scorer.score(_facts(user, "d", g.as_of + 60), None)
    assert 0.0 <= scorer.score(_facts(user, "d", g.as_of + 60), None).fraud_probability <= 1.0


def test_a_child_process_scores_as_the_thread_does_and_is_replaced_when_it_dies() -> None:
    g = lending_graph()
    pipe = trained().pipeline
    facts = _applications(g, 6)
    expected = [GnnScorer(pipe, graph=g).score(f, None) for f in facts]
    scorer = GnnScorer(pipe, graph=g, process=True)
    try:
        assert scorer._worker is not None
        first = scorer._worker._process
        got = [scorer.score(f, None) for f in facts]
        # NOTE: the child runs torch on one thread; float32 sums in another order differ in
        # the last bits, hence 1e-6 rather than equality on what the model computed.
        for a, b in zip(got, expected, strict=True):
            assert a.fraud_probability == pytest.approx(b.fraud_probability, abs=1e-6)
            assert a.pd == pytest.approx(b.pd, abs=1e-6)
            logits = ("gnn_fraud_logit", "gnn_pd_logit")
            assert {k: v for k, v in a.features.items() if k not in logits} == {
                k: v for k, v in b.features.items() if k not in logits}
            for k in logits:
                assert a.features[k] == pytest.approx(b.features[k], abs=1e-5)
        first.kill()
        first.join(5)
        with pytest.raises(RuntimeError, match="ended"):
            scorer.score(facts[0], None)
        assert scorer._worker is not None and scorer._worker._process is not first
        again = scorer.score(facts[0], None)
        assert again.fraud_probability == pytest.approx(expected[0].fraud_probability, abs=1e-6)
    finally:
        scorer.close()
    assert not first.is_alive()


def test_a_new_graph_state_gets_a_new_child_and_the_old_one_ends() -> None:
    g = lending_graph()
    scorer = GnnScorer(trained().pipeline, graph=g, process=True)
    try:
        assert scorer._worker is not None
        old = scorer._worker._process
        scorer.set_graph(g)
        assert scorer._worker._process is not old
        old.join(5)
        assert not old.is_alive()
    finally:
        scorer.close()
    assert scorer._worker is None
