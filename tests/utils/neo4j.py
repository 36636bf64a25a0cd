"""Where the test Neo4j server is: the address and credentials ``scripts/neo4j.sh`` uses."""

from __future__ import annotations

import os

NEO4J_USER = "neo4j"
NEO4J_DATABASE = "neo4j"


def neo4j_uri(scheme: str = "bolt") -> str:
    """The test server's address; ``NEO4J_BOLT_PORT`` as ``scripts/neo4j.sh`` reads it."""
    return f"{scheme}://127.0.0.1:{os.environ.get('NEO4J_BOLT_PORT', '7687')}"


def neo4j_auth() -> tuple[str, str]:
    return NEO4J_USER, os.environ.get("NEO4J_PASSWORD", "riskgraph-dev-pw")
