"""`NeighbourSampler`: caps, hubs, time, determinism and batch independence."""

from __future__ import annotations

import numpy as np
import pytest
from gnn_lending_world import lending_graph

from gnn import ApplicationQueries, NeighbourSampler, SampledTrees, Seeds
from gnn.data.lending_graph import INCLUSIVE_RELATIONS, RELATIONS
from gnn.data.neighbour_sampler import RELATION_IDS
from gnn.pipeline import DEFAULT_FANOUTS

REL_NAMES = {v: k for k, v in RELATION_IDS.items()}


def _sample(seed: int = 0, **kw: int) -> tuple[SampledTrees, ApplicationQueries]:
    g = lending_graph()
    apps = ApplicationQueries.from_graph(g, np.arange(g.num_nodes("Application")))
    return NeighbourSampler(g, DEFAULT_FANOUTS, seed=seed, **kw).sample(apps.seeds()), apps


def _children_per_parent(trees: SampledTrees) -> dict[tuple[str, str, int], int]:
    out: dict[tuple[str, str, int], int] = {}
    for t in trees.pos:
        for i in np.flatnonzero(trees.rel[t] >= 0):
            name = REL_NAMES[int(trees.rel[t][i])]
            key = (RELATIONS[name][0], name, int(trees.parent[t][i]))
            out[key] = out.get(key, 0) + 1
    return out


@pytest.mark.parametrize("hub_degree", [50, 3])
def test_fanout_caps_and_hub_caps_are_respected(hub_degree: int) -> None:
    trees, _ = _sample(hub_degree=hub_degree, hub_fanout=1)
    g = lending_graph()
    counts = _children_per_parent(trees)
    assert counts, "the sampler drew nothing"
    for (ptype, name, parent), n in counts.items():
        depth = int(trees.depth[ptype][parent])
        assert n <= DEFAULT_FANOUTS["Application"][name][depth], (name, n)
        if name in INCLUSIVE_RELATIONS and depth == 0:
            continue
        pos = trees.pos[ptype][parent]
        t = trees.seed_time[trees.tree[ptype][parent]]
        degree = int(g.relations[name].count_before(np.array([pos]), np.array([t]))[0])
        if degree > hub_degree:
            assert n <= 1, f"hub {ptype} {pos} expanded by {n} along {name}"
    if hub_degree == 3:
        hubs = [k for k, n in counts.items() if n == 1]
        assert hubs, "no hub was sampled down"


def test_edges_respect_the_seed_time() -> None:
    trees, _ = _sample()
    for t in trees.pos:
        rel = trees.rel[t]
        seed_t = trees.time(t)
        for rid in np.unique(rel[rel >= 0]):
            m = rel == rid
            name = REL_NAMES[int(rid)]
            if name in INCLUSIVE_RELATIONS:
                assert (trees.edge_time[t][m] <= seed_t[m]).all(), name
            else:
                assert (trees.edge_time[t][m] < seed_t[m]).all(), name


def test_same_seed_same_sample_different_seed_different_sample() -> None:
    a, _ = _sample(seed=1)
    b, _ = _sample(seed=1)
    c, _ = _sample(seed=2)
    for t in a.pos:
        np.testing.assert_array_equal(a.pos[t], b.pos[t])
        np.testing.assert_array_equal(a.parent[t], b.parent[t])
    assert any(a.pos[t].shape != c.pos[t].shape or (a.pos[t] != c.pos[t]).any()
               for t in a.pos), "a different seed drew the same trees"


def test_a_tree_does_not_depend_on_the_other_seeds_of_the_batch() -> None:
    trees, apps = _sample()
    g = lending_graph()
    sampler = NeighbourSampler(g, DEFAULT_FANOUTS)
    for i in (0, 17, len(apps) - 1):
        alone = sampler.sample(apps.take(np.array([i])).seeds())
        picked = trees.select(np.array([i]))
        for t in alone.pos:
            np.testing.assert_array_equal(alone.pos[t], picked.pos[t])
            np.testing.assert_array_equal(alone.parent[t], picked.parent[t])
            np.testing.assert_array_equal(alone.edge_time[t], picked.edge_time[t])


def test_nodes_are_ordered_by_depth_and_roots_come_first() -> None:
    trees, apps = _sample()
    for t in trees.pos:
        assert (np.diff(trees.depth[t]) >= 0).all()
    assert (trees.tree["Application"][: len(apps)] == np.arange(len(apps))).all()


def test_user_seeds_and_bad_arguments() -> None:
    g = lending_graph()
    sampler = NeighbourSampler(g, DEFAULT_FANOUTS)
    users = np.arange(5)
    t = np.full(5, g.as_of + 1)
    trees = sampler.sample(Seeds("User", users, t, g.keys("User")[users]))
    assert trees.num_roots == 5 and trees.num_nodes() > 5
    with pytest.raises(ValueError, match="unknown relation"):
        NeighbourSampler(g, {"User": {"nope": [1]}})
    with pytest.raises(ValueError, match="no fan-outs"):
        NeighbourSampler(g, {"User": {"user_app": [1]}}).sample(
            ApplicationQueries.from_graph(g, np.arange(2)).seeds())
