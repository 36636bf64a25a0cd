"""Fixtures of the graph tests: the small simulated world the loader tests load."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph.loader import clear_checkpoints
from simulator import WorldConfig, simulate_world, write_world


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-user world (seed 7), written once per test module."""
    out = tmp_path_factory.mktemp("world")
    write_world(simulate_world(WorldConfig(users=300, seed=7)), out)
    return out


@pytest.fixture
def fresh_dir(world_dir: Path) -> Path:
    """:func:`world_dir` with no load checkpoint left by an earlier test."""
    clear_checkpoints(world_dir)
    return world_dir
