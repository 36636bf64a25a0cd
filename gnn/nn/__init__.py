"""Networks: the relation-wise message-passing layers and the heterogeneous risk model, its ensembles."""

from gnn.nn.hetero_risk_gnn import HeteroRiskEnsemble, HeteroRiskGNN, RiskOutput, TreeBatch
from gnn.nn.stacked_ensemble import StackedEnsemble

__all__ = [
    "HeteroRiskEnsemble",
    "HeteroRiskGNN",
    "RiskOutput",
    "StackedEnsemble",
    "TreeBatch",
]
