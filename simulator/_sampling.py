"""Vectorised sampling helpers shared by the population, behaviour and pattern modules."""

from __future__ import annotations

from typing import Final

import numpy as np

DAY: Final = 86_400

# NOTE: people act by day more than by night; fraud modules may pass their own profile.
DIURNAL: Final = np.array([0.8, 0.4, 0.25, 0.2, 0.2, 0.4, 1.2, 2.5, 4.0, 5.0, 5.5, 5.8, 6.5,
                           5.5, 5.0, 5.0, 5.2, 5.5, 6.0, 6.8, 7.5, 7.0, 5.0, 2.5])
DIURNAL_P: Final = DIURNAL / DIURNAL.sum()


def lognormal_around(rng: np.random.Generator, median: np.ndarray | float, sigma: float,
                     size: int) -> np.ndarray:
    """Log-normal draws with the given median(s)."""
    return np.asarray(median) * np.exp(sigma * rng.standard_normal(size))


def mean_one_lognormal(rng: np.random.Generator, sigma: float, size: int) -> np.ndarray:
    """Log-normal draws with mean 1 (activity multipliers)."""
    return np.exp(sigma * rng.standard_normal(size) - sigma**2 / 2)


def event_times(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """One time per row in ``[lo, hi)``: a uniform day, then an hour from the diurnal profile.

    Rows with ``hi <= lo`` get ``lo``.
    """
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.maximum(np.asarray(hi, dtype=np.int64), lo + 1)
    n = len(lo)
    span_days = np.maximum((hi - lo) // DAY, 1)
    day0 = lo - lo % DAY
    day = day0 + DAY * np.floor(rng.random(n) * span_days).astype(np.int64)
    hour = rng.choice(24, size=n, p=DIURNAL_P)
    ts = day + hour * 3600 + rng.integers(0, 3600, size=n)
    # NOTE: when the window is shorter than a day the diurnal draw may fall outside; fold back.
    out = np.where((ts >= lo) & (ts < hi), ts, lo + (rng.random(n) * (hi - lo)).astype(np.int64))
    return np.asarray(out)


def counts_and_owners(rng: np.random.Generator, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts per owner and the owner of each resulting event.

    Returns:
        tuple[np.ndarray, np.ndarray]: counts per owner, owner index per event.
    """
    counts = rng.poisson(np.maximum(rate, 0.0))
    owners = np.repeat(np.arange(len(rate), dtype=np.int64), counts)
    return counts, owners


def weighted_pick_within(
    rng: np.random.Generator,
    item_group: np.ndarray,
    item_weight: np.ndarray,
    query_group: np.ndarray,
) -> np.ndarray:
    """For each query, an item of the same group drawn proportionally to its weight.

    Args:
        rng (np.random.Generator): random source.
        item_group (np.ndarray): group of each item (e.g. the city of each merchant).
        item_weight (np.ndarray): non-negative weight of each item.
        query_group (np.ndarray): group of each query.

    Returns:
        np.ndarray: item index per query, ``-1`` where the group has no item.
    """
    order = np.lexsort((np.arange(len(item_group)), item_group))
    groups = item_group[order]
    cum = np.cumsum(item_weight[order].astype(np.float64))
    lo = np.searchsorted(groups, query_group, side="left")
    hi = np.searchsorted(groups, query_group, side="right")
    base = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0.0)
    total = np.where(hi > lo, cum[np.maximum(hi - 1, 0)] - base, 0.0)
    target = base + rng.random(len(query_group)) * total
    pos = np.searchsorted(cum, target, side="right")
    pos = np.clip(pos, lo, np.maximum(hi - 1, lo))
    out = order[np.minimum(pos, len(order) - 1)] if len(order) else np.zeros(len(query_group))
    return np.where(hi > lo, out, -1).astype(np.int64)


def group_ranges(group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and size of each group in an array sorted by group."""
    size = np.bincount(group, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    return start.astype(np.int64), size.astype(np.int64)


def rank_within(group_sorted: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal values (input sorted)."""
    n = len(group_sorted)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.r_[True, group_sorted[1:] != group_sorted[:-1]]
    idx = np.arange(n)
    return idx - np.maximum.accumulate(np.where(starts, idx, 0))


def log_uniform_int(rng: np.random.Generator, lo: int, hi: int, size: int) -> np.ndarray:
    """Integers in ``[lo, hi]`` with log-uniform spread (many small groups, a few big ones)."""
    x = np.exp(rng.uniform(np.log(lo), np.log(hi + 1), size=size))
    return np.clip(np.floor(x), lo, hi).astype(np.int64)
