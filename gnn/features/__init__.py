"""The one feature definition: root and node features through the kernels, their versioned feature set, and their normalisation."""

from gnn.features.risk_features import ApplicationQueries, RiskFeatures
from gnn.features.feature_set import FEATURE_SET_VERSION, FeatureSet, FeatureSetMismatchError, current_feature_set
from gnn.features.feature_normaliser import FeatureNormaliser

__all__ = [
    "ApplicationQueries",
    "FEATURE_SET_VERSION",
    "FeatureNormaliser",
    "FeatureSet",
    "FeatureSetMismatchError",
    "RiskFeatures",
    "current_feature_set",
]
