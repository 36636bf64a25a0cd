"""`PeriodicEmbedding`: per-feature periodic embeddings of numerical inputs (PLR).

Gorishniy et al., "On Embeddings for Numerical Features in Tabular Deep Learning" (NeurIPS
2022): mapping each scalar through ``sin``/``cos`` of trainable frequencies, a per-feature
linear map and a ReLU lets an MLP draw the sharp, threshold-like functions gradient-boosted
trees find easily. Node features of risk graphs are tabular (rates, counts, amounts), so the
GNN's input encoder uses them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PeriodicEmbedding(nn.Module):
    r"""Embed every feature ``x_j`` as ``ReLU(W_j [sin(2 pi c_j x_j), cos(2 pi c_j x_j)] + b_j)``.

    Args:
        num_features (int): number of scalar input features ``F``.
        num_frequencies (int, optional): ``k``, trainable frequencies per feature.
            (default: ``16``)
        embedding_dim (int, optional): ``d``, output size per feature. (default: ``16``)
        sigma (float, optional): initial frequencies are drawn from ``N(0, sigma^2)``; larger
            values resolve finer detail of standardised inputs. (default: ``0.1``)

    Shapes:
        - **input:** ``[N, F]``
        - **output:** ``[N, F * d]``
    """

    def __init__(
        self,
        num_features: int,
        num_frequencies: int = 16,
        embedding_dim: int = 16,
        sigma: float = 0.1,
    ) -> None:
        super().__init__()
        if num_features < 1 or num_frequencies < 1 or embedding_dim < 1:
            raise ValueError(f"sizes must be positive, got {num_features}, {num_frequencies}, "
                             f"{embedding_dim}")
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.num_features = num_features
        self.num_frequencies = num_frequencies
        self.embedding_dim = embedding_dim
        self.sigma = sigma
        self.frequencies = nn.Parameter(torch.empty(num_features, num_frequencies))
        self.weight = nn.Parameter(torch.empty(num_features, 2 * num_frequencies, embedding_dim))
        self.bias = nn.Parameter(torch.empty(num_features, embedding_dim))
        self.reset_parameters()

    @property
    def out_channels(self) -> int:
        return self.num_features * self.embedding_dim

    def reset_parameters(self) -> None:
        nn.init.normal_(self.frequencies, 0.0, self.sigma)
        # Same fan-in rule as nn.Linear, per feature.
        bound = 1.0 / math.sqrt(2 * self.num_frequencies)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        angle = 2 * math.pi * self.frequencies * x.unsqueeze(-1)  # [N, F, k]
        periodic = torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)  # [N, F, 2k]
        out = torch.einsum("nfk,fkd->nfd", periodic, self.weight) + self.bias
        return torch.relu(out).flatten(1)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.num_features}, "
                f"num_frequencies={self.num_frequencies}, embedding_dim={self.embedding_dim}, "
                f"sigma={self.sigma})")
