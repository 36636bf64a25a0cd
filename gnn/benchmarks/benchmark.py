"""`run_benchmark`: the split protocol of node-classification benchmarks on a `NodeGraph`.

For each split: train on its train mask, keep the epoch with the best validation metric
(:func:`train_node_classifier`), optionally average the probabilities of several seeds, and
score the test mask once, after training. Test labels never reach training or selection.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torch import Tensor

from gnn.benchmarks.metrics import metric_name, score_nodes
from gnn.benchmarks.neighbour_aggregates import aggregate_neighbour_features
from gnn.benchmarks.node_graph import NodeGraph
from gnn.benchmarks.rank_blend import blend_on_validation
from gnn.benchmarks.sep_gnn import NormKind, SepGNN
from gnn.benchmarks.trainer import TrainConfig, train_node_classifier
from gnn.benchmarks.tree_classifier import TreeConfig, fit_tree_classifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the :class:`SepGNN` a benchmark trains (see its arguments)."""

    hidden_channels: int = 128
    num_layers: int = 3
    dropout: float = 0.2
    ffn_multiplier: int = 1
    norm: NormKind = "layer"
    periodic_frequencies: int = 0
    periodic_dim: int = 16
    periodic_sigma: float = 0.1

    def build(self, graph: NodeGraph) -> SepGNN:
        """A fresh model sized for ``graph`` (one logit for a binary task)."""
        classes = max(graph.num_classes, 2)
        return SepGNN(graph.num_features, self.hidden_channels, 1 if classes == 2 else classes,
                      num_layers=self.num_layers, num_relations=len(graph.adjs),
                      dropout=self.dropout, ffn_multiplier=self.ffn_multiplier, norm=self.norm,
                      periodic_frequencies=self.periodic_frequencies,
                      periodic_dim=self.periodic_dim, periodic_sigma=self.periodic_sigma)


@dataclass(frozen=True)
class BenchmarkConfig:
    """What a benchmark run trains.

    Args:
        model (ModelConfig): the architecture.
        train (TrainConfig): the optimisation.
        seeds (tuple[int, ...]): one model per seed and split; their predicted probabilities
            are averaged. (default: ``(0,)``)
        trees (TreeConfig, optional): binary tasks only: also fit gradient-boosted trees on
            :func:`aggregate_neighbour_features` (seed ``seeds[0]``) and report the rank blend
            of GNN and trees whose weight is chosen on validation (:func:`blend_on_validation`);
            the GNN-only and tree-only metrics are kept alongside. (default: ``None``)
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seeds: tuple[int, ...] = (0,)
    trees: TreeConfig | None = None

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SplitResult:
    """One split: the ensemble's validation and test metric (NaN when not scored), each seed's
    best epoch, wall seconds and CPU seconds (of the process that ran it: a figure that a busy
    shared machine inflates far less than wall time). Binary tasks also get the area under the
    precision-recall curve (average precision), which says more than ROC-AUC when positives
    are rare."""

    split: int
    val: float
    test: float
    best_epochs: tuple[int, ...]
    seconds: float
    cpu_seconds: float = float("nan")
    gnn_val: float = float("nan")
    gnn_test: float = float("nan")
    trees_val: float = float("nan")
    trees_test: float = float("nan")
    blend_weight: float = float("nan")
    val_auprc: float = float("nan")
    test_auprc: float = float("nan")


@dataclass
class BenchmarkResult:
    """All splits of a run, with what is needed to reproduce it."""

    metric: str
    splits: list[SplitResult]
    config: BenchmarkConfig
    seconds: float
    device: str
    workers: int = 1
    machine: str = field(default_factory=lambda: f"{platform.node()} {platform.machine()}, "
                         f"{os.cpu_count()} CPUs, torch {torch.__version__}")
    predictions: dict[int, np.ndarray] = field(default_factory=dict)
    """Split -> class probabilities ``[N, C]`` of every node, when asked for."""

    @property
    def parallelism(self) -> str:
        """How the run used the CPU, e.g. ``"2 processes x 1 thread"``."""
        if self.workers > 1:
            return f"{self.workers} processes x 1 torch thread"
        return f"1 process x {torch.get_num_threads()} torch threads"

    @property
    def test_mean(self) -> float:
        return float(np.mean([s.test for s in self.splits]))

    @property
    def test_std(self) -> float:
        """Population standard deviation (``ddof=0``) over splits, as the literature quotes."""
        return float(np.std([s.test for s in self.splits]))

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds of all splits together."""
        return float(sum(s.cpu_seconds for s in self.splits))

    @property
    def val_mean(self) -> float:
        return float(np.mean([s.val for s in self.splits]))

    @property
    def test_auprc_mean(self) -> float:
        return float(np.mean([s.test_auprc for s in self.splits]))

    @property
    def test_auprc_std(self) -> float:
        return float(np.std([s.test_auprc for s in self.splits]))


def predict_probabilities(model: SepGNN, graph: NodeGraph, device: torch.device) -> Tensor:
    """Class probabilities ``[N, C]`` (``C = 2`` for a one-logit binary model), on the CPU."""
    logits = model.inference(graph.x, graph.adjs, device)
    if model.out_channels == 1:
        p = torch.sigmoid(logits.view(-1))
        return torch.stack([1 - p, p], dim=1)
    return torch.softmax(logits, dim=-1)


def run_benchmark(
    graph: NodeGraph,
    config: BenchmarkConfig,
    device: torch.device | str = "cpu",
    splits: Sequence[int] | None = None,
    on_split: Callable[[SplitResult], None] | None = None,
    score_test: bool = True,
    workers: int = 1,
    keep_predictions: bool = False,
) -> BenchmarkResult:
    """Train and evaluate on each split of ``graph``.

    Every model is built after ``torch.manual_seed(seed)`` and ``np.random.seed(seed)``, so a run
    is reproducible on one machine and device, whatever the number of workers.

    Args:
        graph (NodeGraph): a graph with split masks.
        config (BenchmarkConfig): model, optimisation and seeds.
        device (torch.device or str, optional): where to train. (default: ``"cpu"``)
        splits (Sequence[int], optional): which splits to run. (default: all)
        on_split (Callable, optional): called with each :class:`SplitResult` as it finishes.
        score_test (bool, optional): ``False`` for tuning: the test masks are not even read and
            every test metric is NaN. (default: ``True``)
        workers (int, optional): CPU only: run splits in this many processes, each with one
            torch thread. On a shared machine, single-threaded processes do not stall on a
            descheduled OpenMP thread, so two of them beat one process with two threads.
            (default: ``1``, in this process with its thread setting)
        keep_predictions (bool, optional): keep each split's class probabilities of every
            node in :attr:`BenchmarkResult.predictions`. (default: ``False``)

    Returns:
        BenchmarkResult: per-split validation and test metrics, in split order.
    """
    device = torch.device(device)
    if graph.num_splits == 0:
        raise ValueError("graph has no split masks")
    splits = list(range(graph.num_splits)) if splits is None else list(splits)
    if not config.seeds:
        raise ValueError("config.seeds is empty")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers > 1 and device.type != "cpu":
        raise ValueError(f"workers > 1 is for CPU runs, got device {device}")
    if config.trees is not None and graph.num_classes > 2:
        raise ValueError("the tree blend is for binary labels only")
    start = time.perf_counter()
    results: list[SplitResult] = []
    predictions: dict[int, np.ndarray] = {}

    def done(result: SplitResult, probs: np.ndarray) -> None:
        results.append(result)
        if keep_predictions:
            predictions[result.split] = probs
        if on_split is not None:
            on_split(result)

    if workers == 1:
        g = graph.to(device)
        for i in splits:
            done(*_run_split(g, config, device, i, score_test))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(splits)), mp_context=ctx,
                                 initializer=_init_worker,
                                 initargs=(logging.getLogger("gnn").getEffectiveLevel(),)) as pool:
            futures = [pool.submit(_run_split, graph, config, device, i, score_test)
                       for i in splits]
            for future in as_completed(futures):
                done(*future.result())
        results.sort(key=lambda r: splits.index(r.split))
    return BenchmarkResult(metric_name(max(graph.num_classes, 2)), results, config,
                           time.perf_counter() - start, str(device), workers,
                           predictions=predictions)


def _init_worker(log_level: int) -> None:
    torch.set_num_threads(1)
    # NOTE: unpickling the graph's CSR tensors repeats torch's "beta" / invariant-check
    # warnings that csr_adjacency silences in the parent.
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("gnn").setLevel(log_level)


def _run_split(
    graph: NodeGraph, config: BenchmarkConfig, device: torch.device, i: int, score_test: bool
) -> tuple[SplitResult, np.ndarray]:
    """One split: a model per seed, probabilities averaged, metrics on val (and test); with
    the class probabilities ``[N, C]`` of every node (the blend's, with trees)."""
    split_start, cpu_start = time.perf_counter(), time.process_time()
    num_classes = max(graph.num_classes, 2)
    train_mask, val_mask, _ = graph.split(i)
    y = graph.y.cpu()
    probs = torch.zeros(graph.num_nodes, num_classes)
    epochs = []
    for seed in config.seeds:
        torch.manual_seed(seed)
        np.random.seed(seed)
        model = config.model.build(graph)
        result = train_node_classifier(model, graph, train_mask, val_mask, config.train, device)
        probs += predict_probabilities(model, graph, device)
        epochs.append(result.best_epoch)
        log.info("split %d seed %d: best epoch %d val %.4f (%.0fs)", i, seed,
                 result.best_epoch, result.best_val, result.seconds)
    probs /= len(config.seeds)
    scores = probs[:, 1:2] if num_classes == 2 else probs
    val_idx = val_mask.cpu() & (y >= 0)
    test_idx = graph.split(i)[2].cpu() & (y >= 0) if score_test else None

    def score(s: Tensor, idx: Tensor | None) -> float:
        return float("nan") if idx is None else score_nodes(s[idx], y[idx], num_classes)

    def auprc(s: Tensor, idx: Tensor | None) -> float:
        if idx is None or num_classes > 2 or len(np.unique(y[idx].numpy())) < 2:
            return float("nan")
        return float(average_precision_score(y[idx].numpy(), s[idx].reshape(-1).numpy()))

    extra: dict[str, float] = {}
    if config.trees is not None:
        features, _ = aggregate_neighbour_features(graph)
        tree_probs, _ = fit_tree_classifier(features, y.numpy(), train_mask.cpu().numpy(),
                                            val_idx.numpy(), config.trees, seed=config.seeds[0],
                                            threads=torch.get_num_threads())
        tree_scores = torch.from_numpy(tree_probs[:, 1:2])
        blended, weight = blend_on_validation(scores.view(-1).numpy(), tree_probs[:, 1],
                                              y.numpy(), val_idx.numpy())
        extra = {"gnn_val": score(scores, val_idx), "gnn_test": score(scores, test_idx),
                 "trees_val": score(tree_scores, val_idx),
                 "trees_test": score(tree_scores, test_idx), "blend_weight": weight}
        scores = torch.from_numpy(blended).view(-1, 1)
        probs = torch.cat([1 - scores, scores], dim=1)
    return SplitResult(
        split=i,
        val=score(scores, val_idx),
        test=score(scores, test_idx),
        best_epochs=tuple(epochs),
        seconds=time.perf_counter() - split_start,
        cpu_seconds=time.process_time() - cpu_start,
        val_auprc=auprc(scores, val_idx),
        test_auprc=auprc(scores, test_idx),
        **extra,
    ), probs.numpy()


@dataclass(frozen=True)
class PublishedResult:
    """A figure from the literature to print next to ours (metric in percent)."""

    model: str
    mean: float
    std: float
    source: str


def format_benchmark_table(
    result: BenchmarkResult, published: Sequence[PublishedResult] = ()
) -> str:
    """Markdown tables: per split, then our mean ± std next to the published figures (a binary
    task also shows AUPRC, the average precision, beside ROC-AUC)."""
    metric = result.metric.replace("_", "-").upper() if result.metric == "roc_auc" else "accuracy"
    blend = result.config.trees is not None
    binary = result.metric == "roc_auc"
    head = [f"val {metric}", f"test {metric}"] + (["val AUPRC", "test AUPRC"] if binary else [])
    if blend:
        head += ["GNN val", "GNN test", "trees val", "trees test", "GNN weight"]
    head += ["best epoch(s)", "wall s", "CPU s"]
    lines = ["| split | " + " | ".join(head) + " |",
             "|---:|" + "".join("---|" if h == "best epoch(s)" else "---:|" for h in head)]
    for s in result.splits:
        parts = [str(s.split), f"{100 * s.val:.2f}", _pct(s.test)]
        if binary:
            parts += [_pct(s.val_auprc), _pct(s.test_auprc)]
        if blend:
            parts += [_pct(s.gnn_val), _pct(s.gnn_test), _pct(s.trees_val), _pct(s.trees_test),
                      f"{s.blend_weight:.2f}"]
        parts += [", ".join(map(str, s.best_epochs)), f"{s.seconds:.0f}", f"{s.cpu_seconds:.0f}"]
        lines.append("| " + " | ".join(parts) + " |")
    lines += ["", f"| model | test {metric} (%) mean ± std | source |", "|---|---:|---|"]
    for p in published:
        lines.append(f"| {p.model} | {p.mean:.2f} ± {p.std:.2f} | {p.source} |")
    seeds = len(result.config.seeds)
    ours = f"SepGNN (this run, {seeds} seed{'s' if seeds > 1 else ''}/split)"
    if blend:
        gnn = [s.gnn_test for s in result.splits]
        trees = [s.trees_test for s in result.splits]
        lines.append(f"| {ours}, GNN alone | {_pct(float(np.mean(gnn)))} ± "
                     f"{_pct(float(np.std(gnn)))} | same run |")
        lines.append(f"| trees on neighbour aggregates alone | {_pct(float(np.mean(trees)))} ± "
                     f"{_pct(float(np.std(trees)))} | same run |")
        ours = f"{ours} + trees, rank blend chosen on val"
    auprc = (f", test AUPRC {_pct(result.test_auprc_mean)} ± {_pct(result.test_auprc_std)}"
             if binary else "")
    lines.append(f"| **{ours}** | **{_pct(result.test_mean)} ± {_pct(result.test_std)}** "
                 f"| {len(result.splits)} splits, val {100 * result.val_mean:.2f}{auprc}, "
                 f"{result.seconds / 60:.1f} min on {result.device} |")
    return "\n".join(lines)


def _pct(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{100 * value:.2f}"
