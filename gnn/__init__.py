"""The GNN: graph containers, CSR propagation, -sep layers and models, training, benchmarks.

Everything here is a library: it takes arrays, tensors, paths and devices as arguments and
reads no settings. The homogeneous core (:class:`CSRAdjacency`, :class:`SepConv`,
:class:`SepGNN`, :func:`train_node_classifier`) is what the heterogeneous risk model reuses.
"""

from gnn.benchmark import (
    BenchmarkConfig,
    BenchmarkResult,
    ModelConfig,
    PublishedResult,
    SplitResult,
    format_benchmark_table,
    predict_probabilities,
    run_benchmark,
)
from gnn.csr_adjacency import CSRAdjacency, Normalisation
from gnn.edge_features import MAX_EDGE_TYPES, derive_edge_features
from gnn.errors import GraphDataError, ModelError
from gnn.feature_scaling import standardise_features
from gnn.graph_files import read_graph_files, read_table
from gnn.metrics import metric_name, score_nodes
from gnn.node_graph import NodeGraph
from gnn.sep_conv import SepConv
from gnn.sep_gnn import NormKind, SepGNN
from gnn.splits import stratified_splits
from gnn.tolokers import (
    TOLOKERS_CONFIG,
    TOLOKERS_PUBLISHED,
    TOLOKERS_SHA256,
    file_sha256,
    load_tolokers,
)
from gnn.trainer import TrainConfig, TrainResult, train_node_classifier

__all__ = [
    "MAX_EDGE_TYPES",
    "TOLOKERS_CONFIG",
    "TOLOKERS_PUBLISHED",
    "TOLOKERS_SHA256",
    "BenchmarkConfig",
    "BenchmarkResult",
    "CSRAdjacency",
    "GraphDataError",
    "ModelConfig",
    "ModelError",
    "NodeGraph",
    "NormKind",
    "Normalisation",
    "PublishedResult",
    "SepConv",
    "SepGNN",
    "SplitResult",
    "TrainConfig",
    "TrainResult",
    "derive_edge_features",
    "file_sha256",
    "format_benchmark_table",
    "load_tolokers",
    "metric_name",
    "predict_probabilities",
    "read_graph_files",
    "read_table",
    "run_benchmark",
    "score_nodes",
    "standardise_features",
    "stratified_splits",
    "train_node_classifier",
]
