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
from serving.scorers import load_live_graph, load_scorer
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


@pytest.fixture
def live(graph_store: GraphStore, settings: Settings) -> Iterator[LiveServer]:
    """The API on loopback over the store, deciding with the configured scorer (the rules
    over the live graph: the test's data dir has no promoted model)."""
    graph = load_live_graph(settings, graph_store)
    app = create_app(settings, graph_store, load_scorer(settings, graph, graph_store),
                     live_graph=graph)
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def world(graph_store: GraphStore, live: LiveServer, uid: Callable[[str], str]) -> World:
    return World(graph_store, live, uid)
