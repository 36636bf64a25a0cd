"""CSRAdjacency: the CSR product equals a dense / loop reference, values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnn import CSRAdjacency, GraphDataError


def _loop_reference(src, dst, w, num_src, num_dst, normalisation, x):
    """Dense matrix built edge by edge, then normalised, then multiplied."""
    a = np.zeros((num_dst, num_src))
    for s, d, wt in zip(src, dst, w):
        if num_src == num_dst and s == d:
            continue
        a[d, s] += wt
    if normalisation == "mean":
        rows = a.sum(1, keepdims=True)
        a = a / np.where(rows > 0, rows, 1)
    elif normalisation == "sym":
        dd = a.sum(1)
        ds = a.sum(0)
        a = a / np.sqrt(np.where(dd > 0, dd, 1))[:, None] / np.sqrt(np.where(ds > 0, ds, 1))[None]
    out = np.zeros((num_dst, x.shape[1]))
    for i in range(num_dst):
        for j in range(num_src):
            out[i] += a[i, j] * x[j]
    return a, out


@pytest.mark.parametrize("normalisation", ["mean", "sym", "none"])
@pytest.mark.parametrize("square", [True, False])
def test_matmul_matches_loop_reference(normalisation: str, square: bool) -> None:
    rng = np.random.default_rng(1)
    num_src, num_dst = (7, 7) if square else (7, 5)
    src = rng.integers(0, num_src, 30)
    dst = rng.integers(0, num_dst, 30)
    w = rng.random(30) + 0.1
    x = rng.normal(size=(num_src, 4))
    a_ref, out_ref = _loop_reference(src, dst, w, num_src, num_dst, normalisation, x)
    adj = CSRAdjacency.from_edges(src, dst, num_src, num_dst, weight=w,
                                  normalisation=normalisation)  # type: ignore[arg-type]
    assert adj.shape == (num_dst, num_src)
    np.testing.assert_allclose(adj.to_dense().numpy(), a_ref, rtol=1e-5, atol=1e-6)
    out = adj.matmul(torch.tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(out.numpy(), out_ref, rtol=1e-5, atol=1e-5)


def test_gradient_matches_dense_autograd() -> None:
    rng = np.random.default_rng(2)
    src, dst = rng.integers(0, 9, 40), rng.integers(0, 9, 40)
    adj = CSRAdjacency.from_edges(src, dst, 9)
    x = torch.randn(9, 3, requires_grad=True)
    g = torch.randn(9, 3)
    (adj.matmul(x) * g).sum().backward()
    x_dense = x.detach().clone().requires_grad_(True)
    (adj.to_dense() @ x_dense * g).sum().backward()
    assert x.grad is not None and x_dense.grad is not None
    torch.testing.assert_close(x.grad, x_dense.grad, rtol=1e-5, atol=1e-6)


def test_mean_rows_sum_to_one_and_isolated_rows_are_zero() -> None:
    adj = CSRAdjacency.from_edges(np.array([0, 1, 1]), np.array([1, 0, 2]), 4)
    dense = adj.to_dense()
    torch.testing.assert_close(dense.sum(1), torch.tensor([1.0, 1.0, 1.0, 0.0]))
    assert "nnz=3" in repr(adj)


def test_rejects_bad_input() -> None:
    with pytest.raises(GraphDataError):
        CSRAdjacency.from_edges(np.array([0, 5]), np.array([1, 0]), 3)
    with pytest.raises(GraphDataError):
        CSRAdjacency.from_edges(np.array([0]), np.array([1]), 3, weight=np.array([-1.0]))
    with pytest.raises(ValueError, match="normalisation"):
        CSRAdjacency.from_edges(np.array([0]), np.array([1]), 3,
                                normalisation="max")  # type: ignore[arg-type]


@pytest.mark.parametrize("num_edges", [0, 1, 7, 300])
def test_mean_of_children_is_from_edges_bit_for_bit(num_edges: int) -> None:
    rng = np.random.default_rng(num_edges)
    num_src, num_dst = max(num_edges, 1), 40
    child = rng.permutation(num_src)[:num_edges]  # each child once, unordered: a tree
    parent = rng.integers(0, num_dst, num_edges)
    fast = CSRAdjacency.mean_of_children(child, parent, num_src, num_dst)
    ref = CSRAdjacency.from_edges(child, parent, num_src, num_dst, normalisation="mean",
                                  drop_self_loops=False)
    for a, b in ((fast.matrix, ref.matrix), (fast.matrix_t, ref.matrix_t)):
        assert torch.equal(a.crow_indices(), b.crow_indices())
        assert torch.equal(a.col_indices(), b.col_indices())
        assert torch.equal(a.values(), b.values())


def test_mean_of_children_coalesces_a_repeated_edge_like_from_edges() -> None:
    child, parent = np.array([0, 1, 0, 2]), np.array([0, 0, 0, 1])
    fast = CSRAdjacency.mean_of_children(child, parent, 3, 2)
    ref = CSRAdjacency.from_edges(child, parent, 3, 2, normalisation="mean",
                                  drop_self_loops=False)
    assert torch.equal(fast.to_dense(), ref.to_dense())
    assert fast.to_dense()[0].tolist() == pytest.approx([2 / 3, 1 / 3, 0.0])
    with pytest.raises(GraphDataError):
        CSRAdjacency.mean_of_children(np.array([3]), np.array([0]), 3, 2)


def test_transpose_built_on_demand_is_the_transpose() -> None:
    rng = np.random.default_rng(3)
    src, dst = rng.integers(0, 9, 50), rng.integers(0, 5, 50)
    adj = CSRAdjacency.from_edges(src, dst, 9, 5, normalisation="sym")
    assert adj._matrix_t is None
    assert torch.equal(adj.matrix_t.to_dense(), adj.to_dense().T)
