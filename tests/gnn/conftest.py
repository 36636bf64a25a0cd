"""Small synthetic graphs for the gnn tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def planted_graph(
    num_nodes: int = 240, degree: int = 8, homophily: float = 0.85, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A graph whose labels can be read from the neighbours' features, not the node's own.

    Returns ``(x, y, src, dst)``: feature 0 of a node is noise plus its label; the node's own
    feature 1 is pure noise; each node links to ``degree`` others, mostly of its own class.
    The model must therefore use the edges to beat chance on a node whose feature 0 is hidden:
    the tests give every node a noisy own signal and rely on the neighbours to denoise it.
    """
    rng = np.random.default_rng(seed)
    y = (rng.random(num_nodes) < 0.35).astype(np.int64)
    x = rng.normal(size=(num_nodes, 3))
    x[:, 0] = 0.6 * y + rng.normal(scale=1.5, size=num_nodes)
    by_class = [np.flatnonzero(y == c) for c in (0, 1)]
    src, dst = [], []
    for v in range(num_nodes):
        for _ in range(degree // 2):
            same = rng.random() < homophily
            pool = by_class[y[v]] if same else by_class[1 - y[v]]
            u = int(rng.choice(pool))
            if u != v:
                src.append(v)
                dst.append(u)
    return x, y, np.array(src), np.array(dst)


@pytest.fixture
def planted() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return planted_graph()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # NOTE: the graphs here are tiny; on a shared 2-core machine a busy OpenMP team makes each
    # small op wait for a descheduled thread (50 ms per 16x16 matmul was measured).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
