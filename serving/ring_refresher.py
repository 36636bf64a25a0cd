"""Keeps the stored rings (:mod:`graph.rings`) in step with the live graph: on demand
(``POST /v1/rings/refresh``, ``riskgraph rings refresh``) and every ``RINGS_REFRESH_S``."""

from __future__ import annotations

import logging
import threading

from graph import GraphError, GraphStore, StoreUnavailableError
from graph.rings import RingRefresh, refresh_rings
from serving.errors import UnavailableError

log = logging.getLogger(__name__)


class RingRefresher:
    """One ring refresh at a time over one store.

    Args:
        store (GraphStore): the graph.
        hub_size (int): entities shared by more users are left out of the projection.
        min_size (int): fewest members of a ring.
        seed (int): Leiden's seed.
        interval_s (float | None, optional): refresh period of :meth:`start`'s thread; ``None``
            or 0: no thread. (default: ``None``)
    """

    def __init__(self, store: GraphStore, *, hub_size: int, min_size: int, seed: int,
                 interval_s: float | None = None) -> None:
        self.store = store
        self.hub_size = hub_size
        self.min_size = min_size
        self.seed = seed
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> RingRefresh:
        """Find and store the rings now; a call while another runs waits for it and runs
        after it (the graph may have changed meanwhile).

        Raises:
            UnavailableError: the store is down or refused a read or write.
        """
        with self._lock:
            try:
                done = refresh_rings(self.store, hub_size=self.hub_size,
                                     min_size=self.min_size, seed=self.seed)
            except StoreUnavailableError as e:
                raise UnavailableError(f"graph store unavailable: {e}") from e
            except GraphError as e:
                raise UnavailableError(f"ring refresh failed: {e}") from e
        log.info("rings refreshed", extra={"rings": done.rings, "members": done.members,
                                           "retired": done.retired,
                                           "seconds": dict(done.seconds)})
        return done

    def start(self) -> None:
        """Refresh every ``interval_s`` in a thread of its own (nothing without a period)."""
        if not self.interval_s:
            return
        self._thread = threading.Thread(target=self._run, name="ring-refresh", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread; a refresh under way finishes first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _run(self) -> None:
        assert self.interval_s
        while not self._stop.wait(self.interval_s):
            try:
                self.refresh()
            except UnavailableError as e:
                log.warning("rings not refreshed: %s", e)
