"""Fixtures shared by every test package: the two real stores.

``store`` runs a test once on LadybugDB (a fresh file under ``tmp_path``) and once on the real
Neo4j server that ``scripts/neo4j.sh start`` runs (marker ``neo4j``). When that server does not
answer, the Neo4j tests fail with the reason; they never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import neo4j
import pytest

from graph import GraphStore
from graph.ladybug_store import LadybugStore
from graph.neo4j_store import Neo4jStore
from tests.utils.neo4j import NEO4J_DATABASE, NEO4J_USER, neo4j_auth, neo4j_uri

@pytest.fixture(scope="session")
def neo4j_driver() -> Iterator[neo4j.Driver]:
    """One driver for the session, to a server that answers, with the schema applied."""
    uri = neo4j_uri()
    driver = neo4j.GraphDatabase.driver(uri, auth=neo4j_auth(), connection_timeout=10)
    problem = None
    try:
        driver.verify_connectivity()
    except Exception as e:  # noqa: BLE001 - any failure to connect means the same thing here
        problem = f"{type(e).__name__}: {e}"
    if problem is not None:
        driver.close()
        pytest.fail(
            f"Neo4j is not reachable at {uri} as {NEO4J_USER!r} ({problem}). "
            "Start it with `bash scripts/neo4j.sh start` (NEO4J_PASSWORD must match), "
            "or deselect the server tests with `-m 'not neo4j'`.",
            pytrace=False,
        )
    Neo4jStore(driver, database=NEO4J_DATABASE).apply_schema()
    yield driver
    driver.close()


@pytest.fixture
def neo4j_store(neo4j_driver: neo4j.Driver) -> Iterator[Neo4jStore]:
    """A Neo4j store on an emptied database (batched ``DETACH DELETE`` before each test)."""
    store = Neo4jStore(neo4j_driver, database=NEO4J_DATABASE)
    store.clear()
    yield store
    store.close()


@pytest.fixture
def ladybug_path(tmp_path: Path) -> Path:
    return tmp_path / "graph.lbug"


@pytest.fixture
def ladybug_store(ladybug_path: Path) -> Iterator[LadybugStore]:
    """A LadybugDB store on a fresh file, schema applied."""
    store = LadybugStore(ladybug_path)
    store.apply_schema()
    yield store
    store.close()


@pytest.fixture(params=["ladybug", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest) -> GraphStore:
    """Each real backend in turn, empty, schema applied."""
    name = "ladybug_store" if request.param == "ladybug" else "neo4j_store"
    store: GraphStore = request.getfixturevalue(name)
    return store
