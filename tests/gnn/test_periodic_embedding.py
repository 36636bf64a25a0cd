"""PeriodicEmbedding: per-feature sin/cos of trainable frequencies, linear, ReLU."""

from __future__ import annotations

import math

import torch

from gnn import PeriodicEmbedding


def test_matches_per_feature_formula() -> None:
    torch.manual_seed(0)
    emb = PeriodicEmbedding(3, num_frequencies=4, embedding_dim=5, sigma=0.5)
    x = torch.randn(7, 3)
    out = emb(x)
    assert out.shape == (7, 15) and emb.out_channels == 15
    j = 2
    angle = 2 * math.pi * emb.frequencies[j] * x[:, j : j + 1]
    periodic = torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)
    expected = torch.relu(periodic @ emb.weight[j] + emb.bias[j])
    torch.testing.assert_close(out[:, 10:15], expected)
    assert repr(emb) == "PeriodicEmbedding(3, num_frequencies=4, embedding_dim=5, sigma=0.5)"


def test_gradients_reach_the_frequencies() -> None:
    emb = PeriodicEmbedding(2)
    emb(torch.randn(5, 2)).sum().backward()
    assert emb.frequencies.grad is not None and emb.frequencies.grad.abs().sum() > 0
