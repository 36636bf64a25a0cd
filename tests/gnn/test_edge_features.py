"""derive_edge_features: degrees and weight / time / type statistics, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from gnn import GraphDataError, derive_edge_features

# 0 -> 1 (w 2, t 10, a), 0 -> 2 (w 4, t 30, b), 1 -> 2 (w 6, t 20, a), 0 -> 1 (w 1, t 50, a)
SRC = np.array([0, 0, 1, 0])
DST = np.array([1, 2, 2, 1])
W = np.array([2.0, 4.0, 6.0, 1.0])
T = np.array([10.0, 30.0, 20.0, 50.0])
TYPE = np.array(["a", "b", "a", "a"])


def _col(x: np.ndarray, names: list[str], name: str) -> np.ndarray:
    return x[:, names.index(name)]


def test_directed_statistics() -> None:
    x, names = derive_edge_features(SRC, DST, 4, directed=True, weight=W, time=T, edge_type=TYPE)
    assert x.shape == (4, len(names))
    np.testing.assert_allclose(_col(x, names, "out_degree"), np.log1p([3, 1, 0, 0]))
    np.testing.assert_allclose(_col(x, names, "in_degree"), np.log1p([0, 2, 2, 0]))
    np.testing.assert_allclose(_col(x, names, "out_neighbours"), np.log1p([2, 1, 0, 0]))
    np.testing.assert_allclose(_col(x, names, "in_weight_sum"), np.log1p([0, 3, 10, 0]))
    np.testing.assert_allclose(_col(x, names, "in_weight_mean"), [0, 1.5, 5, 0])
    np.testing.assert_allclose(_col(x, names, "out_weight_min"), [1, 6, 0, 0])
    np.testing.assert_allclose(_col(x, names, "out_weight_max"), [4, 6, 0, 0])
    np.testing.assert_allclose(_col(x, names, "in_weight_std"), [0, 0.5, 1, 0])
    # Times as fractions of the range [10, 50]; span in the original unit.
    np.testing.assert_allclose(_col(x, names, "out_time_first"), [0, 0.25, 0, 0])
    np.testing.assert_allclose(_col(x, names, "out_time_last"), [1, 0.25, 0, 0])
    np.testing.assert_allclose(_col(x, names, "out_time_span"), [40, 0, 0, 0])
    np.testing.assert_allclose(_col(x, names, "in_time_mean"), [0, 0.5, 0.375, 0])
    np.testing.assert_allclose(_col(x, names, "out_type_a_degree"), np.log1p([2, 1, 0, 0]))
    np.testing.assert_allclose(_col(x, names, "in_type_b_degree"), np.log1p([0, 0, 1, 0]))


def test_undirected_counts_both_endpoints_and_self_loops_once() -> None:
    src, dst = np.array([0, 1, 2]), np.array([1, 2, 2])
    x, names = derive_edge_features(src, dst, 3)
    assert names == ["all_degree", "all_neighbours"]
    np.testing.assert_allclose(x[:, 0], np.log1p([1, 2, 2]))
    np.testing.assert_allclose(x[:, 1], np.log1p([1, 2, 2]))


def test_rejects_out_of_range_and_misaligned() -> None:
    with pytest.raises(GraphDataError):
        derive_edge_features(np.array([0, 3]), np.array([1, 1]), 3)
    with pytest.raises(GraphDataError):
        derive_edge_features(SRC, DST, 4, weight=W[:2])
