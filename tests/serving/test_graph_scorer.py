"""`GraphScorer`: the serving Scorer, a model over the live graph state it keeps current."""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing as mp
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gnn"))

from gnn_lending_world import trained, world_dir  # noqa: E402

from gnn import (  # noqa: E402
    ApplicationQueries,
    GraphWrites,
    LendingGraph,
    RulesModel,
    attribute,
)
from serving.graph_scorer import WARM_UP_BATCHES, GraphScorer, warm_up  # noqa: E402
from serving.scoring import ApplicationFacts, Scorer  # noqa: E402


def _graph() -> LendingGraph:
    """A fresh copy of the test world's graph (the scorer owns and changes what it gets)."""
    return LendingGraph.from_world(world_dir())


def _facts(user: str, device: str, ts: int, app_id: str = "app-x") -> ApplicationFacts:
    return ApplicationFacts(application_id=app_id, product="cash_loan", amount=8000.0,
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


def _explain(model: Any, prepared: Any, device: str) -> Any:
    return attribute(model, prepared, device=device)


def _application_writes(f: ApplicationFacts) -> GraphWrites:
    """What the service writes for an accepted application (serving.graph_writes)."""
    return GraphWrites(
        nodes=[("Application", [{"id": f.application_id, "product": f.product,
                                 "amount": f.amount, "ts": f.ts, "lat": f.lat, "lon": f.lon}]),
               ("Device", [{"id": f.device_id, "masked": f.device_masked}])],
        edges=[("APPLIED", [{"src": f.user_id, "dst": f.application_id, "ts": f.ts}]),
               ("APPLIED_ON", [{"src": f.application_id, "dst": f.device_id}]),
               ("APPLIED_FROM", [{"src": f.application_id, "dst": f.ip}]),
               ("USES", [{"src": f.user_id, "dst": f.device_id, "last_seen": f.ts}])],
        labels=[])


def test_it_gives_the_pipelines_score_and_reasons_from_its_attributions() -> None:
    g = _graph()
    pipe = trained().pipeline
    seen: list[int] = []

    def reasons(facts: ApplicationFacts, root: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        seen.append(len(root.fraud))
        return (), ()

    scorer = GraphScorer(pipe, explain=_explain, reasons=reasons)
    assert isinstance(scorer, Scorer)
    user = str(g.ids["User"][3])
    device = str(g.ids["Device"][int(g.relations["user_device"].row(3)[0][0])])
    facts = _facts(user, device, g.as_of + 60)
    # No graph state yet (start-up): the prior, which the service flags degraded.
    assert not scorer.ready() and scorer.score(facts, None).features == {"degraded": True}
    expected = pipe.score_applications(g, ApplicationQueries.from_facts(
        g, application_id="app-x", user_id=user, product="cash_loan", amount=8000.0,
        ts=g.as_of + 60, lat=31.2, lon=121.5, device_id=device, ip="10.0.0.1",
        merchant_id=None, term_months=facts.term))
    scorer.set_graph(g)
    result = scorer.score(facts, None)
    # NOTE: attribute() scores in the same forward pass as its gradients (1e-6 of predict)
    assert result.fraud_probability == pytest.approx(float(expected.fraud[0]), abs=1e-6)
    assert result.pd == pytest.approx(float(expected.pd[0]), abs=1e-6)
    assert result.model_version == pipe.version
    assert result.graph_version.startswith("live:") and result.graph_version.endswith("+0")
    assert seen and seen[0] == len(result.features) - 6  # root features, not policy inputs
    assert {"tenure_days", "order_count", "monthly_spend", "monthly_gmv"} <= set(result.features)


@pytest.mark.parametrize("process", [False, True])
def test_an_accepted_write_reaches_the_next_verdicts_features(process: bool) -> None:
    g = _graph()
    scorer = GraphScorer(RulesModel(), process=process)
    scorer.set_graph(g)
    try:
        user = str(g.ids["User"][5])
        t = g.as_of + 600
        first = scorer.score(_facts(user, "dev-new", t, "a1"), None)
        assert first.features["user_apps_1h"] == 0.0
        for i in range(2):
            f = _facts(user, "dev-new", t + 10 * i, f"a{i + 1}")
            scorer.accept(_application_writes(f))
        third = scorer.score(_facts(user, "dev-new", t + 30, "a3"), None)
        # two applications within the hour, seen by the model's velocity feature
        assert third.features["user_apps_1h"] == pytest.approx(np.log1p(2), abs=1e-6)
        assert third.graph_version.endswith("+2")
        assert third.fraud_probability > first.fraud_probability
    finally:
        scorer.close()


def test_concurrent_requests_are_batched_and_score_as_they_would_alone() -> None:
    pipe = trained().pipeline
    g = _graph()
    # NOTE: besides 24 applicants, one applying four more times on the same new device and
    # IP, and another on a device the first has used: none of them is written yet, so none
    # may see another in its batch.
    facts = _applications(g, 24)
    held = g.relations["user_device"].row(0)[0]
    assert held.shape[0] > 0
    facts += [dataclasses.replace(facts[0], application_id=f"again-{i}", ts=facts[0].ts + i)
              for i in range(1, 5)]
    facts.append(dataclasses.replace(facts[1], application_id="their-device",
                                     device_id=str(g.ids["Device"][int(held[0])])))
    alone = GraphScorer(pipe)
    alone.set_graph(g)
    expected = [alone.score(f, None) for f in facts]

    batched = GraphScorer(pipe)
    batched.set_graph(_graph())
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
        assert got.features["fraud_logit"] == pytest.approx(want.features["fraud_logit"],
                                                            abs=1e-5)


def test_a_failed_batch_fails_each_of_its_requests_and_the_next_batch_runs() -> None:
    pipe = trained().pipeline
    g = _graph()
    scorer = GraphScorer(pipe)
    scorer.set_graph(g)
    user = str(g.ids["User"][0])
    with mock.patch.object(pipe, "prepare_applications", side_effect=ValueError("boom")), \
            pytest.raises(ValueError, match="boom"):
        scorer.score(_facts(user, "d", g.as_of + 60), None)
    assert 0.0 <= scorer.score(_facts(user, "d", g.as_of + 60), None).fraud_probability <= 1.0


def test_a_child_process_scores_as_the_thread_does_and_asks_for_a_new_state_when_it_dies(
        ) -> None:
    pipe = trained().pipeline
    g = _graph()
    facts = _applications(g, 6)
    thread = GraphScorer(pipe)
    thread.set_graph(_graph())
    expected = [thread.score(f, None) for f in facts]
    lost = threading.Event()
    scorer = GraphScorer(pipe, process=True, on_lost=lost.set)
    scorer.set_graph(g)
    try:
        assert scorer._worker is not None
        first = scorer._worker._process
        got = [scorer.score(f, None) for f in facts]
        # NOTE: the child runs torch on one thread; float32 sums in another order differ in
        # the last bits, hence 1e-6 rather than equality on what the model computed.
        for a, b in zip(got, expected, strict=True):
            assert a.fraud_probability == pytest.approx(b.fraud_probability, abs=1e-6)
            assert a.pd == pytest.approx(b.pd, abs=1e-6)
            logits = ("fraud_logit", "pd_logit")
            assert {k: v for k, v in a.features.items() if k not in logits} == {
                k: v for k, v in b.features.items() if k not in logits}
        first.kill()
        first.join(5)
        with pytest.raises(RuntimeError, match="ended"):
            scorer.score(facts[0], None)
        assert lost.is_set()
        # no state until new arrays come: the prior, flagged degraded by the service
        assert scorer.score(facts[0], None).features == {"degraded": True}
        scorer.set_graph(_graph())
        again = scorer.score(facts[0], None)
        assert again.fraud_probability == pytest.approx(expected[0].fraud_probability, abs=1e-6)
    finally:
        scorer.close()
    assert not first.is_alive()


def test_new_arrays_get_a_new_child_with_the_writes_since_and_the_old_one_ends() -> None:
    g = _graph()
    scorer = GraphScorer(RulesModel(), process=True)
    scorer.set_graph(g)
    try:
        assert scorer._worker is not None
        old = scorer._worker._process
        user = str(g.ids["User"][7])
        t = g.as_of + 600
        since = [_application_writes(_facts(user, "dev-z", t + i, f"z{i}")) for i in range(3)]
        scorer.set_graph(_graph(), since)
        assert scorer._worker._process is not old
        old.join(5)
        assert not old.is_alive()
        after = scorer.score(_facts(user, "dev-z", t + 60, "z9"), None)
        assert after.features["user_apps_1h"] == pytest.approx(np.log1p(3), abs=1e-6)
    finally:
        scorer.close()
    assert scorer._worker is None


class _Counting:
    """A model that counts, in memory shared with a forked child, the batches it prepares."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.version = model.version
        self.batches = mp.get_context("fork").Value("i", 0)

    def prepare_applications(self, graph: LendingGraph, apps: ApplicationQueries) -> Any:
        with self.batches.get_lock():
            self.batches.value += 1
        return self.model.prepare_applications(graph, apps)

    def predict(self, prepared: Any, *, device: str = "cpu") -> Any:
        return self.model.predict(prepared, device=device)

    def __getattr__(self, name: str) -> Any:  # what attributions read of the pipeline
        return getattr(self.model, name)


def test_warming_up_scores_stored_applications_and_changes_nothing() -> None:
    g = _graph()
    pipe = trained().pipeline
    facts = _applications(g, 4)
    thread = GraphScorer(pipe, explain=_explain)
    cold = _graph()
    thread._graph = cold  # NOTE: installed without set_graph, so without its warm-up
    expected = [thread.score(f, None) for f in facts]
    arrays_before = {t: g.num_nodes(t) for t in ("Application", "User", "Device")}
    applied_before = g.writes_applied
    counting = _Counting(pipe)
    done = warm_up(counting, g, "cpu", _explain)
    assert counting.batches.value == len(WARM_UP_BATCHES)
    assert done == sum(min(s, g.num_nodes("Application")) for s in WARM_UP_BATCHES)
    assert {t: g.num_nodes(t) for t in arrays_before} == arrays_before
    assert g.writes_applied == applied_before
    warmed = GraphScorer(pipe, explain=_explain)
    warmed.set_graph(g)
    for a, b in zip([warmed.score(f, None) for f in facts], expected, strict=True):
        assert a.fraud_probability == b.fraud_probability
        assert a.pd == b.pd
        assert a.features == b.features


def test_a_new_child_warms_up_before_its_first_batch() -> None:
    counting = _Counting(RulesModel())
    g = _graph()
    scorer = GraphScorer(counting, process=True)
    scorer.set_graph(g)
    try:
        scorer.score(_facts(str(g.ids["User"][3]), "d", g.as_of + 60), None)
        assert counting.batches.value == len(WARM_UP_BATCHES) + 1
    finally:
        scorer.close()


def test_the_child_is_forked_from_a_frozen_heap() -> None:
    """Forked before a settle, the API process's first full collection copied the heap the
    two processes shared (1.66 s at start on the 100k world); see serving.graph_scorer."""
    before = gc.get_threshold()
    scorer = GraphScorer(RulesModel(), process=True)
    gc.unfreeze()
    kept = [{"id": i} for i in range(10_000)]  # tracked objects alive when the child is forked
    try:
        scorer.set_graph(_graph())
        assert gc.get_freeze_count() >= len(kept)
    finally:
        scorer.close()
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.parametrize("process", [False, True])
def test_each_batch_reports_what_it_cost_and_a_failing_listener_fails_no_verdict(
        process: bool) -> None:
    g = _graph()
    seen: list[Any] = []

    def on_batch(stats: Any) -> None:
        seen.append(stats)
        raise RuntimeError("a broken metrics sink")

    scorer = GraphScorer(RulesModel(), process=process, on_batch=on_batch)
    scorer.set_graph(g)
    try:
        apps = _applications(g, 6)
        for f in apps[:2]:
            scorer.accept(_application_writes(dataclasses.replace(
                f, application_id=f"earlier-{f.application_id}", ts=f.ts - 30)))
        results = scorer.score_many(apps)
        deadline = time.monotonic() + 5
        while sum(s.applications for s in seen) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)  # NOTE: reported after the batch's verdicts are out
    finally:
        scorer.close()
    assert len(results) == 6 and all(r.features.get("degraded") is None for r in results)
    assert sum(s.applications for s in seen) == 6
    assert sum(s.writes for s in seen) == 2 and seen[0].writes == 2
    for s in seen:
        assert s.apply_s >= 0 and s.score_s > 0 and s.cpu_s > 0
        assert s.cpu_s <= s.apply_s + s.score_s + 2e-3  # one thread's CPU within its wall time
