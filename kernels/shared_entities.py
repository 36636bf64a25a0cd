"""Shared entities: who else uses this user's devices, phones, addresses and IPs, and how many
of them are known fraudsters or defaulters — as of a time, with hubs kept in their place.

Input is one user→entity relation as CSR (``indptr`` over users, ``indices`` the entity of each
edge, e.g. ``USES`` → Device) with the time each edge appeared. Call once per entity type, or
once on relations concatenated with offset entity ids for the union over types. Repeated edges
(the same user logging in from the same IP many times) count once, from their first time.

As of a time ``t`` (edges with ``edge_time <= t``), entity ``e`` has degree ``deg_t(e)``: its
distinct users. An entity with more than ``hub_degree`` users is a *hub* (a public Wi-Fi IP, an
office address); hubs are capped, not expanded. Per query ``(user, t)``:

* ``shared_accounts``: distinct other users reachable through a non-hub entity;
* ``fraud_neighbours`` / ``default_neighbours``: how many of those have a fraud / default label
  visible *strictly before* the query's ``label_cutoff`` (default ``t``): a label that becomes
  visible at the cutoff itself, or later, is not known yet. This is the no-leakage rule;
* ``fraud_rate`` / ``default_rate``: those counts over ``shared_accounts`` (NaN when 0);
* ``entities``, ``hub_entities``, ``max_entity_degree``: the user's entities as of ``t``, how
  many of them are hubs, and the largest degree (hub-ness; 0 with no entity);
* ``shared_capped``: the sum over the user's entities of ``min(deg_t(e) - 1, hub_degree)``:
  a hub adds at most ``hub_degree`` however many thousands use it.

Time is whatever ordered int64 the caller uses: epoch seconds for "as of t", or stream positions
where several events share a second and their order within it must count.

Batch algorithm (``xp``-generic, no kernel of its own): degrees only grow, so an entity is a
non-hub from its first edge until its ``hub_degree + 1``-th user joins (``hub_time``); every
pair of users sharing it is *active* from the later of their two join times until then. The
pairs of all non-hub entities are enumerated once (at most ``hub_degree**2`` per entity), then
each query keeps its user's active pairs and counts distinct partners. On CuPy this is sorts,
binary searches and prefix sums (CUB); a hand-written kernel would do the same sorts.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from kernels._backend import get_array_module
from kernels._validate import as_1d, check_index, check_indptr, check_positive
from kernels._window import (
    GroupedTimes,
    expand_ranges,
    lexsort2,
    searchsorted,
    stable_argsort,
)
from kernels.errors import KeyOverflowError
from kernels.segment import segment_max
from kernels.typing import NEVER, Array

DEFAULT_HUB_DEGREE = 20
"""Entities with more distinct users than this are hubs (families and rings stay below)."""

_INT64_MAX = int(np.iinfo(np.int64).max)


class SharedEntityFeatures(NamedTuple):
    """Per query: see the module docstring for each field."""

    shared_accounts: Array
    fraud_neighbours: Array
    default_neighbours: Array
    fraud_rate: Array
    default_rate: Array
    entities: Array
    hub_entities: Array
    max_entity_degree: Array
    shared_capped: Array


def _composite(xp: ModuleType, hi: Array, lo: Array, n_lo: int, what: str) -> Array:
    if max(int(hi.max()) + 1 if hi.shape[0] else 1, 1) * max(n_lo, 1) >= _INT64_MAX:
        raise KeyOverflowError(f"{what}: composite key overflows int64")
    return hi * n_lo + lo


def _count(xp: ModuleType, idx: Array, n: int) -> Array:
    """``bincount`` with exactly ``n`` bins, safe for empty input on both backends."""
    if idx.shape[0] == 0:
        return xp.zeros(n, dtype=np.int64)
    return xp.bincount(idx, minlength=n)[:n].astype(np.int64)


def _labels(xp: ModuleType, name: str, a: Any, n_users: int) -> Array:
    if a is None:
        return xp.full(n_users, NEVER, dtype=np.int64)
    return as_1d(xp, name, a, np.int64, n=n_users)


def shared_entity_features_at(
    indptr: Array,
    indices: Array,
    n_entities: int,
    query_user: Array,
    query_time: Array,
    *,
    edge_time: Array | None = None,
    label_cutoff: Array | None = None,
    fraud_visible_from: Array | None = None,
    default_visible_from: Array | None = None,
    hub_degree: int = DEFAULT_HUB_DEGREE,
) -> SharedEntityFeatures:
    """Shared-entity and labelled-neighbour features of each ``(user, time)`` query.

    Args:
        indptr (Array): int64 CSR offsets over users, ``[n_users + 1]``.
        indices (Array): int64 entity of each edge, ``[nnz]``, in ``0 .. n_entities - 1``.
        n_entities (int): number of entities.
        query_user (Array): int64, ``[q]``.
        query_time (Array): int64, ``[q]``: edges with ``edge_time <= query_time`` exist.
        edge_time (Array, optional): int64, ``[nnz]``, when each edge appeared.
            (default: every edge at time 0)
        label_cutoff (Array, optional): int64, ``[q]``: labels visible strictly before this
            count. (default: ``query_time``)
        fraud_visible_from (Array, optional): int64 per user, ``[n_users]``: when the user's
            confirmed-fraud label became visible; :data:`kernels.NEVER` if never.
            (default: no labels)
        default_visible_from (Array, optional): int64 per user, likewise for default.
            (default: no labels)
        hub_degree (int, optional): entities with more distinct users are hubs.
            (default: ``20``)

    Returns:
        SharedEntityFeatures: int64 counts and float64 rates, each ``[q]``.

    Raises:
        ValueError: on malformed CSR, out-of-range ids or mismatched lengths.
    """
    check_positive("hub_degree", hub_degree)
    H = int(hub_degree)
    xp = get_array_module(
        indptr, indices, query_user, query_time, edge_time, label_cutoff,
        fraud_visible_from, default_visible_from,
    )
    idx = as_1d(xp, "indices", indices, np.int64)
    nnz = int(idx.shape[0])
    ptr = check_indptr(xp, indptr, nnz=nnz)
    n_users = int(ptr.shape[0]) - 1
    if isinstance(n_entities, bool) or int(n_entities) < 0:
        raise ValueError(f"n_entities must be a non-negative integer, got {n_entities!r}")
    n_ent = int(n_entities)
    check_index(xp, "indices", idx, n_ent)
    et_in = (
        xp.zeros(nnz, dtype=np.int64)
        if edge_time is None
        else as_1d(xp, "edge_time", edge_time, np.int64, n=nnz)
    )
    qu = as_1d(xp, "query_user", query_user, np.int64)
    nq = int(qu.shape[0])
    check_index(xp, "query_user", qu, n_users)
    qt = as_1d(xp, "query_time", query_time, np.int64, n=nq)
    cut = qt if label_cutoff is None else as_1d(xp, "label_cutoff", label_cutoff, np.int64, n=nq)
    fraud_from = _labels(xp, "fraud_visible_from", fraud_visible_from, n_users)
    default_from = _labels(xp, "default_visible_from", default_visible_from, n_users)

    # 1. unique (user, entity) edges with their first time, sorted by (user, entity)
    src = xp.searchsorted(ptr[1:], xp.arange(nnz, dtype=np.int64), side="right").astype(np.int64)
    key = _composite(xp, src, idx, n_ent, "users x entities")
    order = stable_argsort(xp, key)
    k_sorted = key[order]
    first = xp.ones(nnz, dtype=bool)
    first[1:] = k_sorted[1:] != k_sorted[:-1]
    run_start = xp.flatnonzero(first).astype(np.int64)
    run_ptr = xp.concatenate([run_start, xp.asarray([nnz], dtype=np.int64)])
    keep = order[run_start]
    uu, ue = src[keep], idx[keep]
    # NOTE: the earliest time of each (user, entity) run, as a max of negated times (exact in
    # float64 below 2**53 s) so that it runs through the segment kernel on both backends.
    ut = (-segment_max(run_ptr, -et_in[order].astype(np.float64))).astype(np.int64)

    # 2. the entity view: users of each entity in join order, degrees, hub times
    by_ent = GroupedTimes.build(xp, ue, ut, max(n_ent, 1))
    eu = uu[by_ent.order]
    ent_ids = xp.arange(n_ent, dtype=np.int64)
    estart = by_ent.group_start(xp, ent_ids)
    eend = searchsorted(xp, by_ent.key, (ent_ids + 1) * by_ent.span, "left")
    deg_final = eend - estart
    n_sorted = int(eu.shape[0])
    is_hub_ever = deg_final > H
    if n_sorted:
        at_hub = by_ent.time[xp.minimum(estart + H, n_sorted - 1)]
        hub_time = xp.where(is_hub_ever, at_hub, NEVER)
    else:
        hub_time = xp.full(n_ent, NEVER, dtype=np.int64)

    # 3. members while small (a prefix of each entity) and all their ordered pairs
    pos_all = xp.arange(n_sorted, dtype=np.int64)
    ge = by_ent.group
    rank = pos_all - estart[ge]
    member = (rank < H) & (by_ent.time < hub_time[ge])
    m_count = _count(xp, ge[member], n_ent)
    mpos = xp.flatnonzero(member).astype(np.int64)
    owner, partner, _ = expand_ranges(xp, estart[ge[mpos]], estart[ge[mpos]] + m_count[ge[mpos]])
    a = mpos[owner]
    real = partner != a
    a, partner = a[real], partner[real]
    row_u, row_v = eu[a], eu[partner]
    row_start = xp.maximum(by_ent.time[a], by_ent.time[partner])
    row_end = hub_time[ge[a]]
    by_u = lexsort2(xp, row_u, row_v)
    row_u, row_v = row_u[by_u], row_v[by_u]
    row_start, row_end = row_start[by_u], row_end[by_u]

    # 4. per query: active pairs, distinct partners, labelled partners
    lo = searchsorted(xp, row_u, qu, "left")
    hi = searchsorted(xp, row_u, qu, "right")
    q_of, r, _ = expand_ranges(xp, lo, hi)
    active = (row_start[r] <= qt[q_of]) & (qt[q_of] < row_end[r])
    q_of, v = q_of[active], row_v[r[active]]
    pair_key = xp.sort(_composite(xp, q_of, v, max(n_users, 1), "queries x users"))
    distinct = xp.ones(pair_key.shape[0], dtype=bool)
    distinct[1:] = pair_key[1:] != pair_key[:-1]
    pair_key = pair_key[distinct]
    nu = max(n_users, 1)
    dq, dv = pair_key // nu, pair_key % nu
    shared = _count(xp, dq, nq)
    fraud = _count(xp, dq[fraud_from[dv] < cut[dq]], nq)
    default = _count(xp, dq[default_from[dv] < cut[dq]], nq)
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = xp.where(shared > 0, shared, 1).astype(np.float64)
        fraud_rate = xp.where(shared > 0, fraud / denom, np.nan)
        default_rate = xp.where(shared > 0, default / denom, np.nan)

    # 5. per query: the user's entities as of t, their degrees, hubs, capped sum
    elo = searchsorted(xp, uu, qu, "left")
    ehi = searchsorted(xp, uu, qu, "right")
    q2, epos, qptr = expand_ranges(xp, elo, ehi)
    present = ut[epos] <= qt[q2]
    ent = ue[epos]
    if nq and bool((qt == qt[0]).all()):  # one as-of time: each entity's degree once
        t0 = xp.full(n_ent, int(qt[0]), dtype=np.int64)
        deg = (by_ent.search(xp, ent_ids, t0, side="right") - estart)[ent]
    else:
        deg = by_ent.search(xp, ent, qt[q2], side="right") - estart[ent]
    deg = xp.where(present, deg, 0)
    capped = xp.where(present, xp.minimum(deg - 1, H), 0)

    def per_query(values: Array) -> Array:
        prefix = xp.zeros(values.shape[0] + 1, dtype=np.int64)
        xp.cumsum(values, out=prefix[1:])
        return prefix[qptr[1:]] - prefix[qptr[:-1]]

    entities = per_query(present.astype(np.int64))
    hubs = per_query((deg > H).astype(np.int64))
    capped_sum = per_query(capped)
    max_deg = segment_max(qptr, deg.astype(np.float64), empty=0.0).astype(np.int64)
    return SharedEntityFeatures(
        shared, fraud, default, fraud_rate, default_rate, entities, hubs, max_deg, capped_sum
    )


def shared_entity_features(
    indptr: Array,
    indices: Array,
    n_entities: int,
    *,
    as_of: int | None = None,
    edge_time: Array | None = None,
    label_cutoff: int | None = None,
    fraud_visible_from: Array | None = None,
    default_visible_from: Array | None = None,
    hub_degree: int = DEFAULT_HUB_DEGREE,
) -> SharedEntityFeatures:
    """Every user's shared-entity features as of one time (batch rescoring, training snapshots).

    Args:
        indptr (Array): int64 CSR offsets over users, ``[n_users + 1]``.
        indices (Array): int64 entity of each edge, ``[nnz]``.
        n_entities (int): number of entities.
        as_of (int, optional): edges with ``edge_time <= as_of`` exist and labels visible
            strictly before ``as_of`` count. (default: every edge and every label)
        edge_time (Array, optional): int64, ``[nnz]``. (default: all 0)
        label_cutoff (int, optional): labels visible strictly before this count, when edge
            times are stream positions rather than epoch seconds. (default: ``as_of``)
        fraud_visible_from (Array, optional): int64 per user. (default: no labels)
        default_visible_from (Array, optional): int64 per user. (default: no labels)
        hub_degree (int, optional): entities with more distinct users are hubs.
            (default: ``20``)

    Returns:
        SharedEntityFeatures: each ``[n_users]``.
    """
    xp = get_array_module(indptr, indices, edge_time, fraud_visible_from, default_visible_from)
    n_users = int(xp.asarray(indptr).shape[0]) - 1
    t = NEVER - 1 if as_of is None else int(as_of)
    cut = t if label_cutoff is None else int(label_cutoff)
    return shared_entity_features_at(
        indptr, indices, n_entities,
        xp.arange(max(n_users, 0), dtype=np.int64),
        xp.full(max(n_users, 0), t, dtype=np.int64),
        edge_time=edge_time,
        label_cutoff=xp.full(max(n_users, 0), cut, dtype=np.int64),
        fraud_visible_from=fraud_visible_from,
        default_visible_from=default_visible_from,
        hub_degree=hub_degree,
    )
