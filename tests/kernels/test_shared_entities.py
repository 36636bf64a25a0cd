from __future__ import annotations

import numpy as np
import pytest

from kernels import (
    NEVER,
    shared_entity_features,
    shared_entity_features_at,
)


def to_csr(n_users: int, user: np.ndarray, entity: np.ndarray, time: np.ndarray):
    order = np.argsort(user, kind="stable")
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(user, minlength=n_users), out=indptr[1:])
    return indptr, entity[order], time[order]


def reference(user, entity, time, qu, qt, cut, fraud_from, default_from, H):
    """The obvious way: rebuild the graph as of each query time and walk it."""
    out = []
    for u, t, c in zip(qu, qt, cut, strict=True):
        present = [(a, e) for a, e, s in zip(user, entity, time, strict=True) if s <= t]
        users_of: dict[int, set[int]] = {}
        for a, e in present:
            users_of.setdefault(e, set()).add(a)
        mine = {e for a, e in present if a == u}
        degs = [len(users_of[e]) for e in mine]
        others = set().union(*(users_of[e] for e in mine if len(users_of[e]) <= H)) - {u}
        fraud = sum(fraud_from[v] < c for v in others)
        default = sum(default_from[v] < c for v in others)
        n = len(others)
        out.append((
            n, fraud, default, fraud / n if n else np.nan, default / n if n else np.nan,
            len(mine), sum(d > H for d in degs), max(degs, default=0),
            sum(min(d - 1, H) for d in degs),
        ))
    return np.array(out, dtype=np.float64)


def as_array(features) -> np.ndarray:
    return np.stack([np.asarray(f, dtype=np.float64) for f in features], axis=1)


@pytest.mark.parametrize("H", [1, 3, 6])
def test_matches_reference_random(backend, rng, H) -> None:
    n_users, n_ent, nnz, q = 40, 25, 160, 120
    user = rng.integers(0, n_users, nnz)
    entity = rng.integers(0, n_ent, nnz)
    entity[:30] = 0  # one entity that turns into a hub part-way
    time = rng.integers(0, 50, nnz)
    indptr, idx, et = to_csr(n_users, user, entity, time)
    fraud_from = np.where(rng.random(n_users) < 0.3, rng.integers(0, 60, n_users), NEVER)
    default_from = np.where(rng.random(n_users) < 0.2, rng.integers(0, 60, n_users), NEVER)
    qu, qt = rng.integers(0, n_users, q), rng.integers(-1, 55, q)
    cut = qt + rng.integers(-3, 4, q)
    b = backend.asarray
    got = shared_entity_features_at(
        b(indptr), b(idx), n_ent, b(qu), b(qt), edge_time=b(et), label_cutoff=b(cut),
        fraud_visible_from=b(fraud_from), default_visible_from=b(default_from), hub_degree=H,
    )
    want = reference(user, entity, time, qu, qt, cut, fraud_from, default_from, H)
    np.testing.assert_allclose(as_array(backend.asnumpy(f) for f in got), want, rtol=1e-12)
    for f in (got.shared_accounts, got.entities, got.max_entity_degree):
        assert backend.asnumpy(f).dtype == np.int64


def test_labels_never_leak(backend) -> None:
    """Users 0 and 1 share a device; 1's fraud label becomes visible at t=100."""
    b = backend.asarray
    indptr, idx = b(np.array([0, 1, 2], dtype=np.int64)), b(np.array([0, 0]))
    fraud_from = b(np.array([NEVER, 100]))
    got = shared_entity_features_at(
        indptr, idx, 1, b(np.array([0, 0, 0, 1])), b(np.array([99, 100, 101, 500])),
        fraud_visible_from=fraud_from,
    )
    # visible strictly before the query time only; a user's own label never counts
    assert backend.asnumpy(got.fraud_neighbours).tolist() == [0, 0, 1, 0]
    assert backend.asnumpy(got.shared_accounts).tolist() == [1, 1, 1, 1]
    rate = backend.asnumpy(got.fraud_rate)
    assert rate.tolist()[:3] == [0.0, 0.0, 1.0]


def test_hub_is_capped_not_expanded(backend) -> None:
    """A public Wi-Fi IP with 5000 users next to a ring of 4 sharing one phone."""
    n_users, ring = 5004, [5000, 5001, 5002, 5003]
    user = np.concatenate([np.arange(5000), ring, ring[:1]])
    entity = np.concatenate([np.zeros(5000, np.int64), np.ones(4, np.int64), [0]])
    indptr, idx, _ = to_csr(n_users, user, entity, np.zeros(len(user), np.int64))
    b = backend.asarray
    got = shared_entity_features(b(indptr), b(idx), 2, hub_degree=20)
    shared = backend.asnumpy(got.shared_accounts)
    assert shared[0] == 0 and shared[5001] == 3 and shared[5000] == 3
    assert backend.asnumpy(got.hub_entities)[[0, 5000, 5001]].tolist() == [1, 1, 0]
    assert backend.asnumpy(got.max_entity_degree)[[0, 5001]].tolist() == [5001, 4]
    assert backend.asnumpy(got.shared_capped)[[0, 5000, 5001]].tolist() == [20, 23, 3]


def test_hub_before_it_grew(backend) -> None:
    """An entity that is small early and a hub later: as of an early time it still counts."""
    user = np.arange(10)
    entity = np.zeros(10, np.int64)
    time = np.arange(10) * 10
    indptr, idx, et = to_csr(10, user, entity, time)
    b = backend.asarray
    got = shared_entity_features_at(b(indptr), b(idx), 1, b(np.array([0, 0, 0])),
                                    b(np.array([25, 29, 30])), edge_time=b(et), hub_degree=3)
    assert backend.asnumpy(got.shared_accounts).tolist() == [2, 2, 0]
    assert backend.asnumpy(got.hub_entities).tolist() == [0, 0, 1]


def test_single_user_and_empty(backend) -> None:
    b = backend.asarray
    got = shared_entity_features(b(np.array([0, 2], dtype=np.int64)), b(np.array([0, 0])), 1)
    assert backend.asnumpy(got.shared_accounts).tolist() == [0]
    assert backend.asnumpy(got.entities).tolist() == [1]  # the repeated edge counts once
    assert np.isnan(backend.asnumpy(got.fraud_rate)[0])
    none = shared_entity_features(b(np.zeros(4, dtype=np.int64)), b(np.zeros(0, np.int64)), 0)
    assert backend.asnumpy(none.shared_accounts).tolist() == [0, 0, 0]
    assert backend.asnumpy(none.max_entity_degree).tolist() == [0, 0, 0]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="indices must be < 2"):
        shared_entity_features(np.array([0, 1]), np.array([2]), 2)
    with pytest.raises(ValueError, match="hub_degree must be a positive integer"):
        shared_entity_features(np.array([0, 1]), np.array([0]), 1, hub_degree=0)
    with pytest.raises(ValueError, match="query_user must be < 1"):
        shared_entity_features_at(np.array([0, 1]), np.array([0]), 1, np.array([1]),
                                  np.array([0]))
    with pytest.raises(ValueError, match="fraud_visible_from must have length 1"):
        shared_entity_features(np.array([0, 1]), np.array([0]), 1,
                               fraud_visible_from=np.array([1, 2]))
