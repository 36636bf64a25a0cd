"""`GraphScorer`: the :class:`serving.scoring.Scorer` that decides: a model over the live graph.

The model is a :class:`gnn.ScoringPipeline` (features -> time-respecting neighbour sample ->
network -> calibration, the promoted GNN) or the transparent rules over the same features when
no model is promoted. It reads the process's live graph state — the model's arrays
(:class:`gnn.LendingGraph`) that :class:`serving.live_graph.LiveGraph` hands over at start and
keeps current by passing on every accepted write (:meth:`GraphScorer.accept`). The writes
accepted before a request are applied before its batch is scored, so its features and its
sampled neighbourhood see them (read your writes in one process). Online and batch rescoring run
the same pipeline over the same arrays: the same application at the same graph state gets the
same score both ways.

What a verdict shows comes from the computation that decided it: the scores, the named root
features (the credit limit's inputs among them, :func:`serving.policy.policy_inputs`) and the
attributions of both scores to those features and to the sampled relations, mapped to reason
codes by :mod:`serving.explanations`.

Where the model runs: with ``process=True`` (CPU only) in a child process forked from the
arrays, which then holds the live state: each batch carries the writes accepted since the last
one, applied there before scoring. The API process so spends no interpreter time on writes,
features, sampling and the forward pass, and HTTP handling does not queue behind them. The
child dies with the API process. A child that dies fails its batch (those verdicts are decided
degraded) and asks for new arrays (``on_lost``); until they come, verdicts are degraded.

A state is warmed before it serves (:func:`warm_up`), and the child is forked from a settled
heap (:func:`serving.heap.settle_heap`): measured at the start of a 100 req/s run on the 100k
world, a cold child took 98-297 ms for batches of 6-20 applications (about 3 ms an application
once warm), and the request queue it built took about a second to drain, the slowest 1 % of a
minute's verdicts. Forked before the settle, each process's first full collection walked (and
so copied) the heap the two shared: 1.66 s in the API process at start, against 0.20 s for the
settle before the fork.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Final, Protocol

import numpy as np

from gnn import ApplicationQueries, GraphWrites, LendingGraph, RootAttribution
from graph import GraphStore
from serving._child_process import die_with_parent
from serving.heap import settle_heap
from serving.policy import PRIOR_PD, policy_inputs
from serving.scoring import ApplicationFacts, FeatureValue, ScoreResult, Signal

log = logging.getLogger(__name__)

BATCH_TIMEOUT_S: Final = 30.0
"""A child process that has not answered a batch in this long is taken for hung (a batch of
256 applications takes well under a second)."""
COMPACT_EVERY: Final = 256
"""Writes between two checks of the arrays' garbage (each check is a few microseconds)."""
PRIOR_FRAUD: Final = 0.01
"""Fraud probability of an application scored without any graph state (degraded)."""
WARM_UP_BATCHES: Final = (1, 2, 4, 8, 16, 32, 64) * 2
"""Batch sizes a new state scores stored applications in before it serves (:func:`warm_up`).
Twice: in the second round the same sizes took 11-32 % less time than in the first (0.45 s in
all on the 100k world)."""


class ApplicationModel(Protocol):
    """What the scorer runs: features and neighbourhood, then scores (the GNN pipeline or
    the rules over the same features)."""

    version: str

    def prepare_applications(self, graph: LendingGraph, apps: ApplicationQueries) -> Any: ...

    def predict(self, prepared: Any, *, device: str = "cpu") -> Any: ...


Explain = Callable[[Any, Any, str], Any]
"""``explain(model, prepared, device)``: the batch's scores and per-root attributions (an
object with ``scores`` and ``root(i)``, as :func:`gnn.attribute` returns)."""
Reasons = Callable[[ApplicationFacts, RootAttribution],
                   tuple[tuple[Signal, ...], tuple[Signal, ...]]]
"""``reasons(facts, root)``: the verdict's fraud and credit signals from its attributions."""


@dataclass(frozen=True)
class Scored:
    """A batch's scores, root features and attributions, row ``i`` for application ``i``."""

    root_names: list[str]
    root_x: np.ndarray
    fraud: np.ndarray
    pd: np.ndarray
    fraud_logit: np.ndarray
    pd_logit: np.ndarray
    roots: list[RootAttribution] | None
    writes_applied: int


@dataclass(frozen=True)
class BatchStats:
    """What one batch cost where the model runs (:attr:`GraphScorer.on_batch`).

    Args:
        applications (int): applications scored.
        writes (int): accepted writes applied before them.
        apply_s (float): wall seconds applying the writes.
        score_s (float): wall seconds scoring (features, sampling, forward pass, attributions).
        cpu_s (float): CPU seconds of the thread that did both: below ``apply_s + score_s``
            when it waited for a core.
    """

    applications: int
    writes: int
    apply_s: float
    score_s: float
    cpu_s: float


def run_batch(model: ApplicationModel, graph: LendingGraph, writes: Sequence[GraphWrites],
              applications: Sequence[ApplicationFacts], device: str,
              explain: Explain | None = None) -> tuple[Scored, BatchStats]:
    """One batch where the model runs (the child process or the scorer's thread): apply
    ``writes``, then score ``applications`` (:func:`score_applications`), timed."""
    t0, c0 = time.perf_counter(), time.thread_time()
    apply_writes(graph, writes)
    t1 = time.perf_counter()
    scored = score_applications(model, graph, applications, device, explain)
    t2 = time.perf_counter()
    return scored, BatchStats(len(applications), len(writes), t1 - t0, t2 - t1,
                              time.thread_time() - c0)


def score_applications(model: ApplicationModel, graph: LendingGraph,
                       applications: Sequence[ApplicationFacts], device: str,
                       explain: Explain | None = None) -> Scored:
    """Score applications against ``graph`` as it is now (what a batch of the scorer does).

    Args:
        model (ApplicationModel): the pipeline.
        graph (LendingGraph): the graph state, which does not hold these applications yet.
        applications (Sequence[ApplicationFacts]): the applications, identifiers hashed.
        device (str): where the model runs.
        explain (Explain, optional): attributions of the scores. (default: none)
    """
    q = ApplicationQueries.concat([ApplicationQueries.from_facts(
        graph, application_id=a.application_id, user_id=a.user_id, product=a.product,
        amount=a.amount, ts=a.ts, lat=a.lat, lon=a.lon, device_id=a.device_id, ip=a.ip,
        merchant_id=a.merchant_id, phone_id=a.phone_id, address_id=a.address_id,
        term_months=a.term) for a in applications])
    prepared = model.prepare_applications(graph, q)
    roots: list[RootAttribution] | None = None
    if explain is None:
        scores = model.predict(prepared, device=device)
    else:
        # NOTE: the attributions come with the scores of the same forward pass
        explained = explain(model, prepared, device)
        scores = explained.scores
        roots = [explained.root(i) for i in range(len(q))]
    return Scored(list(prepared.root_names), prepared.root_x, scores.fraud, scores.pd,
                  scores.fraud_logit, scores.pd_logit, roots, graph.writes_applied)


def verdict_features(names: Sequence[str], values: np.ndarray, fraud_logit: float,
                     pd_logit: float) -> dict[str, FeatureValue]:
    """What a verdict records of its scoring: the root features, both logits and the policy's
    inputs read from them (:func:`serving.policy.policy_inputs`); the policy backtest replays
    from the same (:mod:`serving.backtest`).

    Args:
        names (Sequence[str]): root feature names.
        values (np.ndarray): their raw values for one application ``[F]``.
        fraud_logit (float): the fraud logit.
        pd_logit (float): the default logit.
    """
    features: dict[str, FeatureValue] = {
        n: round(float(v), 6) for n, v in zip(names, values.tolist(), strict=True)}
    features.update(fraud_logit=fraud_logit, pd_logit=pd_logit)
    features.update(policy_inputs(names, values))
    return features


class GraphScorer:
    """Scores applications with a model over the live graph state (see the module docstring).

    Args:
        model (ApplicationModel): the pipeline (usually ``ModelRegistry.load()``).
        device (str, optional): where the model runs. (default: ``"cpu"``)
        process (bool, optional): run the model and hold the state in a child process; only
            on CPU, ignored on a GPU. (default: ``False``)
        explain (Explain, optional): attributions of each batch's scores. (default: none)
        reasons (Reasons, optional): a verdict's signals from its attributions.
            (default: none: no model reasons)
        on_lost (Callable[[], None], optional): called when the state is lost (the child
            died), to have new arrays built. (default: none)
        nice (int, optional): niceness added to the child process (a challenger's: the
            operating system runs the champion's child first). (default: ``0``)
        on_batch (Callable[[BatchStats], None], optional): told what each batch cost, from
            the batcher's thread once its verdicts are out (the service's metrics).
            (default: none)
    """

    def __init__(self, model: ApplicationModel, *, device: str = "cpu", process: bool = False,
                 explain: Explain | None = None, reasons: Reasons | None = None,
                 on_lost: Callable[[], None] | None = None, nice: int = 0,
                 on_batch: Callable[[BatchStats], None] | None = None) -> None:
        self.model = model
        self.device = device
        self.process = process and device == "cpu"
        self.explain = explain
        self.reasons = reasons
        self.on_lost = on_lost
        self.nice = nice
        self.on_batch = on_batch
        self._next_model: ApplicationModel | None = None
        self._lock = threading.Lock()
        self._batcher = _Batcher(self._score_batch, self._batch_done)
        self._graph: LendingGraph | None = None
        self._worker: _Worker | None = None
        self._pending: list[GraphWrites] = []
        self._base = "none"

    def __repr__(self) -> str:
        return (f"GraphScorer(model={self.model.version!r}, graph={self._base!r}, "
                f"device={self.device!r}, process={self.process})")

    @property
    def model_version(self) -> str:
        return self.model.version

    def ready(self) -> bool:
        return self._graph is not None or self._worker is not None

    # -- the state ----------------------------------------------------------------------------
    def set_model(self, model: ApplicationModel) -> None:
        """Score with ``model`` from the next state on (:meth:`set_graph`, which a rebuild of
        the live graph's arrays calls): until then the current model keeps deciding, so that
        a swap never leaves a request without one."""
        with self._lock:
            self._next_model = model

    @property
    def pending_model(self) -> str | None:
        """The version waiting for the next state, if any."""
        with self._lock:
            return None if self._next_model is None else self._next_model.version

    def set_graph(self, graph: LendingGraph, writes: Sequence[GraphWrites] = ()) -> None:
        """Score against ``graph`` from now on, after ``writes`` (accepted since ``graph``
        was exported; applied before the next batch). The scorer owns ``graph`` from here:
        it applies every accepted write to it."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        with self._lock:
            model = self._next_model or self.model
        if self.process:
            worker = _Worker(model, graph, self.device, self.explain, self.nice)
        else:
            worker = None
            warm_up(model, graph, self.device, self.explain)
        with self._lock:
            old = self._worker
            self._graph = None if self.process else graph
            self._worker = worker
            self._pending = list(writes)
            self._base = f"live:{stamp}"
            self.model = model
            if self._next_model is model:
                self._next_model = None
        if old is not None:
            old.close()

    def accept(self, writes: GraphWrites) -> None:
        """An accepted write: applied to the state before the next batch is scored.

        NOTE: without a state (none yet, or a lost child) the write is not kept: the state to
        come is exported from the store once every accepted write is stored, plus the writes
        accepted since the export began (:meth:`serving.live_graph.LiveGraph.refresh`).
        """
        with self._lock:
            if self._graph is not None or self._worker is not None:
                self._pending.append(writes)

    def close(self) -> None:
        """Stop the model's child process, if there is one."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    # -- scoring ------------------------------------------------------------------------------
    def score(self, application: ApplicationFacts, store: GraphStore | None) -> ScoreResult:
        """Score one application against the live state (the store is not read).

        Without a state yet (start-up, a lost child) the result is the prior, with no
        graph: the service flags such verdicts degraded.

        Raises:
            RuntimeError: the batch failed (the child died or scoring raised).
        """
        del store  # NOTE: the live state is the source; the store is the durable copy
        if not self.ready():
            return self.prior(application)
        return self._result(self._batcher.submit(application))

    def score_many(self, applications: Sequence[ApplicationFacts]) -> list[ScoreResult]:
        """Score several applications, queued at once so that they share batches (what a
        caller that is not a request, the challenger, uses); the prior without a state.

        Raises:
            RuntimeError: a batch failed.
        """
        if not self.ready():
            return [self.prior(a) for a in applications]
        return [self._result(job) for job in [self._batcher.submit(a) for a in applications]]

    def _result(self, job: _Job) -> ScoreResult:
        application = job.application
        scored, i = job.result()
        features = verdict_features(scored.root_names, scored.root_x[i],
                                    float(scored.fraud_logit[i]), float(scored.pd_logit[i]))
        fraud: tuple[Signal, ...] = ()
        credit: tuple[Signal, ...] = ()
        if self.reasons is not None and scored.roots is not None:
            fraud, credit = self.reasons(application, scored.roots[i])
        return ScoreResult(
            fraud_probability=float(scored.fraud[i]), pd=float(scored.pd[i]),
            features=features, fraud_signals=fraud, credit_signals=credit,
            model_version=job.version,
            graph_version=f"{job.base}+{scored.writes_applied}")

    def _batch_done(self, stats: BatchStats) -> None:
        if self.on_batch is None:
            return
        try:
            self.on_batch(stats)
        except Exception:  # noqa: BLE001 - what a batch cost never fails its verdicts
            log.exception("on_batch failed")

    def prior(self, application: ApplicationFacts) -> ScoreResult:
        """The scores of an application without any graph: base rates, no reasons."""
        return ScoreResult(PRIOR_FRAUD, PRIOR_PD[application.product], {"degraded": True}, (),
                           (), self.model.version, "none")

    def _score_batch(self, jobs: list[_Job]) -> BatchStats:
        """Apply the writes accepted so far, then score the waiting applications as one batch.

        Trees do not depend on which other seeds share a batch (the sampler ranks candidates
        by hashes of the seed's own keys), so each application gets the score it would get
        alone.
        """
        with self._lock:
            graph, worker, base = self._graph, self._worker, self._base
            model = self.model
            writes, self._pending = self._pending, []
        applications = [job.application for job in jobs]
        if worker is not None:
            try:
                scored, stats = worker.score(writes, applications)
            except _WorkerDied:
                with self._lock:
                    if self._worker is worker:
                        self._worker = None
                log.error("the model's process died; verdicts are degraded until the "
                          "graph state is rebuilt")
                if self.on_lost is not None:
                    self.on_lost()
                raise
        else:
            if graph is None:
                raise RuntimeError("GraphScorer has no graph state")
            scored, stats = run_batch(model, graph, writes, applications, self.device,
                                      self.explain)
        for job in jobs:
            job.base, job.version = base, model.version
        for i, job in enumerate(jobs):
            job.scored, job.row = scored, i
        return stats


def warm_up(model: ApplicationModel, graph: LendingGraph, device: str,
            explain: Explain | None = None, *, seed: int = 0) -> int:
    """Score stored applications of ``graph`` in batches of :data:`WARM_UP_BATCHES` and drop
    the results, so that the first verdicts do not pay for what runs once (memory first
    touched, caches filled, code paths first taken). Reads only: ``graph`` is left as it was.

    Returns:
        int: the applications scored (none when the graph holds none).
    """
    n = graph.num_nodes("Application")
    if n == 0:
        return 0
    rng = np.random.default_rng(seed)
    done = 0
    for size in WARM_UP_BATCHES:
        q = ApplicationQueries.from_graph(graph, rng.integers(0, n, min(size, n)))
        prepared = model.prepare_applications(graph, q)
        if explain is None:
            model.predict(prepared, device=device)
        else:
            explain(model, prepared, device)
        done += len(q)
    return done


def apply_writes(graph: LendingGraph, writes: Sequence[GraphWrites]) -> None:
    """Apply accepted writes to the state, and lay it out again when it holds much garbage."""
    for w in writes:
        graph.apply_writes(w)
    if writes and graph.writes_applied % COMPACT_EVERY < len(writes):
        done = graph.maybe_compact()
        if done:
            log.info("graph state: %d adjacencies laid out again", done)


class _WorkerDied(RuntimeError):
    """The model's child process ended or stopped answering."""


class _Worker:
    """The model and the graph state in a forked child process: batches of writes and facts
    in, :class:`Scored` out, over a pipe. Used from one thread at a time (the batcher's)."""

    def __init__(self, model: ApplicationModel, graph: LendingGraph, device: str,
                 explain: Explain | None, nice: int = 0) -> None:
        ctx = mp.get_context("fork")
        # NOTE: what the child inherits must be frozen before the fork (module docstring).
        settle_heap()
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve_batches,
                                    args=(child, model, graph, device, explain, os.getpid(),
                                          nice),
                                    name="gnn-scorer", daemon=True)
        self._process.start()
        child.close()
        log.info("model process %d started", self._process.pid)

    def score(self, writes: list[GraphWrites], applications: list[ApplicationFacts]
              ) -> tuple[Scored, BatchStats]:
        """Scores of one batch, after ``writes``, and what the batch cost in the child.

        Raises:
            _WorkerDied: the child is gone (the batch is lost).
            RuntimeError: scoring failed in the child (its message).
        """
        try:
            self._conn.send((writes, applications))
            if not self._conn.poll(BATCH_TIMEOUT_S):
                self._process.kill()
                raise _WorkerDied(f"model process {self._process.pid} gave no answer in "
                                  f"{BATCH_TIMEOUT_S:g} s; killed")
            status, value = self._conn.recv()
        except (EOFError, OSError) as e:
            raise _WorkerDied(f"model process {self._process.pid} ended "
                              f"(exit code {self._process.exitcode}): {e!r}") from None
        if status != "ok":
            raise RuntimeError(f"model process: {value}")
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


def _serve_batches(conn: Connection, model: ApplicationModel, graph: LendingGraph, device: str,
                   explain: Explain | None, parent_pid: int, nice: int = 0) -> None:
    """The child process: apply writes and answer batches until the parent closes the pipe."""
    import torch

    die_with_parent(parent_pid)
    if nice:
        os.nice(nice)
    # NOTE: the parent's OpenMP pool does not survive a fork; one thread also suits batches of
    # a few applications. Ctrl-C is for the parent, which stops this process itself.
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        warm_up(model, graph, device, explain)
    except Exception:  # noqa: BLE001 - a batch that fails the same way reports it
        pass
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        writes, applications = message
        try:
            reply: tuple[str, object] = (
                "ok", run_batch(model, graph, writes, applications, device, explain))
        except Exception as e:  # noqa: BLE001 - the parent raises it for the batch
            # NOTE: the traceback goes with the error: this process's log has no handler.
            reply = ("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        conn.send(reply)


@dataclass(eq=False)
class _Job:
    """One application waiting for its batch, then its scores."""

    application: ApplicationFacts
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    scored: Scored | None = None
    row: int = 0
    base: str = "none"
    version: str = ""

    def result(self) -> tuple[Scored, int]:
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

    def __init__(self, score: Callable[[list[_Job]], BatchStats],
                 on_batch: Callable[[BatchStats], None] | None = None,
                 max_batch: int = 256) -> None:
        self._score = score
        self._on_batch = on_batch
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
            stats = None
            try:
                stats = self._score(batch)
            except Exception as e:  # noqa: BLE001 - every waiter hears of it
                for job in batch:
                    job.error = e
            finally:
                for job in batch:
                    job.done.set()
            if stats is not None and self._on_batch is not None:
                self._on_batch(stats)
