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
    _, child, time, _ = adj.edges()
    assert child.tolist() == [1, 2]
    assert time.tolist() == [4, 6]


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


@pytest.mark.parametrize(("parent", "child", "what"), [
    (-1, 0, "parent"), (3, 0, "parent"), (0, -1, "child"), (0, 4, "child")])
def test_one_edge_inserts_are_range_checked_like_many(parent: int, child: int,
                                                      what: str) -> None:
    adj = _adj()
    for n in (1, 2):  # one edge takes the online fast path, two the general one
        with pytest.raises(GraphDataError, match=f"{what} position"):
            adj.insert(np.full(n, parent), np.full(n, child), np.full(n, 9),
                       np.zeros(n, np.uint64))
        with pytest.raises(GraphDataError, match=f"{what} position"):
            adj.insert_earliest(np.full(n, parent), np.full(n, child), np.full(n, 9),
                                np.zeros(n, np.uint64))


def _rows(adj: TemporalAdjacency) -> list[list[tuple[int, int, int]]]:
    out = []
    for p in range(adj.num_parents):
        c, t, k = adj.row(p)
        out.append(list(zip(c.tolist(), t.tolist(), k.tolist(), strict=True)))
    return out


def _random_edges(rng: np.random.Generator, n: int, n_par: int, n_ch: int
                  ) -> tuple[np.ndarray, ...]:
    parent = rng.integers(0, n_par, n)
    child = rng.integers(0, n_ch, n)
    time = rng.integers(0, 50, n)  # many equal times: the tie key decides
    tie = (child * 7919 + 13).astype(np.uint64)
    return parent, child, time, tie


def test_grown_one_edge_at_a_time_equals_built_in_one_pass() -> None:
    rng = np.random.default_rng(3)
    parent, child, time, tie = _random_edges(rng, 3000, 40, 60)
    parent = np.where(np.arange(3000) < 1000, parent % 30, parent)  # rows 30-39 come later
    batch = TemporalAdjacency.from_edges(parent, child, time, 40, 60, tie=tie)
    # a base of a third, then the rest in shuffled small groups, as an online stream
    grown = TemporalAdjacency.from_edges(parent[:1000], child[:1000], time[:1000], 30, 60,
                                         tie=tie[:1000])
    grown.resize(num_parents=40)
    order = rng.permutation(np.arange(1000, 3000))
    for lo in range(0, order.shape[0], 3):
        i = order[lo:lo + 3]
        grown.insert(parent[i], child[i], time[i], tie[i])
    assert grown.moved_rows > 0 and grown.garbage > 0
    assert _rows(grown) == _rows(batch)
    q = rng.integers(-1, 40, 500)
    t = rng.integers(-5, 60, 500)
    for inclusive in (False, True):
        a0, a1 = batch.ranges(q, t, inclusive=inclusive)
        b0, b1 = grown.ranges(q, t, inclusive=inclusive)
        assert ((a1 - a0) == (b1 - b0)).all()
        assert all(grown.child[s:e].tolist() == batch.child[s2:e2].tolist()
                   for s, e, s2, e2 in zip(b0, b1, a0, a1, strict=True))
    assert (grown.first_time(q) == batch.first_time(q)).all()
    grown.compact()
    assert grown.moved_rows == 0 and grown.garbage == 0
    assert _rows(grown) == _rows(batch)


def test_many_moved_rows_are_searched_by_bisection() -> None:
    rng = np.random.default_rng(5)
    parent, child, time, tie = _random_edges(rng, 4000, 300, 50)
    batch = TemporalAdjacency.from_edges(parent, child, time, 300, 50, tie=tie)
    grown = TemporalAdjacency.empty(300, 50)
    for i in range(0, 4000, 50):
        grown.insert(parent[i:i + 50], child[i:i + 50], time[i:i + 50], tie[i:i + 50])
    q = rng.integers(0, 300, 2000)
    t = rng.integers(0, 60, 2000)
    assert grown.moved_rows > 32
    assert (grown.count_before(q, t) == batch.count_before(q, t)).all()
    assert (grown.count_before(q, t, inclusive=True)
            == batch.count_before(q, t, inclusive=True)).all()


def test_earliest_evidence_per_pair_in_any_order() -> None:
    rng = np.random.default_rng(11)
    parent, child, time, tie = _random_edges(rng, 2000, 20, 30)
    never = np.iinfo(np.int64).max
    time = np.where(rng.random(2000) < 0.3, never, time)  # undated evidence
    tie = child.astype(np.uint64)
    one_pass = TemporalAdjacency.empty(20, 30)
    one_pass.insert_earliest(parent, child, time, tie, zero_is_undated=True)
    stream = TemporalAdjacency.empty(20, 30)
    for i in rng.permutation(2000):
        stream.insert_earliest(parent[i:i + 1], child[i:i + 1], time[i:i + 1], tie[i:i + 1],
                               zero_is_undated=True)
    assert _rows(stream) == _rows(one_pass)
    # a pair known only undated sits at 0; dated evidence later dates it
    adj = TemporalAdjacency.empty(1, 2)
    adj.insert_earliest(np.array([0]), np.array([1]), np.array([never]), np.array([1], np.uint64),
                        zero_is_undated=True)
    assert adj.row(0)[1].tolist() == [0]
    adj.insert_earliest(np.array([0]), np.array([1]), np.array([40]), np.array([1], np.uint64),
                        zero_is_undated=True)
    assert adj.row(0)[1].tolist() == [40]
    adj.insert_earliest(np.array([0]), np.array([1]), np.array([60]), np.array([1], np.uint64),
                        zero_is_undated=True)
    assert adj.row(0)[1].tolist() == [40]


def test_remove_keeps_the_rest_searchable() -> None:
    adj = _adj()
    assert adj.remove(0, 2) and not adj.remove(0, 2)
    assert adj.count_before(np.array([0, 1]), np.array([100, 100])).tolist() == [3, 1]
    assert adj.row(0)[0].tolist() == [1, 3, 1]


def test_a_layout_leaves_room_so_that_online_inserts_do_not_copy_the_edge_buffers() -> None:
    """A state built in one pass (or compacted) had its edge buffers exactly full: the first
    online insert into a row doubled them (a copy of every edge: 50-250 ms on the 100k-user
    world's large relations, a stall of the scorer). Now the layout leaves room at the end."""
    rng = np.random.default_rng(0)
    n_edges = 200_000
    parent = rng.integers(0, 5_000, n_edges)
    adj = TemporalAdjacency.from_edges(parent, rng.integers(0, 9_000, n_edges),
                                       rng.integers(0, 10**6, n_edges), 5_000, 9_000)
    buffers = (adj.child, adj.time, adj.tie)
    room = n_edges // 8  # at least; gnn.data.temporal_adjacency.SPARE_FRACTION
    for i in range(200):  # rows of ~40 edges each move to the end with twice their room
        adj.insert(np.array([i]), np.array([i]), np.array([10**6 + i]), np.array([i]))
    assert all(a is b for a, b in zip((adj.child, adj.time, adj.tie), buffers, strict=True))
    assert adj.garbage < room
    adj.compact()
    assert adj.child.shape[0] >= n_edges + 200 + room
    assert adj.count_before(np.array([7]), np.array([10**7]))[0] == (parent == 7).sum() + 1


def test_a_hub_row_takes_a_stream_of_same_second_edges_in_place() -> None:
    """A hub's row (a national merchant's applications: thousands of edges) that received an
    edge moved to the end of the buffers with twice its length, and one that was not the row's
    latest (applications of one second are ordered by their keys) moved it again: a stream at
    a few dozen hubs doubled the buffers and laid the relation out again every few hundred
    writes (10-200 ms stalls of the scorer). Now the layout leaves each row room after it and
    edges of the row's last seconds are merged there in place."""
    rng = np.random.default_rng(7)
    n = 20_000
    parent = np.where(rng.random(n) < 0.2, 0, rng.integers(1, 2_000, n))  # row 0: a hub
    child = rng.integers(0, 50_000, n)
    time = rng.integers(0, 10**6, n)
    tie = rng.integers(0, 2**62, n).astype(np.uint64)
    adj = TemporalAdjacency.from_edges(parent, child, time, 2_000, 50_000, tie=tie)
    buffers = (adj.child, adj.time, adj.tie)
    new_t = np.repeat(10**6 + np.arange(100), 4)  # four edges a second, in key order by chance
    new_c = rng.integers(0, 50_000, new_t.shape[0])
    new_k = rng.integers(0, 2**62, new_t.shape[0]).astype(np.uint64)
    for i in range(new_t.shape[0]):
        adj.insert(np.array([0]), new_c[i:i + 1], new_t[i:i + 1], new_k[i:i + 1])
    assert all(a is b for a, b in zip((adj.child, adj.time, adj.tie), buffers, strict=True))
    assert adj.garbage == 0
    whole = TemporalAdjacency.from_edges(
        np.r_[parent, np.zeros(new_t.shape[0], np.int64)], np.r_[child, new_c],
        np.r_[time, new_t], 2_000, 50_000, tie=np.r_[tie, new_k])
    assert _rows(adj) == _rows(whole)
    q = np.zeros(50, np.int64)
    t = 10**6 + rng.integers(0, 101, 50)
    assert (adj.count_before(q, t) == whole.count_before(q, t)).all()


def test_the_earliest_entry_per_pair_is_the_lexicographic_first() -> None:
    """``_earliest_per_pair`` (one sort by pair, two reductions) picks what sorting by
    ``(parent, child, time, tie)`` picks, first given among equals, ties included."""
    from gnn.data.temporal_adjacency import _earliest_per_pair

    rng = np.random.default_rng(29)
    for trial in range(200):
        n = int(rng.integers(2, 400))
        parent, child = rng.integers(0, 12, n), rng.integers(0, 9, n)
        time = rng.integers(0, 4, n)
        tie = (np.full(n, np.iinfo(np.uint64).max, np.uint64) if trial % 7 == 0
               else rng.integers(0, 3, n).astype(np.uint64))
        order = np.lexsort((tie, time, child, parent))
        p, c = parent[order], child[order]
        first = np.ones(n, dtype=bool)
        first[1:] = (p[1:] != p[:-1]) | (c[1:] != c[:-1])
        assert _earliest_per_pair(parent, child, time, tie).tolist() == order[first].tolist()


def test_the_row_order_is_the_lexicographic_order() -> None:
    """``_order_by_row`` (parent and time packed, the tie sorted where keys repeat) is
    ``np.lexsort((tie, time, parent))``, with undated entries and negative times too."""
    from gnn.data.temporal_adjacency import _order_by_row

    rng = np.random.default_rng(31)
    never = np.iinfo(np.int64).max
    for trial in range(200):
        n = int(rng.integers(0, 400))
        parent, time = rng.integers(0, 12, n), rng.integers(-3, 4, n)
        if trial % 5 == 0:
            time = np.where(rng.random(n) < 0.2, never, time)
        tie = rng.integers(0, 3, n).astype(np.uint64)
        assert _order_by_row(parent, time, tie).tolist() == \
            np.lexsort((tie, time, parent)).tolist()
