"""`NeighbourSampler`: time-respecting, hub-aware neighbour sampling on the CSR snapshot.

Each seed (an application, a user or a merchant, at a time ``t``) grows its own tree: hop by hop,
every node of the frontier is expanded along each relation with a fan-out cap, and only along
edges that existed strictly before ``t`` (an application's own facts — its user, device, IP and
merchant — exist *at* ``t``). Trees of different seeds are disjoint, because what a node looked
like depends on the seed's time (PyG's temporal sampling is disjoint for the same reason).

Hubs are sampled down: a node whose degree as of ``t`` in a relation exceeds ``hub_degree``
(a public Wi-Fi IP, an office address) is expanded by at most ``hub_fanout`` neighbours, drawn
from its ``pool_size`` most recent ones. Relations marked ``inv_degree`` draw a user's entities
with probability proportional to ``1 / (1 + degree)``, so a private device wins over a carrier
NAT.

Determinism: a draw never uses a running random generator. The candidates of one expansion are
ranked by a 64-bit hash of ``(seed, root key, parent key, relation, candidate key)`` — keys are
hashes of the node ids — and the ``k`` smallest are kept (bottom-k sampling; with weights, the
exponential-clock keys of Efraimidis and Spirakis). So the same seed gives the same tree, a
different seed a different one, and a tree does not depend on which other seeds share the
batch: online scoring of one application samples exactly what batch scoring sampled for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np

from gnn.errors import GraphDataError
from gnn.data.lending_graph import INCLUSIVE_RELATIONS, NODE_TYPES, RELATIONS, LendingGraph
from graph.typing import NodeType

Strategy = Literal["uniform", "recent", "inv_degree"]

RELATION_IDS: Final[dict[str, int]] = {name: i for i, name in enumerate(RELATIONS)}

# NOTE: the user's entities are drawn towards low-degree ones (a hub tells little); the
# applications behind an entity are the most recent ones (bursts are what rings leave).
DEFAULT_STRATEGIES: Final[dict[str, Strategy]] = {
    "user_device": "inv_degree", "user_ip": "inv_degree", "user_phone": "inv_degree",
    "user_home": "inv_degree", "user_work": "inv_degree",
    "user_app": "recent", "device_app": "recent", "ip_app": "recent", "merchant_app": "recent",
}
_REVERSE: Final[dict[str, str]] = {
    "user_device": "device_user", "user_ip": "ip_user", "user_phone": "phone_user",
    "user_home": "home_user", "user_work": "work_user", "user_merchant": "merchant_buyer",
}

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, vectorised (uint64 wrap-around is intended)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + _GOLD
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def _expand(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges ``[start_i, end_i)``: the owner ``i`` and the index of every element."""
    lengths = np.maximum(end - start, 0)
    total = int(lengths.sum())
    owner = np.repeat(np.arange(start.shape[0], dtype=np.int64), lengths)
    offsets = np.zeros(start.shape[0], dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    idx = start[owner] + (np.arange(total, dtype=np.int64) - offsets[owner])
    return owner, idx


@dataclass(frozen=True)
class Seeds:
    """What to grow trees from: one root node type, positions, times and keys.

    Args:
        node_type (NodeType): ``Application``, ``User`` or ``Merchant``.
        position (np.ndarray): int64 ``[Q]``; ``-1`` for a node the graph does not hold yet (an
            application being scored online).
        time (np.ndarray): int64 ``[Q]``, the as-of time of each seed.
        key (np.ndarray): uint64 ``[Q]``, :func:`gnn.data.lending_graph.id_keys` of the seed ids.
        children (Mapping[str, np.ndarray], optional): for application seeds, the first hop
            given explicitly per ``app_*`` relation: int64 ``[Q]`` positions, ``-1`` for none
            and ``-2`` for an entity the graph does not know yet (a new device).
        child_keys (Mapping[str, np.ndarray], optional): uint64 ``[Q]`` keys of those children.
    """

    node_type: NodeType
    position: np.ndarray
    time: np.ndarray
    key: np.ndarray
    children: Mapping[str, np.ndarray] = field(default_factory=dict)
    child_keys: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        q = self.position.shape[0]
        if self.time.shape != (q,) or self.key.shape != (q,):
            raise GraphDataError("seed position, time and key must have the same length")
        for name, arr in self.children.items():
            if RELATIONS.get(name, ("",))[0] != self.node_type or arr.shape != (q,):
                raise GraphDataError(f"seed children {name!r} do not fit {self.node_type} seeds")

    def __len__(self) -> int:
        return int(self.position.shape[0])

    def take(self, index: np.ndarray) -> Seeds:
        """The seeds at ``index``."""
        return Seeds(self.node_type, self.position[index], self.time[index], self.key[index],
                     {k: v[index] for k, v in self.children.items()},
                     {k: v[index] for k, v in self.child_keys.items()})


@dataclass(frozen=True)
class SampledTrees:
    """Disjoint sampled trees, one per seed, as per-type node arrays.

    Nodes of each type are ordered by depth, then by tree, so the nodes a layer must update (those
    at depth ``<= L - layer``) are a prefix.

    Args:
        root_type (NodeType): the seeds' type; root ``i`` is node ``i`` of that type.
        num_roots (int): number of seeds.
        pos (dict[NodeType, np.ndarray]): int64 graph position of each node (``-1``: new).
        tree (dict[NodeType, np.ndarray]): int64 seed index of each node.
        depth (dict[NodeType, np.ndarray]): int64 hop distance from the root.
        parent (dict[NodeType, np.ndarray]): int64 index of the parent within its type, ``-1``
            for roots.
        rel (dict[NodeType, np.ndarray]): int64 relation id of the edge to the parent, ``-1``
            for roots.
        edge_time (dict[NodeType, np.ndarray]): int64 time of that edge (roots: seed time).
        seed_time (np.ndarray): int64 ``[num_roots]``.
    """

    root_type: NodeType
    num_roots: int
    pos: dict[NodeType, np.ndarray]
    tree: dict[NodeType, np.ndarray]
    depth: dict[NodeType, np.ndarray]
    parent: dict[NodeType, np.ndarray]
    rel: dict[NodeType, np.ndarray]
    edge_time: dict[NodeType, np.ndarray]
    seed_time: np.ndarray

    def num_nodes(self, node_type: NodeType | None = None) -> int:
        if node_type is not None:
            return int(self.pos[node_type].shape[0])
        return sum(int(p.shape[0]) for p in self.pos.values())

    def time(self, node_type: NodeType) -> np.ndarray:
        """The seed time each node is seen at."""
        return self.seed_time[self.tree[node_type]]

    def edges(self, relation: str) -> tuple[np.ndarray, np.ndarray]:
        """``(child index, parent index)`` of every sampled edge of ``relation``."""
        child_type = RELATIONS[relation][1]
        hit = np.flatnonzero(self.rel[child_type] == RELATION_IDS[relation])
        return hit, self.parent[child_type][hit]

    def select(self, roots: np.ndarray) -> SampledTrees:
        """The trees of the seeds in ``roots`` (sorted, unique), renumbered from 0."""
        return self.select_with_masks(roots)[0]

    def select_with_masks(self, roots: np.ndarray) -> tuple[SampledTrees,
                                                            dict[NodeType, np.ndarray]]:
        """:meth:`select`, and per type the mask of the nodes kept (to subset features)."""
        roots = np.asarray(roots, dtype=np.int64)
        if roots.size > 1 and np.any(np.diff(roots) <= 0):
            raise ValueError("roots must be sorted and unique")
        new_root = np.full(self.num_roots, -1, dtype=np.int64)
        new_root[roots] = np.arange(roots.shape[0])
        keep = {t: new_root[self.tree[t]] >= 0 for t in self.pos}
        remap = {t: np.cumsum(keep[t]) - 1 for t in self.pos}
        parent: dict[NodeType, np.ndarray] = {}
        for t in self.pos:
            par = self.parent[t][keep[t]]
            rel = self.rel[t][keep[t]]
            out = np.full(par.shape[0], -1, dtype=np.int64)
            for rid in np.unique(rel[rel >= 0]):
                ptype = RELATIONS[_RELATION_NAMES[rid]][0]
                m = rel == rid
                out[m] = remap[ptype][par[m]]
            parent[t] = out
        return SampledTrees(
            self.root_type, int(roots.shape[0]),
            {t: v[keep[t]] for t, v in self.pos.items()},
            {t: new_root[v[keep[t]]] for t, v in self.tree.items()},
            {t: v[keep[t]] for t, v in self.depth.items()},
            parent,
            {t: v[keep[t]] for t, v in self.rel.items()},
            {t: v[keep[t]] for t, v in self.edge_time.items()},
            self.seed_time[roots],
        ), keep


_RELATION_NAMES: Final[tuple[str, ...]] = tuple(RELATIONS)


class NeighbourSampler:
    """Samples a disjoint, time-respecting tree around each seed.

    Args:
        graph (LendingGraph): the graph state to sample from.
        fanouts (Mapping[NodeType, Mapping[str, Sequence[int]]]): per root type, per relation
            the cap on neighbours drawn at hop 1, 2, ... (PyG's ``num_neighbors`` per edge type);
            a relation missing or 0 at a hop is not expanded there.
        seed (int, optional): the sampling seed. (default: ``0``)
        hub_degree (int, optional): a node with more neighbours than this in a relation (as of
            the seed time) is a hub there. (default: ``50``)
        hub_fanout (int, optional): cap on a hub's neighbours. (default: ``2``)
        pool_size (int, optional): random draws choose among this many most recent neighbours,
            bounding the work per hub. (default: ``64``)
        strategies (Mapping[str, Strategy], optional): per relation ``"uniform"``,
            ``"recent"`` or ``"inv_degree"``. (default: :data:`DEFAULT_STRATEGIES`)
    """

    def __init__(
        self,
        graph: LendingGraph,
        fanouts: Mapping[NodeType, Mapping[str, Sequence[int]]],
        *,
        seed: int = 0,
        hub_degree: int = 50,
        hub_fanout: int = 2,
        pool_size: int = 64,
        strategies: Mapping[str, Strategy] | None = None,
    ) -> None:
        for root_type, per_rel in fanouts.items():
            if root_type not in NODE_TYPES:
                raise ValueError(f"fanouts root type {root_type!r} is not a node type")
            for name, caps in per_rel.items():
                if name not in RELATIONS:
                    raise ValueError(f"fanouts names unknown relation {name!r}")
                if any(int(k) < 0 for k in caps):
                    raise ValueError(f"fanouts[{root_type!r}][{name!r}] has a negative cap")
        if hub_degree < 1 or hub_fanout < 0 or pool_size < 1:
            raise ValueError(f"hub_degree, pool_size must be >= 1 and hub_fanout >= 0, got "
                             f"{hub_degree}, {hub_fanout}, {pool_size}")
        self.graph = graph
        self.fanouts = {rt: {k: tuple(int(c) for c in v) for k, v in per.items()}
                        for rt, per in fanouts.items()}
        self.seed = int(seed)
        self.hub_degree = int(hub_degree)
        self.hub_fanout = int(hub_fanout)
        self.pool_size = int(pool_size)
        self.strategies: dict[str, Strategy] = dict(DEFAULT_STRATEGIES if strategies is None
                                                    else strategies)
        self._seed_key = _mix(np.array([self.seed], dtype=np.uint64))[0]

    def num_hops(self, root_type: NodeType) -> int:
        return max((len(v) for v in self.fanouts[root_type].values()), default=0)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(roots={sorted(self.fanouts)}, seed={self.seed}, "
                f"hub_degree={self.hub_degree}, hub_fanout={self.hub_fanout}, "
                f"pool_size={self.pool_size})")

    # -- sampling ---------------------------------------------------------------------------------
    def sample(self, seeds: Seeds) -> SampledTrees:
        """Grow one tree per seed.

        Args:
            seeds (Seeds): the roots; application roots need ``children`` for each ``app_*``
                relation with a non-zero first-hop cap.

        Returns:
            SampledTrees: the trees, nodes per type ordered by depth then tree.

        Raises:
            ValueError: if no fan-outs are configured for the seeds' type.
        """
        rt = seeds.node_type
        if rt not in self.fanouts:
            raise ValueError(f"no fan-outs configured for {rt!r} seeds")
        caps = self.fanouts[rt]
        q = len(seeds)
        g = self.graph
        cols: dict[NodeType, dict[str, list[np.ndarray]]] = {
            t: {k: [] for k in ("pos", "tree", "depth", "parent", "rel", "edge_time", "key")}
            for t in NODE_TYPES}
        counts = {t: 0 for t in NODE_TYPES}

        def append(t: NodeType, chunk: dict[str, np.ndarray]) -> np.ndarray:
            order = np.argsort(chunk["tree"], kind="stable")
            for k, v in chunk.items():
                cols[t][k].append(v[order])
            n = int(order.shape[0])
            local = np.arange(counts[t], counts[t] + n, dtype=np.int64)
            counts[t] += n
            return local

        roots = {"pos": seeds.position.astype(np.int64), "tree": np.arange(q, dtype=np.int64),
                 "depth": np.zeros(q, dtype=np.int64), "parent": np.full(q, -1, dtype=np.int64),
                 "rel": np.full(q, -1, dtype=np.int64), "edge_time": seeds.time.astype(np.int64),
                 "key": seeds.key.astype(np.uint64)}
        frontier = {rt: (append(rt, roots), roots)}
        seed_time = seeds.time.astype(np.int64)
        seed_key = seeds.key.astype(np.uint64)

        for hop in range(1, self.num_hops(rt) + 1):
            new_chunks: dict[NodeType, list[dict[str, np.ndarray]]] = {t: [] for t in NODE_TYPES}
            for ptype, (plocal, pdata) in frontier.items():
                for name, (rp, rc) in RELATIONS.items():
                    if rp != ptype:
                        continue
                    cap = caps.get(name, ())
                    k = cap[hop - 1] if hop - 1 < len(cap) else 0
                    if k <= 0 or plocal.shape[0] == 0:
                        continue
                    if hop == 1 and rt == "Application" and name in seeds.children:
                        chunk = self._given(seeds, name)
                    else:
                        chunk = self._draw(name, k, pdata, seed_time, seed_key)
                    chunk["depth"] = np.full(chunk["pos"].shape[0], hop, dtype=np.int64)
                    chunk["parent"] = plocal[chunk.pop("owner")]
                    chunk["rel"] = np.full(chunk["pos"].shape[0], RELATION_IDS[name],
                                           dtype=np.int64)
                    new_chunks[rc].append(chunk)
            frontier = {}
            for t, chunks in new_chunks.items():
                if not chunks:
                    continue
                merged = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
                frontier[t] = (append(t, merged), merged)
                # keep the frontier in the order the nodes were stored
                order = np.argsort(merged["tree"], kind="stable")
                frontier[t] = (frontier[t][0], {k: v[order] for k, v in merged.items()})

        def cat(t: NodeType, k: str, dtype: type) -> np.ndarray:
            parts = cols[t][k]
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        return SampledTrees(
            rt, q,
            {t: cat(t, "pos", np.int64) for t in NODE_TYPES},
            {t: cat(t, "tree", np.int64) for t in NODE_TYPES},
            {t: cat(t, "depth", np.int64) for t in NODE_TYPES},
            {t: cat(t, "parent", np.int64) for t in NODE_TYPES},
            {t: cat(t, "rel", np.int64) for t in NODE_TYPES},
            {t: cat(t, "edge_time", np.int64) for t in NODE_TYPES},
            seed_time,
        )

    def _given(self, seeds: Seeds, name: str) -> dict[str, np.ndarray]:
        """The first hop of application seeds, as the seeds state it."""
        child = seeds.children[name].astype(np.int64)
        present = np.flatnonzero(child != -1)
        pos = np.where(child[present] >= 0, child[present], -1)
        ctype = RELATIONS[name][1]
        keys = seeds.child_keys.get(name)
        if keys is None:
            all_keys = self.graph.keys(ctype)
            key = np.where(pos >= 0, all_keys[np.maximum(pos, 0)], np.uint64(0)).astype(np.uint64)
        else:
            key = keys[present].astype(np.uint64)
        return {"pos": pos, "tree": present, "edge_time": seeds.time[present].astype(np.int64),
                "key": key, "owner": present}

    def _draw(self, name: str, k: int, pdata: Mapping[str, np.ndarray], seed_time: np.ndarray,
              seed_key: np.ndarray) -> dict[str, np.ndarray]:
        """Expand frontier nodes along ``name``: at most ``k`` children each."""
        adj = self.graph.relations[name]
        ctype = RELATIONS[name][1]
        tree = pdata["tree"]
        t = seed_time[tree]
        start, end = adj.ranges(pdata["pos"], t, inclusive=name in INCLUSIVE_RELATIONS)
        n = end - start
        k_eff = np.where(n > self.hub_degree, min(k, self.hub_fanout), k)
        k_eff = np.minimum(k_eff, n)
        strategy = self.strategies.get(name, "uniform")
        if strategy == "recent":
            owner, idx = _expand(end - k_eff, end)
        else:
            lo = np.maximum(start, end - self.pool_size)
            owner, idx = _expand(lo, end)
            take_all = k_eff[owner] >= (end - lo)[owner]
            with np.errstate(over="ignore"):
                item = _mix(seed_key[tree] ^ _mix(pdata["key"] + np.uint64(
                    RELATION_IDS[name] + 1) * _GOLD)) ^ self._seed_key
                ckey = _mix(item[owner] ^ self.graph.keys(ctype)[adj.child[idx]])
            u = ((ckey >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)
            rank_key = -np.log(u)
            if strategy == "inv_degree":
                rev = self.graph.relations[_REVERSE[name]]
                deg = rev.count_before(adj.child[idx], t[owner])
                rank_key = rank_key * (1.0 + deg)
            rank_key = np.where(take_all, -1.0, rank_key)
            order = np.lexsort((rank_key, owner))
            owner_s = owner[order]
            first = np.searchsorted(owner_s, owner_s, side="left")
            rank = np.arange(owner_s.shape[0]) - first
            keep = order[rank < k_eff[owner_s]]
            keep.sort()
            owner, idx = owner[keep], idx[keep]
        child = adj.child[idx]
        return {"pos": child, "tree": tree[owner], "edge_time": adj.time[idx],
                "key": self.graph.keys(ctype)[child], "owner": owner}
