"""The server's heap settings: start-up objects frozen, full collections ten times rarer."""

from __future__ import annotations

import gc

from serving.api.runtime import FULL_COLLECTION_EVERY, _settle_heap


def test_settling_the_heap_freezes_it_and_spaces_full_collections() -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's defaults (an app started earlier changed them)
    kept = [{"id": i} for i in range(1000)]  # tracked objects alive at start-up
    try:
        _settle_heap()
        assert gc.get_freeze_count() >= len(kept)
        assert gc.get_threshold() == (700, 10, FULL_COLLECTION_EVERY)
        assert FULL_COLLECTION_EVERY > 10
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
