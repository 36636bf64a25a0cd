"""`Runtime`: the long-lived objects one app serves with, wired once by the app factory."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Final

from graph import GraphStore, Pseudonymiser
from serving.cases import CaseService
from serving.ingest_service import IngestService
from serving.keys import KEY_CACHE_FILE, KeyRing
from serving.champion_challenger import ModelSlots
from serving.drift import DriftMonitor
from serving.heap import settle_heap
from serving.live_graph import LiveGraph
from serving.ring_refresher import RingRefresher
from serving.metrics import ServingMetrics
from serving.policy import Policy
from serving.rate_limiter import RateLimiter
from serving.read_audit import ReadAudit
from serving.scoring import Scorer
from serving.scoring_service import ScoringService
from serving.settings import Settings
from serving.spool import Spool
from serving.store_guard import StoreGuard
from serving.watchlist import Watchlist
from serving.writer import DurableWriter

log = logging.getLogger(__name__)

SETTLE_TIMEOUT_S: Final = 30.0
"""How long a live-graph refresh waits for the writes accepted before it to reach the store
before it keeps the whole overlay instead."""
HEAP_SETTLE_S: Final = 10.0
"""How often what the service kept since the last settle is frozen
(:func:`serving.heap.settle_heap`), so that a full collection never walks more than this long's
worth of objects.

NOTE: called at start, after a catch-up refresh and every period: with a freeze at start alone,
the objects made since (the overlay of every write; the bench runs without refreshes) made each
full collection longer than the last: 39, 72, 104 ms a minute apart at 100 verdicts/s, past a
second after 21 minutes. A settle walks only ~10 s of writes (a few milliseconds)."""


@dataclass
class Runtime:
    """Everything the routes need; background threads start and stop with the app."""

    settings: Settings
    store: GraphStore
    scorer: Scorer
    policy: Policy
    metrics: ServingMetrics
    guard: StoreGuard
    spool: Spool
    writer: DurableWriter
    keyring: KeyRing
    limiter: RateLimiter
    scoring: ScoringService
    ingest: IngestService
    cases: CaseService
    watchlist: Watchlist
    read_audit: ReadAudit
    pseudonymiser: Pseudonymiser
    live_graph: LiveGraph | None = None
    models: ModelSlots | None = None
    drift: DriftMonitor | None = None
    rings: RingRefresher | None = None
    ready_cache: tuple[float, bool] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _keys_thread: threading.Thread | None = None
    _heap_thread: threading.Thread | None = None
    _store_at_start: str | None = None
    _live_graph_caught_up: bool = False

    def start_without_store(self, reason: str) -> None:
        """Before :meth:`start`: the store did not answer while the app was built (no schema
        applied, no graph loaded). The guard starts down, so no call waits on the store; when
        it answers, the schema, the in-memory graph and the model's graph state are built
        before verdicts use it again (:meth:`StoreGuard.on_return`)."""
        self._store_at_start = reason

    def start(self) -> None:
        """Load keys, start the store probe, the spool replayer and the key refresher."""
        self.keyring.use_cache(self.settings.DATA_DIR / KEY_CACHE_FILE)
        if self._store_at_start is not None:
            self.guard.mark_down(f"unreachable at start: {self._store_at_start}")
            self.guard.on_return(self._catch_up)
        self._refresh_keys()
        self.scoring.warm_up()
        self.guard.on_up(self._refresh_keys)
        # NOTE: a restarted server plans every query afresh; the first verdicts after an
        # outage would otherwise spend their read budget on it and be decided degraded.
        self.guard.on_up(self._warm_up_in_background)
        self.guard.start()
        if self.models is not None:
            # NOTE: before the writer replays the spool: a challenger named at start is
            # built from the same arrays as the champion, which no write has reached yet.
            self.models.start()
        self.writer.start()
        if self.live_graph is not None:
            # NOTE: after an outage the store holds what other replicas wrote meanwhile.
            self.guard.on_up(self._refresh_live_graph)
            # NOTE: started also without a period: it rebuilds the model's state on request.
            self.live_graph.start_refresh(self.store, self.settings.LIVE_GRAPH_REFRESH_S or None,
                                          settle=self._writes_stored)
        self._keys_thread = threading.Thread(target=self._run_keys, name="key-refresh",
                                             daemon=True)
        self._keys_thread.start()
        settle_heap()
        self._heap_thread = threading.Thread(target=self._run_heap, name="heap-settle",
                                             daemon=True)
        self._heap_thread.start()
        if self.rings is not None:
            self.rings.start()

    def stop(self) -> None:
        """Stop the threads, release the spool; the store belongs to the caller."""
        self._stop.set()
        if self.rings is not None:
            self.rings.close()
        if self.live_graph is not None:
            self.live_graph.close()
        if self.models is not None:
            self.models.close()
        self.writer.close()
        self.guard.close()
        self.scorer.close()
        if self._keys_thread is not None:
            self._keys_thread.join(timeout=5)
        if self._heap_thread is not None:
            self._heap_thread.join(timeout=5)
        self.spool.close()

    def _warm_up_in_background(self) -> None:
        threading.Thread(target=self.scoring.warm_up, name="warm-up", daemon=True).start()

    def _catch_up(self, store: GraphStore) -> None:
        """What the app factory could not do with the store down; once."""
        if self._store_at_start is None:
            return
        t0 = time.perf_counter()
        store.apply_schema()
        if self.live_graph is not None:
            # NOTE: no settle: the writes accepted meanwhile wait in the spool, which replays
            # only once the store is marked up; the overlay keeps them counted once. The
            # model's state is rebuilt by the refresh thread once they are stored.
            self.live_graph.refresh(store)
            self._live_graph_caught_up = True
            if not self.scorer.ready():
                self.live_graph.request_rebuild()
        self._store_at_start = None
        log.info("caught up with the graph store in %.1fs", time.perf_counter() - t0)

    def _refresh_live_graph(self) -> None:
        live = self.live_graph
        if live is None:
            return
        if self._live_graph_caught_up:
            self._live_graph_caught_up = False
            return

        def run() -> None:
            try:
                live.refresh(self.store, settle=self._writes_stored)
            except Exception as e:  # noqa: BLE001 - keep serving from the current base
                log.warning("live graph not refreshed: %s", e)
            else:
                settle_heap()

        threading.Thread(target=run, name="live-graph-catch-up", daemon=True).start()

    def _writes_stored(self) -> bool:
        """Whether every write accepted so far reached the store (waits a while for it)."""
        return self.writer.wait_stored(SETTLE_TIMEOUT_S)

    def _refresh_keys(self) -> None:
        try:
            self.guard.write(self.keyring.refresh)
        except Exception as e:  # noqa: BLE001 - keep serving with the keys already loaded
            log.warning("API keys not refreshed: %s", e)
        # NOTE: the watchlist rides the keys' refresh: both are small records every replica
        # holds in memory so that a verdict never waits on the store for them.
        try:
            self.guard.read(self.watchlist.refresh, timeout_s=self.settings.STORE_WRITE_TIMEOUT_S)
        except Exception as e:  # noqa: BLE001 - keep scoring with the entries already loaded
            log.warning("watchlist not refreshed: %s", e)

    def _run_heap(self) -> None:
        while not self._stop.wait(HEAP_SETTLE_S):
            settle_heap()

    def _run_keys(self) -> None:
        while not self._stop.wait(self.settings.KEYS_REFRESH_S):
            if self.guard.up:
                self._refresh_keys()
