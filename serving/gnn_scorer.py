"""`GnnScorer`: the :class:`serving.scoring.Scorer` backed by the promoted GNN pipeline.

Probabilities come from :class:`gnn.ScoringPipeline` — kernel features -> time-respecting
neighbour sample -> HeteroRiskGNN -> calibration — run on an in-memory graph state
(:class:`gnn.LendingGraph`, exported from the store by :meth:`GnnScorer.refresh`) plus the facts of
the application being scored. That is the same code batch rescoring runs, so an application
scored here gets the score a batch run over the same graph state gives it.

Reasons: the GNN's numbers are not evidence an investigator can check, so when an ``explainer``
scorer is given (the transparent :class:`serving.rules_scorer.RulesScorer`) its signals and
limit inputs (``monthly_spend`` ...) are kept and the GNN's probabilities replace its points.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from gnn import ApplicationQueries, LendingGraph, ModelRegistry, ScoringPipeline
from graph import GraphStore
from graph.snapshot import GraphSnapshot
from serving.scoring import ApplicationFacts, FeatureValue, Scorer, ScoreResult

log = logging.getLogger(__name__)


class GnnScorer:
    """Scores applications with a trained pipeline over a graph state.

    Args:
        pipeline (ScoringPipeline): the model (usually ``ModelRegistry.load()``).
        explainer (Scorer, optional): source of reasons and policy inputs. (default: none)
        graph (LendingGraph, optional): an initial graph state. (default: none; the first
            :meth:`score` with a store, or :meth:`refresh`, builds it)
        device (str, optional): where the model runs. (default: ``"cpu"``)
    """

    def __init__(self, pipeline: ScoringPipeline, *, explainer: Scorer | None = None,
                 graph: LendingGraph | None = None, device: str = "cpu") -> None:
        self.pipeline = pipeline
        self.explainer = explainer
        self.device = device
        self._lock = threading.Lock()
        self._batcher = _Batcher(self._score_batch)
        self._graph: LendingGraph | None = None
        self._graph_version = "none"
        if graph is not None:
            self.set_graph(graph)

    @classmethod
    def from_registry(cls, registry: ModelRegistry, **kwargs: object) -> GnnScorer:
        """The promoted model of ``registry``.

        Raises:
            gnn.ModelNotFoundError: if none is promoted.
        """
        return cls(registry.load(), **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return (f"GnnScorer(model={self.pipeline.version!r}, graph={self._graph_version!r}, "
                f"explainer={self.explainer!r}, device={self.device!r})")

    @property
    def model_version(self) -> str:
        return self.pipeline.version

    @property
    def graph_version(self) -> str:
        return self._graph_version

    def ready(self) -> bool:
        return self._graph is not None

    def set_graph(self, graph: LendingGraph) -> None:
        """Score against ``graph`` from now on."""
        version = f"snapshot:{graph.as_of}:{graph.fingerprint[:12]}"
        with self._lock:
            self._graph, self._graph_version = graph, version

    def refresh(self, store: GraphStore) -> None:
        """Export ``store`` and score against that state (seconds to minutes: not per request)."""
        t0 = time.perf_counter()
        graph = LendingGraph.from_snapshot(GraphSnapshot.from_store(store))
        self.set_graph(graph)
        log.info("graph state %s loaded in %.1fs", self._graph_version, time.perf_counter() - t0)

    def score(self, application: ApplicationFacts, store: GraphStore | None) -> ScoreResult:
        """Score one application against the current graph state.

        Raises:
            RuntimeError: with no graph state and no store to build one from.
        """
        if self._graph is None:
            if store is None:
                if self.explainer is not None:
                    # NOTE: degraded (no store) before the first graph state: the rules'
                    # verdict rather than none.
                    return self.explainer.score(application, None)
                raise RuntimeError("GnnScorer has no graph state yet and no store to read")
            self.refresh(store)
        explained = None
        if self.explainer is not None:
            explained = self.explainer.score(application, store)
        job = self._batcher.run(application)
        features: dict[str, FeatureValue] = {} if explained is None else dict(explained.features)
        features.update(_named(job.root_names, job.root_x))
        features["gnn_fraud_logit"] = job.fraud_logit
        features["gnn_pd_logit"] = job.pd_logit
        features.setdefault("tenure_days", round(math.expm1(float(
            features.get("gnn_tenure_log_d", 0.0))), 1))  # type: ignore[arg-type]
        features.setdefault("order_count", int(round(math.expm1(float(
            features.get("gnn_orders_log", 0.0))))))  # type: ignore[arg-type]
        return ScoreResult(
            fraud_probability=job.fraud, pd=job.pd,
            features=features, signals=() if explained is None else explained.signals,
            model_version=self.pipeline.version, graph_version=job.graph_version)

    def _score_batch(self, jobs: list[_Job]) -> None:
        """Score the waiting applications as one batch (one sample, one forward pass).

        Trees do not depend on which other seeds share a batch (the sampler ranks candidates
        by hashes of the seed's own keys), so each application gets the score it would get
        alone.
        """
        with self._lock:
            graph, graph_version = self._graph, self._graph_version
        assert graph is not None
        q = ApplicationQueries.concat([ApplicationQueries.from_facts(
            graph, application_id=a.application_id, user_id=a.user_id, product=a.product,
            amount=a.amount, ts=a.ts, lat=a.lat, lon=a.lon, device_id=a.device_id, ip=a.ip,
            merchant_id=a.merchant_id) for a in (job.application for job in jobs)])
        prepared = self.pipeline.prepare_applications(graph, q)
        scores = self.pipeline.predict(prepared, device=self.device)
        for i, job in enumerate(jobs):
            job.root_names = prepared.root_names
            job.root_x = prepared.root_x[i]
            job.fraud, job.pd = float(scores.fraud[i]), float(scores.pd[i])
            job.fraud_logit = float(scores.fraud_logit[i])
            job.pd_logit = float(scores.pd_logit[i])
            job.graph_version = graph_version


def _named(names: list[str], values: np.ndarray) -> Mapping[str, FeatureValue]:
    return {f"gnn_{n}": round(float(v), 6) for n, v in zip(names, values.tolist(), strict=True)}


@dataclass(eq=False)
class _Job:
    """One application waiting for its batch, then its scores."""

    application: ApplicationFacts
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    root_names: list[str] = field(default_factory=list)
    root_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fraud: float = 0.0
    pd: float = 0.0
    fraud_logit: float = 0.0
    pd_logit: float = 0.0
    graph_version: str = "none"


class _Batcher:
    """Requests that arrive while a batch is being scored form the next batch.

    One scoring thread; no timer. At low load it takes each application as it arrives and
    scores it alone; under load, everything that queued while a batch was scored becomes the
    next batch, so the fixed cost of sampling and of a forward pass is paid per batch, not
    per request.
    """

    def __init__(self, score: Callable[[list[_Job]], None], max_batch: int = 256) -> None:
        self._score = score
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._waiting: list[_Job] = []
        self._thread: threading.Thread | None = None

    def run(self, application: ApplicationFacts) -> _Job:
        """Score ``application`` (alone or with others); re-raise the batch's error."""
        job = _Job(application)
        with self._cond:
            self._waiting.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="gnn-batcher",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting:
                    self._cond.wait()
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
            try:
                self._score(batch)
            except Exception as e:  # noqa: BLE001 - every waiter hears of it
                for job in batch:
                    job.error = e
            finally:
                for job in batch:
                    job.done.set()
