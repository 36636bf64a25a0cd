"""`GnnScorer`: the :class:`serving.scoring.Scorer` backed by the promoted GNN pipeline.

Probabilities come from :class:`gnn.ScoringPipeline` — kernel features -> time-respecting
neighbour sample -> HeteroRiskGNN -> calibration — run on an in-memory graph state
(:class:`gnn.LendingGraph`, exported from the store by :meth:`GnnScorer.refresh`) plus the facts of
the application being scored. That is the same code batch rescoring runs, so an application
scored here gets the score a batch run over the same graph state gives it.

Reasons: the GNN's numbers are not evidence an investigator can check, so when an ``explainer``
scorer is given (the transparent :class:`serving.rules_scorer.RulesScorer`) its signals and
limit inputs (``monthly_spend`` ...) are kept and the GNN's probabilities replace its points.

Where the model runs: with ``process=True`` (CPU only) in a child process forked when a graph
state is set, which inherits the model and the graph without copying them; the API process then
spends no interpreter time on features, sampling and the forward pass (~10 ms a batch), so
HTTP handling, the rules explainer and the writes do not queue behind them. A child that dies
fails its batch (the service decides those verdicts degraded) and is forked again for the
next one.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Final

import numpy as np

from gnn import ApplicationQueries, LendingGraph, ModelRegistry, ScoringPipeline
from graph import GraphStore
from graph.snapshot import GraphSnapshot
from serving._child_process import die_with_parent
from serving.scoring import ApplicationFacts, FeatureValue, Scorer, ScoreResult

log = logging.getLogger(__name__)

BATCH_TIMEOUT_S: Final = 30.0
"""A child process that has not answered a batch in this long is taken for hung (a batch of
256 applications takes well under a second)."""


class GnnScorer:
    """Scores applications with a trained pipeline over a graph state.

    Args:
        pipeline (ScoringPipeline): the model (usually ``ModelRegistry.load()``).
        explainer (Scorer, optional): source of reasons and policy inputs. (default: none)
        graph (LendingGraph, optional): an initial graph state. (default: none; the first
            :meth:`score` with a store, or :meth:`refresh`, builds it)
        device (str, optional): where the model runs. (default: ``"cpu"``)
        process (bool, optional): run the model in a child process (module docstring); only
            on CPU, ignored on a GPU. (default: ``False``)
    """

    def __init__(self, pipeline: ScoringPipeline, *, explainer: Scorer | None = None,
                 graph: LendingGraph | None = None, device: str = "cpu",
                 process: bool = False) -> None:
        self.pipeline = pipeline
        self.explainer = explainer
        self.device = device
        self.process = process and device == "cpu"
        self._lock = threading.Lock()
        self._batcher = _Batcher(self._score_batch)
        self._graph: LendingGraph | None = None
        self._graph_version = "none"
        self._worker: _Worker | None = None
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
                f"explainer={self.explainer!r}, device={self.device!r}, "
                f"process={self.process})")

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
        worker = _Worker(self.pipeline, graph, self.device) if self.process else None
        with self._lock:
            old = self._worker
            self._graph, self._graph_version, self._worker = graph, version, worker
        if old is not None:
            old.close()

    def close(self) -> None:
        """Stop the model's child process, if there is one (it also ends with this one)."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

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
        job = self._batcher.submit(application)
        explained = None
        if self.explainer is not None:
            # NOTE: while the batch with this application is scored.
            explained = self.explainer.score(application, store)
        scored, i = job.result()
        features: dict[str, FeatureValue] = {} if explained is None else dict(explained.features)
        features.update(_named(scored.root_names, scored.root_x[i]))
        features["gnn_fraud_logit"] = float(scored.fraud_logit[i])
        features["gnn_pd_logit"] = float(scored.pd_logit[i])
        features.setdefault("tenure_days", round(math.expm1(float(
            features.get("gnn_tenure_log_d", 0.0))), 1))  # type: ignore[arg-type]
        features.setdefault("order_count", int(round(math.expm1(float(
            features.get("gnn_orders_log", 0.0))))))  # type: ignore[arg-type]
        return ScoreResult(
            fraud_probability=float(scored.fraud[i]), pd=float(scored.pd[i]),
            features=features, signals=() if explained is None else explained.signals,
            model_version=self.pipeline.version, graph_version=job.graph_version)

    def _score_batch(self, jobs: list[_Job]) -> None:
        """Score the waiting applications as one batch (one sample, one forward pass), here or
        in the child process.

        Trees do not depend on which other seeds share a batch (the sampler ranks candidates
        by hashes of the seed's own keys), so each application gets the score it would get
        alone.
        """
        with self._lock:
            graph, graph_version, worker = self._graph, self._graph_version, self._worker
        assert graph is not None
        applications = [job.application for job in jobs]
        if worker is None:
            scored = _score_applications(self.pipeline, graph, applications, self.device)
        else:
            try:
                scored = worker.score(applications)
            except _WorkerDied:
                with self._lock:
                    if self._worker is worker:
                        # NOTE: forked again for the next batch; this one is failed.
                        self._worker = _Worker(self.pipeline, graph, self.device)
                raise
        for i, job in enumerate(jobs):
            job.scored, job.row, job.graph_version = scored, i, graph_version


@dataclass(frozen=True)
class _Scored:
    """A batch's scores and root features, row ``i`` for application ``i``."""

    root_names: list[str]
    root_x: np.ndarray
    fraud: np.ndarray
    pd: np.ndarray
    fraud_logit: np.ndarray
    pd_logit: np.ndarray


def _score_applications(pipeline: ScoringPipeline, graph: LendingGraph,
                        applications: Sequence[ApplicationFacts], device: str) -> _Scored:
    q = ApplicationQueries.concat([ApplicationQueries.from_facts(
        graph, application_id=a.application_id, user_id=a.user_id, product=a.product,
        amount=a.amount, ts=a.ts, lat=a.lat, lon=a.lon, device_id=a.device_id, ip=a.ip,
        merchant_id=a.merchant_id) for a in applications])
    prepared = pipeline.prepare_applications(graph, q)
    scores = pipeline.predict(prepared, device=device)
    return _Scored(list(prepared.root_names), prepared.root_x, scores.fraud, scores.pd,
                   scores.fraud_logit, scores.pd_logit)


class _WorkerDied(RuntimeError):
    """The model's child process ended or stopped answering."""


class _Worker:
    """The model in a forked child process: batches of facts in, :class:`_Scored` out, over a
    pipe. Used from one thread at a time (the batcher's)."""

    def __init__(self, pipeline: ScoringPipeline, graph: LendingGraph, device: str) -> None:
        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve_batches, args=(child, pipeline, graph, device),
                                    name="gnn-scorer", daemon=True)
        self._process.start()
        child.close()
        log.info("GNN scorer process %d started", self._process.pid)

    def score(self, applications: list[ApplicationFacts]) -> _Scored:
        """Scores of one batch.

        Raises:
            _WorkerDied: the child is gone (the batch is lost, the caller forks another).
            RuntimeError: scoring failed in the child (its message).
        """
        try:
            self._conn.send(applications)
            if not self._conn.poll(BATCH_TIMEOUT_S):
                self._process.kill()
                raise _WorkerDied(f"GNN scorer process {self._process.pid} gave no answer in "
                                  f"{BATCH_TIMEOUT_S:g} s; killed")
            status, value = self._conn.recv()
        except (EOFError, OSError) as e:
            raise _WorkerDied(f"GNN scorer process {self._process.pid} ended "
                              f"(exit code {self._process.exitcode}): {e!r}") from None
        if status != "ok":
            raise RuntimeError(f"GNN scorer process: {value}")
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        try:
            self._conn.send(None)
        except OSError:
            pass
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
        self._conn.close()


def _serve_batches(conn: Connection, pipeline: ScoringPipeline, graph: LendingGraph,
                   device: str) -> None:
    """The child process: answer batches until the parent closes the pipe or ends."""
    die_with_parent()
    import torch

    # NOTE: the parent's OpenMP pool does not survive a fork; one thread also suits batches of
    # a few applications. Ctrl-C is for the parent, which stops this process itself.
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            applications = conn.recv()
        except (EOFError, OSError):
            return
        if applications is None:
            return
        try:
            reply: tuple[str, object] = (
                "ok", _score_applications(pipeline, graph, applications, device))
        except Exception as e:  # noqa: BLE001 - the parent raises it for the batch
            reply = ("error", f"{type(e).__name__}: {e}")
        conn.send(reply)


def _named(names: list[str], values: np.ndarray) -> Mapping[str, FeatureValue]:
    return {f"gnn_{n}": round(float(v), 6) for n, v in zip(names, values.tolist(), strict=True)}


@dataclass(eq=False)
class _Job:
    """One application waiting for its batch, then its scores."""

    application: ApplicationFacts
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    scored: _Scored | None = None
    row: int = 0
    graph_version: str = "none"

    def result(self) -> tuple[_Scored, int]:
        """Block until the batch is scored; its scores and this application's row in them.

        Raises:
            BaseException: the batch's error.
        """
        self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.scored is not None
        return self.scored, self.row


class _Batcher:
    """Requests that arrive while a batch is being scored form the next batch.

    One scoring thread; no timer. At low load it takes each application as it arrives and
    scores it alone; under load, everything that queued while a batch was scored becomes the
    next batch, so the fixed cost of sampling and of a forward pass (most of a small batch's
    cost) is paid per batch, not per request.
    """

    def __init__(self, score: Callable[[list[_Job]], None], max_batch: int = 256) -> None:
        self._score = score
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._waiting: list[_Job] = []
        self._thread: threading.Thread | None = None

    def submit(self, application: ApplicationFacts) -> _Job:
        """Queue ``application`` for the next batch; :meth:`_Job.result` for its scores."""
        job = _Job(application)
        with self._cond:
            self._waiting.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="gnn-batcher",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
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
