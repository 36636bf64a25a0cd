"""`HeteroRiskGNN`: relation-wise message passing over sampled trees, with fraud and default
heads and a 64-d embedding per scored node.

Each layer is GraphSAGE-sep per relation (:class:`RelationalSageConv`, a PyTorch Geometric
``MessagePassing`` layer): a node of type ``T`` concatenates its own state with the mean of its
children along each relation into ``T`` and maps that with one linear layer, then a residual
connection and LayerNorm. The means are one CSR sparse-dense product per destination type and
layer (:class:`gnn.nn.csr_adjacency.CSRAdjacency` in ``message_and_aggregate``, as PyG's own
convolutions do for a sparse adjacency; no torch-scatter needed): the relations into ``T`` are
stacked into one operator (:func:`stacked_mean_operator`), so a layer costs one PyG
``propagate`` per node type rather than one per relation. On a tree only the nodes within
``L - l`` hops of the root matter after layer ``l``, so layer ``l`` updates just that prefix of
each type (nodes are stored by depth; PyG's ``trim_to_layer``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from gnn.nn.csr_adjacency import CSRAdjacency
from gnn.errors import GraphDataError
from gnn.data.lending_graph import NODE_TYPES, RELATIONS
from gnn.data.neighbour_sampler import SampledTrees
from graph.typing import NodeType

ROOT_TYPES = ("Application", "User", "Merchant")


def incoming_relations(node_type: NodeType) -> tuple[str, ...]:
    """Relations whose messages a node of ``node_type`` receives (it is their parent)."""
    return tuple(name for name, (p, _) in RELATIONS.items() if p == node_type)


def stacked_mean_operator(edges: Sequence[tuple[np.ndarray, np.ndarray]],
                          num_src: Sequence[int], num_dst: int) -> CSRAdjacency:
    """The mean operators of ``R`` relations into one destination type, as one matrix.

    Row block ``r`` (rows ``r * num_dst`` to ``(r + 1) * num_dst``) is relation ``r``'s mean
    over its children, read from column block ``r`` (its sources, stacked in relation order).
    Its product with the stacked sources is every relation's mean at once; each block is the
    matrix :meth:`CSRAdjacency.mean_of_children` gives for the relation alone.

    Args:
        edges (Sequence[tuple[np.ndarray, np.ndarray]]): per relation, ``(child, parent)``
            positions (children in the relation's sources, parents below ``num_dst``).
        num_src (Sequence[int]): per relation, its number of source rows.
        num_dst (int): destination rows.

    Shapes:
        - **output:** ``[R * num_dst, sum(num_src)]``
    """
    offsets = np.zeros(len(num_src) + 1, dtype=np.int64)
    np.cumsum(num_src, out=offsets[1:])
    child = np.concatenate([np.asarray(c, np.int64) + offsets[r]
                            for r, (c, _) in enumerate(edges)] or [np.zeros(0, np.int64)])
    parent = np.concatenate([np.asarray(p, np.int64) + r * num_dst
                             for r, (_, p) in enumerate(edges)] or [np.zeros(0, np.int64)])
    return CSRAdjacency.mean_of_children(child, parent, int(offsets[-1]), len(edges) * num_dst)


@dataclass
class TreeBatch:
    """Tensors of a batch of sampled trees, ready for :class:`HeteroRiskGNN`.

    Args:
        root_type (NodeType): type of the roots; root ``i`` is row ``i`` of that type.
        num_roots (int): number of trees.
        x (dict[NodeType, Tensor]): float32 node features per type, rows ordered by depth.
        root_x (Tensor): float32 root features ``[num_roots, F_root]``.
        prefix (list[dict[NodeType, int]]): per layer, how many rows of each type it updates.
        adjs (list[dict[NodeType, CSRAdjacency]]): per layer, per destination type with rows
            to update, the relations into it as one :func:`stacked_mean_operator`
            ``[R_T * prefix[l][T], sum of prefix[l-1][source of r]]`` (layer 0: empty).

    Shapes:
        - **x[T]:** ``[N_T, F_T]``; **root_x:** ``[R, F_root]``
    """

    root_type: NodeType
    num_roots: int
    x: dict[NodeType, Tensor]
    root_x: Tensor
    prefix: list[dict[NodeType, int]]
    adjs: list[dict[NodeType, CSRAdjacency]]

    @classmethod
    def build(
        cls,
        trees: SampledTrees,
        x: Mapping[NodeType, np.ndarray],
        root_x: np.ndarray,
        num_layers: int,
    ) -> TreeBatch:
        """Assemble a batch from trees, their node features and root features.

        Raises:
            GraphDataError: if a feature matrix does not match its node count.
        """
        return cls.from_edges(trees.root_type, trees.num_roots, x, root_x, trees.depth,
                              {name: trees.edges(name) for name in RELATIONS}, num_layers)

    @classmethod
    def from_edges(
        cls,
        root_type: NodeType,
        num_roots: int,
        x: Mapping[NodeType, np.ndarray],
        root_x: np.ndarray,
        depth: Mapping[NodeType, np.ndarray],
        edges: Mapping[str, tuple[np.ndarray, np.ndarray]],
        num_layers: int,
    ) -> TreeBatch:
        """Assemble a batch from nodes given by depth and edges given per relation.

        What :meth:`build` does for sampled trees, for any rooted graph whose edges point
        from depth ``d + 1`` to depth ``d``: a node may have several parents, so variants of
        a tree can share the parts they do not change (:func:`gnn.attribution.attribute`).

        Args:
            root_type (NodeType): type of the roots, the first ``num_roots`` rows of that type.
            num_roots (int): number of roots.
            x (Mapping[NodeType, np.ndarray]): node features per type, rows ordered by depth.
            root_x (np.ndarray): root features ``[num_roots, F_root]``.
            depth (Mapping[NodeType, np.ndarray]): int64 depth of each row, non-decreasing.
            edges (Mapping[str, tuple[np.ndarray, np.ndarray]]): per relation, ``(child,
                parent)`` row indices within the child and the parent type.
            num_layers (int): message-passing layers.

        Raises:
            GraphDataError: if a feature matrix does not match its node count.
        """
        for t in NODE_TYPES:
            if x[t].shape[0] != depth[t].shape[0]:
                raise GraphDataError(f"{t} features have {x[t].shape[0]} rows for "
                                     f"{depth[t].shape[0]} nodes")
        if root_x.shape[0] != num_roots:
            raise GraphDataError(f"root features have {root_x.shape[0]} rows for "
                                 f"{num_roots} roots")
        # rows of each type with depth <= d, for d = 0 .. num_layers
        upto = [{t: int(np.searchsorted(depth[t], d, side="right")) for t in NODE_TYPES}
                for d in range(num_layers + 1)]
        prefix = [upto[num_layers]] + [upto[num_layers - layer]
                                       for layer in range(1, num_layers + 1)]
        adjs: list[dict[NodeType, CSRAdjacency]] = [{}]
        for layer in range(1, num_layers + 1):
            per_type: dict[NodeType, CSRAdjacency] = {}
            for t in NODE_TYPES:
                n_dst, rels = prefix[layer][t], incoming_relations(t)
                if n_dst == 0 or not rels:
                    continue
                kept = []
                for name in rels:
                    child, parent = edges[name]
                    keep = parent < n_dst
                    kept.append((child[keep], parent[keep]))
                per_type[t] = stacked_mean_operator(
                    kept, [prefix[layer - 1][RELATIONS[r][1]] for r in rels], n_dst)
            adjs.append(per_type)
        return cls(
            root_type, num_roots,
            {t: torch.from_numpy(np.ascontiguousarray(x[t], dtype=np.float32))
             for t in NODE_TYPES},
            torch.from_numpy(np.ascontiguousarray(root_x, dtype=np.float32)),
            prefix, adjs,
        )

    def to(self, device: torch.device | str) -> TreeBatch:
        """A copy with every tensor on ``device`` (explicit host -> device copies)."""
        device = torch.device(device)
        return TreeBatch(
            self.root_type, self.num_roots, {t: v.to(device) for t, v in self.x.items()},
            self.root_x.to(device), self.prefix,
            [{k: a.to(device) for k, a in layer.items()} for layer in self.adjs],
        )


class RelationalSageConv(MessagePassing):
    r"""SAGE-sep per relation for one destination node type, as a PyG ``MessagePassing`` layer.

    .. math::
        \mathbf{h}'_v = \mathbf{W} \left[ \mathbf{h}_v \,\Vert\, \operatorname{mean}_{u \in
        \mathcal{N}_{r_1}(v)} \mathbf{h}_u \,\Vert \dots \Vert\, \operatorname{mean}_{u \in
        \mathcal{N}_{r_R}(v)} \mathbf{h}_u \right] + \mathbf{b}

    A relation with no neighbour for ``v`` contributes zeros. All ``R`` means come from one
    ``propagate`` over the relations' :func:`stacked_mean_operator`; ``message_and_aggregate``
    is its CSR product (the operator's weights are the means' ``1 / degree``).

    Args:
        channels (int): size of the input and output states.
        relations (Sequence[str]): the relations into the destination type, in a fixed order.

    Shapes:
        - **input:** ego states ``[N_dst, C]``, one ``[N_src_r, C]`` per relation, and their
          stacked operator ``[R * N_dst, sum_r N_src_r]``
        - **output:** ``[N_dst, C]``
    """

    def __init__(self, channels: int, relations: Sequence[str]) -> None:
        super().__init__(aggr="mean")
        if channels <= 0:
            raise ValueError(f"channels must be positive, got {channels}")
        self.channels = channels
        self.relations = tuple(relations)
        self.lin = nn.Linear((1 + len(self.relations)) * channels, channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin.reset_parameters()

    def forward(self, ego: Tensor, neighbours: Sequence[Tensor],
                adj: CSRAdjacency | None) -> Tensor:
        num_rel, (n, c) = len(self.relations), ego.shape
        if len(neighbours) != num_rel:
            raise ValueError(f"expected {num_rel} neighbour states, got {len(neighbours)}")
        if num_rel == 0:
            return self.lin(ego)
        if adj is None or adj.nnz == 0:
            means = ego.new_zeros(n, num_rel * c)
        else:
            if adj.shape[0] != num_rel * n:
                raise ValueError(f"operator has {adj.shape[0]} rows for {num_rel} relations "
                                 f"into {n} nodes")
            x = torch.cat(list(neighbours)) if num_rel > 1 else neighbours[0]
            out = self.propagate(adj.matrix, x=x, adj=adj)
            means = out.view(num_rel, n, c).transpose(0, 1).reshape(n, num_rel * c)
        return self.lin(torch.cat([ego, means], dim=-1))

    def message_and_aggregate(self, edge_index: Tensor, x: Tensor,  # type: ignore[override]
                              adj: CSRAdjacency) -> Tensor:
        # NOTE: ``edge_index`` is ``adj.matrix``; ``adj`` carries the transpose that makes the
        # backward one more CSR product (gnn.nn.csr_adjacency).
        return adj.matmul(x)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, {self.channels}, "
                f"relations={len(self.relations)})")


@dataclass
class RiskOutput:
    """What the model returns per root.

    Args:
        fraud_logit (Tensor): ``[R]``.
        pd_logit (Tensor): ``[R]``.
        embedding (Tensor): ``[R, embedding_dim]``.
    """

    fraud_logit: Tensor
    pd_logit: Tensor
    embedding: Tensor


class HeteroRiskGNN(nn.Module):
    """Heterogeneous GNN over sampled trees: fraud and default heads and an embedding.

    Args:
        node_channels (Mapping[NodeType, int]): node feature size per type.
        root_channels (Mapping[NodeType, int]): root feature size per scorable root type.
        hidden_channels (int, optional): state size. (default: ``64``)
        embedding_dim (int, optional): embedding size. (default: ``64``)
        num_layers (int, optional): message-passing layers (= sampled hops). (default: ``2``)
        dropout (float, optional): dropout on layer outputs. (default: ``0.1``)

    Shapes:
        - **input:** a :class:`TreeBatch`
        - **output:** :class:`RiskOutput` with ``[R]`` logits and ``[R, embedding_dim]``
    """

    def __init__(
        self,
        node_channels: Mapping[NodeType, int],
        root_channels: Mapping[NodeType, int],
        hidden_channels: int = 64,
        embedding_dim: int = 64,
        num_layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.node_channels = dict(node_channels)
        self.root_channels = dict(root_channels)
        self.hidden_channels = hidden_channels
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.dropout = dropout
        self.node_in = nn.ModuleDict({t: nn.Linear(node_channels[t], hidden_channels)
                                      for t in NODE_TYPES})
        self.root_in = nn.ModuleDict({t: nn.Sequential(
            nn.Linear(c, hidden_channels), nn.ReLU(), nn.Linear(hidden_channels,
                                                                hidden_channels))
            for t, c in root_channels.items()})
        self.convs = nn.ModuleList([
            nn.ModuleDict({t: RelationalSageConv(hidden_channels, incoming_relations(t))
                           for t in NODE_TYPES})
            for _ in range(num_layers)])
        self.norms = nn.ModuleList([
            nn.ModuleDict({t: nn.LayerNorm(hidden_channels) for t in NODE_TYPES})
            for _ in range(num_layers)])
        self.embed = nn.ModuleDict({t: nn.Linear(2 * hidden_channels, embedding_dim)
                                    for t in root_channels})
        self.fraud_head = nn.ModuleDict({t: nn.Linear(embedding_dim, 1) for t in root_channels})
        self.pd_head = nn.ModuleDict({t: nn.Linear(embedding_dim, 1) for t in root_channels})
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, batch: TreeBatch) -> RiskOutput:
        rt = batch.root_type
        if rt not in self.root_in:
            raise GraphDataError(f"the model scores {sorted(self.root_in)}, not {rt!r}")
        h: dict[NodeType, Tensor] = {}
        for t in NODE_TYPES:
            h[t] = torch.relu(self.node_in[t](batch.x[t][: batch.prefix[0][t]]))
        root = self.root_in[rt](batch.root_x)
        h[rt] = torch.cat([h[rt][: batch.num_roots] + root, h[rt][batch.num_roots:]], dim=0)
        for layer in range(1, self.num_layers + 1):
            out: dict[NodeType, Tensor] = {}
            for t in NODE_TYPES:
                n = batch.prefix[layer][t]
                if n == 0:
                    out[t] = h[t][:0]
                    continue
                conv = self.convs[layer - 1][t]
                srcs = [h[RELATIONS[r][1]] for r in conv.relations]
                msg = conv(h[t][:n], srcs, batch.adjs[layer].get(t))
                msg = nn.functional.dropout(torch.relu(msg), self.dropout, self.training)
                out[t] = self.norms[layer - 1][t](h[t][:n] + msg)
            h = out
        z = torch.cat([h[rt][: batch.num_roots], root], dim=-1)
        emb = self.embed[rt](z)
        act = torch.relu(emb)
        return RiskOutput(self.fraud_head[rt](act).squeeze(-1),
                          self.pd_head[rt](act).squeeze(-1), emb)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(roots={sorted(self.root_channels)}, "
                f"hidden={self.hidden_channels}, embedding_dim={self.embedding_dim}, "
                f"num_layers={self.num_layers}, dropout={self.dropout})")


class HeteroRiskEnsemble(nn.Module):
    """Members of the same architecture trained from different seeds, averaged.

    Fraud and default logits are the members' mean; the embedding is the first member's (the
    members' embedding spaces are unrelated, so a mean of them would describe no space).

    Args:
        members (Sequence[HeteroRiskGNN]): the trained members, all with the same shape.

    Shapes:
        - **input:** a :class:`TreeBatch`
        - **output:** :class:`RiskOutput`
    """

    def __init__(self, members: Sequence[HeteroRiskGNN]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @property
    def embedding_dim(self) -> int:
        return int(self.members[0].embedding_dim)  # type: ignore[union-attr]

    @property
    def num_layers(self) -> int:
        return int(self.members[0].num_layers)  # type: ignore[union-attr]

    def reset_parameters(self) -> None:
        for m in self.members:
            m.reset_parameters()  # type: ignore[operator]

    def forward(self, batch: TreeBatch) -> RiskOutput:
        outs = [m(batch) for m in self.members]
        return RiskOutput(torch.stack([o.fraud_logit for o in outs]).mean(0),
                          torch.stack([o.pd_logit for o in outs]).mean(0), outs[0].embedding)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(members={len(self.members)}, {self.members[0]!r})"
