"""Amount anomaly: an application's amount against the user's own order and application history.

History is whatever amounts the caller passes (orders and earlier applications, concatenated);
for each query the kernel takes the user's last ``k`` history amounts strictly before the
query's time (a history row in the same second is not "before", so an application never sees
itself) and gives

* ``ratio_to_median = amount / median`` (NaN with no history or a zero median);
* ``robust_z = (amount - median) / max(1.4826 * MAD, min_scale)`` (NaN with no history): the
  1.4826 makes the MAD a standard deviation for normal data, and ``min_scale`` (in currency
  units) keeps a user who always spends exactly the same from dividing by zero.

GPU: the median and MAD come from ``_slice_median_kernel`` (RawKernel, see
:mod:`kernels._window`); the rest is a few elementwise operations.
"""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

import numpy as np

from kernels._backend import get_array_module
from kernels._validate import as_1d, check_index, check_positive
from kernels._window import KMAX, GroupedTimes, slice_median
from kernels.typing import Array

MAD_TO_SIGMA = 1.4826


class AmountAnomaly(NamedTuple):
    """Per query: the anomaly scores and the statistics behind them."""

    ratio_to_median: Array
    robust_z: Array
    median: Array
    mad: Array
    n_history: Array


def _scores(
    xp: ModuleType, amount: Array, med: Array, mad: Array, min_scale: float
) -> tuple[Array, Array]:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = xp.where(med != 0, amount / xp.where(med != 0, med, 1.0), np.nan)
        z = (amount - med) / xp.maximum(MAD_TO_SIGMA * mad, min_scale)
    return ratio, z


def amount_anomaly(
    history_user: Array,
    history_ts: Array,
    history_amount: Array,
    query_user: Array,
    query_ts: Array,
    query_amount: Array,
    *,
    k: int = 32,
    min_scale: float = 1.0,
) -> AmountAnomaly:
    """Ratio to median and robust z-score of each query amount against the user's history.

    Args:
        history_user (Array): int64 user of each past order / application, ``[h]``.
        history_ts (Array): int64 epoch seconds, ``[h]``, any order.
        history_amount (Array): amounts, ``[h]``; NaN rows are ignored.
        query_user (Array): int64 user of each application to score, ``[q]``.
        query_ts (Array): int64 epoch seconds, ``[q]``.
        query_amount (Array): amounts, ``[q]``.
        k (int, optional): how many latest history amounts to compare with, 1..64.
            (default: ``32``)
        min_scale (float, optional): floor of the z-score's scale, currency units, > 0.
            (default: ``1.0``)

    Returns:
        AmountAnomaly: float64 ``[q]`` arrays and int64 ``n_history``.

    Raises:
        ValueError: on mismatched lengths, negative users, ``k`` outside 1..64 or
            ``min_scale <= 0``.
    """
    check_positive("k", k)
    if k > KMAX:
        raise ValueError(f"k must be at most {KMAX}, got {k}")
    if not min_scale > 0:
        raise ValueError(f"min_scale must be positive, got {min_scale!r}")
    xp = get_array_module(
        history_user, history_ts, history_amount, query_user, query_ts, query_amount
    )
    hu = as_1d(xp, "history_user", history_user, np.int64)
    h = int(hu.shape[0])
    ht = as_1d(xp, "history_ts", history_ts, np.int64, n=h)
    ha = as_1d(xp, "history_amount", history_amount, np.float64, n=h)
    qu = as_1d(xp, "query_user", query_user, np.int64)
    q = int(qu.shape[0])
    qt = as_1d(xp, "query_ts", query_ts, np.int64, n=q)
    qa = as_1d(xp, "query_amount", query_amount, np.float64, n=q)
    check_index(xp, "history_user", hu, None)
    check_index(xp, "query_user", qu, None)

    keep = xp.isfinite(ha)
    hu, ht, ha = hu[keep], ht[keep], ha[keep]
    n_groups = max(int(hu.max()) + 1 if hu.shape[0] else 1, int(qu.max()) + 1 if q else 1)
    gt = GroupedTimes.build(xp, hu, ht, n_groups)
    end = gt.search(xp, qu, qt, side="left")
    start = xp.maximum(gt.group_start(xp, qu), end - k)
    med, mad = slice_median(xp, ha[gt.order], start, end, want_mad=True)
    assert mad is not None
    ratio, z = _scores(xp, qa, med, mad, float(min_scale))
    return AmountAnomaly(ratio, z, med, mad, end - start)
