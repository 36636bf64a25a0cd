"""The risk model and what it stands on.

Layers, each a subpackage: ``gnn.data`` (the live lending graph, its temporal adjacency, the
neighbour sampler, time splits), ``gnn.features`` (the one feature definition, its version, the
normaliser), ``gnn.nn`` (the heterogeneous GNN, the stacked ensemble, CSR propagation),
``gnn.train`` (training, evaluation, calibration, the promotion gate, multi-seed evaluation);
beside them ``gnn.pipeline`` (features -> normalised tensors -> scores, one path for online and
batch), ``gnn.rules`` (the transparent points model), ``gnn.attribution`` (why a score),
``gnn.registry`` (versioned models) and ``gnn.rescoring`` (batch rescoring).
``gnn.benchmarks`` holds the homogeneous -sep models and the public-dataset benchmarks
(Tolokers) that check the layers against published numbers.

Everything here is a library: it takes arrays, tensors, paths and devices as arguments and
reads no settings.
"""

from gnn.errors import GraphDataError, ModelError, WorkDirMismatch
from gnn.data.lending_graph import GraphWrites, LendingGraph
from gnn.data.neighbour_sampler import NeighbourSampler, SampledTrees, Seeds
from gnn.data.temporal_adjacency import TemporalAdjacency
from gnn.data.time_split import ApplicationTargets, TimeSplit, application_targets
from gnn.features.feature_normaliser import FeatureNormaliser
from gnn.features.feature_set import (
    FEATURE_SET_VERSION,
    FeatureSet,
    FeatureSetMismatchError,
    check_feature_set,
    current_feature_set,
)
from gnn.features.risk_features import ApplicationQueries, RiskFeatures
from gnn.nn.csr_adjacency import CSRAdjacency, Normalisation
from gnn.nn.hetero_risk_gnn import (
    HeteroRiskEnsemble,
    HeteroRiskGNN,
    RelationalSageConv,
    RiskOutput,
    TreeBatch,
)
from gnn.nn.credit_hazard import CreditHazardModel
from gnn.nn.stacked_ensemble import StackedEnsemble
from gnn.train.credit_trainer import CreditTrainConfig, train_credit_model
from gnn.pipeline import PipelineConfig, Prepared, Scores, ScoringPipeline
from gnn.rules import RULES, RULES_VERSION, Rule, RiskRules, RulesModel, RuleScores
from gnn.attribution import Attributions, RootAttribution, attribute
from gnn.registry import ModelInfo, ModelNotFoundError, ModelRegistry, RegistryError
from gnn.train.bootstrap_metrics import probability_metrics, ranking_metrics
from gnn.train.calibration import Calibrator
from gnn.train.drift_reference import (
    DRIFT_REFERENCE_FILE,
    BinCoder,
    DriftReference,
    build_drift_reference,
)
from gnn.train.multi_seed_evaluation import (
    DEVELOPMENT_SEED,
    MultiSeedEvaluation,
    SeedRun,
    check_seeds,
    evaluate_seeds,
    write_seeds_report,
)
from gnn.train.promotion_gate import PromotionDecision, judge_promotion
from gnn.train.risk_evaluation import (
    EvaluationReport,
    GroundTruth,
    binary_metrics,
    evaluate_applications,
    evaluate_world,
)
from gnn.train.risk_trainer import RiskTrainConfig, RiskTrainResult, train_risk_model
from gnn.train.risk_workflows import (
    TrainedVersion,
    evaluate_registered,
    evaluate_store,
    store_training_graph,
    train_store,
    train_world,
)
from gnn.train.scored_test_set import ScoredTestSet
from gnn.train.seed_aggregation import Estimate, SeedSummary, Standing, aggregate_seeds

# -- public-dataset benchmarks (homogeneous graphs) --
from gnn.benchmarks.benchmark import (
    BenchmarkConfig,
    BenchmarkResult,
    ModelConfig,
    PublishedResult,
    SplitResult,
    format_benchmark_table,
    predict_probabilities,
    run_benchmark,
)
from gnn.benchmarks.edge_features import MAX_EDGE_TYPES, derive_edge_features
from gnn.benchmarks.feature_scaling import standardise_features
from gnn.benchmarks.graph_files import read_graph_files, read_node_ids, read_table, write_predictions
from gnn.benchmarks.metrics import metric_name, score_nodes
from gnn.benchmarks.neighbour_aggregates import aggregate_neighbour_features
from gnn.benchmarks.node_graph import NodeGraph
from gnn.benchmarks.periodic_embedding import PeriodicEmbedding
from gnn.benchmarks.rank_blend import blend_on_validation
from gnn.benchmarks.sep_conv import SepConv
from gnn.benchmarks.sep_gnn import NormKind, SepGNN
from gnn.benchmarks.splits import stratified_splits
from gnn.benchmarks.tolokers import (
    TOLOKERS_CONFIG,
    TOLOKERS_PUBLISHED,
    TOLOKERS_SHA256,
    file_sha256,
    load_tolokers,
)
from gnn.benchmarks.trainer import TrainConfig, TrainResult, train_node_classifier
from gnn.benchmarks.tree_classifier import TreeConfig, fit_tree_classifier

__all__ = [
    "train_credit_model",
    "CreditTrainConfig",
    "CreditHazardModel",
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
    "RULES",
    "RULES_VERSION",
    "ApplicationQueries",
    "ApplicationTargets",
    "Attributions",
    "BinCoder",
    "Calibrator",
    "Estimate",
    "DRIFT_REFERENCE_FILE",
    "DriftReference",
    "EvaluationReport",
    "GroundTruth",
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
    "Rule",
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
    "build_drift_reference",
    "evaluate_applications",
    "evaluate_registered",
    "evaluate_store",
    "evaluate_seeds",
    "evaluate_world",
    "probability_metrics",
    "ranking_metrics",
    "judge_promotion",
    "train_risk_model",
    "store_training_graph",
    "train_store",
    "train_world",
    "write_seeds_report",
]
