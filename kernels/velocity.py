"""Velocity: how many events an entity had in sliding windows (1 h, 24 h, 7 d) ending now.

Window semantics. Events form a *stream*: ordered by timestamp, ties kept in input order. The
window of width ``w`` ending at event ``i`` (time ``t``) holds the events of the same entity
with a timestamp in ``(t - w, t]`` that are at or before ``i`` in the stream:

* an event exactly ``w`` seconds earlier is out, one ``w - 1`` seconds earlier is in;
* the event itself counts (if it is ``counted``);
* of several events in the same second, each sees those before it in input order and itself,
  never one after it: a window ending at an event holds only what had arrived by then.

:func:`velocity_as_of` asks the same question of every entity at one time ``t``: events in
``(t - w, t]``, all of them (the stream up to ``t`` is complete by then).

Applications, logins and new devices per user / device / IP / address are all this one kernel:
pass the entity column the events should be grouped by and, for "new devices", ``counted`` from
:func:`mark_first_seen` of ``(user, device)``.

GPU: none of its own. The batch pass is one stable sort, a prefix sum and one ``searchsorted``
per window, which CuPy runs as CUB radix sort, scan and binary search; a hand-written kernel
would do the same binary search.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kernels._backend import get_array_module
from kernels._validate import as_1d, check_index, check_positive, check_windows
from kernels._window import GroupedTimes, lexsort2
from kernels.typing import DEFAULT_WINDOWS, Array


def _prepare(
    entity: Any, ts: Any, counted: Any, n_entities: int | None
) -> tuple[Any, Array, Array, Array, int]:
    xp = get_array_module(entity, ts, counted)
    ent = as_1d(xp, "entity", entity, np.int64)
    n = int(ent.shape[0])
    t = as_1d(xp, "ts", ts, np.int64, n=n)
    check_index(xp, "entity", ent, n_entities)
    c = (
        xp.ones(n, dtype=np.int64)
        if counted is None
        else as_1d(xp, "counted", counted, np.int64, n=n)
    )
    bound = n_entities if n_entities is not None else (int(ent.max()) + 1 if n else 1)
    return xp, ent, t, c, bound


def compute_velocity(
    entity: Array,
    ts: Array,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    *,
    counted: Array | None = None,
) -> Array:
    """Per event, the entity's counted events in each window ending at that event.

    Args:
        entity (Array): int64 entity position of each event, ``[n]``.
        ts (Array): int64 epoch seconds, ``[n]``, any order (the stream order is derived).
        windows (Sequence[int], optional): window widths in seconds.
            (default: ``(3600, 86400, 604800)``)
        counted (Array, optional): bool ``[n]``: which events count (e.g. new-device logins);
            every event still gets its window counts. (default: all count)

    Returns:
        Array: int64, ``[n, len(windows)]``, in the input order of the events.

    Raises:
        ValueError: on mismatched lengths, negative entities or non-positive windows.
    """
    ws = check_windows(windows)
    xp, ent, t, c, bound = _prepare(entity, ts, counted, None)
    n = int(ent.shape[0])
    out = xp.zeros((n, len(ws)), dtype=np.int64)
    if n == 0:
        return out
    gt = GroupedTimes.build(xp, ent, t, bound)
    prefix = xp.zeros(n + 1, dtype=np.int64)
    xp.cumsum(c[gt.order], out=prefix[1:])
    upto = prefix[1:]  # counted events up to and including each sorted position
    for j, w in enumerate(ws):
        lo = gt.search(xp, gt.group, gt.time - w, side="right")
        out[gt.order, j] = upto - prefix[lo]
    return out


def velocity_as_of(
    entity: Array,
    ts: Array,
    n_entities: int,
    t: int,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    *,
    counted: Array | None = None,
) -> Array:
    """Every entity's counted events with a timestamp in ``(t - w, t]``, per window.

    Args:
        entity (Array): int64 entity position of each event, ``[n]``.
        ts (Array): int64 epoch seconds, ``[n]``.
        n_entities (int): number of entities; entities are ``0 .. n_entities - 1``.
        t (int): the time the windows end at, epoch seconds.
        windows (Sequence[int], optional): window widths in seconds.
            (default: ``(3600, 86400, 604800)``)
        counted (Array, optional): bool ``[n]``: which events count. (default: all)

    Returns:
        Array: int64, ``[n_entities, len(windows)]``.
    """
    ws = check_windows(windows)
    check_positive("n_entities", n_entities)
    xp, ent, tt, c, _ = _prepare(entity, ts, counted, n_entities)
    gt = GroupedTimes.build(xp, ent, tt, n_entities)
    prefix = xp.zeros(int(ent.shape[0]) + 1, dtype=np.int64)
    xp.cumsum(c[gt.order], out=prefix[1:])
    groups = xp.arange(n_entities, dtype=np.int64)
    at = xp.full(n_entities, int(t), dtype=np.int64)
    hi = gt.search(xp, groups, at, side="right")
    out = xp.zeros((n_entities, len(ws)), dtype=np.int64)
    for j, w in enumerate(ws):
        lo = gt.search(xp, groups, at - w, side="right")
        out[:, j] = prefix[hi] - prefix[lo]
    return out


def mark_first_seen(a: Array, b: Array, ts: Array) -> Array:
    """Whether each event is the first of its ``(a, b)`` pair in the stream (a new device).

    Args:
        a (Array): int64, ``[n]``, e.g. the user.
        b (Array): int64, ``[n]``, e.g. the device.
        ts (Array): int64 epoch seconds, ``[n]``; ties are broken by input order.

    Returns:
        Array: bool, ``[n]``.
    """
    xp = get_array_module(a, b, ts)
    aa = as_1d(xp, "a", a, np.int64)
    n = int(aa.shape[0])
    bb = as_1d(xp, "b", b, np.int64, n=n)
    t = as_1d(xp, "ts", ts, np.int64, n=n)
    check_index(xp, "a", aa, None)
    check_index(xp, "b", bb, None)
    out = xp.zeros(n, dtype=bool)
    if n == 0:
        return out
    pair = lexsort2(xp, aa, bb)
    # rank pairs: equal (a, b) get one id, then order the stream by (pair id, time)
    pa, pb = aa[pair], bb[pair]
    new = xp.ones(n, dtype=np.int64)
    new[1:] = (pa[1:] != pa[:-1]) | (pb[1:] != pb[:-1])
    pair_id = xp.empty(n, dtype=np.int64)
    pair_id[pair] = xp.cumsum(new) - 1
    order = lexsort2(xp, pair_id, t)
    pid = pair_id[order]
    first = xp.ones(n, dtype=bool)
    first[1:] = pid[1:] != pid[:-1]
    out[order] = first
    return out
