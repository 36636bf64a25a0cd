"""Investigator reads over real HTTP on both stores: a realistically sized neighbourhood on a
healthy store is answered, not refused for the scoring path's read budget."""

from __future__ import annotations

import functools
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_world import SECRET, LiveServer, make_settings

from graph import GraphStore, Pseudonymiser
from graph.loader import load_world
from simulator import WorldConfig, simulate_world, write_world
from serving.api import create_app
from serving.scorers import load_live_graph, load_scorer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@functools.lru_cache(maxsize=1)
def _world_dir() -> Path:
    """A 1,000-user simulated world: its busiest users' two-hop neighbourhoods hold ~400
    nodes and ~1,900 relationships (merchants, shared IPs), as investigators meet them."""
    out = Path(tempfile.mkdtemp(prefix="rg-investigation-world-"))
    write_world(simulate_world(WorldConfig(users=1000, seed=7)), out)
    return out


@pytest.fixture(scope="module", autouse=True)
def _remove_world() -> Iterator[None]:
    yield
    if _world_dir.cache_info().currsize:
        shutil.rmtree(_world_dir(), ignore_errors=True)
        _world_dir.cache_clear()


def _busiest_users(store: GraphStore, n: int) -> list[str]:
    """The ``n`` users (of the first 200) with the most relationships one hop out."""
    users = store.node_ids("User")[:200]
    size = {u: len(store.neighbourhood("User", u, hops=1, fanout=50).edges) for u in users}
    return sorted(users, key=lambda u: (-size[u], u))[:n]


def test_a_large_neighbourhood_on_a_healthy_store_is_answered(
        tmp_path: Path, graph_store: GraphStore) -> None:
    load_world(graph_store, _world_dir(), Pseudonymiser(SECRET.encode()), progress=False,
               target=f"{graph_store.backend}:{tmp_path}")
    users = _busiest_users(graph_store, 3)
    # NOTE: the scoring path's default read budget (0.25 s), which a two-hop neighbourhood of
    # this size exceeds on this machine (0.25-0.45 s each, both stores; three hops 1-2 s).
    settings = make_settings(tmp_path / "data", graph_store.backend, STORE_TIMEOUT_S=0.25)
    graph = load_live_graph(settings, graph_store)
    live = LiveServer(create_app(settings, graph_store, load_scorer(settings, graph, graph_store),
                                 live_graph=graph)).start()
    try:
        statuses: list[tuple[str, int, int, float]] = []
        with live.client() as c:
            for user in users:
                for hops in (2, 3):
                    t0 = time.perf_counter()
                    r = c.get(f"/v1/users/{user}/neighbourhood", params={"hops": hops})
                    statuses.append((user, hops, r.status_code, time.perf_counter() - t0))
                    if r.status_code == 200:
                        assert len(r.json()["nodes"]) > 100
            shared = c.get(f"/v1/users/{users[0]}/shared-accounts", params={"limit": 1000})
            ready = c.get("/readyz")
        assert [s for s in statuses if s[2] != 200] == [], statuses
        assert shared.status_code == 200
        # the slow reads did not mark the store down for scoring
        assert ready.json()["store"] == "up"
    finally:
        live.stop()
