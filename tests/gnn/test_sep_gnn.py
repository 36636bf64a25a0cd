"""SepGNN + train_node_classifier: learn a planted signal, reproducibly."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from gnn import (
    NodeGraph,
    SepGNN,
    TrainConfig,
    predict_probabilities,
    standardise_features,
    stratified_splits,
    train_node_classifier,
)


def _graph(planted) -> NodeGraph:
    x, y, src, dst = planted
    train, val, test = stratified_splits(y, 1, 0.5, 0.25, seed=0)
    return NodeGraph.from_edges(standardise_features(x), y, src, dst, train_masks=train,
                                val_masks=val, test_masks=test)


def _train(graph: NodeGraph, seed: int, num_layers: int = 2) -> tuple[SepGNN, float]:
    torch.manual_seed(seed)
    model = SepGNN(graph.num_features, 16, 1, num_layers=num_layers, dropout=0.1)
    train, val, _ = graph.split(0)
    result = train_node_classifier(model, graph, train, val,
                                   TrainConfig(lr=1e-2, max_epochs=80, patience=40, eval_every=2,
                                               warmup_epochs=1), "cpu")
    return model, result.best_val


def test_learns_planted_signal_on_held_out_nodes(planted) -> None:
    graph = _graph(planted)
    model, _ = _train(graph, seed=0)
    _, _, test = graph.split(0)
    p = predict_probabilities(model, graph, torch.device("cpu"))[:, 1]
    auc_graph = roc_auc_score(graph.y[test].numpy(), p[test].numpy())
    # The own feature alone is weak; the neighbours' mean is what makes the signal strong.
    auc_own = roc_auc_score(graph.y[test].numpy(), graph.x[test, 0].numpy())
    assert auc_own < 0.75
    assert auc_graph > 0.9, (auc_graph, auc_own)


def test_same_seed_same_predictions(planted) -> None:
    graph = _graph(planted)
    a, val_a = _train(graph, seed=3)
    b, val_b = _train(graph, seed=3)
    c, _ = _train(graph, seed=4)
    pa = a.inference(graph.x, graph.adjs, "cpu")
    assert val_a == val_b
    torch.testing.assert_close(pa, b.inference(graph.x, graph.adjs, "cpu"), rtol=0, atol=0)
    assert not torch.equal(pa, c.inference(graph.x, graph.adjs, "cpu"))


def test_inference_leaves_training_mode_and_needs_no_grad(planted) -> None:
    graph = _graph(planted)
    model = SepGNN(graph.num_features, 8, 1, num_layers=1)
    model.train()
    out = model.inference(graph.x, graph.adjs, torch.device("cpu"))
    assert model.training and not out.requires_grad and out.shape == (graph.num_nodes, 1)
    assert "SepGNN(3, 8, 1, num_layers=1" in repr(model)
    emb = model.embed(graph.x, graph.adjs)
    assert emb.shape == (graph.num_nodes, 8)
    np.testing.assert_array_equal(np.isfinite(emb.detach().numpy()), True)
