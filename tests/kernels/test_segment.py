from __future__ import annotations

import numpy as np
import pytest

from kernels import (
    segment_count,
    segment_count_distinct,
    segment_ids,
    segment_max,
    segment_mean,
    segment_sum,
)


def random_csr(rng: np.random.Generator, n: int, *, hub: int = 0) -> np.ndarray:
    """Degrees with many zeros (empty segments) and optionally one huge hub."""
    deg = rng.choice([0, 0, 1, 2, 3, 7], size=n)
    if hub and n:
        deg[rng.integers(n)] = hub
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(deg, out=indptr[1:])
    return indptr


def reference(indptr: np.ndarray, values: np.ndarray, op: str, empty: float = 0.0) -> np.ndarray:
    out = []
    for s, e in zip(indptr[:-1], indptr[1:], strict=True):
        seg = [float(v) for v in values[s:e]]
        if op == "sum":
            out.append(float(sum(seg)))
        elif op == "count":
            out.append(len(seg))
        elif op == "distinct":
            out.append(len(set(seg)))
        elif not seg:
            out.append(empty)
        elif op == "mean":
            out.append(sum(seg) / len(seg))
        else:
            out.append(max(seg))
    return np.asarray(out, dtype=np.float64)


@pytest.mark.parametrize("n,hub", [(0, 0), (1, 0), (1, 5000), (257, 0), (1000, 100_000)])
def test_reductions_match_loops(backend, rng, n, hub) -> None:
    indptr = random_csr(rng, n, hub=hub)
    nnz = int(indptr[-1])
    values = rng.normal(100.0, 50.0, size=nnz)
    codes = rng.integers(0, 5, size=nnz)
    ptr, v, c = backend.asarray(indptr), backend.asarray(values), backend.asarray(codes)
    got = {
        "sum": backend.asnumpy(segment_sum(ptr, v)),
        "mean": backend.asnumpy(segment_mean(ptr, v, empty=-1.0)),
        "max": backend.asnumpy(segment_max(ptr, v, empty=-1.0)),
        "count": backend.asnumpy(segment_count(ptr)),
        "distinct": backend.asnumpy(segment_count_distinct(ptr, c)),
    }
    for op in ("sum", "mean", "max"):
        np.testing.assert_allclose(got[op], reference(indptr, values, op, -1.0), rtol=1e-12)
    np.testing.assert_array_equal(got["count"], reference(indptr, values, "count"))
    np.testing.assert_array_equal(got["distinct"], reference(indptr, codes, "distinct"))
    assert got["count"].dtype == np.int64 and got["distinct"].dtype == np.int64


def test_empty_segments_are_defined(backend) -> None:
    ptr = backend.asarray(np.array([0, 0, 2, 2], dtype=np.int64))
    v = backend.asarray(np.array([-5.0, -3.0]))
    assert backend.asnumpy(segment_sum(ptr, v)).tolist() == [0.0, -8.0, 0.0]
    assert backend.asnumpy(segment_mean(ptr, v)).tolist() == [0.0, -4.0, 0.0]
    assert backend.asnumpy(segment_max(ptr, v)).tolist() == [0.0, -3.0, 0.0]
    assert np.isnan(backend.asnumpy(segment_max(ptr, v, empty=np.nan))[0])
    assert backend.asnumpy(segment_count(ptr)).tolist() == [0, 2, 0]
    mask = backend.asarray(np.array([True, False]))
    assert backend.asnumpy(segment_count(ptr, mask)).tolist() == [0, 1, 0]
    codes = backend.asarray(np.array([4, 4]))
    assert backend.asnumpy(segment_count_distinct(ptr, codes)).tolist() == [0, 1, 0]
    assert backend.asnumpy(segment_ids(ptr)).tolist() == [1, 1]


def test_nan_propagates_like_numpy(backend) -> None:
    ptr = backend.asarray(np.array([0, 3, 5], dtype=np.int64))
    v = backend.asarray(np.array([1.0, np.nan, 3.0, 2.0, -np.inf]))
    mx = backend.asnumpy(segment_max(ptr, v))
    assert np.isnan(mx[0]) and mx[1] == 2.0
    assert np.isnan(backend.asnumpy(segment_sum(ptr, v))[0])


def test_ties_and_equal_values(backend) -> None:
    ptr = backend.asarray(np.array([0, 4], dtype=np.int64))
    v = backend.asarray(np.array([2.0, 2.0, 2.0, 2.0]))
    assert backend.asnumpy(segment_max(ptr, v)).tolist() == [2.0]
    codes = backend.asarray(np.array([7, 7, 7, 7]))
    assert backend.asnumpy(segment_count_distinct(ptr, codes)).tolist() == [1]


@pytest.mark.parametrize(
    "indptr,values,match",
    [
        ([1, 2], [1.0], "indptr must start at 0"),
        ([0, 2, 1], [1.0], "indptr must be non-decreasing"),
        ([0, 3], [1.0], "indptr must end at 1"),
        ([[0, 1]], [1.0], "indptr must be 1-D"),
        ([0, 1], ["a"], "values must be numeric"),
    ],
)
def test_bad_input_names_the_argument(indptr, values, match) -> None:
    with pytest.raises(ValueError, match=match):
        segment_sum(np.asarray(indptr), np.asarray(values))


def test_count_distinct_refuses_floats() -> None:
    with pytest.raises(ValueError, match="values must be integer codes"):
        segment_count_distinct(np.array([0, 1]), np.array([1.5]))


def test_strided_input(backend) -> None:
    """A column view (not contiguous) must work on both paths (the GPU kernel takes pointers)."""
    table = np.arange(12, dtype=np.float64).reshape(6, 2)
    ptr = backend.asarray(np.array([0, 2, 6], dtype=np.int64))
    col = backend.asarray(table)[:, 1]
    assert backend.asnumpy(segment_sum(ptr, col)).tolist() == [4.0, 32.0]
    assert backend.asnumpy(segment_max(ptr, col)).tolist() == [3.0, 11.0]
