"""`TemporalAdjacency`: one relation as CSR whose rows are sorted by edge time.

Rows are parents, entries their children; within a row the children are ordered by the time the
edge appeared (ties by child position), so "the neighbours that existed before ``t``" is a prefix
of the row and one binary search finds it. A single global search answers many ``(row, t)``
queries at once: every edge gets the composite key ``row * span + (time - t_min)``, which is
sorted because rows are sorted and times are sorted within a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gnn.errors import GraphDataError


@dataclass(frozen=True)
class TemporalAdjacency:
    """Parent -> child edges as time-sorted CSR.

    Build it with :meth:`from_edges`.

    Args:
        indptr (np.ndarray): int64 row offsets, ``[num_parents + 1]``.
        child (np.ndarray): int64 child position of each edge, ``[E]``.
        time (np.ndarray): int64 time each edge appeared, ``[E]``, ascending within a row.
        num_children (int): number of child nodes.
    """

    indptr: np.ndarray
    child: np.ndarray
    time: np.ndarray
    num_children: int
    _key: np.ndarray = field(init=False, repr=False, compare=False)
    _t_min: int = field(init=False, repr=False, compare=False)
    _span: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n_rows = int(self.indptr.shape[0]) - 1
        t_min = int(self.time.min()) if self.time.size else 0
        t_max = int(self.time.max()) if self.time.size else 0
        span = t_max - t_min + 2
        if max(n_rows, 1) * span >= np.iinfo(np.int64).max // 2:
            raise GraphDataError("time span too large for the composite row/time key")
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(self.indptr))
        object.__setattr__(self, "_key", rows * span + (self.time - t_min))
        object.__setattr__(self, "_t_min", t_min)
        object.__setattr__(self, "_span", span)

    @classmethod
    def from_edges(
        cls,
        parent: np.ndarray,
        child: np.ndarray,
        time: np.ndarray,
        num_parents: int,
        num_children: int,
        *,
        dedupe: bool = False,
    ) -> TemporalAdjacency:
        """Build from edge lists.

        Args:
            parent (np.ndarray): int64 parent positions, ``[E]``.
            child (np.ndarray): int64 child positions, ``[E]``.
            time (np.ndarray): int64 edge times, ``[E]``.
            num_parents (int): number of parent nodes.
            num_children (int): number of child nodes.
            dedupe (bool, optional): keep one edge per ``(parent, child)`` pair, the earliest
                (repeated logins from one IP are one neighbour). (default: ``False``)

        Raises:
            GraphDataError: on mismatched lengths or out-of-range positions.
        """
        parent = np.asarray(parent, dtype=np.int64)
        child = np.asarray(child, dtype=np.int64)
        time = np.asarray(time, dtype=np.int64)
        if not parent.shape == child.shape == time.shape or parent.ndim != 1:
            raise GraphDataError(
                f"parent, child and time must be 1-D of equal length, got {parent.shape}, "
                f"{child.shape}, {time.shape}")
        if parent.size and (parent.min() < 0 or parent.max() >= num_parents):
            raise GraphDataError(f"parent position out of range [0, {num_parents})")
        if child.size and (child.min() < 0 or child.max() >= num_children):
            raise GraphDataError(f"child position out of range [0, {num_children})")
        if dedupe and parent.size:
            order = np.lexsort((time, child, parent))
            p, c = parent[order], child[order]
            first = np.ones(p.shape[0], dtype=bool)
            first[1:] = (p[1:] != p[:-1]) | (c[1:] != c[:-1])
            keep = order[first]
            parent, child, time = parent[keep], child[keep], time[keep]
        order = np.lexsort((child, time, parent))
        indptr = np.zeros(num_parents + 1, dtype=np.int64)
        np.cumsum(np.bincount(parent, minlength=num_parents), out=indptr[1:])
        return cls(indptr, child[order], time[order], int(num_children))

    @property
    def num_parents(self) -> int:
        return int(self.indptr.shape[0]) - 1

    @property
    def num_edges(self) -> int:
        return int(self.child.shape[0])

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
        known = parent >= 0
        p = np.where(known, parent, 0)
        start = self.indptr[p]
        offset = np.minimum(np.maximum(t - self._t_min + (1 if inclusive else 0), 0),
                            self._span - 1)
        end = self._key.searchsorted(p * self._span + offset, side="left").astype(np.int64)
        end = np.maximum(end, start)
        return np.where(known, start, 0), np.where(known, end, 0)

    def count_before(
        self, parent: np.ndarray, t: np.ndarray, *, inclusive: bool = False
    ) -> np.ndarray:
        """Degree of each parent as of ``t`` (edges strictly before ``t`` unless inclusive)."""
        start, end = self.ranges(parent, t, inclusive=inclusive)
        return end - start

    def first_time(self, parent: np.ndarray) -> np.ndarray:
        """Time of each parent's earliest edge; int64 max where it has none."""
        parent = np.asarray(parent, dtype=np.int64)
        p = np.where(parent >= 0, parent, 0)
        start, end = self.indptr[p], self.indptr[p + 1]
        has = (parent >= 0) & (end > start)
        out = np.full(parent.shape[0], np.iinfo(np.int64).max, dtype=np.int64)
        out[has] = self.time[start[has]]
        return out

    def reverse(self) -> TemporalAdjacency:
        """The same edges with parents and children swapped."""
        rows = np.repeat(np.arange(self.num_parents, dtype=np.int64), np.diff(self.indptr))
        return TemporalAdjacency.from_edges(
            self.child, rows, self.time, self.num_children, self.num_parents)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_parents={self.num_parents}, "
                f"num_children={self.num_children}, num_edges={self.num_edges})")
