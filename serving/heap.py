"""`settle_heap`: what a serving process keeps for its life, out of the garbage collector's reach.

NOTE: a full collection walks every tracked object; with a snapshot of millions of ids in
memory that is a pause of a few hundred milliseconds every few seconds under load, which is the
p99. Objects loaded once and kept for the life of the process need no collecting. What the
service keeps growing between refreshes (the live graph's overlay, ~14 tracked objects a
verdict) still made a full collection of 15-24 ms every ~6.7 s at 100 verdicts/s (measured
with a gc callback in a 40 s run: 4 of them); each stalls every request in flight. With a
settle, the same run had none; cyclic garbage waits longer for collection.

A frozen object is also one a *forked* process never collects: the model's child process
(:class:`serving.graph_scorer.GraphScorer`) is forked after a settle, so neither process's
collections write to the pages they share (each write would copy a page; see
:mod:`serving.graph_scorer`).
"""

from __future__ import annotations

import gc
from typing import Final

FULL_COLLECTION_EVERY: Final = 100
"""Young-generation collections between two full ones (Python's default: 10)."""


def settle_heap() -> None:
    """Collect, then move what survived out of the collector's reach (``gc.freeze``), and make
    full collections rarer.

    The collection walks only what is not frozen yet (what the process made since the last
    settle), and only what survives it is frozen, so no garbage cycle is kept for good.
    """
    gc.collect()
    gc.freeze()
    gen0, gen1, _ = gc.get_threshold()
    gc.set_threshold(gen0, gen1, FULL_COLLECTION_EVERY)
