"""`StoreGuard`: every store call of the service, under a timeout, with a down/up state.

A store that is down, failing or slower than its timeout must not take the API down with it:
callers get :class:`StoreDown` quickly and decide in degraded mode. After a failure the guard
stops sending work to the store and a probe thread pings it until it answers, runs the work
that must be done before calls go through again (a replica that started without the store
builds its graph state), then tells its listeners (the spool replayer) that it is back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from graph import GraphError, GraphStore, StoreUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreDown(Exception):
    """The store is down, failing or slower than the configured timeout."""


class StoreGuard:
    """Runs store calls on a thread pool under a timeout and tracks the store's health.

    Args:
        store (GraphStore): the store.
        read_timeout_s (float): budget of a read (a verdict's whole read phase).
        write_timeout_s (float): budget of a write.
        probe_interval_s (float): seconds between pings while the store is down.
        threads (int): pool size; bounds the calls in flight.
        trip_after (int, optional): consecutive write timeouts that mark the store down (one
            unavailability error always does; a slow read only degrades its own verdict, so
            a loaded store keeps taking writes and replicas keep sharing idempotency).
            (default: ``3``)
        investigation_timeout_s (float, optional): budget of an investigator's read
            (:meth:`investigate`). (default: ``10.0``)
        investigation_threads (int, optional): threads of their own for investigators'
            reads. (default: ``4``)
    """

    def __init__(
        self,
        store: GraphStore,
        *,
        read_timeout_s: float,
        write_timeout_s: float,
        probe_interval_s: float,
        threads: int,
        trip_after: int = 3,
        investigation_timeout_s: float = 10.0,
        investigation_threads: int = 4,
    ) -> None:
        if min(read_timeout_s, write_timeout_s, probe_interval_s, investigation_timeout_s) <= 0:
            raise ValueError("timeouts and the probe interval must be positive")
        self.store = store
        self.read_timeout_s = read_timeout_s
        self.write_timeout_s = write_timeout_s
        self.probe_interval_s = probe_interval_s
        self.trip_after = trip_after
        self.investigation_timeout_s = investigation_timeout_s
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="store")
        # NOTE: an investigator's neighbourhood is hundreds of nodes and seconds of reading;
        # on the scoring pool a few of them would hold the threads verdicts read with.
        self._investigation_pool = ThreadPoolExecutor(
            investigation_threads, thread_name_prefix="store-investigation")
        self._up = True
        self._timeouts = 0
        self._state = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._listeners: list[Callable[[], None]] = []
        self._on_return: list[Callable[[GraphStore], None]] = []
        self._probe: threading.Thread | None = None

    def __repr__(self) -> str:
        return (f"StoreGuard(backend={self.store.backend!r}, up={self._up}, "
                f"read_timeout_s={self.read_timeout_s}, write_timeout_s={self.write_timeout_s})")

    @property
    def up(self) -> bool:
        return self._up

    def on_up(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from the probe thread) each time the store comes back."""
        self._listeners.append(listener)

    def on_return(self, hook: Callable[[GraphStore], None]) -> None:
        """Run ``hook(store)`` (from the probe thread) when a down store answers again, before
        calls go through: until it returns, callers still get :class:`StoreDown` (degraded,
        spooled) instead of meeting a store whose state is not built yet. A hook that raises
        keeps the store down until the next probe, which runs every hook again."""
        self._on_return.append(hook)

    def start(self) -> None:
        """Start the probe thread."""
        if self._probe is None:
            self._probe = threading.Thread(target=self._run_probe, name="store-probe",
                                           daemon=True)
            self._probe.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._probe is not None:
            self._probe.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._investigation_pool.shutdown(wait=False, cancel_futures=True)

    # -- calls ------------------------------------------------------------------------------
    def read(self, fn: Callable[[GraphStore], T], *, timeout_s: float | None = None) -> T:
        """Run a read; its own exceptions (a bug, a missing node) pass through unchanged.

        Args:
            fn (Callable[[GraphStore], T]): the read.
            timeout_s (float, optional): instead of the read timeout. (default: ``None``)

        Raises:
            StoreDown: the store is marked down, unavailable, or slower than the timeout.
        """
        return self._call(fn, timeout_s or self.read_timeout_s, write=False)

    def investigate(self, fn: Callable[[GraphStore], T]) -> T:
        """Run an investigator's read under its own budget and on its own threads.

        A verdict's reads must fit in milliseconds or the verdict is degraded; an
        investigator's neighbourhood is a larger read that someone waits seconds for, and
        degrading it would only mean refusing it.

        Raises:
            StoreDown: the store is marked down, unavailable, or slower than
                ``investigation_timeout_s``.
        """
        return self._call(fn, self.investigation_timeout_s, write=False,
                          pool=self._investigation_pool)

    def write(self, fn: Callable[[GraphStore], T], *, timeout_s: float | None = None) -> T:
        """Run a write; any failure but a schema or store rejection counts as the store down.

        Args:
            fn (Callable[[GraphStore], T]): the write.
            timeout_s (float, optional): instead of the write timeout (background group
                commits, which nobody waits for). (default: ``None``)

        Raises:
            StoreDown: as :meth:`read`, with the write timeout.
        """
        return self._call(fn, timeout_s or self.write_timeout_s, write=True)

    def ping(self, timeout_s: float | None = None) -> bool:
        """Whether the store answers a ping now (ignores the down state)."""
        fut = self._pool.submit(self.store.ping)
        try:
            fut.result(timeout_s or self.read_timeout_s)
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False
        return True

    def mark_down(self, reason: str) -> None:
        with self._state:
            was_up, self._up = self._up, False
        if was_up:
            log.warning("graph store marked down: %s", reason)
        self._wake.set()

    def _call(self, fn: Callable[[GraphStore], T], timeout: float, *, write: bool,
              pool: ThreadPoolExecutor | None = None) -> T:
        if not self._up:
            raise StoreDown("graph store is down")
        fut: Future[T] = (pool or self._pool).submit(fn, self.store)
        try:
            result = fut.result(timeout)
        except FutureTimeout:
            fut.cancel()
            if not write:
                raise StoreDown(f"graph store read slower than {timeout}s") from None
            with self._state:
                self._timeouts += 1
                trip = self._timeouts >= self.trip_after
            if trip:
                self.mark_down(f"{self._timeouts} calls in a row slower than {timeout}s")
            raise StoreDown(f"graph store write slower than {timeout}s") from None
        except (StoreUnavailableError, OSError) as e:
            self.mark_down(f"{type(e).__name__}: {e}")
            raise StoreDown(str(e)) from e
        except Exception as e:
            if write and not isinstance(e, GraphError):
                self.mark_down(f"{type(e).__name__}: {e}")
                raise StoreDown(str(e)) from e
            raise
        if write:
            with self._state:
                self._timeouts = 0
        return result

    # -- probe ------------------------------------------------------------------------------
    def _run_probe(self) -> None:
        while not self._stop.is_set():
            if self._up:
                self._wake.wait()
                self._wake.clear()
                continue
            if self.ping(max(self.probe_interval_s, self.read_timeout_s)) and self._returned():
                with self._state:
                    self._up, self._timeouts = True, 0
                log.info("graph store is back")
                for listener in self._listeners:
                    try:
                        listener()
                    except Exception:
                        log.exception("store-up listener failed")
            else:
                self._stop.wait(self.probe_interval_s)

    def _returned(self) -> bool:
        for hook in self._on_return:
            try:
                hook(self.store)
            except Exception as e:  # noqa: BLE001 - the store failed again: stay down
                log.warning("graph store answers but is not caught up with yet: %s", e)
                return False
        return True
