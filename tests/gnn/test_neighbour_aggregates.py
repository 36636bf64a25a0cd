"""aggregate_neighbour_features: own features, hop means and one-hop std, per relation."""

from __future__ import annotations

import numpy as np

from gnn import NodeGraph, aggregate_neighbour_features


def test_matches_dense_computation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 2))
    src, dst = np.array([0, 1, 2, 3, 4, 0]), np.array([1, 2, 3, 4, 5, 5])
    graph = NodeGraph.from_edges(x, np.zeros(6), src, dst, directed=True,
                                 feature_names=["a", "b"])
    feats, names = aggregate_neighbour_features(graph, hops=2)
    assert feats.shape == (6, 2 * (1 + 2 * 3)) and len(names) == feats.shape[1]
    a_in = graph.adjs[0].to_dense().numpy()
    np.testing.assert_allclose(feats[:, :2], x, rtol=1e-6)
    np.testing.assert_allclose(feats[:, names.index("a_in_mean1")], a_in @ x[:, 0], rtol=1e-5)
    np.testing.assert_allclose(feats[:, names.index("b_in_mean2")], a_in @ a_in @ x[:, 1],
                               rtol=1e-5, atol=1e-6)
    # Node 5 hears from 4 and 0: std of their feature a.
    np.testing.assert_allclose(feats[5, names.index("a_in_std1")], np.std(x[[4, 0], 0]),
                               rtol=1e-4)
    assert "a_out_mean1" in names
