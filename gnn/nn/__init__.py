"""Networks: the relation-wise message-passing layers and the heterogeneous risk model, its ensembles; the credit model's hazard; TreeSHAP of the trees."""

from gnn.nn.credit_hazard import CreditHazardModel
from gnn.nn.hetero_risk_gnn import HeteroRiskEnsemble, HeteroRiskGNN, RiskOutput, TreeBatch
from gnn.nn.stacked_ensemble import StackedEnsemble
from gnn.nn.tree_shap import TreeShap

__all__ = [
    "CreditHazardModel",
    "HeteroRiskEnsemble",
    "HeteroRiskGNN",
    "RiskOutput",
    "StackedEnsemble",
    "TreeBatch",
    "TreeShap",
]
