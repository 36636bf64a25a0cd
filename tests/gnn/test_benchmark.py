"""run_benchmark: reproducible under a seed, in one process or several; table formatting."""

from __future__ import annotations

import math

import pytest
import torch

from gnn import (
    BenchmarkConfig,
    ModelConfig,
    NodeGraph,
    TreeConfig,
    PublishedResult,
    TrainConfig,
    format_benchmark_table,
    run_benchmark,
    standardise_features,
    stratified_splits,
)

CONFIG = BenchmarkConfig(
    model=ModelConfig(hidden_channels=16, num_layers=2, dropout=0.2, periodic_frequencies=4),
    train=TrainConfig(lr=1e-2, max_epochs=30, patience=30, eval_every=3, warmup_epochs=1),
    seeds=(0, 1),
)


def _graph(planted) -> NodeGraph:
    x, y, src, dst = planted
    train, val, test = stratified_splits(y, num_splits=2, seed=0)
    return NodeGraph.from_edges(standardise_features(x), y, src, dst, train_masks=train,
                                val_masks=val, test_masks=test)


def _key(result) -> list[tuple[int, float, float, tuple[int, ...]]]:
    return [(s.split, s.val, s.test, s.best_epochs) for s in result.splits]


def test_same_seeds_same_results(planted) -> None:
    graph = _graph(planted)
    a = run_benchmark(graph, CONFIG, "cpu")
    b = run_benchmark(graph, CONFIG, torch.device("cpu"))
    assert _key(a) == _key(b)
    assert a.metric == "roc_auc" and 0.5 < a.test_mean <= 1.0


@pytest.mark.slow
def test_two_worker_processes_give_the_same_results(planted) -> None:
    # NOTE: slow only because each spawned worker imports torch.
    graph = _graph(planted)
    one = run_benchmark(graph, CONFIG, "cpu")
    two = run_benchmark(graph, CONFIG, "cpu", workers=2)
    assert _key(one) == _key(two)
    assert two.parallelism == "2 processes x 1 torch thread"


def test_validation_only_scores_no_test_and_table_says_so(planted) -> None:
    graph = _graph(planted)
    result = run_benchmark(graph, CONFIG, "cpu", splits=[1], score_test=False)
    assert [s.split for s in result.splits] == [1]
    assert math.isnan(result.splits[0].test) and result.splits[0].val > 0.5
    table = format_benchmark_table(result, [PublishedResult("GAT-sep", 83.78, 0.43, "paper")])
    assert "| GAT-sep | 83.78 ± 0.43 | paper |" in table
    assert "n/a ± n/a" in table


def test_tree_blend_is_chosen_on_validation(planted) -> None:
    graph = _graph(planted)
    config = BenchmarkConfig(CONFIG.model, CONFIG.train, seeds=(0,),
                             trees=TreeConfig(num_boost_round=100, learning_rate=0.1,
                                              early_stopping=20))
    result = run_benchmark(graph, config, "cpu", splits=[0])
    s = result.splits[0]
    assert 0.0 <= s.blend_weight <= 1.0
    # Weights 0 and 1 are on the grid and ranks keep each model's AUC.
    assert s.val >= max(s.gnn_val, s.trees_val) - 1e-12
    assert not math.isnan(s.gnn_test) and not math.isnan(s.trees_test)
    table = format_benchmark_table(result)
    assert "GNN weight" in table and "trees on neighbour aggregates alone" in table
