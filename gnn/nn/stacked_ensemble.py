"""`StackedEnsemble`: an ensemble's members run as one model at inference, their weights
stacked along a leading member axis.

The members of a :class:`gnn.nn.hetero_risk_gnn.HeteroRiskEnsemble` share the architecture and the
input batch, so their layers can run side by side: a state is ``[M, N, C]`` for ``M`` members,
the first linear layers (shared input) are one ``linear`` with the members' weights
concatenated, the later ones one batched ``baddbmm``, and each layer's neighbour means are one
``propagate`` of the member's own :class:`~gnn.nn.hetero_risk_gnn.RelationalSageConv` over
``M * C`` columns (the mean is linear, so the members' columns do not mix). A forward pass is
then about as many operator calls as one member's: online batches of one or two applications
cost mostly per-call overhead, so this takes ~60 % off the ensemble's forward pass there.

The outputs equal the members' own forward passes up to float32 rounding (the order of the sums
in a batched product differs); only inference uses it (no dropout, no gradients).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F  # noqa: N812 - the usual name

from gnn.errors import GraphDataError
from gnn.nn.hetero_risk_gnn import HeteroRiskGNN, RiskOutput, TreeBatch
from gnn.data.lending_graph import NODE_TYPES, RELATIONS
from graph.typing import NodeType


@dataclass(frozen=True)
class _Affine:
    """Stacked ``y = x W^T + b`` of ``M`` members: ``wt [M, in, out]``, ``b [M, 1, out]``."""

    wt: Tensor
    b: Tensor

    @classmethod
    def of(cls, layers: Sequence[Any]) -> _Affine:
        return cls(torch.stack([lin.weight for lin in layers]).transpose(1, 2).contiguous(),
                   torch.stack([lin.bias for lin in layers]).unsqueeze(1).contiguous())

    def __call__(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.b, x, self.wt)


@dataclass(frozen=True)
class _Concat:
    """``M`` linear layers on one shared input as one: weights concatenated by output row."""

    w: Tensor
    b: Tensor
    members: int

    @classmethod
    def of(cls, layers: Sequence[Any]) -> _Concat:
        return cls(torch.cat([lin.weight for lin in layers]).contiguous(),
                   torch.cat([lin.bias for lin in layers]).contiguous(), len(layers))

    def __call__(self, x: Tensor) -> Tensor:
        """``[N, in]`` -> ``[M, N, out]``."""
        y = F.linear(x, self.w, self.b)
        return y.view(x.shape[0], self.members, self.w.shape[0] // self.members).transpose(0, 1)


class StackedEnsemble:
    """The members of an ensemble as one model for inference (module docstring).

    Args:
        members (Sequence[HeteroRiskGNN]): trained members of the same shape; their weights
            are copied (stacked) here, so build it again after they change.

    Shapes:
        - **input:** a :class:`~gnn.nn.hetero_risk_gnn.TreeBatch`
        - **output:** :class:`~gnn.nn.hetero_risk_gnn.RiskOutput`: the members' mean logits
          ``[R]`` and the first member's embedding ``[R, embedding_dim]``
    """

    def __init__(self, members: Sequence[HeteroRiskGNN]) -> None:
        if not members:
            raise ValueError("a stacked ensemble needs at least one member")
        # NOTE: Any: the members' ModuleDicts hold Linear / Sequential / LayerNorm layers,
        # which mypy sees as plain Modules.
        ms: list[Any] = list(members)
        first: Any = ms[0]
        self.first = first
        self.members = len(members)
        self.hidden = first.hidden_channels
        self.num_layers = first.num_layers
        with torch.no_grad():
            self.node_in = {t: _Concat.of([m.node_in[t] for m in ms])
                            for t in NODE_TYPES}
            self.root_in1 = {t: _Concat.of([m.root_in[t][0] for m in ms])
                             for t in first.root_channels}
            self.root_in2 = {t: _Affine.of([m.root_in[t][2] for m in ms])
                             for t in first.root_channels}
            self.conv = [{t: _Affine.of([m.convs[layer][t].lin for m in ms])
                          for t in NODE_TYPES} for layer in range(self.num_layers)]
            self.norm = [{t: (torch.stack([m.norms[layer][t].weight
                                           for m in ms]).unsqueeze(1).contiguous(),
                              torch.stack([m.norms[layer][t].bias
                                           for m in ms]).unsqueeze(1).contiguous())
                          for t in NODE_TYPES} for layer in range(self.num_layers)]
            self.eps = {(layer, t): float(first.norms[layer][t].eps)
                        for layer in range(self.num_layers) for t in NODE_TYPES}
            self.embed = {t: _Affine.of([m.embed[t] for m in ms])
                          for t in first.root_channels}
            self.fraud_head = {t: _Affine.of([m.fraud_head[t] for m in ms])
                               for t in first.root_channels}
            self.pd_head = {t: _Affine.of([m.pd_head[t] for m in ms])
                            for t in first.root_channels}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(members={self.members}, hidden={self.hidden})"

    def __call__(self, batch: TreeBatch) -> RiskOutput:
        return self._forward(batch, None)

    def forward_with_context(self, batch: TreeBatch) -> tuple[RiskOutput, RootContext]:
        """The forward pass, and what the roots' rows received from the rest of the batch.

        A root's features reach only its own row (messages flow from children to parents), so
        with this context :meth:`root_output` scores other root features on the same
        neighbourhood at the cost of the root rows alone (Integrated Gradients,
        :func:`gnn.attribution.attribute`).
        """
        context: list[Tensor | None] = []
        out = self._forward(batch, context)
        node_state = context.pop(0)
        assert node_state is not None
        return out, RootContext(batch.root_type, node_state, context)

    def root_output(self, root_x: Tensor, context: RootContext, rows: Tensor) -> RiskOutput:
        """Outputs of roots with features ``root_x`` on the neighbourhoods of ``context``
        (row ``k`` on root ``rows[k]``'s): the same layers as a forward pass, on root rows only.

        NOTE: a layer's neighbour means are fixed here, so their share of the layer's linear
        map is computed once per root and only the root's own state goes through it per row
        (an application's layer input is its state and four relations' means: a fifth of the
        work per row).

        Shapes:
            - **input:** ``root_x`` ``[K, F_root]``, ``rows`` ``[K]`` into the context's roots
            - **output:** :class:`~gnn.nn.hetero_risk_gnn.RiskOutput` of ``K`` roots
        """
        rt, c = context.root_type, self.hidden
        root = self._root_state(rt, root_x)
        h = context.node_state[:, rows] + root
        for layer in range(1, self.num_layers + 1):
            means = context.means[layer - 1]
            if means is None:
                h = self._update(layer, rt, h, None)
                continue
            lin = self.conv[layer - 1][rt]
            fixed = torch.baddbmm(lin.b, means, lin.wt[:, c:])
            h = self._finish(layer, rt, h, torch.baddbmm(fixed[:, rows], h, lin.wt[:, :c]))
        return self._heads(rt, h, root)

    def _root_state(self, rt: NodeType, root_x: Tensor) -> Tensor:
        return self.root_in2[rt](torch.relu(self.root_in1[rt](root_x)))

    def _update(self, layer: int, t: NodeType, ego: Tensor, means: Tensor | None) -> Tensor:
        """One layer's new state of ``t`` rows from their state and their neighbour means
        (``None``: a type that receives no relation)."""
        inputs = ego if means is None else torch.cat([ego, means], dim=-1)
        return self._finish(layer, t, ego, self.conv[layer - 1][t](inputs))

    def _finish(self, layer: int, t: NodeType, ego: Tensor, pre: Tensor) -> Tensor:
        """The rest of a layer once its linear map gave ``pre``: activation, residual, norm."""
        w, b = self.norm[layer - 1][t]
        return torch.addcmul(b, F.layer_norm(ego + torch.relu(pre), (self.hidden,), None,
                                             None, self.eps[(layer - 1, t)]), w)

    def _heads(self, rt: NodeType, h_root: Tensor, root: Tensor) -> RiskOutput:
        emb = self.embed[rt](torch.cat([h_root, root], dim=-1))
        act = torch.relu(emb)
        return RiskOutput(self.fraud_head[rt](act).squeeze(-1).mean(0),
                          self.pd_head[rt](act).squeeze(-1).mean(0), emb[0])

    def _forward(self, batch: TreeBatch, context: list[Tensor | None] | None) -> RiskOutput:
        """The forward pass; with a ``context`` list, appends the roots' node state and, per
        layer, their neighbour means (:meth:`forward_with_context`)."""
        rt = batch.root_type
        if rt not in self.root_in1:
            raise GraphDataError(f"the model scores {sorted(self.root_in1)}, not {rt!r}")
        m, c, nr = self.members, self.hidden, batch.num_roots
        h: dict[NodeType, Tensor] = {}
        for t in NODE_TYPES:
            h[t] = torch.relu(self.node_in[t](batch.x[t][: batch.prefix[0][t]]))
        root = self._root_state(rt, batch.root_x)
        if context is not None:
            context.append(h[rt][:, :nr])
        h[rt] = torch.cat([h[rt][:, :nr] + root, h[rt][:, nr:]], dim=1)
        for layer in range(1, self.num_layers + 1):
            out: dict[NodeType, Tensor] = {}
            for t in NODE_TYPES:
                n = batch.prefix[layer][t]
                if n == 0:
                    out[t] = h[t][:, :0]
                    continue
                ego = h[t][:, :n]
                conv = self.first.convs[layer - 1][t]
                rels = conv.relations
                adj = batch.adjs[layer].get(t)
                means: Tensor | None
                if not rels:
                    means = None
                elif adj is None or adj.nnz == 0:
                    means = ego.new_zeros(m, n, len(rels) * c)
                else:
                    x = torch.cat([h[RELATIONS[r][1]] for r in rels], dim=1)
                    wide = x.transpose(0, 1).reshape(x.shape[1], m * c)
                    # NOTE: the member's own PyG layer aggregates all members' columns at once.
                    agg = conv.propagate(adj.matrix, x=wide, adj=adj)
                    means = agg.view(len(rels), n, m, c).permute(2, 1, 0, 3).reshape(
                        m, n, len(rels) * c)
                if context is not None and t == rt:
                    context.append(None if means is None else means[:, :nr])
                out[t] = self._update(layer, t, ego, means)
            h = out
        return self._heads(rt, h[rt][:, :nr], root)


@dataclass(frozen=True)
class RootContext:
    """What the root rows of a batch received from the rest of it, per member
    (:meth:`StackedEnsemble.forward_with_context`).

    Args:
        root_type (NodeType): the roots' type.
        node_state (Tensor): ``[M, R, C]`` the roots' state from their node features.
        means (list[Tensor or None]): per layer, ``[M, R, R_rel * C]`` the roots' neighbour
            means (``None``: the root type receives no relation).
    """

    root_type: NodeType
    node_state: Tensor
    means: list[Tensor | None]
