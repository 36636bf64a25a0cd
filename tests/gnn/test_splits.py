"""stratified_splits: disjoint, stratified, seeded, unlabelled nodes excluded."""

from __future__ import annotations

import numpy as np

from gnn import stratified_splits


def test_splits_are_disjoint_stratified_and_seeded() -> None:
    y = np.array([0] * 60 + [1] * 40 + [-1] * 5)
    train, val, test = stratified_splits(y, num_splits=3, seed=7)
    assert train.shape == (3, 105)
    assert not np.any(train & val) and not np.any(train & test) and not np.any(val & test)
    assert not np.any((train | val | test)[:, y < 0])
    np.testing.assert_array_equal((train | val | test)[:, y >= 0], True)
    assert (train[0] & (y == 1)).sum() == 20 and (val[0] & (y == 1)).sum() == 10
    again = stratified_splits(y, num_splits=1, seed=7)
    np.testing.assert_array_equal(again[0][0], train[0])
    assert not np.array_equal(train[0], train[1])
