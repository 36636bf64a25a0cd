"""Names for the shapes that recur across the graph layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias, get_args

NodeType: TypeAlias = str
"""A node label of the schema, e.g. ``"User"``."""

RelType: TypeAlias = str
"""A relationship type of the schema, e.g. ``"USES"``."""

NodeKey: TypeAlias = tuple[NodeType, str]
"""A node named by its label and id, e.g. ``("User", "u42")``."""

EdgeType: TypeAlias = tuple[NodeType, RelType, NodeType]
"""A typed edge ``(source label, relationship type, target label)`` as PyG names it."""

Row: TypeAlias = Mapping[str, Any]
"""One record to write: property name -> plain Python value."""

Rows: TypeAlias = Sequence[Row]

Timestamp: TypeAlias = int
"""Seconds since the Unix epoch, UTC."""

Product: TypeAlias = Literal["bnpl", "cash_loan", "merchant_loan", "sme_owner_loan"]
"""A credit product (the one declaration of the product list: its order is the feature code's)."""

PRODUCTS: Final[tuple[Product, ...]] = get_args(Product)
