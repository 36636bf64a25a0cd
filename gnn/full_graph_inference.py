"""`FullGraphInference`: scores of every user or merchant by layer-wise inference over the whole
graph, each layer computed once for all nodes in bounded-memory chunks.

Online scoring grows a sampled tree per seed (:class:`~gnn.data.neighbour_sampler.NeighbourSampler`)
and runs :class:`~gnn.nn.hetero_risk_gnn.HeteroRiskGNN` on it. Done for a million seeds, most of
that work is repeated: a device shared by ten users is featurised and aggregated ten times. Here
the same network, with the same weights, features and normalisation, is evaluated layer by
layer over the graph instead (PyG's ``BasicGNN.inference`` idea, adapted to this model):

* A node's input state depends on the edge that reached it (the recency column of
  :data:`~gnn.features.risk_features.NODE_FEATURES`), so states below the root are per *edge*;
  what a node aggregates from its own children does not depend on how it was reached, so the
  aggregate of layer ``l`` at depth ``d`` is computed once per node and kept, already projected
  by the layer's neighbour weights (``[N, C]`` per type, depth and layer). States per edge are
  recomputed from those tables in chunks of at most ``max_edges`` edges, never stored.
* The tree's shape is kept: a relation is followed at hop ``d`` only where the model's fan-outs
  for the root type expand it there, and a relation with no edge adds zeros, as in the tree.
* The root's first hop is the sampler's own draw (drawn per root, seeded by its key). Deeper
  hops are shared between roots, so a node's neighbours there are the sampler's candidates:
  where the sampler keeps every candidate (a node with at most ``k`` neighbours, the common
  case) or takes the ``k`` most recent ("recent" relations), exactly the neighbours the tree
  holds, and the score equals the tree's up to float summation order. Where it draws ``k`` of
  more candidates (a hub, a user with many devices), the mean is over the whole pool it draws
  from (its ``pool_size`` most recent neighbours): the expectation of a uniform draw, where the
  tree holds one draw. That is the one difference by design;
  ``tests/gnn/test_full_graph_inference.py`` bounds it.

Chunks of roots are numbered the same way however many processes share them, so a rank
computes a chunk exactly as a single process would (``gnn.distributed_rescoring``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, cast

import numpy as np
import torch
from torch import Tensor, nn

from gnn.data.lending_graph import INCLUSIVE_RELATIONS, NODE_TYPES, RELATIONS, LendingGraph
from gnn.data.neighbour_sampler import DEFAULT_STRATEGIES, NeighbourSampler, Seeds, _expand
from gnn.errors import ModelError
from gnn.features.risk_features import NODE_FEATURES, edge_recency
from gnn.nn.hetero_risk_gnn import HeteroRiskEnsemble, HeteroRiskGNN, RelationalSageConv
from gnn.pipeline import Scores, ScoringPipeline, concat_scores
from graph.typing import NodeType

TABLE_CHUNK = 65536
"""Rows per chunk of the per-node tables (the unit ranks split; the same in every process, so
that a table is computed the same way however many share it)."""

ChunkHook = Callable[[NodeType, int, int], None]
"""Called after each chunk of roots: ``(root type, roots done, roots in all)``."""


PREFETCHED: Final = "features beside the network"
"""The name a run's timings give :attr:`StageTimes.prefetched` (not part of their sum)."""


@dataclass
class StageTimes:
    """Wall time per stage of a full-graph pass, accumulated over calls, and what the network
    had to do (for the benchmark's floors).

    Args:
        seconds (dict[str, float]): ``features`` (kernels and normalisation) and ``inference``
            (the network, tables and roots), as the calling thread spent them: they add up to
            its wall time.
        prefetched (float): seconds of root features computed on the second thread of
            :meth:`FullGraphInference.score_chunks` while the calling thread ran the network
            (or handled a result); what the calling thread still waited for counts in
            ``seconds["features"]``.
        edges (int): edge states computed (each edge once per layer table that needs it).
        bytes (int): the least memory traffic of inference: per edge its child index, time,
            feature row, table rows and state; per table and output row its ``C`` floats.
        flops (int): multiply-adds times two of the dense products.
    """

    seconds: dict[str, float] = field(default_factory=lambda: {"features": 0.0,
                                                               "inference": 0.0})
    prefetched: float = 0.0
    edges: int = 0
    bytes: int = 0
    flops: int = 0

    def add(self, stage: str, since: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - since


@dataclass(frozen=True)
class RootChunk:
    """A contiguous range of root positions, numbered the same in every process.

    Args:
        index (int): the chunk's number.
        start (int): first position.
        stop (int): one past the last position.
    """

    index: int
    start: int
    stop: int

    @property
    def positions(self) -> np.ndarray:
        return np.arange(self.start, self.stop, dtype=np.int64)


def root_chunks(num_roots: int, chunk_size: int) -> list[RootChunk]:
    """The chunks of ``num_roots`` roots, ``chunk_size`` each (the last one shorter).

    Raises:
        ValueError: if ``chunk_size`` is not positive.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    return [RootChunk(i, lo, min(lo + chunk_size, num_roots))
            for i, lo in enumerate(range(0, num_roots, chunk_size))]


class FullGraphInference:
    """Layer-wise inference of a :class:`ScoringPipeline`'s network over a whole graph.

    Args:
        pipeline (ScoringPipeline): the model (its kernels backend computes the features:
            :meth:`ScoringPipeline.use_kernels`).
        graph (LendingGraph): the graph state.
        as_of (int, optional): score as of this time. (default: after the latest event)
        device (torch.device or str, optional): where the network runs. (default: ``"cpu"``)
        chunk_size (int, optional): roots per chunk. (default: ``16384``)
        max_edges (int, optional): edges whose states are held at once; with the hidden size
            it bounds the working memory (``max_edges * hidden * 4`` bytes per tensor).
            (default: ``262144``)
    """

    def __init__(self, pipeline: ScoringPipeline, graph: LendingGraph, *,
                 as_of: int | None = None, device: torch.device | str = "cpu",
                 chunk_size: int = 16384, max_edges: int = 262144) -> None:
        if max_edges < 1:
            raise ValueError(f"max_edges must be positive, got {max_edges}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.pipeline = pipeline
        self.graph = graph
        self.as_of = graph.as_of + 1 if as_of is None else int(as_of)
        self.device = torch.device(device)
        self.chunk_size = int(chunk_size)
        self.max_edges = int(max_edges)
        self.times = StageTimes()
        model = pipeline.model
        self.members: list[HeteroRiskGNN] = (
            [cast(HeteroRiskGNN, m) for m in model.members]
            if isinstance(model, HeteroRiskEnsemble)
            else [model])
        self.num_layers = self.members[0].num_layers
        self._x: dict[NodeType, Tensor] = {}
        self._rec_zero: dict[NodeType, float] = {}
        self._tables: dict[NodeType, list[dict[tuple[int, int, NodeType], Tensor | None]]] = {}
        self._samplers: dict[NodeType, NeighbourSampler] = {}

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(version={self.pipeline.version!r}, "
                f"as_of={self.as_of}, device={str(self.device)!r}, chunk_size={self.chunk_size}, "
                f"max_edges={self.max_edges})")

    # -- public -----------------------------------------------------------------------------------
    def chunks(self, root_type: NodeType) -> list[RootChunk]:
        """The root chunks of ``root_type``, the same in every process."""
        return root_chunks(self.graph.num_nodes(root_type), self.chunk_size)

    def prepare(self, root_type: NodeType,
                share: Callable[[Callable[[RootChunk], Tensor], int, NodeType], Tensor]
                | None = None) -> None:
        """Node features of every type and the per-node tables of ``root_type``'s tree shape.

        Args:
            root_type (NodeType): ``User`` or ``Merchant``.
            share (Callable, optional): builds one ``[N, C]`` table from a function of a row
                chunk, its row count and its node type; the default computes every chunk here,
                a distributed run splits them between ranks and gathers
                (:mod:`gnn.distributed_rescoring`). (default: all here)
        """
        self._check_root(root_type)
        self._features()
        t0 = time.perf_counter()
        build = share or build_table
        tables: list[dict[tuple[int, int, NodeType], Tensor | None]] = []
        for member in self.members:
            per: dict[tuple[int, int, NodeType], Tensor | None] = {}
            tables.append(per)
            with torch.inference_mode():
                for depth in range(self.num_layers - 1, 0, -1):
                    for layer in range(1, self.num_layers - depth + 1):
                        for t in NODE_TYPES:
                            if not self._active(member, root_type, t, depth, layer):
                                per[(depth, layer, t)] = None
                                continue
                            n = self.graph.num_nodes(t)

                            def rows(chunk: RootChunk, t: NodeType = t, depth: int = depth,
                                     layer: int = layer, member: HeteroRiskGNN = member,
                                     per: Mapping[tuple[int, int, NodeType], Tensor | None]
                                     = per) -> Tensor:
                                return self._neighbour_part(member, per, root_type, t, depth,
                                                            layer, chunk.positions)

                            per[(depth, layer, t)] = build(rows, n, t)
        self._tables[root_type] = tables
        self.times.add("inference", t0)

    def root_features(self, root_type: NodeType, chunk: RootChunk) -> Tensor:
        """The normalised root features of the roots in ``chunk``, ``[len(chunk), F]``."""
        roots = chunk.positions
        feats = self.pipeline.bind(self.graph)[1]
        times = np.full(roots.shape[0], self.as_of, dtype=np.int64)
        if root_type == "User":
            raw, names, _ = feats.user_features(roots, times)
        else:
            raw, names, _ = feats.merchant_features(roots, times)
        if list(names) != self.pipeline.root_feature_names[root_type]:
            raise ModelError(f"{root_type} root features differ from the model's")
        return torch.from_numpy(self.pipeline.root_norm[root_type](raw)).to(self.device)

    def score_chunks(self, root_type: NodeType, chunks: Sequence[RootChunk]
                     ) -> Iterator[tuple[RootChunk, Scores]]:
        """:meth:`score_chunk` of each of ``chunks`` in order, the next chunk's root features
        computed on a second thread while this one's network runs and while the caller
        handles its scores (writes them back): the same scores as one by one.

        NOTE: the features are NumPy (or CuPy) and the network torch; both release the
        interpreter in their heavy parts, so on the 1M-user world the two stages overlap
        instead of adding up (docs/BENCHMARKS.md).
        """
        if not chunks:
            return
        if root_type not in self._tables:
            raise ModelError(f"prepare({root_type!r}) before scoring its chunks")
        self.pipeline.bind(self.graph)  # NOTE: cached here, before a second thread reads it

        def features(chunk: RootChunk) -> tuple[Tensor, float]:
            t0 = time.perf_counter()
            return self.root_features(root_type, chunk), time.perf_counter() - t0

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="root-features") as pool:
            ahead = pool.submit(features, chunks[0])
            for i, chunk in enumerate(chunks):
                t0 = time.perf_counter()
                root_x, took = ahead.result()
                waited = time.perf_counter() - t0
                self.times.seconds["features"] += waited
                self.times.prefetched += max(took - waited, 0.0)
                if i + 1 < len(chunks):
                    ahead = pool.submit(features, chunks[i + 1])
                yield chunk, self.score_chunk(root_type, chunk, root_x)

    def score_chunk(self, root_type: NodeType, chunk: RootChunk,
                    root_x: Tensor | None = None) -> Scores:
        """Scores of the roots in ``chunk`` (after :meth:`prepare`).

        Args:
            root_type (NodeType): ``User`` or ``Merchant``.
            chunk (RootChunk): the roots.
            root_x (Tensor, optional): their :meth:`root_features`. (default: computed here)
        """
        if root_type not in self._tables:
            raise ModelError(f"prepare({root_type!r}) before scoring its chunks")
        roots = chunk.positions
        if root_x is None:
            t0 = time.perf_counter()
            root_x = self.root_features(root_type, chunk)
            self.times.add("features", t0)
        t0 = time.perf_counter()
        fraud, pd, emb = [], [], None
        first = self._first_hop(root_type, roots)
        with torch.inference_mode():
            for member, per in zip(self.members, self._tables[root_type], strict=True):
                out = self._roots(member, per, root_type, roots, root_x, first)
                fraud.append(out[0])
                pd.append(out[1])
                if emb is None:
                    emb = out[2]
        assert emb is not None
        # NOTE: the ensemble's mean, as HeteroRiskEnsemble.forward takes it.
        fl = torch.stack(fraud).mean(0) if len(fraud) > 1 else fraud[0]
        pl = torch.stack(pd).mean(0) if len(pd) > 1 else pd[0]
        scores = self.pipeline.scores(root_type, fl.float().cpu().numpy(),
                                      pl.float().cpu().numpy(), emb.float().cpu().numpy())
        self.times.add("inference", t0)
        return scores

    def score(self, root_type: NodeType, on_chunk: ChunkHook | None = None) -> Scores:
        """Scores of every node of ``root_type``, chunk by chunk (one process)."""
        self.prepare(root_type)
        parts: list[Scores] = []
        total = self.graph.num_nodes(root_type)
        for chunk, scores in self.score_chunks(root_type, self.chunks(root_type)):
            parts.append(scores)
            if on_chunk is not None:
                on_chunk(root_type, chunk.stop, total)
        return concat_scores(parts, self.pipeline.model.embedding_dim)

    def release(self, root_type: NodeType | None = None) -> None:
        """Drop the tables of ``root_type`` (every type when ``None``) and the features."""
        if root_type is None:
            self._tables.clear()
            self._x.clear()
        else:
            self._tables.pop(root_type, None)

    # -- features ---------------------------------------------------------------------------------
    def _features(self) -> None:
        """Normalised node columns (all but recency) of every node, once per graph."""
        if self._x:
            return
        t0 = time.perf_counter()
        feats = self.pipeline.bind(self.graph)[1]
        for t in NODE_TYPES:
            n = self.graph.num_nodes(t)
            width = len(NODE_FEATURES[t])
            norm = self.pipeline.node_norm[t]
            out = np.empty((n, width - 1), dtype=np.float32)
            for lo in range(0, n, 262144):
                pos = np.arange(lo, min(lo + 262144, n), dtype=np.int64)
                raw = feats.node_columns(t, pos, np.full(pos.shape[0], self.as_of, np.int64))
                # NOTE: the normaliser is per column: the recency column's place holds a
                # zero that is dropped again; recency is normalised per edge (column -1).
                full = np.concatenate([raw, np.zeros((raw.shape[0], 1))], axis=1)
                out[lo:lo + pos.shape[0]] = norm(full)[:, :-1]
            self._x[t] = torch.from_numpy(out).to(self.device)
            self._rec_zero[t] = float(norm.column(-1, np.zeros(1))[0])
        self.times.add("features", t0)

    # -- the network, layer by layer ----------------------------------------------------------------
    def _check_root(self, root_type: NodeType) -> None:
        if root_type not in ("User", "Merchant"):
            raise ValueError(f"root_type must be 'User' or 'Merchant', got {root_type!r}")
        if root_type not in self.pipeline.root_norm:
            raise ModelError(f"this model does not score {root_type!r} roots")
        hops = max((len(v) for v in self.pipeline.config.fanouts[root_type].values()), default=0)
        if hops > self.num_layers:
            raise ModelError(f"{root_type} fan-outs have {hops} hops for "
                             f"{self.num_layers} layers")

    def _cap(self, root_type: NodeType, relation: str, hop: int) -> int:
        caps = self.pipeline.config.fanouts[root_type].get(relation, ())
        return int(caps[hop - 1]) if hop - 1 < len(caps) else 0

    def _active(self, member: HeteroRiskGNN, root_type: NodeType, t: NodeType, depth: int,
                layer: int) -> bool:
        conv = _conv(member, layer, t)
        return any(self._cap(root_type, r, depth + 1) > 0 for r in conv.relations)

    def _edges(self, root_type: NodeType, relation: str, hop: int, parents: np.ndarray
               ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Edges followed from ``parents`` along ``relation`` at ``hop``, in pieces of at
        most ``max_edges``: ``(parent index within parents, child position, edge time)``."""
        k = self._cap(root_type, relation, hop)
        if k <= 0 or parents.shape[0] == 0:
            return
        c = self.pipeline.config
        adj = self.graph.relations[relation]
        start, end = adj.ranges(parents, np.full(parents.shape[0], self.as_of, np.int64),
                                inclusive=relation in INCLUSIVE_RELATIONS)
        n = end - start
        k_eff = np.minimum(np.where(n > c.hub_degree, min(k, c.hub_fanout), k), n)
        if DEFAULT_STRATEGIES.get(relation, "uniform") == "recent":
            # NOTE: the sampler keeps the k most recent: the tree's neighbours exactly.
            lo = end - k_eff
        else:
            # NOTE: the sampler draws k of its pool; the pool's mean is the draw's expectation.
            lo = np.where(k_eff > 0, np.maximum(start, end - c.pool_size), end)
        count = end - lo
        cum = np.cumsum(count)
        first = 0
        while first < parents.shape[0]:
            base = cum[first - 1] if first else 0
            last = int(np.searchsorted(cum, base + self.max_edges, side="right"))
            last = max(last, first + 1)
            owner, idx = _expand(lo[first:last], end[first:last])
            yield owner + first, adj.child[idx], adj.time[idx]
            first = last

    def _edge_states(self, member: HeteroRiskGNN,
                     per: Mapping[tuple[int, int, NodeType], Tensor | None], t: NodeType,
                     depth: int, layer: int, child: np.ndarray, edge_time: np.ndarray
                     ) -> list[Tensor]:
        """States after layers ``0 .. layer`` of nodes of type ``t`` at ``depth``, one per edge
        reaching them. Shapes: ``layer + 1`` times ``[E, C]``."""
        lin = _linear(member.node_in, t)
        rec = edge_recency(np.full(edge_time.shape[0], self.as_of), edge_time)
        rec_n = torch.from_numpy(self.pipeline.node_norm[t].column(-1, rec)).to(self.device)
        ci = torch.from_numpy(child).to(self.device)
        w = lin.weight
        e, c, f = child.shape[0], w.shape[0], w.shape[1]
        self.times.edges += e
        self.times.bytes += e * (16 + 4 * f + 4 * c * (1 + 2 * layer))
        self.times.flops += 2 * e * c * (f + c * layer)
        h = torch.relu(self._x[t][ci] @ w[:, :-1].T + rec_n[:, None] * w[:, -1] + lin.bias)
        states = [h]
        for k in range(1, layer + 1):
            h = self._update(member, per.get((depth, k, t)), t, k, h, ci)
            states.append(h)
        return states

    def _update(self, member: HeteroRiskGNN, table: Tensor | None, t: NodeType, layer: int,
                h: Tensor, rows: Tensor | None) -> Tensor:
        """One layer's residual update of states ``h`` given their projected neighbour part
        (``table[rows]``; only the bias where no relation is followed)."""
        conv = _conv(member, layer, t)
        c = h.shape[1]
        lin = conv.lin
        part = lin.bias if table is None else (table if rows is None else table[rows])
        msg = torch.relu(h @ lin.weight[:, :c].T + part)
        norm = cast(nn.ModuleDict, member.norms[layer - 1])[t]
        return cast(Tensor, norm(h + msg))

    def _neighbour_part(self, member: HeteroRiskGNN,
                        per: Mapping[tuple[int, int, NodeType], Tensor | None],
                        root_type: NodeType, t: NodeType, depth: int, layer: int,
                        parents: np.ndarray) -> Tensor:
        """``b + sum_r W_r mean_r`` of layer ``layer`` for ``parents`` of type ``t`` at
        ``depth``: their relations' means of their children's states after ``layer - 1``,
        projected. Shapes: ``[P, C]``."""
        conv = _conv(member, layer, t)
        c = member.hidden_channels
        w = conv.lin.weight
        out = conv.lin.bias.expand(parents.shape[0], c).clone()
        for i, relation in enumerate(conv.relations):
            child_type = RELATIONS[relation][1]
            w_r = w[:, (1 + i) * c:(2 + i) * c]
            sums = torch.zeros(parents.shape[0], c, device=self.device)
            counts = torch.zeros(parents.shape[0], device=self.device)
            for owner, child, etime in self._edges(root_type, relation, depth + 1, parents):
                h = self._edge_states(member, per, child_type, depth + 1, layer - 1, child,
                                      etime)[-1]
                oi = torch.from_numpy(owner).to(self.device)
                sums.index_add_(0, oi, h)
                counts.index_add_(0, oi, torch.ones_like(oi, dtype=counts.dtype))
            mean = sums / counts.clamp(min=1.0)[:, None]
            out += mean @ w_r.T
            self.times.flops += 2 * parents.shape[0] * c * c
        self.times.bytes += 4 * parents.shape[0] * c
        return out

    def _first_hop(self, root_type: NodeType, roots: np.ndarray
                   ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per relation, the root's first-hop neighbours exactly as the sampler draws them:
        ``(root index, child position, edge time)``."""
        c = self.pipeline.config
        sampler = self._samplers.get(root_type)
        if sampler is None:
            first = {r: [int(caps[0])] for r, caps in c.fanouts[root_type].items() if caps}
            # NOTE: the first hop is drawn per root (its key seeds the draw), so the
            # sampler's own draw is used there; deeper hops are shared, hence pooled.
            sampler = NeighbourSampler(self.graph, {root_type: first}, seed=c.sampler_seed,
                                       hub_degree=c.hub_degree, hub_fanout=c.hub_fanout,
                                       pool_size=c.pool_size)
            self._samplers[root_type] = sampler
        times = np.full(roots.shape[0], self.as_of, dtype=np.int64)
        trees = sampler.sample(Seeds(root_type, roots, times,
                                     self.graph.keys(root_type)[roots]))
        out = {}
        for relation in RELATIONS:
            if RELATIONS[relation][0] != root_type:
                continue
            child, parent = trees.edges(relation)
            ct = RELATIONS[relation][1]
            out[relation] = (parent, trees.pos[ct][child], trees.edge_time[ct][child])
        return out

    def _roots(self, member: HeteroRiskGNN,
               per: Mapping[tuple[int, int, NodeType], Tensor | None], root_type: NodeType,
               roots: np.ndarray, root_x: Tensor,
               first: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
               ) -> tuple[Tensor, Tensor, Tensor]:
        lin = _linear(member.node_in, root_type)
        w = lin.weight
        x = self._x[root_type][torch.from_numpy(roots).to(self.device)]
        h = torch.relu(x @ w[:, :-1].T + self._rec_zero[root_type] * w[:, -1] + lin.bias)
        root = cast(Tensor, member.root_in[root_type](root_x))
        h = h + root
        n, c, layers = roots.shape[0], member.hidden_channels, self.num_layers
        # every layer's neighbour part from one pass over the first-hop edges
        parts = [_conv(member, l, root_type).lin.bias.expand(n, c).clone()
                 for l in range(1, layers + 1)]
        relations = _conv(member, 1, root_type).relations
        for i, relation in enumerate(relations):
            owner, child, etime = first[relation]
            if owner.shape[0] == 0:
                continue
            states = self._edge_states(member, per, RELATIONS[relation][1], 1, layers - 1,
                                       child, etime)
            oi = torch.from_numpy(owner).to(self.device)
            counts = torch.zeros(n, device=self.device).index_add_(
                0, oi, torch.ones(oi.shape[0], device=self.device)).clamp(min=1.0)[:, None]
            for layer in range(1, layers + 1):
                mean = torch.zeros(n, c, device=self.device).index_add_(
                    0, oi, states[layer - 1]) / counts
                w_r = _conv(member, layer, root_type).lin.weight[
                    :, (1 + i) * c:(2 + i) * c]
                parts[layer - 1] += mean @ w_r.T
                self.times.flops += 2 * n * c * c
        for layer in range(1, layers + 1):
            h = self._update(member, parts[layer - 1], root_type, layer, h, None)
        emb = _linear(member.embed, root_type)(torch.cat([h, root], dim=-1))
        act = torch.relu(emb)
        return (_linear(member.fraud_head, root_type)(act).squeeze(-1),
                _linear(member.pd_head, root_type)(act).squeeze(-1), emb)


def _conv(member: HeteroRiskGNN, layer: int, node_type: NodeType) -> RelationalSageConv:
    """Layer ``layer``'s (from 1) convolution into ``node_type``."""
    return cast(RelationalSageConv, cast(nn.ModuleDict, member.convs[layer - 1])[node_type])


def _linear(modules: nn.ModuleDict, node_type: NodeType) -> nn.Linear:
    return cast(nn.Linear, modules[node_type])


def build_table(rows: Callable[[RootChunk], Tensor], n: int, node_type: NodeType) -> Tensor:
    """An ``[n, C]`` table from all its row chunks, computed here (one process)."""
    parts = [rows(chunk) for chunk in root_chunks(n, TABLE_CHUNK)]
    return torch.cat(parts) if parts else torch.zeros((0, 1))


