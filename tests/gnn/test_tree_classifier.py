"""fit_tree_classifier: learns a planted signal, deterministic under a seed."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from gnn import TreeConfig, fit_tree_classifier


def test_learns_and_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] ** 2 + rng.normal(scale=0.5, size=600) > 0.5).astype(np.int64)
    train, val = np.arange(600) < 300, (np.arange(600) >= 300) & (np.arange(600) < 450)
    test = np.arange(600) >= 450
    config = TreeConfig(num_boost_round=200, learning_rate=0.1, early_stopping=30)
    p, best = fit_tree_classifier(x, y, train, val, config, seed=1)
    q, _ = fit_tree_classifier(x, y, train, val, config, seed=1)
    assert p.shape == (600, 2) and 1 <= best <= 200
    np.testing.assert_array_equal(p, q)
    assert roc_auc_score(y[test], p[test, 1]) > 0.85
