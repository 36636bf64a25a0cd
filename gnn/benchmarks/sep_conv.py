"""`SepConv`: ego and neighbour embeddings kept apart ("-sep" aggregation).

Platonov et al. (ICLR 2023) show that on heterophilous graphs concatenating a node's own
embedding with the (mean) aggregate of its neighbours, instead of mixing them in one sum, is
what makes classic GNNs competitive. With several relations (in- and out-edges of a directed
graph, or edge types) each relation's aggregate gets its own block of weights, as in Dir-GNN
and R-GCN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from gnn.nn.csr_adjacency import CSRAdjacency


class SepConv(MessagePassing):
    r"""One linear map of ``[x_v || A_1 x || ... || A_R x]``, as a PyG ``MessagePassing`` layer
    whose ``message_and_aggregate`` is the relation's CSR product (one ``propagate`` per
    relation; the operator carries the aggregation's weights).

    .. math::
        \mathbf{x}'_v = \mathbf{W}_0 \mathbf{x}_v + \sum_{r=1}^{R} \mathbf{W}_r
        \sum_{u} (A_r)_{vu} \mathbf{x}_u + \mathbf{b}

    With ``A_r`` row-normalised (:meth:`CSRAdjacency.from_edges`, ``"mean"``) this is
    GraphSAGE-sep; with ``"sym"`` and ``root_weight=False`` it is a GCN layer.

    Args:
        in_channels (int): size of each input embedding.
        out_channels (int): size of each output embedding.
        num_relations (int, optional): number of adjacency matrices passed to
            :meth:`forward`. (default: ``1``)
        root_weight (bool, optional): keep the ego term ``W_0 x_v``. (default: ``True``)
        bias (bool, optional): learn the additive bias. (default: ``True``)

    Shapes:
        - **input:** node features ``[N, in_channels]``, ``num_relations`` adjacencies of
          shape ``[N, N]``
        - **output:** ``[N, out_channels]``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_relations: int = 1,
        root_weight: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__(aggr="sum")
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f"channels must be positive, got {in_channels}, {out_channels}")
        if num_relations < 1:
            raise ValueError(f"num_relations must be >= 1, got {num_relations}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = num_relations
        self.root_weight = root_weight
        blocks = num_relations + int(root_weight)
        # NOTE: one Linear over the concatenation is one GEMM instead of 1 + R small ones.
        self.lin = nn.Linear(blocks * in_channels, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin.reset_parameters()

    def forward(self, x: Tensor, adjs: Sequence[CSRAdjacency]) -> Tensor:
        if len(adjs) != self.num_relations:
            raise ValueError(f"expected {self.num_relations} adjacencies, got {len(adjs)}")
        parts = [x] if self.root_weight else []
        parts.extend(self.propagate(adj.matrix, x=x, adj=adj) for adj in adjs)
        return self.lin(torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0])

    def message_and_aggregate(self, edge_index: Tensor, x: Tensor,  # type: ignore[override]
                              adj: CSRAdjacency) -> Tensor:
        # NOTE: ``edge_index`` is ``adj.matrix``; ``adj`` carries the transpose that makes the
        # backward one more CSR product (gnn.nn.csr_adjacency).
        return adj.matmul(x)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"num_relations={self.num_relations}, root_weight={self.root_weight})")
