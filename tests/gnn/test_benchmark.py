"""run_benchmark: reproducible under a seed, in one process or several; table formatting."""

from __future__ import annotations

import math

import pytest
import torch

from gnn import (
    BenchmarkConfig,
    ModelConfig,
    NodeGraph,
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
