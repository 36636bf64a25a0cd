"""`HeteroRiskGNN` and `RelationalSageConv`: shapes, trimming, gradients, resets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gnn_lending_world import lending_graph
from torch_geometric.nn import MessagePassing

from gnn import (
    ApplicationQueries,
    CSRAdjacency,
    HeteroRiskGNN,
    NeighbourSampler,
    RelationalSageConv,
    RiskFeatures,
    TreeBatch,
)
from gnn.nn.hetero_risk_gnn import stacked_mean_operator
from gnn.data.lending_graph import NODE_TYPES
from gnn.pipeline import DEFAULT_FANOUTS


def _batch(n: int = 64) -> TreeBatch:
    g = lending_graph()
    apps = ApplicationQueries.from_graph(g, np.arange(n))
    trees = NeighbourSampler(g, DEFAULT_FANOUTS).sample(apps.seeds())
    feats = RiskFeatures(g)
    return TreeBatch.build(trees, feats.node_features(trees), feats.application_features(apps)[0],
                           num_layers=2)


def _model(batch: TreeBatch) -> HeteroRiskGNN:
    torch.manual_seed(0)
    return HeteroRiskGNN({t: batch.x[t].shape[1] for t in NODE_TYPES},
                         {"Application": batch.root_x.shape[1]}, hidden_channels=32,
                         embedding_dim=64, num_layers=2)


def test_outputs_per_root_and_trimmed_layers() -> None:
    batch = _batch()
    assert batch.prefix[2] == {t: (64 if t == "Application" else 0) for t in NODE_TYPES}
    model = _model(batch)
    out = model(batch)
    assert out.fraud_logit.shape == (64,) and out.pd_logit.shape == (64,)
    assert out.embedding.shape == (64, 64)
    assert torch.isfinite(out.embedding).all()
    out.fraud_logit.sum().backward()
    for t in ("Application", "User", "Device", "IP"):
        grad = model.node_in[t].weight.grad
        assert grad is not None and grad.abs().sum() > 0, f"no gradient reaches {t} features"


def test_a_root_does_not_depend_on_other_trees() -> None:
    batch = _batch(16)
    model = _model(batch).eval()
    g = lending_graph()
    apps = ApplicationQueries.from_graph(g, np.array([5]))
    trees = NeighbourSampler(g, DEFAULT_FANOUTS).sample(apps.seeds())
    feats = RiskFeatures(g)
    one = TreeBatch.build(trees, feats.node_features(trees), feats.application_features(apps)[0],
                          num_layers=2)
    with torch.inference_mode():
        torch.testing.assert_close(model(one).fraud_logit[0], model(batch).fraud_logit[5],
                                   rtol=1e-5, atol=1e-6)


def test_reset_parameters_and_repr() -> None:
    batch = _batch(8)
    model = _model(batch)
    before = model.fraud_head["Application"].weight.detach().clone()
    model.reset_parameters()
    assert not torch.equal(before, model.fraud_head["Application"].weight)
    assert "hidden=32" in repr(model) and "num_layers=2" in repr(model)
    conv = RelationalSageConv(8, ("a", "b"))
    assert repr(conv) == "RelationalSageConv(8, 8, relations=2)"


def test_relational_sage_conv_means_per_relation() -> None:
    conv = RelationalSageConv(2, ("r", "s"))
    assert isinstance(conv, MessagePassing)
    with torch.no_grad():  # the sum of the two relations' means
        conv.lin.weight.copy_(torch.cat([torch.zeros(2, 2), torch.eye(2), torch.eye(2)], dim=1))
        conv.lin.bias.zero_()
    ego = torch.zeros(2, 2)
    src_r = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    src_s = torch.tensor([[10.0, 20.0], [30.0, 40.0]])
    # r: node 0 <- {0, 1}, node 1 <- {2}; s: node 0 <- {}, node 1 <- {0, 1}
    adj = stacked_mean_operator([(np.array([0, 1, 2]), np.array([0, 0, 1])),
                                 (np.array([0, 1]), np.array([1, 1]))], [3, 2], 2)
    out = conv(ego, [src_r, src_s], adj)
    torch.testing.assert_close(out, torch.tensor([[2.0, 3.0], [5.0 + 20.0, 6.0 + 30.0]]))
    with pytest.raises(ValueError, match="neighbour states"):
        conv(ego, [src_r], adj)


def test_stacked_operator_blocks_are_each_relations_mean() -> None:
    rng = np.random.default_rng(3)
    edges, num_src, blocks = [], [4, 1, 6], []
    for n_src in num_src:
        child = rng.permutation(n_src)[: rng.integers(0, n_src + 1)]
        parent = rng.integers(0, 3, child.shape[0])
        edges.append((child, parent))
        blocks.append(CSRAdjacency.mean_of_children(child, parent, n_src, 3).to_dense())
    dense = stacked_mean_operator(edges, num_src, 3).to_dense()
    assert dense.shape == (9, 11)
    expected = torch.block_diag(*blocks)
    assert torch.equal(dense, expected)


def test_pyg_layers_run_without_torch_scatter() -> None:
    """Which PyG layers work here (no pyg-lib, torch-scatter, torch-sparse): the message-passing
    convolutions do (PyG falls back to torch's scatter_reduce); NeighborLoader does not, hence
    gnn.NeighbourSampler."""
    from torch_geometric.nn import GATConv, SAGEConv

    x = torch.randn(10, 4)
    ei = torch.randint(0, 10, (2, 30))
    assert SAGEConv(4, 8)(x, ei).shape == (10, 8)
    assert GATConv(4, 8)(x, ei).shape == (10, 8)
