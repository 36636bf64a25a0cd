"""`load_tolokers`: the Toloka crowdsourcing graph of Platonov et al. (ICLR 2023), and the
published figures and tuned settings for its ten-split ROC-AUC protocol."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from gnn.benchmarks.benchmark import BenchmarkConfig, ModelConfig, PublishedResult
from gnn.benchmarks.edge_features import derive_edge_features
from gnn.errors import GraphDataError
from gnn.benchmarks.feature_scaling import standardise_features
from gnn.benchmarks.node_graph import NodeGraph
from gnn.benchmarks.trainer import TrainConfig

TOLOKERS_SHA256 = "dacf3ac94cec53d03cd2adb5255c08b33dee1656c33ca8164a464bd9450a1667"
"""Digest of ``data/tolokers.npz`` at yandex-research/heterophilous-graphs@a431395."""

TOLOKERS_PUBLISHED = (
    PublishedResult("GAT-sep", 83.78, 0.43,
                    "Platonov et al., ICLR 2023 (the dataset's paper)"),
    PublishedResult("best later result known to us", 85.91, 0.74, "see docs/TOLOKERS.md"),
)

TOLOKERS_CONFIG = BenchmarkConfig(
    model=ModelConfig(hidden_channels=64, num_layers=3, dropout=0.4, periodic_frequencies=16,
                      periodic_dim=16, periodic_sigma=0.1),
    train=TrainConfig(lr=1e-3, weight_decay=1e-4, max_epochs=600, patience=100, eval_every=5),
    seeds=(0,),
)
"""Settings chosen on split 0's validation mask only (search and protocol in
``docs/TOLOKERS.md``)."""


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_tolokers(path: str | Path, add_degree: bool = True) -> NodeGraph:
    """The tolokers graph with its ten fixed splits, features standardised.

    Each undirected edge is stored once in the file; both directions are used. Standardisation
    statistics come from all nodes' features (no labels).

    Args:
        path (str or Path): ``tolokers.npz`` (arrays ``node_features``, ``node_labels``,
            ``edges``, ``train_masks``, ``val_masks``, ``test_masks``).
        add_degree (bool, optional): append the structural features of
            :func:`derive_edge_features` (``log1p`` degree and distinct neighbours).
            (default: ``True``)

    Raises:
        GraphDataError: when the file lacks an array or the shapes disagree.
    """
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in ("node_features", "node_labels", "edges",
                                           "train_masks", "val_masks", "test_masks")}
    except (OSError, KeyError, ValueError) as e:
        raise GraphDataError(f"cannot read tolokers arrays from {path}: {e}") from e
    x = arrays["node_features"].astype(np.float64)
    edges = arrays["edges"].astype(np.int64)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise GraphDataError(f"edges must be [E, 2], got {edges.shape}")
    # NOTE: the file carries no column names; the raw columns are called f0 .. f9.
    names = [f"f{i}" for i in range(x.shape[1])]
    if add_degree:
        derived, derived_names = derive_edge_features(edges[:, 0], edges[:, 1], x.shape[0])
        x = np.concatenate([x, derived], axis=1)
        names += derived_names
    return NodeGraph.from_edges(
        standardise_features(x), arrays["node_labels"], edges[:, 0], edges[:, 1],
        train_masks=arrays["train_masks"], val_masks=arrays["val_masks"],
        test_masks=arrays["test_masks"], feature_names=names, class_names=("active", "banned"),
    )
