"""`StoreGuard`: work done when a down store answers again, before calls go through."""

from __future__ import annotations

import threading

import pytest
from serving_world import FlakyStore, wait_until

from graph import GraphStore, StoreUnavailableError
from serving.store_guard import StoreDown, StoreGuard


def test_return_hooks_run_before_calls_go_through_and_retry_until_they_pass(
        ladybug_store: GraphStore) -> None:
    flaky = FlakyStore(ladybug_store)
    guard = StoreGuard(flaky, read_timeout_s=1, write_timeout_s=1, probe_interval_s=0.05,
                       threads=2)
    events: list[str] = []
    attempts = {"n": 0}
    release = threading.Event()

    def hook(store: GraphStore) -> None:
        attempts["n"] += 1
        assert store is flaky
        if attempts["n"] == 1:
            raise StoreUnavailableError("failed again half-way")
        events.append(f"hook up={guard.up}")
        release.wait(5)

    guard.on_return(hook)
    guard.on_up(lambda: events.append(f"listener up={guard.up}"))
    flaky.down = True
    guard.mark_down("test")
    guard.start()
    try:
        with pytest.raises(StoreDown):
            guard.read(lambda s: s.counts())
        flaky.down = False
        wait_until(lambda: bool(events), 10, 0.01)
        with pytest.raises(StoreDown):  # the hook is running: still down
            guard.read(lambda s: s.counts())
        release.set()
        wait_until(lambda: guard.up and len(events) == 2, 10, 0.01)
        assert events == ["hook up=False", "listener up=True"] and attempts["n"] == 2
        assert isinstance(guard.read(lambda s: s.counts()), dict)
    finally:
        release.set()
        guard.close()
