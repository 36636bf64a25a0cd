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
from collections.abc import Mapping

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
                raise RuntimeError("GnnScorer has no graph state yet and no store to read")
            self.refresh(store)
        explained = None
        if self.explainer is not None:
            explained = self.explainer.score(application, store)
        with self._lock:
            graph, graph_version = self._graph, self._graph_version
            assert graph is not None
            q = ApplicationQueries.from_facts(
                graph, application_id=application.application_id, user_id=application.user_id,
                product=application.product, amount=application.amount, ts=application.ts,
                lat=application.lat, lon=application.lon, device_id=application.device_id,
                ip=application.ip, merchant_id=application.merchant_id)
            prepared = self.pipeline.prepare_applications(graph, q)
            scores = self.pipeline.predict(prepared, device=self.device)
        features: dict[str, FeatureValue] = {} if explained is None else dict(explained.features)
        features.update(_named(prepared.root_names, prepared.root_x[0]))
        features["gnn_fraud_logit"] = float(scores.fraud_logit[0])
        features["gnn_pd_logit"] = float(scores.pd_logit[0])
        features.setdefault("tenure_days", round(math.expm1(float(
            features.get("gnn_tenure_log_d", 0.0))), 1))  # type: ignore[arg-type]
        features.setdefault("order_count", int(round(math.expm1(float(
            features.get("gnn_orders_log", 0.0))))))  # type: ignore[arg-type]
        return ScoreResult(
            fraud_probability=float(scores.fraud[0]), pd=float(scores.pd[0]),
            features=features, signals=() if explained is None else explained.signals,
            model_version=self.pipeline.version, graph_version=graph_version)


def _named(names: list[str], values: np.ndarray) -> Mapping[str, FeatureValue]:
    return {f"gnn_{n}": round(float(v), 6) for n, v in zip(names, values.tolist(), strict=True)}
