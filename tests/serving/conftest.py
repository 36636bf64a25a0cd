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
from serving.rules_scorer import RulesScorer
from serving.settings import Settings
from serving.stores import build_store


@pytest.fixture(params=["ladybug", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, backend: str) -> Settings:
    return make_settings(tmp_path / "data", backend)


@pytest.fixture
def graph_store(settings: Settings) -> Iterator[GraphStore]:
    store = build_store(settings)
    store.apply_schema()
    yield store
    store.close()


@pytest.fixture
def uid() -> Callable[[str], str]:
    """Ids unique to this test, so tests sharing the one Neo4j database never collide."""
    token = uuid.uuid4().hex[:8]
    return lambda name: f"t{token}-{name}"


@pytest.fixture
def live(graph_store: GraphStore, settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(create_app(settings, graph_store, RulesScorer())).start()
    yield server
    server.stop()


@pytest.fixture
def world(graph_store: GraphStore, live: LiveServer, uid: Callable[[str], str]) -> World:
    return World(graph_store, live, uid)
