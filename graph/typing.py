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

PRODUCT_TERMS: Final[dict[Product, tuple[int, ...]]] = {
    "bnpl": (1, 3, 6), "cash_loan": (3, 6, 12), "merchant_loan": (3, 6),
    "sme_owner_loan": (6, 12)}
"""The terms each product offers, in monthly instalments (the one declaration: the simulator
draws from them, the API accepts only them)."""


def loan_term(product: Product, stated: int | None) -> int:
    """The term an application is scored and stored with: the one it states, else its
    product's longest (the probability of default then runs over the longest life)."""
    return stated if stated is not None else max(PRODUCT_TERMS[product])
