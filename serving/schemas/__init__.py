"""API schemas, FastAPI-template style: ``XBase`` (shared fields), ``XCreate`` (what a client
sends, strict, bounded), ``XPublic`` (what the API returns). Every field has a description
and an example, which the OpenAPI document shows."""

from serving.schemas.application import ApplicationBase, ApplicationCreate, Geo
from serving.schemas.events import (
    EventBatchCreate,
    EventBatchPublic,
    LoginEventCreate,
    MerchantSalesEventCreate,
    OrderEventCreate,
    RepaymentEventCreate,
)
from serving.schemas.health import HealthPublic, ReadinessPublic
from serving.schemas.investigation import (
    EdgePublic,
    NodePublic,
    SharedAccountPublic,
    SharedAccountsPublic,
    SubgraphPublic,
)
from serving.schemas.keys import ApiKeyCreate, ApiKeyCreatedPublic, ApiKeyPublic
from serving.schemas.labels import LabelBatchCreate, LabelBatchPublic, LabelCreate
from serving.schemas.verdict import (
    CreditPublic,
    EvidencePublic,
    ReasonPublic,
    VerdictAuditPublic,
    VerdictPublic,
)

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreatedPublic",
    "ApiKeyPublic",
    "ApplicationBase",
    "ApplicationCreate",
    "CreditPublic",
    "EdgePublic",
    "EventBatchCreate",
    "EventBatchPublic",
    "EvidencePublic",
    "Geo",
    "HealthPublic",
    "LabelBatchCreate",
    "LabelBatchPublic",
    "LabelCreate",
    "LoginEventCreate",
    "MerchantSalesEventCreate",
    "NodePublic",
    "OrderEventCreate",
    "ReadinessPublic",
    "ReasonPublic",
    "RepaymentEventCreate",
    "SharedAccountPublic",
    "SharedAccountsPublic",
    "SubgraphPublic",
    "VerdictAuditPublic",
    "VerdictPublic",
]
