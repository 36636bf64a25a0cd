"""`SepGNN`: a residual stack of -sep graph layers for node classification.

The block is the one of Platonov et al. (2023) and of the tuned classic GNNs of Luo et al.
(2024): pre-normalisation, a graph layer, an activation, dropout, a second linear map, and a
residual connection, ``h <- h + Drop(W2 Drop(act(SepConv(Norm(h)))))``. Everything is dense
tensors and CSR products, so the same code runs full-batch on CPU or CUDA.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from gnn.benchmarks._dropout import FastDropout
from gnn.nn.csr_adjacency import CSRAdjacency
from gnn.benchmarks.periodic_embedding import PeriodicEmbedding
from gnn.benchmarks.sep_conv import SepConv

NormKind = Literal["layer", "batch", "none"]


def _norm(kind: NormKind, channels: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(channels)
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'layer', 'batch' or 'none', got {kind!r}")


class SepGNN(nn.Module):
    r"""Input encoder, ``num_layers`` residual -sep blocks, output head.

    Args:
        in_channels (int): number of input features.
        hidden_channels (int): width of the residual stream.
        out_channels (int): number of outputs (1 for a binary task's logit).
        num_layers (int, optional): number of residual graph blocks. (default: ``3``)
        num_relations (int, optional): adjacencies per forward pass (2 for the in- and
            out-edges of a directed graph). (default: ``1``)
        dropout (float, optional): dropout inside blocks and after the encoder.
            (default: ``0.2``)
        ffn_multiplier (int, optional): inner width of a block is
            ``ffn_multiplier * hidden_channels``. (default: ``1``)
        norm (str, optional): ``"layer"``, ``"batch"`` or ``"none"``. (default: ``"layer"``)
        periodic_frequencies (int, optional): when positive, the encoder first embeds each
            input feature with a :class:`PeriodicEmbedding` of this many frequencies.
            (default: ``0``, off)
        periodic_dim (int, optional): per-feature size of that embedding. (default: ``16``)
        periodic_sigma (float, optional): its initial frequency scale. (default: ``0.1``)

    Shapes:
        - **input:** node features ``[N, in_channels]``, ``num_relations`` adjacencies
          ``[N, N]``
        - **output:** logits ``[N, out_channels]``; :meth:`embed` gives ``[N, hidden_channels]``
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int = 3,
        num_relations: int = 1,
        dropout: float = 0.2,
        ffn_multiplier: int = 1,
        norm: NormKind = "layer",
        periodic_frequencies: int = 0,
        periodic_dim: int = 16,
        periodic_sigma: float = 0.1,
    ) -> None:
        super().__init__()
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if ffn_multiplier < 1:
            raise ValueError(f"ffn_multiplier must be >= 1, got {ffn_multiplier}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.num_relations = num_relations
        self.dropout = dropout
        self.ffn_multiplier = ffn_multiplier
        self.norm = norm
        self.periodic_frequencies = periodic_frequencies
        inner = ffn_multiplier * hidden_channels
        self.periodic = (PeriodicEmbedding(in_channels, periodic_frequencies, periodic_dim,
                                           periodic_sigma)
                         if periodic_frequencies > 0 else None)
        enc_in = in_channels if self.periodic is None else self.periodic.out_channels
        self.encoder = nn.Linear(enc_in, hidden_channels)
        self.norms = nn.ModuleList(_norm(norm, hidden_channels) for _ in range(num_layers))
        self.convs = nn.ModuleList(
            SepConv(hidden_channels, inner, num_relations) for _ in range(num_layers)
        )
        self.lins = nn.ModuleList(nn.Linear(inner, hidden_channels) for _ in range(num_layers))
        self.final_norm = _norm(norm, hidden_channels)
        self.head = nn.Linear(hidden_channels, out_channels)
        self.act = nn.GELU()
        self.drop = FastDropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.periodic is not None:
            self.periodic.reset_parameters()
        self.encoder.reset_parameters()
        for module in [*self.norms, *self.convs, *self.lins, self.final_norm, self.head]:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def embed(self, x: Tensor, adjs: Sequence[CSRAdjacency]) -> Tensor:
        """Node embeddings before the head (normalised residual stream)."""
        if self.periodic is not None:
            x = self.periodic(x)
        h = self.drop(self.act(self.encoder(x)))
        for norm, conv, lin in zip(self.norms, self.convs, self.lins):
            z = self.drop(self.act(conv(norm(h), adjs)))
            h = h + self.drop(lin(z))
        return self.final_norm(h)

    def forward(self, x: Tensor, adjs: Sequence[CSRAdjacency]) -> Tensor:
        return self.head(self.embed(x, adjs))

    @torch.inference_mode()
    def inference(
        self, x: Tensor, adjs: Sequence[CSRAdjacency], device: torch.device | str
    ) -> Tensor:
        """Full-batch logits in eval mode on ``device``, returned on the CPU.

        Args:
            x (torch.Tensor): node features ``[N, in_channels]`` (any device).
            adjs (Sequence[CSRAdjacency]): the graph's adjacencies (any device).
            device (torch.device or str): where to compute; the model must already be there.
        """
        was_training = self.training
        self.eval()
        try:
            device = torch.device(device)
            out = self(x.to(device), [adj.to(device) for adj in adjs])
        finally:
            self.train(was_training)
        return out.cpu()

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
                f"{self.out_channels}, num_layers={self.num_layers}, "
                f"num_relations={self.num_relations}, dropout={self.dropout}, "
                f"ffn_multiplier={self.ffn_multiplier}, norm={self.norm!r}, "
                f"periodic={self.periodic})")
