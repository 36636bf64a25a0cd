"""`derive_edge_features`: node features computed from the edge list alone.

For graphs whose nodes come without features (or to add structure to those that have some):
degrees, and statistics of the weights, times and types of each node's edges, split into
incoming and outgoing for a directed graph. Heavy-tailed counts and sums are ``log1p``-ed so
that a later standardisation gives usable scales.
"""

from __future__ import annotations

import numpy as np

from gnn.errors import GraphDataError

MAX_EDGE_TYPES = 16
"""Per-type degree columns are made for at most this many (the most frequent) edge types."""


def derive_edge_features(
    src: np.ndarray,
    dst: np.ndarray,
    num_nodes: int,
    directed: bool = False,
    weight: np.ndarray | None = None,
    time: np.ndarray | None = None,
    edge_type: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Per-node statistics of incident edges.

    For each *side* (``in`` and ``out`` when ``directed``, else one side ``all`` over both
    endpoints of every edge) the columns are:

    - ``{side}_degree``: ``log1p`` of the number of incident edges;
    - ``{side}_neighbours``: ``log1p`` of the number of distinct neighbours;
    - with ``weight``: ``{side}_weight_sum`` (signed ``log1p``), ``_mean``, ``_min``, ``_max``,
      ``_std``;
    - with ``time`` (any numeric unit): ``{side}_time_first``, ``_last``, ``_mean`` as fractions
      of the graph's time range, and ``_span`` (last - first, same unit);
    - with ``edge_type``: ``{side}_type_{t}_degree`` (``log1p``) for the
      :data:`MAX_EDGE_TYPES` most frequent types.

    Statistics of a node without edges on that side are 0. Self-loops count once per side.

    Args:
        src (np.ndarray): int source positions ``[E]``.
        dst (np.ndarray): int target positions ``[E]``.
        num_nodes (int): ``N``.
        directed (bool, optional): separate ``in`` and ``out``. (default: ``False``)
        weight (np.ndarray, optional): float edge weights ``[E]``.
        time (np.ndarray, optional): numeric edge times ``[E]`` (e.g. epoch seconds).
        edge_type (np.ndarray, optional): edge types ``[E]`` (any hashable values).

    Returns:
        tuple[np.ndarray, list[str]]: float64 features ``[N, K]`` and their names.
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    if src.shape != dst.shape or src.ndim != 1:
        raise GraphDataError(f"src and dst must be 1-D of equal length, got {src.shape}, "
                             f"{dst.shape}")
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= num_nodes):
        raise GraphDataError(f"edge endpoint out of range [0, {num_nodes})")
    for name, arr in (("weight", weight), ("time", time), ("edge_type", edge_type)):
        if arr is not None and np.shape(arr) != src.shape:
            raise GraphDataError(f"{name} has shape {np.shape(arr)}, expected {src.shape}")
    w = None if weight is None else np.asarray(weight, dtype=np.float64)
    t = None if time is None else np.asarray(time, dtype=np.float64)
    if w is not None and not np.all(np.isfinite(w)):
        raise GraphDataError("edge weights must be finite")
    if t is not None and not np.all(np.isfinite(t)):
        raise GraphDataError("edge times must be finite")

    if directed:
        # "in" of node v: edges whose target is v; its neighbours are their sources.
        sides = [("in", dst, src, slice(None)), ("out", src, dst, slice(None))]
    else:
        loop = src == dst
        # Both endpoints of each edge, a self-loop once.
        node = np.concatenate([src, dst[~loop]])
        other = np.concatenate([dst, src[~loop]])
        edge_rows = np.concatenate([np.arange(src.size), np.flatnonzero(~loop)])
        sides = [("all", node, other, edge_rows)]

    types = None
    if edge_type is not None:
        values, inverse, counts = np.unique(np.asarray(edge_type).astype(str), return_inverse=True,
                                            return_counts=True)
        keep = np.argsort(-counts, kind="stable")[:MAX_EDGE_TYPES]
        types = (values, inverse.reshape(-1), keep)

    t_lo, t_hi = (float(t.min()), float(t.max())) if t is not None and t.size else (0.0, 1.0)
    t_range = t_hi - t_lo if t_hi > t_lo else 1.0

    columns: list[np.ndarray] = []
    names: list[str] = []

    def add(name: str, values: np.ndarray) -> None:
        columns.append(values.astype(np.float64))
        names.append(name)

    for side, node, other, edge_rows in sides:
        count = np.bincount(node, minlength=num_nodes).astype(np.float64)
        has = count > 0
        add(f"{side}_degree", np.log1p(count))
        pairs = np.unique(node * num_nodes + other)
        add(f"{side}_neighbours", np.log1p(np.bincount(pairs // num_nodes, minlength=num_nodes)))
        if w is not None:
            we = w[edge_rows]
            total = np.bincount(node, weights=we, minlength=num_nodes)
            mean = np.where(has, total / np.maximum(count, 1), 0.0)
            sq = np.bincount(node, weights=we * we, minlength=num_nodes)
            std = np.sqrt(np.maximum(np.where(has, sq / np.maximum(count, 1), 0.0) - mean**2, 0))
            add(f"{side}_weight_sum", np.sign(total) * np.log1p(np.abs(total)))
            add(f"{side}_weight_mean", mean)
            add(f"{side}_weight_min", _reduce_at(node, we, num_nodes, np.minimum))
            add(f"{side}_weight_max", _reduce_at(node, we, num_nodes, np.maximum))
            add(f"{side}_weight_std", std)
        if t is not None:
            te = (t[edge_rows] - t_lo) / t_range
            first = _reduce_at(node, te, num_nodes, np.minimum)
            last = _reduce_at(node, te, num_nodes, np.maximum)
            mean = np.where(has, np.bincount(node, weights=te, minlength=num_nodes)
                            / np.maximum(count, 1), 0.0)
            add(f"{side}_time_first", first)
            add(f"{side}_time_last", last)
            add(f"{side}_time_mean", mean)
            add(f"{side}_time_span", (last - first) * t_range)
        if types is not None:
            values, inverse, keep = types
            te_type = inverse[edge_rows]
            for k in keep:
                c = np.bincount(node[te_type == k], minlength=num_nodes)
                add(f"{side}_type_{values[k]}_degree", np.log1p(c))
    return np.stack(columns, axis=1), names


def _reduce_at(
    node: np.ndarray, values: np.ndarray, num_nodes: int, op: np.ufunc
) -> np.ndarray:
    """``op``-reduction of ``values`` grouped by ``node``; 0 where a node has no value."""
    out = np.full(num_nodes, np.inf if op is np.minimum else -np.inf)
    op.at(out, node, values)
    out[~np.isfinite(out)] = 0.0
    return out
