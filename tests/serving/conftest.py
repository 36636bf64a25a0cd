"""Fixtures of the serving tests: settings, both real stores, a live uvicorn server on loopback
and a world builder (helpers in serving_world.py). The API is always exercised over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serving_world import LiveServer, World, make_settings

from graph import GraphStore
from serving.api import create_app
from serving.live_graph import LiveGraph
from serving.rules_scorer import RulesScorer
from serving.settings import Settings


@pytest.fixture
def graph_store(store: GraphStore) -> GraphStore:
    """The shared ``store`` fixture (tests/conftest.py): each real backend, empty."""
    return store


@pytest.fixture
def settings(tmp_path: Path, graph_store: GraphStore) -> Settings:
    return make_settings(tmp_path / "data", graph_store.backend)


@pytest.fixture
def uid() -> Callable[[str], str]:
    """Ids unique to this test, so tests sharing the one Neo4j database never collide."""
    token = uuid.uuid4().hex[:8]
    return lambda name: f"t{token}-{name}"


@pytest.fixture(params=["memory", "store"])
def scorer_source(request: pytest.FixtureRequest) -> str:
    """Where the rules scorer reads: the in-memory graph (the default) or the store."""
    return str(request.param)


@pytest.fixture
def live(graph_store: GraphStore, settings: Settings, scorer_source: str
         ) -> Iterator[LiveServer]:
    """The API on loopback over the store, scoring from memory or from the store."""
    graph = LiveGraph.from_store(graph_store) if scorer_source == "memory" else None
    app = create_app(settings, graph_store, RulesScorer(graph), live_graph=graph)
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def world(graph_store: GraphStore, live: LiveServer, uid: Callable[[str], str]) -> World:
    return World(graph_store, live, uid)
