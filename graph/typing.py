"""Names for the shapes that recur across the graph layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

NodeType: TypeAlias = str
"""A node label of the schema, e.g. ``"User"``."""

RelType: TypeAlias = str
"""A relationship type of the schema, e.g. ``"USES"``."""

EdgeType: TypeAlias = tuple[NodeType, RelType, NodeType]
"""A typed edge ``(source label, relationship type, target label)`` as PyG names it."""

Row: TypeAlias = Mapping[str, Any]
"""One record to write: property name -> plain Python value."""

Rows: TypeAlias = Sequence[Row]

Timestamp: TypeAlias = int
"""Seconds since the Unix epoch, UTC."""
