from __future__ import annotations

import numpy as np
import pytest

from kernels import (
    DAY,
    HOUR,
    WEEK,
    compute_velocity,
    mark_first_seen,
    velocity_as_of,
)

WINDOWS = (HOUR, DAY, WEEK)


def reference(entity, ts, windows, counted):
    """Stream = sorted by time, ties in input order; count counted events of the same entity
    at or before each event in the stream with ts in (t - w, t]."""
    stream = sorted(range(len(ts)), key=lambda i: (ts[i], i))
    rank = {i: r for r, i in enumerate(stream)}
    out = np.zeros((len(ts), len(windows)), dtype=np.int64)
    for i in range(len(ts)):
        for j, w in enumerate(windows):
            out[i, j] = sum(
                1
                for k in range(len(ts))
                if entity[k] == entity[i] and counted[k] and rank[k] <= rank[i]
                and ts[i] - w < ts[k] <= ts[i]
            )
    return out


def test_matches_reference_with_ties_and_edges(backend, rng) -> None:
    n = 400
    entity = rng.integers(0, 7, size=n)
    # coarse times make ties and exact window edges frequent
    ts = 1_700_000_000 + rng.integers(0, 40, size=n) * 1800
    counted = rng.random(n) < 0.7
    want = reference(entity.tolist(), ts.tolist(), WINDOWS, counted.tolist())
    got = compute_velocity(
        backend.asarray(entity), backend.asarray(ts), WINDOWS, counted=backend.asarray(counted)
    )
    np.testing.assert_array_equal(backend.asnumpy(got), want)


def test_window_edges_exactly(backend) -> None:
    t0 = 1_700_000_000
    ts = np.array([t0, t0 + HOUR - 1, t0 + HOUR, t0 + HOUR, t0 + DAY])
    got = backend.asnumpy(compute_velocity(backend.asarray(np.zeros(5, np.int64)),
                                           backend.asarray(ts), (HOUR, DAY)))
    # event at t0 + HOUR: the one at t0 is exactly one hour earlier -> out of the 1 h window
    assert got[:, 0].tolist() == [1, 2, 2, 3, 1]
    # the second event at t0 + HOUR sees the first (input order), the first does not see it
    assert got[:, 1].tolist() == [1, 2, 3, 4, 4]


def test_single_event_and_empty(backend) -> None:
    one = compute_velocity(backend.asarray(np.array([3])), backend.asarray(np.array([5])))
    assert backend.asnumpy(one).tolist() == [[1, 1, 1]]
    none = compute_velocity(backend.asarray(np.zeros(0, np.int64)),
                            backend.asarray(np.zeros(0, np.int64)))
    assert backend.asnumpy(none).shape == (0, 3)


@pytest.mark.parametrize("some_counted", [False, True])
def test_as_of_matches_reference(backend, rng, some_counted) -> None:
    n = 300
    entity = rng.integers(0, 9, size=n)
    ts = 1_700_000_000 + rng.integers(0, 20, size=n) * 3600
    t = 1_700_000_000 + 10 * 3600
    counted = rng.random(n) < 0.6 if some_counted else np.ones(n, dtype=bool)
    got = backend.asnumpy(
        velocity_as_of(backend.asarray(entity), backend.asarray(ts), 12, t, WINDOWS,
                       counted=backend.asarray(counted) if some_counted else None)
    )
    for e in range(12):
        for j, w in enumerate(WINDOWS):
            want = int(((entity == e) & counted & (ts > t - w) & (ts <= t)).sum())
            assert got[e, j] == want


def test_first_seen(backend, rng) -> None:
    a = rng.integers(0, 5, size=200)
    b = rng.integers(0, 4, size=200)
    ts = rng.integers(0, 30, size=200)
    got = backend.asnumpy(
        mark_first_seen(backend.asarray(a), backend.asarray(b), backend.asarray(ts))
    )
    seen: set[tuple[int, int]] = set()
    want = np.zeros(200, dtype=bool)
    for i in sorted(range(200), key=lambda i: (ts[i], i)):
        want[i] = (a[i], b[i]) not in seen
        seen.add((int(a[i]), int(b[i])))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("windows", [(), (0,), (-5,), (1.5,)])
def test_bad_windows(windows) -> None:
    with pytest.raises(ValueError, match="windows"):
        compute_velocity(np.array([0]), np.array([0]), windows)


def test_bad_lengths_and_ids() -> None:
    with pytest.raises(ValueError, match="ts must have length 2"):
        compute_velocity(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="entity must be non-negative"):
        compute_velocity(np.array([-1]), np.array([0]))
    with pytest.raises(ValueError, match="ts must be integers"):
        compute_velocity(np.array([0]), np.array([0.5]))
