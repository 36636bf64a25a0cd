"""`TemporalAdjacency`: one relation as time-sorted rows that can grow an edge at a time.

Rows are parents, entries their children. Within a row the entries are ordered by the time the
edge appeared, ties by a 64-bit *tie key* per entry (the child's id key, or an event's), so
"the neighbours that existed before ``t``" is a prefix of the row that one binary search finds,
and the order never depends on the order in which the edges arrived: a graph built in one pass
and the same graph grown one write at a time hold identical rows.

Layout. Built in one pass (:meth:`TemporalAdjacency.from_edges`) the rows lie one after another
(CSR), each followed by room for a quarter of its length (:data:`ROW_ROOM_FRACTION`), and a
single global search answers many ``(row, t)`` queries at once: every laid-out position has the
composite key ``row * span + (time - t_min)`` (a row's room: its largest key), sorted because
rows are and times within a row are. An online write that fits its row's room goes there in
place (edges of the row's last seconds are merged with it); a row without room left is *moved*:
laid again after the used part of the buffers with room to grow (twice its length). A row
changed either way is searched on its own. An online write so costs the length of the row's
tail it touches, not the size of the relation; the places moved rows left are garbage until
:meth:`compact` lays every row out again (the owner decides when, :attr:`garbage`).

Not thread-safe: one thread writes and reads (the live graph applies writes and scores on one
thread, or in one process).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from gnn.errors import GraphDataError

NEVER: Final[int] = int(np.iinfo(np.int64).max)
"""A time that never comes: an undated piece of evidence (:meth:`insert_earliest`)."""
_SMALL: Final = 32
"""Moved rows searched one by one below this many queries, by vectorised bisection above."""


SPARE_FRACTION: Final = 2
"""A layout leaves ``1/SPARE_FRACTION`` of its edges and rows (at least :data:`MIN_SPARE`) free at
the end of its buffers, so that online inserts and new parents do not copy them: a full buffer
doubles, and doubling one of a few million edges stalled the scorer for 50-250 ms
(docs/BENCHMARKS.md). A half: the room a relation's garbage may take before its owner lays it
out again (:data:`gnn.data.lending_graph._COMPACT_GARBAGE`), so that one layout, not a copy and
then a layout, renews it."""
MIN_SPARE: Final = 4096
ROW_ROOM_FRACTION: Final = 4
"""A layout leaves each row ``1/ROW_ROOM_FRACTION`` of its length free after it, where its
next edges go in place. Without it a row's first online edge moved the whole row to the end of
the buffers with twice its length: a stream of applications at a few dozen hubs (a national
merchant's applications, a carrier IP's; thousands of edges each) spent the layout's spare room
within a few hundred writes, then doubled the buffers and laid the relation out again, over and
over (stalls of 10-200 ms in the scorer, docs/BENCHMARKS.md). A quarter more edges at most."""


def _grow(buf: np.ndarray, need: int) -> np.ndarray:
    """``buf`` with room for at least ``need`` items (contents kept): twice its size, or
    ``need`` plus :data:`SPARE_FRACTION` when that is more."""
    if need <= buf.shape[0]:
        return buf
    out = np.zeros(max(need + need // SPARE_FRACTION, 2 * buf.shape[0], 16), dtype=buf.dtype)
    out[: buf.shape[0]] = buf
    return out


def _spread(values: np.ndarray, at: np.ndarray, size: int) -> np.ndarray:
    """A buffer of ``size`` laid-out positions plus spare room (as :func:`_with_spare`) with
    ``values`` at positions ``at``."""
    out = np.zeros(size + max(MIN_SPARE, size // SPARE_FRACTION), dtype=values.dtype)
    out[at] = values
    return out


def _with_spare(values: np.ndarray, dtype: type) -> np.ndarray:
    """``values`` in a new buffer with room after them: an eighth more, at least
    :data:`MIN_SPARE` (edges of a layout, or rows for new parents)."""
    n = int(values.shape[0])
    out = np.zeros(n + max(MIN_SPARE, n // SPARE_FRACTION), dtype=dtype)
    out[:n] = values
    return out


class TemporalAdjacency:
    """Parent -> child edges as time-sorted rows (see the module docstring).

    Build it with :meth:`from_edges` (one pass) or :meth:`empty`, grow it with :meth:`insert`
    and :meth:`insert_earliest`.

    Args:
        indptr (np.ndarray): int64 row offsets, ``[num_parents + 1]``.
        child (np.ndarray): int64 child position of each edge, ``[E]``.
        time (np.ndarray): int64 time each edge appeared, ``[E]``, ascending within a row.
        num_children (int): number of child nodes.
        tie (np.ndarray, optional): uint64 tie key of each edge, ascending within a row among
            equal times. (default: the child position)
    """

    def __init__(self, indptr: np.ndarray, child: np.ndarray, time: np.ndarray,
                 num_children: int, tie: np.ndarray | None = None) -> None:
        self._lay_out(np.asarray(indptr, dtype=np.int64), child, time, int(num_children), tie)

    def _lay_out(self, indptr: np.ndarray, child: np.ndarray, time: np.ndarray,
                 num_children: int, tie: np.ndarray | None) -> None:
        """Take CSR arrays as the whole state (rows sorted by ``(time, tie)``), each row
        followed by its room (:data:`ROW_ROOM_FRACTION`)."""
        n = int(indptr.shape[0]) - 1
        lengths = np.diff(indptr)
        slot = lengths + lengths // ROW_ROOM_FRACTION
        start = np.zeros(n, dtype=np.int64)
        if n:
            np.cumsum(slot[:-1], out=start[1:])
        child = np.asarray(child, dtype=np.int64)
        time = np.asarray(time, dtype=np.int64)
        tie_values = (child.astype(np.uint64) if tie is None
                      else np.asarray(tie, dtype=np.uint64))
        self._num_parents = n
        self.num_children = int(num_children)
        self._start = _with_spare(start, np.int64)
        self._end = _with_spare(start + lengths, np.int64)
        self._slot_end = _with_spare(start + slot, np.int64)
        self._moved = np.zeros(self._start.shape[0], dtype=bool)
        self._n_moved = 0
        self._used = int(slot.sum())
        self._owned = self._used
        self._live = int(child.shape[0])
        # position of each edge: its row's start plus its rank in the row
        row = np.repeat(np.arange(n, dtype=np.int64), lengths)
        at = start[row] + (np.arange(self._live, dtype=np.int64) - indptr[:-1][row])
        self._child = _spread(child, at, self._used)
        self._time = _spread(time, at, self._used)
        self._tie = _spread(tie_values, at, self._used)
        self._build_key(row, at, time, slot)

    def _build_key(self, row: np.ndarray, at: np.ndarray, time: np.ndarray,
                   slot: np.ndarray) -> None:
        """The composite key of every laid-out position: ``row * span + (time - t_min)``
        for an edge, the row's largest key for its room (so the key stays sorted and a
        search never lands past a row's last edge)."""
        n_rows = self._num_parents
        t_min = int(time.min()) if time.size else 0
        t_max = int(time.max()) if time.size else 0
        span = t_max - t_min + 2
        if max(n_rows, 1) * span >= np.iinfo(np.int64).max // 2:
            raise GraphDataError("time span too large for the composite row/time key")
        key = np.repeat(np.arange(n_rows, dtype=np.int64) * span + (span - 1), slot)
        key[at] = row * span + (time - t_min)
        self._key = key
        self._t_min = t_min
        self._span = span

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def empty(cls, num_parents: int, num_children: int) -> TemporalAdjacency:
        """No edges yet."""
        return cls(np.zeros(num_parents + 1, dtype=np.int64), np.zeros(0, np.int64),
                   np.zeros(0, np.int64), num_children)

    @classmethod
    def from_edges(
        cls,
        parent: np.ndarray,
        child: np.ndarray,
        time: np.ndarray,
        num_parents: int,
        num_children: int,
        *,
        tie: np.ndarray | None = None,
        dedupe: bool = False,
    ) -> TemporalAdjacency:
        """Build from edge lists in one pass.

        Args:
            parent (np.ndarray): int64 parent positions, ``[E]``.
            child (np.ndarray): int64 child positions, ``[E]``.
            time (np.ndarray): int64 edge times, ``[E]``.
            num_parents (int): number of parent nodes.
            num_children (int): number of child nodes.
            tie (np.ndarray, optional): uint64 tie keys, ``[E]``. (default: the child position)
            dedupe (bool, optional): keep one edge per ``(parent, child)`` pair, the earliest
                (repeated logins from one IP are one neighbour). (default: ``False``)

        Raises:
            GraphDataError: on mismatched lengths or out-of-range positions.
        """
        parent = np.asarray(parent, dtype=np.int64)
        child = np.asarray(child, dtype=np.int64)
        time = np.asarray(time, dtype=np.int64)
        tie = child.astype(np.uint64) if tie is None else np.asarray(tie, dtype=np.uint64)
        if not parent.shape == child.shape == time.shape == tie.shape or parent.ndim != 1:
            raise GraphDataError(
                f"parent, child, time and tie must be 1-D of equal length, got {parent.shape}, "
                f"{child.shape}, {time.shape}, {tie.shape}")
        if parent.size and (parent.min() < 0 or parent.max() >= num_parents):
            raise GraphDataError(f"parent position out of range [0, {num_parents})")
        if child.size and (child.min() < 0 or child.max() >= num_children):
            raise GraphDataError(f"child position out of range [0, {num_children})")
        if dedupe and parent.size:
            keep = _earliest_per_pair(parent, child, time, tie)
            parent, child, time, tie = parent[keep], child[keep], time[keep], tie[keep]
        order = _order_by_row(parent, time, tie)
        indptr = np.zeros(num_parents + 1, dtype=np.int64)
        np.cumsum(np.bincount(parent, minlength=num_parents), out=indptr[1:])
        return cls(indptr, child[order], time[order], int(num_children), tie[order])

    # -- shape ------------------------------------------------------------------------------------
    @property
    def num_parents(self) -> int:
        return self._num_parents

    @property
    def num_edges(self) -> int:
        return self._live

    @property
    def garbage(self) -> int:
        """Buffer entries no row owns any more (the places moved rows left)."""
        return self._used - self._owned

    @property
    def moved_rows(self) -> int:
        """Rows searched on their own (grown or shrunk since the last layout)."""
        return self._n_moved

    @property
    def child(self) -> np.ndarray:
        """The child buffer: index it with positions from :meth:`ranges` / :meth:`bounds`."""
        return self._child

    @property
    def time(self) -> np.ndarray:
        """The time buffer, indexed like :attr:`child`."""
        return self._time

    @property
    def tie(self) -> np.ndarray:
        """The tie-key buffer, indexed like :attr:`child`."""
        return self._tie

    def resize(self, num_parents: int | None = None, num_children: int | None = None) -> None:
        """Make room for more parents (new rows are empty) or children.

        Raises:
            ValueError: if a count would shrink.
        """
        if num_children is not None:
            if num_children < self.num_children:
                raise ValueError(f"num_children cannot shrink ({self.num_children} -> "
                                 f"{num_children})")
            self.num_children = int(num_children)
        if num_parents is None or num_parents == self._num_parents:
            return
        if num_parents < self._num_parents:
            raise ValueError(f"num_parents cannot shrink ({self._num_parents} -> {num_parents})")
        old = self._num_parents
        for name in ("_start", "_end", "_slot_end", "_moved"):
            setattr(self, name, _grow(getattr(self, name), num_parents))
        # NOTE: a new row lies outside the global key's rows, so it is searched on its own
        # (as a moved one) until the next layout.
        self._start[old:num_parents] = 0
        self._end[old:num_parents] = 0
        self._slot_end[old:num_parents] = 0
        self._moved[old:num_parents] = True
        self._n_moved += num_parents - old
        self._num_parents = int(num_parents)

    # -- reads ------------------------------------------------------------------------------------
    def bounds(self, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whole rows ``[start, end)`` of ``parent`` (``-1``: an empty range)."""
        parent = np.asarray(parent, dtype=np.int64)
        known = parent >= 0
        p = np.where(known, parent, 0)
        if self._num_parents == 0:
            z = np.zeros(parent.shape[0], dtype=np.int64)
            return z, z.copy()
        return (np.where(known, self._start[p], 0), np.where(known, self._end[p], 0))

    def ranges(
        self, parent: np.ndarray, t: np.ndarray, *, inclusive: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Edge ranges ``[start, end)`` of each parent's edges that existed before ``t``.

        Args:
            parent (np.ndarray): int64 parent positions, ``[Q]``; ``-1`` (unknown node) gives
                an empty range.
            t (np.ndarray): int64 query times, ``[Q]``.
            inclusive (bool, optional): count edges at exactly ``t`` too. (default: ``False``)

        Returns:
            tuple[np.ndarray, np.ndarray]: ``start`` and ``end``, int64 ``[Q]``.
        """
        # NOTE: ufuncs and array methods rather than np.clip / np.searchsorted: online scoring
        # calls this ~70 times per application on one-element arrays, where the wrappers'
        # Python overhead (microseconds each) is most of the cost.
        parent = np.asarray(parent, dtype=np.int64)
        t = np.asarray(t, dtype=np.int64)
        if self._num_parents == 0:
            z = np.zeros(parent.shape[0], dtype=np.int64)
            return z, z.copy()
        if parent.shape[0] == 1:
            return self._range_of_one(int(parent[0]), int(t[0]), 1 if inclusive else 0)
        known = parent >= 0
        p = np.where(known, parent, 0)
        start = self._start[p]
        shift = 1 if inclusive else 0
        # NOTE: clipped before the shift is added: t may be int64 max (the far future).
        offset = np.minimum(np.maximum(np.minimum(t - self._t_min, self._span) + shift, 0),
                            self._span - 1)
        end = self._key.searchsorted(p * self._span + offset, side="left").astype(np.int64)
        end = np.maximum(end, start)
        if self._n_moved:
            mv = np.flatnonzero(self._moved[p] & known)
            if mv.size:
                end[mv] = self._search_moved(p[mv], t[mv], shift)
        return np.where(known, start, 0), np.where(known, end, 0)

    def _range_of_one(self, p: int, t: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`ranges` of one query, on Python integers: an online batch of one
        application asks ~70 of them, where each array operation's overhead is most of the
        cost (the same answer; ``tests/gnn/test_temporal_adjacency.py``)."""
        if p < 0:
            return np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        s = int(self._start[p])
        if self._moved[p]:
            e = s + int(self._time[s:int(self._end[p])].searchsorted(
                t, side="right" if shift else "left"))
        else:
            offset = min(max(min(t - self._t_min, self._span) + shift, 0), self._span - 1)
            e = max(int(self._key.searchsorted(p * self._span + offset, side="left")), s)
        return np.array([s], dtype=np.int64), np.array([e], dtype=np.int64)

    def _search_moved(self, p: np.ndarray, t: np.ndarray, shift: int) -> np.ndarray:
        """End of each moved row's prefix before ``t`` (+ ``shift``)."""
        lo = self._start[p].copy()
        hi = self._end[p].copy()
        time = self._time
        side = "right" if shift else "left"
        if p.shape[0] <= _SMALL:
            for i in range(p.shape[0]):
                s, e = int(lo[i]), int(hi[i])
                lo[i] = s + int(time[s:e].searchsorted(int(t[i]), side=side))
            return lo
        while True:
            active = lo < hi
            if not active.any():
                return lo
            mid = np.where(active, (lo + hi) // 2, 0)
            below = (time[mid] <= t) if shift else (time[mid] < t)
            lo = np.where(active & below, mid + 1, lo)
            hi = np.where(active & ~below, mid, hi)

    def count_before(
        self, parent: np.ndarray, t: np.ndarray, *, inclusive: bool = False
    ) -> np.ndarray:
        """Degree of each parent as of ``t`` (edges strictly before ``t`` unless inclusive)."""
        start, end = self.ranges(parent, t, inclusive=inclusive)
        return end - start

    def first_time(self, parent: np.ndarray) -> np.ndarray:
        """Time of each parent's earliest edge; int64 max where it has none."""
        start, end = self.bounds(parent)
        has = end > start
        out = np.full(start.shape[0], NEVER, dtype=np.int64)
        out[has] = self._time[start[has]]
        return out

    def find(self, parent: int, child: int) -> int:
        """Buffer index of the ``(parent, child)`` entry, ``-1`` if none (the first one)."""
        if parent < 0 or parent >= self._num_parents:
            return -1
        s, e = int(self._start[parent]), int(self._end[parent])
        hit = np.flatnonzero(self._child[s:e] == child)
        return s + int(hit[0]) if hit.size else -1

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every live edge as ``(parent, child, time, tie)``, rows in order (no garbage)."""
        start, end = self._start[: self._num_parents], self._end[: self._num_parents]
        owner, idx = _expand_ranges(start, end)
        return owner, self._child[idx], self._time[idx], self._tie[idx]

    def row(self, parent: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One row as copies of ``(child, time, tie)``."""
        s, e = int(self._start[parent]), int(self._end[parent])
        return self._child[s:e].copy(), self._time[s:e].copy(), self._tie[s:e].copy()

    def reverse(self) -> TemporalAdjacency:
        """The same edges with parents and children swapped."""
        parent, child, time, _ = self.edges()
        return TemporalAdjacency.from_edges(child, parent, time, self.num_children,
                                            self._num_parents)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_parents={self.num_parents}, "
                f"num_children={self.num_children}, num_edges={self.num_edges}, "
                f"moved_rows={self._n_moved}, garbage={self.garbage})")

    # -- writes -----------------------------------------------------------------------------------
    def insert(self, parent: np.ndarray, child: np.ndarray, time: np.ndarray,
               tie: np.ndarray) -> None:
        """Add edges (no deduplication), each at its place in its row.

        Raises:
            GraphDataError: on out-of-range positions.
        """
        parent, child, time, tie = self._checked(parent, child, time, tie)
        if parent.size == 0:
            return
        if self._bulk(parent.shape[0]):
            p0, c0, t0, k0 = self.edges()
            self._relay(np.concatenate([p0, parent]), np.concatenate([c0, child]),
                        np.concatenate([t0, time]), np.concatenate([k0, tie]))
            return
        if parent.shape[0] == 1:
            # NOTE: an online write adds one edge per relation: no sort, no cut.
            self._insert_row(int(parent[0]), child, time, tie)
            return
        order = _order_by_row(parent, time, tie)
        parent, child, time, tie = parent[order], child[order], time[order], tie[order]
        cuts = (np.flatnonzero(parent[1:] != parent[:-1]) + 1).tolist()
        for lo, hi in zip([0, *cuts], [*cuts, parent.shape[0]], strict=True):
            self._insert_row(int(parent[lo]), child[lo:hi], time[lo:hi], tie[lo:hi])

    def insert_earliest(self, parent: np.ndarray, child: np.ndarray, time: np.ndarray,
                        tie: np.ndarray, *, zero_is_undated: bool = False) -> None:
        """Add evidence of ``(parent, child)`` pairs, keeping one edge per pair dated by its
        earliest evidence (the relation of a user's devices, phones, addresses, IPs).

        Args:
            parent, child, time, tie (np.ndarray): the evidence; a time of :data:`NEVER` is
                undated evidence (the pair exists, since when is unknown).
            zero_is_undated (bool, optional): a pair known only from undated evidence is kept
                at time 0 (it counts as always there), and a time 0, stored or given, is read
                as undated, so dated evidence arriving later dates it. (default: ``False``:
                undated evidence is not expected)

        Raises:
            GraphDataError: on out-of-range positions.
        """
        parent, child, time, tie = self._checked(parent, child, time, tie)
        if parent.size == 0:
            return
        if zero_is_undated:
            time = np.where(time == 0, NEVER, time)
        if self._bulk(parent.shape[0]):
            p0, c0, t0, k0 = self.edges()
            if zero_is_undated:
                t0 = np.where(t0 == 0, NEVER, t0)
            p, c = np.concatenate([p0, parent]), np.concatenate([c0, child])
            t, k = np.concatenate([t0, time]), np.concatenate([k0, tie])
            keep = _earliest_per_pair(p, c, t, k)
            t = np.where(t[keep] == NEVER, 0, t[keep])
            self._relay(p[keep], c[keep], t, k[keep])
            return
        keep = _earliest_per_pair(parent, child, time, tie)
        for p, c, t, k in zip(parent[keep].tolist(), child[keep].tolist(), time[keep].tolist(),
                              tie[keep].tolist(), strict=True):
            at = self.find(p, c)
            if at >= 0:
                old = int(self._time[at])
                if zero_is_undated and old == 0:
                    old = NEVER
                if t >= old:
                    continue
                self._remove_at(p, at)
            stored = 0 if t == NEVER else t
            self._insert_row(p, np.array([c], np.int64), np.array([stored], np.int64),
                             np.array([k], np.uint64))

    def remove(self, parent: int, child: int) -> bool:
        """Remove the first ``(parent, child)`` edge; whether there was one."""
        at = self.find(parent, child)
        if at < 0:
            return False
        self._remove_at(parent, at)
        return True

    def compact(self) -> None:
        """Lay every row out again as CSR (no garbage, no moved rows): O(edges)."""
        parent, child, time, tie = self.edges()
        n = self._num_parents
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(self._end[:n] - self._start[:n], out=indptr[1:])
        self._lay_out(indptr, child, time, self.num_children, tie)

    # -- internals --------------------------------------------------------------------------------
    def _checked(self, parent: np.ndarray, child: np.ndarray, time: np.ndarray,
                 tie: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        parent = np.atleast_1d(np.asarray(parent, dtype=np.int64))
        child = np.atleast_1d(np.asarray(child, dtype=np.int64))
        time = np.atleast_1d(np.asarray(time, dtype=np.int64))
        tie = np.atleast_1d(np.asarray(tie, dtype=np.uint64))
        if not parent.shape == child.shape == time.shape == tie.shape:
            raise GraphDataError("parent, child, time and tie must have equal length")
        if parent.size and not _within(parent, self._num_parents):
            raise GraphDataError(f"parent position out of range [0, {self._num_parents})")
        if child.size and not _within(child, self.num_children):
            raise GraphDataError(f"child position out of range [0, {self.num_children})")
        return parent, child, time, tie

    def _bulk(self, n_new: int) -> bool:
        """Whether ``n_new`` edges are better laid out with everything else in one pass."""
        return n_new > 64 and n_new * 8 > self._live

    def _relay(self, parent: np.ndarray, child: np.ndarray, time: np.ndarray,
               tie: np.ndarray) -> None:
        n = self._num_parents
        order = _order_by_row(parent, time, tie)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(parent, minlength=n), out=indptr[1:])
        self._lay_out(indptr, child[order], time[order], self.num_children, tie[order])

    def _mark_moved(self, p: int) -> None:
        if not self._moved[p]:
            self._moved[p] = True
            self._n_moved += 1

    def _insert_row(self, p: int, child: np.ndarray, time: np.ndarray, tie: np.ndarray) -> None:
        """Merge sorted ``(time, tie)`` entries into row ``p``."""
        s, e, slot = int(self._start[p]), int(self._end[p]), int(self._slot_end[p])
        k = int(child.shape[0])
        row_t, row_k = self._time[s:e], self._tie[s:e]
        if e + k <= slot:
            # NOTE: the common case: the slot has room, and the new edges are the row's latest
            # or nearly (applications of one second at a hub are ordered by their keys): the
            # row's entries from the new edges' earliest time on are merged with them in
            # place. A row of the layout is then searched on its own (the global key does not
            # hold it).
            lo = s + int(row_t.searchsorted(time[0], side="left"))
            if lo < e:
                c_all = np.concatenate([self._child[lo:e], child])
                t_all = np.concatenate([self._time[lo:e], time])
                k_all = np.concatenate([self._tie[lo:e], tie])
                order = np.lexsort((k_all, t_all))
                child, time, tie = c_all[order], t_all[order], k_all[order]
            self._child[lo:e + k] = child
            self._time[lo:e + k] = time
            self._tie[lo:e + k] = tie
            self._end[p] = e + k
            self._live += k
            self._used = max(self._used, e + k)
            self._mark_moved(p)
            return
        last_t = int(row_t[-1]) if e > s else None
        after = last_t is None or (int(time[0]), int(tie[0])) >= (last_t, int(row_k[-1]))
        c_all = np.concatenate([self._child[s:e], child])
        t_all = np.concatenate([row_t, time])
        k_all = np.concatenate([row_k, tie])
        if not after:
            order = np.lexsort((k_all, t_all))
            c_all, t_all, k_all = c_all[order], t_all[order], k_all[order]
        n = e - s + k
        # NOTE: a row's first edges get a slot of their size (most rows of an application's
        # relations never get another edge), a growing row twice its size.
        size = k if e == s else 2 * n
        at = self._used
        need = at + size
        self._child = _grow(self._child, need)
        self._time = _grow(self._time, need)
        self._tie = _grow(self._tie, need)
        self._child[at:at + n] = c_all
        self._time[at:at + n] = t_all
        self._tie[at:at + n] = k_all
        self._owned += size - (slot - s)
        self._start[p], self._end[p], self._slot_end[p] = at, at + n, at + size
        self._used = need
        self._live += k
        self._mark_moved(p)

    def _remove_at(self, p: int, at: int) -> None:
        """Remove buffer entry ``at`` of row ``p``, shifting the row's tail in its slot."""
        e = int(self._end[p])
        for buf in (self._child, self._time, self._tie):
            buf[at:e - 1] = buf[at + 1:e]
        self._end[p] = e - 1
        self._live -= 1
        # NOTE: the row keeps its place (the freed entry is its room) but the global key no
        # longer holds it: it is searched on its own from now on.
        self._mark_moved(p)


def _within(pos: np.ndarray, n: int) -> bool:
    """Whether every position of a non-empty ``pos`` lies in ``[0, n)``."""
    if pos.shape[0] == 1:
        # NOTE: a one-element min and max cost two ufunc reductions (~3 us) on every online
        # write of every relation.
        return 0 <= int(pos[0]) < n
    return bool(pos.min() >= 0 and pos.max() < n)


def _expand_ranges(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner ``i`` and index of every element of the ranges ``[start_i, end_i)``."""
    start = np.asarray(start, dtype=np.int64)
    lengths = np.maximum(np.asarray(end, dtype=np.int64) - start, 0)
    owner = np.repeat(np.arange(start.shape[0], dtype=np.int64), lengths)
    offsets = np.zeros(start.shape[0], dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    return owner, start[owner] + (np.arange(owner.shape[0], dtype=np.int64) - offsets[owner])


def _order_by_row(parent: np.ndarray, time: np.ndarray, tie: np.ndarray) -> np.ndarray:
    """``np.lexsort((tie, time, parent))``: the order of entries by parent, then time, then tie
    (stable).

    NOTE: parent and time packed into one key, one stable sort of it, and the tie sorted only
    where keys repeat (few): a third of the lexicographic sort's time on 13.8 M logins.
    """
    n = parent.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    t0 = int(time.min())
    span = int(time.max()) - t0 + 1
    if int(parent.min()) < 0 or (int(parent.max()) + 1) * span >= 2**63:
        return np.lexsort((tie, time, parent))
    key = parent.astype(np.int64) * span + (time - t0)
    order = np.argsort(key, kind="stable")
    key = key[order]
    repeated = key[1:] == key[:-1]
    if repeated.any():
        run = np.zeros(n, dtype=bool)
        run[1:] |= repeated
        run[:-1] |= repeated
        at = np.flatnonzero(run)
        within = order[at]
        order[at] = within[np.lexsort((tie[within], key[at]))]
    return order


def _earliest_per_pair(parent: np.ndarray, child: np.ndarray, time: np.ndarray,
                       tie: np.ndarray) -> np.ndarray:
    """Index of the earliest entry (ties: smallest tie key) of each ``(parent, child)`` pair."""
    if parent.shape[0] == 1:
        return np.zeros(1, dtype=np.int64)
    n_children = int(child.max()) + 1
    if int(parent.max()) >= np.iinfo(np.int64).max // n_children:
        order = np.lexsort((tie, time, child, parent))
        p, c = parent[order], child[order]
        first = np.ones(p.shape[0], dtype=bool)
        first[1:] = (p[1:] != p[:-1]) | (c[1:] != c[:-1])
        return order[first]
    # NOTE: one stable sort by pair, then the least (time, tie) per pair by two reductions:
    # the lexicographic sort's answer (the first such entry in the given order), at a third
    # of its cost on a million logins.
    pair = parent * n_children + child
    order = np.argsort(pair, kind="stable")
    pair = pair[order]
    starts = np.flatnonzero(np.concatenate([[True], pair[1:] != pair[:-1]]))
    group = np.repeat(np.arange(starts.shape[0]), np.diff(np.append(starts, pair.shape[0])))
    t, k = time[order], tie[order]
    earliest = t == np.minimum.reduceat(t, starts)[group]
    least = np.minimum.reduceat(np.where(earliest, k, np.iinfo(k.dtype).max), starts)
    hit = np.flatnonzero(earliest & (k == least[group]))
    firsts = hit[np.concatenate([[True], group[hit[1:]] != group[hit[:-1]]])]
    return order[firsts]
