"""Segment reductions over a CSR relation: sum, mean, max, count, count-distinct.

A relation's CSR (``indptr`` of length ``n_segments + 1``) splits a value array (an edge
property in CSR order, or a node property gathered through ``indices``) into one contiguous
segment per source node. Empty segments are defined: sum, count and count-distinct give 0;
mean and max give ``empty`` (default 0.0; use :func:`segment_count` to tell them apart).
NaN propagates through sum, mean and max as in NumPy.

GPU: ``_segment_reduce_kernel`` (RawKernel) gives each segment one warp that strides over it
and combines with warp shuffles. CuPy has no ``reduceat``; the array-operation alternatives
(a scatter-add over an expanded segment-id array, or differences of a global prefix sum) write
and re-read an extra int64 per value, use non-deterministic atomics, or lose precision to
cancellation. The kernel reads each value once, is deterministic, and a hub of a million edges
costs one warp ~30k iterations, not a serial loop. Count and count-distinct are integer
prefix-sum / sort chains that need no kernel of their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kernels._backend import get_array_module, lazy_raw_kernel
from kernels._validate import as_1d, check_indptr
from kernels._window import stable_argsort
from kernels.typing import Array

_SEGMENT_REDUCE_SRC = r"""
#include <math_constants.h>
__device__ inline double combine(double acc, double v, int op) {
    if (op == 0) return acc + v;
    return (v > acc || isnan(v)) ? v : acc;  // max that propagates NaN like np.maximum
}

extern "C" __global__ void segment_reduce(
    const double* __restrict__ values, const long long* __restrict__ indptr,
    const long long n_segments, const int op, const double empty, double* __restrict__ out)
{
    long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (warp >= n_segments) return;  // uniform per warp: the shuffles below stay full-warp
    long long s = indptr[warp], e = indptr[warp + 1];
    if (s == e) {
        if (lane == 0) out[warp] = empty;
        return;
    }
    double acc = (op == 0) ? 0.0 : -CUDART_INF;
    for (long long j = s + lane; j < e; j += 32) acc = combine(acc, values[j], op);
    for (int off = 16; off > 0; off >>= 1)
        acc = combine(acc, __shfl_down_sync(0xffffffffu, acc, off), op);
    if (lane == 0) out[warp] = acc;
}
"""

_segment_reduce_kernel = lazy_raw_kernel(_SEGMENT_REDUCE_SRC, "segment_reduce")
_OP_SUM, _OP_MAX = 0, 1


def _reduce(indptr: Any, values: Any, op: int, empty: float) -> Array:
    xp = get_array_module(indptr, values)
    vals = as_1d(xp, "values", values, np.float64)
    ptr = check_indptr(xp, indptr, nnz=int(vals.shape[0]))
    n = int(ptr.shape[0]) - 1
    if xp is not np:
        vals, ptr = xp.ascontiguousarray(vals), xp.ascontiguousarray(ptr)  # raw pointers
        out = xp.empty(n, dtype=np.float64)
        if n:
            block = 256
            grid = (n * 32 + block - 1) // block
            _segment_reduce_kernel(
                (grid,), (block,), (vals, ptr, np.int64(n), np.int32(op), np.float64(empty), out)
            )
        return out
    out = np.full(n, empty, dtype=np.float64)
    nonempty = np.flatnonzero(ptr[1:] > ptr[:-1])
    if nonempty.size:
        ufunc = np.add if op == _OP_SUM else np.maximum
        out[nonempty] = ufunc.reduceat(vals, ptr[nonempty])
    return out


def segment_sum(indptr: Array, values: Array) -> Array:
    """Sum of each segment's values (0 for an empty segment).

    Args:
        indptr (Array): int64 CSR offsets, ``[n_segments + 1]``, ending at ``len(values)``.
        values (Array): numbers, ``[nnz]``; cast to float64.

    Returns:
        Array: float64, ``[n_segments]``.

    Raises:
        ValueError: on a malformed ``indptr`` or ``values``.
    """
    return _reduce(indptr, values, _OP_SUM, 0.0)


def segment_max(indptr: Array, values: Array, *, empty: float = 0.0) -> Array:
    """Largest value of each segment (``empty`` for an empty one); NaN wins like ``np.maximum``.

    Args:
        indptr (Array): int64 CSR offsets, ``[n_segments + 1]``.
        values (Array): numbers, ``[nnz]``; cast to float64.
        empty (float, optional): value of an empty segment. (default: ``0.0``)
    """
    return _reduce(indptr, values, _OP_MAX, float(empty))


def segment_count(indptr: Array, mask: Array | None = None) -> Array:
    """Number of values per segment, or of ``True`` entries of ``mask`` per segment.

    Args:
        indptr (Array): int64 CSR offsets, ``[n_segments + 1]``.
        mask (Array, optional): bool, ``[nnz]``: count only these. (default: ``None``)

    Returns:
        Array: int64, ``[n_segments]``.
    """
    xp = get_array_module(indptr, mask)
    if mask is None:
        ptr = check_indptr(xp, indptr)
        return (ptr[1:] - ptr[:-1]).astype(np.int64)
    m = as_1d(xp, "mask", mask, np.int64)
    ptr = check_indptr(xp, indptr, nnz=int(m.shape[0]))
    prefix = xp.zeros(m.shape[0] + 1, dtype=np.int64)
    xp.cumsum(m, out=prefix[1:])
    return prefix[ptr[1:]] - prefix[ptr[:-1]]


def segment_mean(indptr: Array, values: Array, *, empty: float = 0.0) -> Array:
    """Mean of each segment's values (``empty`` for an empty segment).

    Args:
        indptr (Array): int64 CSR offsets, ``[n_segments + 1]``.
        values (Array): numbers, ``[nnz]``; cast to float64.
        empty (float, optional): value of an empty segment. (default: ``0.0``)
    """
    xp = get_array_module(indptr, values)
    sums = segment_sum(indptr, values)
    counts = segment_count(indptr)
    out = sums / xp.maximum(counts, 1)
    return xp.where(counts > 0, out, np.float64(empty))


def segment_ids(indptr: Array) -> Array:
    """The segment of every value: ``[nnz]`` int64 (``np.repeat`` of the segment numbers)."""
    xp = get_array_module(indptr)
    ptr = check_indptr(xp, indptr)
    flat = xp.arange(int(ptr[-1]), dtype=np.int64)
    return xp.searchsorted(ptr[1:], flat, side="right").astype(np.int64)


def segment_count_distinct(indptr: Array, values: Array) -> Array:
    """Number of distinct values per segment (0 for an empty segment).

    Args:
        indptr (Array): int64 CSR offsets, ``[n_segments + 1]``.
        values (Array): integer or bool codes (categories, merchant positions), ``[nnz]``.

    Returns:
        Array: int64, ``[n_segments]``.

    Raises:
        ValueError: on float values (encode them as codes first).
    """
    xp = get_array_module(indptr, values)
    vals = xp.asarray(values)
    if vals.dtype.kind not in "iub":
        raise ValueError(f"values must be integer codes, got dtype {vals.dtype}")
    vals = as_1d(xp, "values", vals, np.int64)
    ptr = check_indptr(xp, indptr, nnz=int(vals.shape[0]))
    n = int(ptr.shape[0]) - 1
    if vals.shape[0] == 0:
        return xp.zeros(n, dtype=np.int64)
    seg = segment_ids(ptr)
    # NOTE: segments are contiguous, so sorting by value and then (stably) by segment keeps
    # each segment in place with its values sorted; a new value starts at every change.
    order = stable_argsort(xp, vals)
    order = order[stable_argsort(xp, seg[order])]
    v = vals[order]
    new = xp.ones(v.shape[0], dtype=np.int64)
    s = seg[order]
    new[1:] = (v[1:] != v[:-1]) | (s[1:] != s[:-1])
    prefix = xp.zeros(v.shape[0] + 1, dtype=np.int64)
    xp.cumsum(new, out=prefix[1:])
    return prefix[ptr[1:]] - prefix[ptr[:-1]]
