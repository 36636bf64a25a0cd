"""The server's heap settings: start-up objects frozen, full collections ten times rarer."""

from __future__ import annotations

import gc
import threading
import time
from types import SimpleNamespace

import pytest

from serving.api import runtime
from serving.heap import FULL_COLLECTION_EVERY, settle_heap


def test_settling_the_heap_freezes_it_and_spaces_full_collections() -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's defaults (an app started earlier changed them)
    kept = [{"id": i} for i in range(1000)]  # tracked objects alive at start-up
    try:
        settle_heap()
        assert gc.get_freeze_count() >= len(kept)
        assert gc.get_threshold() == (700, 10, FULL_COLLECTION_EVERY)
        assert FULL_COLLECTION_EVERY > 10
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_what_the_service_keeps_later_is_frozen_within_the_settle_period(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With a freeze at start alone, what the service kept afterwards (the live graph's overlay
    of every write) made each full collection longer than the last: 39, 72, 104 ms a minute
    apart at 100 verdicts/s, past a second after 21 minutes (docs/BENCHMARKS.md, Serving,
    session 7). The runtime now freezes what survived a collection every HEAP_SETTLE_S."""
    monkeypatch.setattr(runtime, "HEAP_SETTLE_S", 0.02)
    before = gc.get_threshold()
    host = SimpleNamespace(_stop=threading.Event())
    thread = threading.Thread(target=runtime.Runtime._run_heap, args=(host,), daemon=True)
    try:
        settle_heap()
        frozen = gc.get_freeze_count()
        thread.start()
        kept_later = [[i] for i in range(5000)]  # tracked objects kept after start-up
        deadline = time.monotonic() + 5
        while gc.get_freeze_count() < frozen + len(kept_later) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gc.get_freeze_count() >= frozen + len(kept_later)
        # what is frozen is out of the full collection's walk
        assert not any(gc.is_tracked(o) and o in gc.get_objects(generation=2)
                       for o in kept_later[:3])
    finally:
        host._stop.set()
        thread.join(5)
        gc.unfreeze()
        gc.set_threshold(*before)
