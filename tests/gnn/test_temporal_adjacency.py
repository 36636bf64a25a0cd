"""`TemporalAdjacency`: time-sorted CSR, degrees as of a time."""

from __future__ import annotations

import numpy as np
import pytest

from gnn import GraphDataError, TemporalAdjacency


def _adj() -> TemporalAdjacency:
    return TemporalAdjacency.from_edges(
        parent=np.array([0, 0, 0, 1, 0]), child=np.array([1, 2, 3, 0, 1]),
        time=np.array([5, 10, 10, 7, 20]), num_parents=3, num_children=4)


def test_count_before_is_strict_and_inclusive_on_request() -> None:
    adj = _adj()
    parent = np.array([0, 0, 0, 0, 1, 2, -1])
    t = np.array([5, 6, 11, 21, 7, 100, 100])
    assert adj.count_before(parent, t).tolist() == [0, 1, 3, 4, 0, 0, 0]
    assert adj.count_before(np.array([0, 1]), np.array([10, 7]), inclusive=True).tolist() == [3, 1]


def test_rows_are_sorted_by_time() -> None:
    adj = _adj()
    start, end = adj.ranges(np.array([0]), np.array([100]))
    assert adj.time[start[0]:end[0]].tolist() == [5, 10, 10, 20]
    assert adj.child[start[0]:end[0]].tolist() == [1, 2, 3, 1]


def test_dedupe_keeps_the_earliest_edge_of_a_pair() -> None:
    adj = TemporalAdjacency.from_edges(np.array([0, 0, 0]), np.array([1, 1, 2]),
                                       np.array([9, 4, 6]), 1, 3, dedupe=True)
    assert adj.child.tolist() == [1, 2]
    assert adj.time.tolist() == [4, 6]


def test_reverse_and_first_time() -> None:
    rev = _adj().reverse()
    assert rev.num_parents == 4 and rev.num_children == 3
    assert rev.count_before(np.array([1]), np.array([100])).tolist() == [2]
    assert rev.first_time(np.array([1, 0, -1])).tolist()[:2] == [5, 7]


def test_rejects_out_of_range_positions() -> None:
    with pytest.raises(GraphDataError, match="child position"):
        TemporalAdjacency.from_edges(np.array([0]), np.array([5]), np.array([1]), 1, 2)
    with pytest.raises(GraphDataError, match="equal length"):
        TemporalAdjacency.from_edges(np.array([0, 1]), np.array([0]), np.array([1]), 2, 2)
