"""Merchant signals from daily sales reports: GMV growth, inventory turnover, refund rate, and
the sales spike that inflated books show just before a merchant loan.

A report for day ``d`` (``day`` = the day's start, epoch seconds) is complete, hence known, at
``d + 86400``; every window below is over that *known-at* time and ends at the query time ``t``,
half-open ``(t - w, t]``, so a report known exactly at ``t`` counts and nothing later does. With
``R = recent_days``, ``S = spike_days`` and ``B = baseline_days``:

* ``gmv_recent``: GMV of reports known in the last ``R`` days; ``gmv_prior``: the ``R`` days
  before that;
* ``gmv_growth = gmv_recent / gmv_prior - 1`` (NaN when ``gmv_prior`` is 0);
* ``refund_rate``: refunds over GMV in the last ``R`` days (NaN when that GMV is 0);
* ``inventory_turnover``: GMV of the last ``R`` days over the mean end-of-day inventory of the
  same reports (NaN with no report or a zero mean inventory);
* ``sales_spike``: mean daily GMV of the last ``S`` days over the mean daily GMV of the
  ``B - S`` days before them (NaN when that baseline is 0); a merchant inflating sales before a
  loan shows a spike well above 1;
* ``report_days``: reports known in the last ``R`` days.

GPU: none of its own: window bounds are binary searches, the sums run through
:func:`kernels.segment_sum` (whose RawKernel does the reduction).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kernels._backend import get_array_module
from kernels._validate import as_1d, check_index, check_positive
from kernels._window import GroupedTimes, expand_ranges
from kernels.segment import segment_sum
from kernels.typing import DAY, Array


class MerchantSignals(NamedTuple):
    """Per query ``(merchant, t)``: see the module docstring for each field."""

    gmv_recent: Array
    gmv_prior: Array
    gmv_growth: Array
    refund_rate: Array
    inventory_turnover: Array
    sales_spike: Array
    report_days: Array


def _check_days(recent_days: int, spike_days: int, baseline_days: int) -> None:
    for name, v in (("recent_days", recent_days), ("spike_days", spike_days),
                    ("baseline_days", baseline_days)):
        check_positive(name, v)
    if baseline_days <= spike_days:
        raise ValueError(
            f"baseline_days must exceed spike_days, got {baseline_days} <= {spike_days}"
        )


def _ratio(xp: object, num: Array, den: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.where(den != 0, num / xp.where(den != 0, den, 1.0), np.nan)  # type: ignore[attr-defined]


def merchant_signals(
    merchant: Array,
    day: Array,
    gmv: Array,
    refunds: Array,
    inventory: Array,
    query_merchant: Array,
    query_time: Array,
    *,
    recent_days: int = 30,
    spike_days: int = 14,
    baseline_days: int = 90,
) -> MerchantSignals:
    """Merchant signals of each ``(merchant, time)`` query from daily sales reports.

    Args:
        merchant (Array): int64 merchant of each report, ``[r]``.
        day (Array): int64 start of the reported day, epoch seconds, ``[r]``.
        gmv (Array): GMV sold that day, ``[r]``.
        refunds (Array): value refunded that day, ``[r]``.
        inventory (Array): inventory value at the end of the day, ``[r]``.
        query_merchant (Array): int64, ``[q]``.
        query_time (Array): int64 epoch seconds, ``[q]`` (a loan application's time, or one
            as-of time for all merchants).
        recent_days (int, optional): the growth / refund / turnover window. (default: ``30``)
        spike_days (int, optional): the spike window. (default: ``14``)
        baseline_days (int, optional): spike window plus its baseline. (default: ``90``)

    Returns:
        MerchantSignals: float64 ``[q]`` arrays and int64 ``report_days``.

    Raises:
        ValueError: on mismatched lengths, negative ids, or non-positive windows.
    """
    _check_days(recent_days, spike_days, baseline_days)
    xp = get_array_module(merchant, day, gmv, refunds, inventory, query_merchant, query_time)
    m = as_1d(xp, "merchant", merchant, np.int64)
    r = int(m.shape[0])
    known = as_1d(xp, "day", day, np.int64, n=r) + DAY
    cols = [as_1d(xp, name, v, np.float64, n=r)
            for name, v in (("gmv", gmv), ("refunds", refunds), ("inventory", inventory))]
    qm = as_1d(xp, "query_merchant", query_merchant, np.int64)
    q = int(qm.shape[0])
    qt = as_1d(xp, "query_time", query_time, np.int64, n=q)
    check_index(xp, "merchant", m, None)
    check_index(xp, "query_merchant", qm, None)
    n_groups = max(int(m.max()) + 1 if r else 1, int(qm.max()) + 1 if q else 1)
    gt = GroupedTimes.build(xp, m, known, n_groups)
    g_gmv, g_ref, g_inv = (c[gt.order] for c in cols)

    def window(lo_days: int, hi_days: int) -> tuple[Array, Array]:
        """Sorted-position bounds of reports known in ``(t - lo_days, t - hi_days]``."""
        lo = gt.search(xp, qm, qt - lo_days * DAY, side="right")
        hi = gt.search(xp, qm, qt - hi_days * DAY, side="right")
        return lo, hi

    def total(values: Array, bounds: tuple[Array, Array]) -> Array:
        _, pos, ptr = expand_ranges(xp, *bounds)
        return segment_sum(ptr, values[pos])

    recent = window(recent_days, 0)
    prior = window(2 * recent_days, recent_days)
    spike = window(spike_days, 0)
    base = window(baseline_days, spike_days)
    gmv_recent = total(g_gmv, recent)
    gmv_prior = total(g_gmv, prior)
    n_recent = (recent[1] - recent[0]).astype(np.int64)
    inv_mean = _ratio(xp, total(g_inv, recent), n_recent.astype(np.float64))
    spike_rate = total(g_gmv, spike) / spike_days
    base_rate = total(g_gmv, base) / (baseline_days - spike_days)
    return MerchantSignals(
        gmv_recent,
        gmv_prior,
        _ratio(xp, gmv_recent, gmv_prior) - 1.0,
        _ratio(xp, total(g_ref, recent), gmv_recent),
        _ratio(xp, gmv_recent, xp.where(xp.isnan(inv_mean), 0.0, inv_mean)),
        _ratio(xp, spike_rate, base_rate),
        n_recent,
    )
