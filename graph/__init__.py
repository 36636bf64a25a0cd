"""The relationship graph: schema, stores, snapshot, simulator."""

from graph.errors import (
    BufferPoolFullError,
    GraphError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
    TransactionLimitError,
)
from graph.privacy import Pseudonymiser, mask, normalise
from graph.regions import PROVINCES, UNKNOWN_PROVINCE, province_of
from graph.schema import SCHEMA, NodeSpec, Property, RelSpec, Schema
from graph.store import (
    SHARED_VIA,
    GraphEdge,
    GraphNode,
    GraphStore,
    LabelWrite,
    SharedAccount,
    StoreIdentity,
    Subgraph,
)

__all__ = [
    "PROVINCES",
    "SCHEMA",
    "SHARED_VIA",
    "BufferPoolFullError",
    "GraphEdge",
    "GraphError",
    "GraphNode",
    "GraphStore",
    "LabelWrite",
    "NodeSpec",
    "Property",
    "Pseudonymiser",
    "RelSpec",
    "Schema",
    "SchemaError",
    "SharedAccount",
    "StoreError",
    "StoreIdentity",
    "StoreUnavailableError",
    "Subgraph",
    "TransactionLimitError",
    "UNKNOWN_PROVINCE",
    "mask",
    "normalise",
    "province_of",
]
