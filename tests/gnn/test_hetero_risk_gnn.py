"""`HeteroRiskGNN` and `RelationalSageConv`: shapes, trimming, gradients, resets."""

from __future__ import annotations

import numpy as np
import torch
from gnn_lending_world import lending_graph

from gnn import (
    ApplicationQueries,
    CSRAdjacency,
    HeteroRiskGNN,
    NeighbourSampler,
    RelationalSageConv,
    RiskFeatures,
    TreeBatch,
)
from gnn.lending_graph import NODE_TYPES
from gnn.scoring_pipeline import DEFAULT_FANOUTS


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
    conv = RelationalSageConv(2, ("r",))
    with torch.no_grad():
        conv.lin.weight.copy_(torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))
        conv.lin.bias.zero_()
    ego = torch.zeros(2, 2)
    src = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    adj = CSRAdjacency.from_edges(np.array([0, 1, 2]), np.array([0, 0, 1]), 3, 2)
    out = conv(ego, [src], [adj])
    torch.testing.assert_close(out, torch.tensor([[2.0, 3.0], [5.0, 6.0]]))


def test_pyg_layers_run_without_torch_scatter() -> None:
    """Which PyG layers work here (no pyg-lib, torch-scatter, torch-sparse): the message-passing
    convolutions do (PyG falls back to torch's scatter_reduce); NeighborLoader does not, hence
    gnn.NeighbourSampler."""
    from torch_geometric.nn import GATConv, SAGEConv

    x = torch.randn(10, 4)
    ei = torch.randint(0, 10, (2, 30))
    assert SAGEConv(4, 8)(x, ei).shape == (10, 8)
    assert GATConv(4, 8)(x, ei).shape == (10, 8)
