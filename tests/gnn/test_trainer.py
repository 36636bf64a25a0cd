"""TrainConfig schedules and train_node_classifier's selection on validation."""

from __future__ import annotations

import math

import pytest
import torch

from gnn import (
    NodeGraph,
    SepGNN,
    TrainConfig,
    score_nodes,
    standardise_features,
    stratified_splits,
    train_node_classifier,
)


def test_warmup_then_constant_or_cosine() -> None:
    const = TrainConfig(max_epochs=100, warmup_epochs=10)
    assert const.lr_factor(0) == pytest.approx(0.1) and const.lr_factor(50) == 1.0
    cos = TrainConfig(max_epochs=110, warmup_epochs=10, schedule="cosine")
    assert cos.lr_factor(10) == pytest.approx(1.0)
    assert cos.lr_factor(60) == pytest.approx(0.5)
    assert cos.lr_factor(110) == pytest.approx(0.0, abs=1e-12)
    assert math.isclose(cos.lr_factor(9), 1.0)
    with pytest.raises(ValueError):
        TrainConfig(schedule="step")  # type: ignore[arg-type]


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_keeps_the_best_validation_epoch(planted, ema_decay: float | None) -> None:
    x, y, src, dst = planted
    train, val, test = stratified_splits(y, seed=1)
    graph = NodeGraph.from_edges(standardise_features(x), y, src, dst, train_masks=train,
                                 val_masks=val, test_masks=test)
    torch.manual_seed(0)
    model = SepGNN(graph.num_features, 8, 1, num_layers=1)
    result = train_node_classifier(model, graph, graph.split(0)[0], graph.split(0)[1],
                                   TrainConfig(lr=5e-3, max_epochs=30, eval_every=3,
                                               warmup_epochs=1, ema_decay=ema_decay), "cpu")
    vals = [v for _, _, v in result.history]
    assert result.best_val == max(vals)
    assert result.best_epoch == result.history[vals.index(max(vals))][0]
    # The weights of that epoch are the ones left in the model.
    val_mask = graph.split(0)[1]
    logits = model.inference(graph.x, graph.adjs, "cpu")
    assert score_nodes(logits[val_mask], graph.y[val_mask], 2) == pytest.approx(result.best_val)
    with pytest.raises(ValueError, match="out_channels"):
        train_node_classifier(SepGNN(graph.num_features, 8, 2), graph, graph.split(0)[0],
                              graph.split(0)[1], TrainConfig(max_epochs=1), "cpu")
