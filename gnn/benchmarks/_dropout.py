"""A dropout that is cheap on CPU.

``torch.nn.functional.dropout`` draws its mask with ``bernoulli_``, which on CPU costs about 4x
a ``uniform_`` draw (18 ms vs 4 ms for an 11758 x 128 tensor, one thread); with seven dropouts
per step that was a fifth of a tolokers training step. On CUDA the fused kernel is used.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def fast_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by ``1/(1-p)``."""
    if not training or p == 0.0:
        return x
    if x.is_cuda:
        return nn.functional.dropout(x, p, training=True)
    keep = torch.empty_like(x).uniform_() >= p
    return x * keep * (1.0 / (1.0 - p))


class FastDropout(nn.Module):
    """:func:`fast_dropout` as a module (drop-in for :class:`torch.nn.Dropout`)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return fast_dropout(x, self.p, self.training)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(p={self.p})"
