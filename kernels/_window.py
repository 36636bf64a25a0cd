"""Private building blocks for per-entity time series: sorting, searching, slicing, medians.

Everything here is ``xp``-generic except :func:`slice_median`, which dispatches to
``_slice_median_kernel`` on CuPy.

``_slice_median_kernel`` (RawKernel): the median (and MAD) of up to ``KMAX`` values per query,
one thread per query, insertion sort in registers / local memory. The array-operation chain it
replaces gathers an ``[n_queries, k]`` matrix, sorts its rows, gathers again, subtracts and sorts
again: five passes over ``k`` times the data; the kernel reads each history value once per query
and writes two numbers. Both paths compute ``0.5 * (a + b)`` of the same two middle values and
``|x - median|`` the same way, so they agree to the bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from kernels._backend import launch_1d, lazy_raw_kernel
from kernels.errors import KeyOverflowError
from kernels.typing import Array

KMAX = 64
"""The most history values a median may look at (the kernel's per-thread buffer)."""

_INT64_MAX = int(np.iinfo(np.int64).max)


def stable_argsort(xp: ModuleType, a: Array) -> Array:
    """Indices that sort ``a``, equal keys kept in input order."""
    if xp is np:
        return np.argsort(a, kind="stable")
    # NOTE: CuPy sorts with CUB's radix sort, which is stable; it takes no ``kind``.
    return xp.argsort(a)


def lexsort2(xp: ModuleType, primary: Array, secondary: Array) -> Array:
    """Indices sorting by ``primary`` then ``secondary`` then input position."""
    n = int(primary.shape[0])
    if n:
        p_lo, p_hi = int(primary.min()), int(primary.max())
        s_lo, s_hi = int(secondary.min()), int(secondary.max())
        width = s_hi - s_lo + 1
        if (p_hi - p_lo + 1) * width < _INT64_MAX:
            # NOTE: one stable sort of a packed key costs half of two stable sorts
            return stable_argsort(xp, (primary - p_lo) * width + (secondary - s_lo))
    order = stable_argsort(xp, secondary)
    return order[stable_argsort(xp, primary[order])]


def searchsorted(xp: ModuleType, haystack: Array, needles: Array, side: str) -> Array:
    """``xp.searchsorted`` as int64; on NumPy, unsorted needles are searched in sorted order.

    NOTE: NumPy's binary search reuses the previous answer when needles ascend; random needles
    into a large array miss the cache on every step (measured 70x slower for 5M into 5M).
    """
    if xp is np and needles.shape[0] > 1 and not bool((needles[1:] >= needles[:-1]).all()):
        order = np.argsort(needles)
        out = np.empty(needles.shape[0], dtype=np.int64)
        out[order] = np.searchsorted(haystack, needles[order], side=side)
        return out
    return xp.searchsorted(haystack, needles, side=side).astype(np.int64)


def expand_ranges(xp: ModuleType, lo: Array, hi: Array) -> tuple[Array, Array, Array]:
    """Flatten the ranges ``[lo[i], hi[i])`` into one array of positions.

    Returns:
        tuple: ``owner`` (the ``i`` of each position), ``pos`` (the positions, range by range)
        and ``indptr`` (int64, ``len(lo) + 1``: where each range starts in the output).
    """
    counts = xp.maximum(hi - lo, 0).astype(np.int64)
    indptr = xp.zeros(counts.shape[0] + 1, dtype=np.int64)
    if counts.shape[0]:
        xp.cumsum(counts, out=indptr[1:])
    total = int(indptr[-1])
    flat = xp.arange(total, dtype=np.int64)
    owner = xp.searchsorted(indptr[1:], flat, side="right").astype(np.int64)
    pos = lo[owner] + (flat - indptr[owner])
    return owner, pos, indptr


@dataclass(frozen=True)
class GroupedTimes:
    """Events sorted by ``(group, time, input position)`` with a composite int64 search key.

    ``key = group * span + (time - base)``: with query times clipped to ``[tmin - 1, tmax + 1]``
    the comparisons against the data are unchanged, so one ``searchsorted`` finds a position
    inside a group.

    Args:
        order (Array): the sorting permutation of the input events.
        group (Array): groups in sorted order.
        time (Array): times in sorted order.
        key (Array): composite keys in sorted order (non-decreasing).
        base (int): ``tmin - 1``.
        span (int): ``tmax - tmin + 3``.
        n_groups (int): groups are ``0 .. n_groups - 1``.
    """

    order: Array
    group: Array
    time: Array
    key: Array
    base: int
    span: int
    n_groups: int

    @classmethod
    def build(cls, xp: ModuleType, group: Array, time: Array, n_groups: int) -> GroupedTimes:
        """Sort ``(group, time)`` events; ``n_groups`` bounds the groups of data and queries.

        Raises:
            KeyOverflowError: if ``n_groups * (time range + 3)`` does not fit in int64.
        """
        if time.shape[0]:
            tmin, tmax = int(time.min()), int(time.max())
        else:
            tmin = tmax = 0
        base, span = tmin - 1, tmax - tmin + 3
        if max(n_groups, 1) * span >= _INT64_MAX:
            raise KeyOverflowError(
                f"{n_groups} groups x a time range of {span} s overflow an int64 key"
            )
        key = group * span + (time - base)
        order = stable_argsort(xp, key)
        return cls(order, group[order], time[order], key[order], base, span, n_groups)

    def query_key(self, xp: ModuleType, group: Array, time: Array) -> Array:
        # NOTE: maximum / minimum rather than clip: the same values, without clip's
        # per-call overhead on the small arrays of online scoring.
        t = xp.minimum(xp.maximum(time, self.base), self.base + self.span - 1)
        return group * self.span + (t - self.base)

    def search(self, xp: ModuleType, group: Array, time: Array, side: str) -> Array:
        """Positions in sorted order: ``side="left"`` gives the first event of ``group`` at or
        after ``time``, ``side="right"`` the first after it (events of later groups sort
        after, earlier groups before)."""
        return searchsorted(xp, self.key, self.query_key(xp, group, time), side)

    def group_start(self, xp: ModuleType, group: Array) -> Array:
        """Sorted position of each ``group``'s first event (its end if it has none)."""
        return searchsorted(xp, self.key, group * self.span, "left")


_SLICE_MEDIAN_SRC = r"""
#define KMAX 64
__device__ inline void insertion_sort(double* buf, int n) {
    for (int j = 1; j < n; ++j) {
        double v = buf[j];
        int k = j - 1;
        while (k >= 0 && buf[k] > v) { buf[k + 1] = buf[k]; --k; }
        buf[k + 1] = v;
    }
}

extern "C" __global__ void slice_median(
    const double* __restrict__ values, const long long* __restrict__ start,
    const long long* __restrict__ end, const long long n_queries, const int want_mad,
    double* __restrict__ median, double* __restrict__ mad)
{
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_queries) return;
    long long s = start[i];
    int n = (int)(end[i] - s);
    if (n <= 0) {
        median[i] = CUDART_NAN;
        if (want_mad) mad[i] = CUDART_NAN;
        return;
    }
    double buf[KMAX];
    for (int j = 0; j < n; ++j) buf[j] = values[s + j];
    insertion_sort(buf, n);
    double med = 0.5 * (buf[(n - 1) / 2] + buf[n / 2]);
    median[i] = med;
    if (want_mad) {
        for (int j = 0; j < n; ++j) buf[j] = fabs(buf[j] - med);
        insertion_sort(buf, n);
        mad[i] = 0.5 * (buf[(n - 1) / 2] + buf[n / 2]);
    }
}
"""

_slice_median_kernel = lazy_raw_kernel(
    "#include <math_constants.h>\n" + _SLICE_MEDIAN_SRC, "slice_median"
)

_CHUNK = 1 << 18


def slice_median(
    xp: ModuleType, values: Array, start: Array, end: Array, *, want_mad: bool
) -> tuple[Array, Array | None]:
    """Median (and median absolute deviation) of ``values[start[i]:end[i]]`` for every ``i``.

    Slices hold at most :data:`KMAX` values; an empty slice gives NaN. ``values`` must be
    finite (NaN would sort differently on the two paths).
    """
    nq = int(start.shape[0])
    med = xp.empty(nq, dtype=np.float64)
    mad = xp.empty(nq, dtype=np.float64) if want_mad else None
    if xp is not np:
        values = xp.ascontiguousarray(values, dtype=np.float64)  # the kernel takes raw pointers
        start = xp.ascontiguousarray(start, dtype=np.int64)
        end = xp.ascontiguousarray(end, dtype=np.int64)
        launch_1d(
            _slice_median_kernel,
            nq,
            (values, start, end, np.int64(nq), np.int32(want_mad), med,
             mad if mad is not None else med),
        )
        return med, mad
    n = end - start
    k = int(n.max()) if nq else 0
    assert k <= KMAX, "callers bound the slice length"
    if k == 0:
        med.fill(np.nan)
        if mad is not None:
            mad.fill(np.nan)
        return med, mad
    cols = np.arange(k, dtype=np.int64)
    last = max(int(values.shape[0]) - 1, 0)
    # NOTE: padding is +inf, so an empty row gives inf - inf; those rows become NaN below.
    with np.errstate(invalid="ignore"):
        _median_rows(values, start, n, cols, last, med, mad)
    empty = n <= 0
    med[empty] = np.nan
    if mad is not None:
        mad[empty] = np.nan
    return med, mad


def _median_rows(
    values: Array, start: Array, n: Array, cols: Array, last: int, med: Array, mad: Array | None
) -> None:
    nq = int(start.shape[0])
    for a in range(0, nq, _CHUNK):
        b = min(a + _CHUNK, nq)
        s, m = start[a:b, None], n[a:b, None]
        valid = cols[None, :] < m
        mat = np.where(valid, values[np.minimum(s + cols[None, :], last)], np.inf)
        mat.sort(axis=1)
        lo_i = np.maximum((n[a:b] - 1) // 2, 0)[:, None]
        hi_i = np.maximum(n[a:b] // 2, 0)[:, None]
        mid = 0.5 * (np.take_along_axis(mat, lo_i, 1) + np.take_along_axis(mat, hi_i, 1))
        med[a:b] = mid[:, 0]
        if mad is not None:
            dev = np.where(valid, np.abs(mat - mid), np.inf)
            dev.sort(axis=1)
            mad[a:b] = 0.5 * (
                np.take_along_axis(dev, lo_i, 1) + np.take_along_axis(dev, hi_i, 1)
            )[:, 0]
