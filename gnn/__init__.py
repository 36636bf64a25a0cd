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
from gnn.errors import GraphDataError, ModelError, WorkDirMismatch
from gnn.feature_scaling import standardise_features
from gnn.graph_files import read_graph_files, read_node_ids, read_table, write_predictions
from gnn.metrics import metric_name, score_nodes
from gnn.neighbour_aggregates import aggregate_neighbour_features
from gnn.node_graph import NodeGraph
from gnn.periodic_embedding import PeriodicEmbedding
from gnn.rank_blend import blend_on_validation
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
from gnn.tree_classifier import TreeConfig, fit_tree_classifier

# -- the heterogeneous risk model (lending graph, sampler, training, registry) --
from gnn.bootstrap_metrics import probability_metrics, ranking_metrics
from gnn.attribution import Attributions, RootAttribution, attribute
from gnn.calibration import Calibrator
from gnn.feature_normaliser import FeatureNormaliser
from gnn.feature_set import (
    FEATURE_SET_VERSION,
    FeatureSet,
    FeatureSetMismatchError,
    check_feature_set,
    current_feature_set,
)
from gnn.hetero_risk_gnn import (
    HeteroRiskEnsemble,
    HeteroRiskGNN,
    RelationalSageConv,
    RiskOutput,
    TreeBatch,
)
from gnn.lending_graph import GraphWrites, LendingGraph
from gnn.model_registry import ModelInfo, ModelNotFoundError, ModelRegistry, RegistryError
from gnn.multi_seed_evaluation import (
    DEVELOPMENT_SEED,
    MultiSeedEvaluation,
    SeedRun,
    check_seeds,
    evaluate_seeds,
    write_seeds_report,
)
from gnn.neighbour_sampler import NeighbourSampler, SampledTrees, Seeds
from gnn.risk_evaluation import EvaluationReport, binary_metrics, evaluate_world
from gnn.promotion_gate import PromotionDecision, judge_promotion
from gnn.risk_features import ApplicationQueries, RiskFeatures
from gnn.risk_rules import RULES_VERSION, RiskRules, RulesModel, RuleScores
from gnn.risk_trainer import RiskTrainConfig, RiskTrainResult, train_risk_model
from gnn.risk_workflows import TrainedVersion, evaluate_registered, train_world
from gnn.scoring_pipeline import PipelineConfig, Prepared, Scores, ScoringPipeline
from gnn.scored_test_set import ScoredTestSet
from gnn.seed_aggregation import Estimate, SeedSummary, Standing, aggregate_seeds
from gnn.stacked_ensemble import StackedEnsemble
from gnn.temporal_adjacency import TemporalAdjacency
from gnn.time_split import ApplicationTargets, TimeSplit, application_targets

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
    "PeriodicEmbedding",
    "PublishedResult",
    "SepConv",
    "SepGNN",
    "SplitResult",
    "TrainConfig",
    "TrainResult",
    "TreeConfig",
    "aggregate_neighbour_features",
    "blend_on_validation",
    "derive_edge_features",
    "file_sha256",
    "fit_tree_classifier",
    "format_benchmark_table",
    "load_tolokers",
    "metric_name",
    "predict_probabilities",
    "read_graph_files",
    "read_node_ids",
    "read_table",
    "run_benchmark",
    "score_nodes",
    "standardise_features",
    "stratified_splits",
    "train_node_classifier",
    "write_predictions",
    # the heterogeneous risk model
    "DEVELOPMENT_SEED",
    "FEATURE_SET_VERSION",
    "RULES_VERSION",
    "ApplicationQueries",
    "ApplicationTargets",
    "Attributions",
    "Calibrator",
    "Estimate",
    "EvaluationReport",
    "FeatureNormaliser",
    "FeatureSet",
    "FeatureSetMismatchError",
    "HeteroRiskEnsemble",
    "HeteroRiskGNN",
    "GraphWrites",
    "LendingGraph",
    "ModelInfo",
    "ModelNotFoundError",
    "ModelRegistry",
    "MultiSeedEvaluation",
    "NeighbourSampler",
    "PipelineConfig",
    "Prepared",
    "PromotionDecision",
    "RegistryError",
    "RelationalSageConv",
    "RiskFeatures",
    "RiskOutput",
    "RiskRules",
    "RulesModel",
    "RiskTrainConfig",
    "RiskTrainResult",
    "RuleScores",
    "RootAttribution",
    "SampledTrees",
    "ScoredTestSet",
    "Scores",
    "ScoringPipeline",
    "SeedRun",
    "SeedSummary",
    "Seeds",
    "Standing",
    "StackedEnsemble",
    "TemporalAdjacency",
    "TimeSplit",
    "TrainedVersion",
    "TreeBatch",
    "WorkDirMismatch",
    "aggregate_seeds",
    "application_targets",
    "attribute",
    "binary_metrics",
    "check_seeds",
    "check_feature_set",
    "current_feature_set",
    "evaluate_registered",
    "evaluate_seeds",
    "evaluate_world",
    "probability_metrics",
    "ranking_metrics",
    "judge_promotion",
    "train_risk_model",
    "train_world",
    "write_seeds_report",
]
