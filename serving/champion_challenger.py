"""`ModelSlots`: the champion that decides, the challenger scored beside it, and the registry
watched so that a promotion, a rollback or a new challenger takes effect without a restart.

**Off the latency path.** A verdict is decided by the champion alone
(:class:`serving.graph_scorer.GraphScorer`). Once it is answered, the application is put on the
challenger's queue (``put_nowait``: a full queue drops it, counted; the request never waits).
A thread of its own takes what queued, has the challenger score it in a child process of its
own, reniced (:data:`CHALLENGER_NICE`) so that the operating system runs the champion's child
first on a busy machine, applies the policy to the challenger's scores, and writes a
``ChallengerScore`` record beside the verdict (same application id) in batches. The challenger
keeps a graph state of its own, fed every accepted write like the champion's; it scores an
application a moment after the champion did, against the graph as it is then (the features
and the neighbourhood are as of the application's time, so later writes do not enter). Its
decision uses no attributions (the challenger runs no explainer), so the policy's fraud-reason
guard does not apply to it. Records are monitoring data: while the store is down they are
dropped and counted, never spooled.

**Model changes.** A thread reads the registry's promoted and challenger pointers every
``interval_s``; on a change it loads the new model (a model this code refuses is logged and
not taken) and asks the live graph for a rebuild of the model arrays
(:meth:`serving.live_graph.LiveGraph.request_rebuild`): the new state, with the new models, is
built from the store while the old one keeps deciding, then swapped in
(:meth:`GraphScorer.set_model`, :meth:`GraphScorer.set_graph`). So ``riskgraph models
rollback`` (and ``promote``, ``challenger``) reach a running service within the interval plus
one rebuild.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from gnn import GraphWrites, LendingGraph, ModelError, ModelRegistry, RulesModel
from serving.graph_scorer import ApplicationModel, GraphScorer
from serving.live_graph import LiveGraph
from serving.metrics import ServingMetrics
from serving.policy import Policy, decide
from serving.scoring import ApplicationFacts
from serving.store_guard import StoreGuard

log = logging.getLogger(__name__)

CHALLENGER_NICE: Final = 10
"""Niceness added to the challenger's child process."""
QUEUE_SIZE: Final = 10_000
"""Applications waiting for the challenger; more are dropped (counted)."""
BATCH: Final = 256
"""Most applications the challenger scores, and records written, at once."""
FLUSH_S: Final = 1.0
"""Longest a challenger score waits before its record is written."""
_STOP: Final = object()


@dataclass(frozen=True)
class ChampionVerdict:
    """What the champion answered, kept beside the challenger's score."""

    facts: ApplicationFacts
    decision: str
    fraud_probability: float
    pd: float
    model_version: str
    degraded: bool
    features: Mapping[str, Any] = field(default_factory=dict)


class ChallengerScorer:
    """Scores answered applications with a challenger model in the background (module
    docstring) and writes ``ChallengerScore`` records.

    Args:
        scorer (GraphScorer): the challenger's scorer (its own state and child process).
        policy (Policy): the policy the champion's verdicts were decided with.
        guard (StoreGuard): where the records go.
        metrics (ServingMetrics): where to count.
        degraded_cap (float, optional): as the scoring service's. (default: ``None``)
    """

    def __init__(self, scorer: GraphScorer, *, policy: Policy, guard: StoreGuard,
                 metrics: ServingMetrics, degraded_cap: float | None = None) -> None:
        self.scorer = scorer
        self.policy = policy
        self.guard = guard
        self.metrics = metrics
        self.degraded_cap = degraded_cap
        self._queue: queue.Queue[ChampionVerdict | object] = queue.Queue(QUEUE_SIZE)
        self._outstanding = 0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="challenger", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"ChallengerScorer({self.version!r}, queued={self._queue.qsize()})"

    @property
    def version(self) -> str:
        return self.scorer.model_version

    def submit(self, verdict: ChampionVerdict) -> None:
        """Queue an answered application; never blocks (a full queue drops it, counted)."""
        with self._cond:
            self._outstanding += 1
        try:
            self._queue.put_nowait(verdict)
        except queue.Full:
            self.metrics.challenger.labels(outcome="dropped_queue_full").inc()
            self._done(1)

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until every queued application is scored and its record written or dropped
        (for tests and shutdown)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._outstanding == 0, timeout_s)

    def close(self) -> None:
        """Stop the thread (what is queued is dropped) and the challenger's child."""
        self._queue.put(_STOP)
        self._thread.join(timeout=10)
        self.scorer.close()

    def _done(self, n: int) -> None:
        with self._cond:
            self._outstanding -= n
            self._cond.notify_all()

    def _run(self) -> None:
        rows: list[dict[str, Any]] = []
        taken = 0
        oldest = 0.0
        while True:
            wait = None if not rows else max(0.0, oldest + FLUSH_S - time.monotonic())
            jobs, stop = self._take(wait)
            if jobs:
                if not rows:
                    oldest = time.monotonic()
                taken += len(jobs)
                rows += self._score(jobs)
            if taken and (stop or len(rows) >= BATCH or time.monotonic() - oldest >= FLUSH_S):
                if rows:
                    self._write(rows)
                self._done(taken)
                rows, taken = [], 0
            if stop:
                return

    def _take(self, timeout: float | None) -> tuple[list[ChampionVerdict], bool]:
        """What queued (at most :data:`BATCH`), waiting up to ``timeout`` for the first;
        and whether the scorer is being closed."""
        jobs: list[ChampionVerdict] = []
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return jobs, False
        while True:
            if item is _STOP:
                return jobs, True
            assert isinstance(item, ChampionVerdict)
            jobs.append(item)
            if len(jobs) >= BATCH:
                return jobs, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return jobs, False

    def _score(self, jobs: Sequence[ChampionVerdict]) -> list[dict[str, Any]]:
        if not self.scorer.ready():
            self.metrics.challenger.labels(outcome="dropped_no_state").inc(len(jobs))
            return []
        try:
            results = self.scorer.score_many([j.facts for j in jobs])
        except Exception as e:  # noqa: BLE001 - the champion's verdicts stand; count it
            log.warning("challenger %s failed a batch of %d: %s", self.version, len(jobs), e)
            self.metrics.challenger.labels(outcome="failed").inc(len(jobs))
            return []
        now = int(time.time())
        rows = []
        for job, result in zip(jobs, results, strict=True):
            f = job.facts
            outcome = decide(self.policy, application_id=f.application_id,
                             product=f.product, amount=f.amount,
                             fraud_probability=result.fraud_probability, pd=result.pd,
                             features=result.features, degraded=job.degraded,
                             degraded_cap=self.degraded_cap)
            rows.append({
                "id": f"{f.application_id}@{result.model_version}",
                "application_id": f.application_id, "model_version": result.model_version,
                "champion_version": job.model_version, "product": f.product,
                "fraud_probability": float(result.fraud_probability), "pd": float(result.pd),
                "decision": outcome.decision, "champion_decision": job.decision,
                "champion_fraud_probability": job.fraud_probability,
                "champion_pd": job.pd, "scored_at": now})
        return rows

    def _write(self, rows: list[dict[str, Any]]) -> None:
        try:
            self.guard.write(lambda s: s.upsert_nodes("ChallengerScore", rows))
        except Exception as e:  # noqa: BLE001 - monitoring data: dropped, counted
            log.warning("%d challenger scores not stored: %s", len(rows), e)
            self.metrics.challenger.labels(outcome="dropped_store").inc(len(rows))
            return
        self.metrics.challenger.labels(outcome="stored").inc(len(rows))


class ModelSlots:
    """The champion scorer, the challenger beside it, and the registry watcher (module
    docstring).

    Args:
        champion (GraphScorer): the scorer that decides.
        live_graph (LiveGraph): whose rebuilds bring new states (and new models) in.
        registry (ModelRegistry): watched for the promoted and challenger pointers.
        make_challenger (Callable[[ApplicationModel], ChallengerScorer]): builds a
            challenger around a loaded model.
        metrics (ServingMetrics): where to count.
        rebase_on_refresh (bool): whether every refresh rebuilds the arrays (a store other
            processes write), as :meth:`LiveGraph.connect` takes it.
        interval_s (float): how often the registry is read; 0: never.
    """

    def __init__(self, champion: GraphScorer, live_graph: LiveGraph, registry: ModelRegistry,
                 make_challenger: Callable[[ApplicationModel], ChallengerScorer], *,
                 metrics: ServingMetrics, rebase_on_refresh: bool, interval_s: float) -> None:
        self.champion = champion
        self.live_graph = live_graph
        self.registry = registry
        self.make_challenger = make_challenger
        self.metrics = metrics
        self.rebase_on_refresh = rebase_on_refresh
        self.interval_s = interval_s
        self.challenger: ChallengerScorer | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: tuple[str | None, str | None] = (
            _promoted_version(champion), None)

    def __repr__(self) -> str:
        return f"ModelSlots(champion={self.champion.model_version!r}, challenger={self.challenger!r})"

    def start(self) -> None:
        """Feed the challenger the writes and states the champion gets; watch the registry.

        Call it before any write is accepted. A challenger the registry names at start gets
        its state here, built from the live graph as the champion's was: asking for a rebuild
        instead (what a challenger set later does) would export the whole store again once
        traffic runs, which on a 100k-user world took 63 s of both cores and left verdicts
        queued for seconds (docs/BENCHMARKS.md, champion and challenger)."""
        try:
            named = self.registry.challenger()
        except OSError as e:
            log.warning("model registry not read: %s", e)
            named = None
        if named is not None and self.champion.ready():
            self._set_challenger(named)
            if self.challenger is not None:
                self.challenger.scorer.set_graph(self.live_graph.arrays())
                self._seen = (self._seen[0], named)
        self.live_graph.connect(self.accept, self.set_graph, on_refresh=self.rebase_on_refresh)
        self.check()
        if self.interval_s > 0:
            self._thread = threading.Thread(target=self._run, name="model-watch", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            challenger, self.challenger = self.challenger, None
        if challenger is not None:
            challenger.close()

    # -- the live graph's two callbacks ---------------------------------------------------------
    def accept(self, writes: GraphWrites) -> None:
        self.champion.accept(writes)
        challenger = self.challenger
        if challenger is not None:
            challenger.scorer.accept(writes)

    def set_graph(self, graph: LendingGraph, writes: Sequence[GraphWrites] = ()) -> None:
        challenger = self.challenger
        if challenger is not None:
            # NOTE: a child process works on its own copy (fork); a thread needs one made.
            mine = graph if challenger.scorer.process else copy.deepcopy(graph)
            challenger.scorer.set_graph(mine, writes)
        self.champion.set_graph(graph, writes)

    # -- after a verdict --------------------------------------------------------------------
    def after_verdict(self, verdict: ChampionVerdict) -> None:
        """Queue an answered application for the challenger, if there is one (never blocks)."""
        challenger = self.challenger
        if challenger is not None:
            challenger.submit(verdict)

    # -- the registry -------------------------------------------------------------------------
    def check(self) -> bool:
        """Read the registry's pointers once; take what changed. Returns whether a rebuild
        was asked for."""
        try:
            wanted = (self.registry.promoted(), self.registry.challenger())
        except OSError as e:
            log.warning("model registry not read: %s", e)
            return False
        if wanted == self._seen:
            return False
        rebuild = False
        promoted, challenger = wanted
        if promoted != self._seen[0]:
            model = self._load(promoted)
            if model is not None:
                log.info("champion %s -> %s (live, at the next state)",
                         self.champion.model_version, model.version)
                self.champion.set_model(model)
                self.metrics.model_changes.labels(slot="champion").inc()
                rebuild = True
        if challenger != self._seen[1] or (challenger is not None and self.challenger is None):
            self._set_challenger(challenger)
            rebuild = rebuild or challenger is not None
        self._seen = wanted
        if rebuild:
            self.live_graph.request_rebuild()
        return rebuild

    def _set_challenger(self, version: str | None) -> None:
        new = None
        if version is not None:
            model = self._load(version)
            if model is None:
                return
            new = self.make_challenger(model)
            log.info("challenger %s scores beside the champion", version)
        with self._lock:
            old, self.challenger = self.challenger, new
        self.metrics.model_changes.labels(slot="challenger").inc()
        if old is not None:
            old.close()

    def _load(self, version: str | None) -> ApplicationModel | None:
        if version is None:
            return RulesModel()
        try:
            return self.registry.load(version)
        except ModelError as e:
            log.error("model %s not taken: %s", version, e)
            return None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()


def _promoted_version(scorer: GraphScorer) -> str | None:
    """The registry version the scorer started with (``None`` for the rules)."""
    return None if isinstance(scorer.model, RulesModel) else scorer.model_version
