"""Rings: communities of accounts over the shared-entity projection, found with Leiden
(``igraph`` + ``leidenalg``), ranked by risk and stored as :data:`graph.schema.RING` nodes with
the ring id written on each member ``User`` (``ring_id``).

The projection links two users when they share a device, phone, address or IP
(:data:`graph.SHARED_VIA`); an entity shared by more than ``hub_size`` users (an office's
network, a public Wi-Fi, a carrier NAT) is left out, since it links people who do not know each
other. Each shared entity adds ``1 / (k - 1)`` to the weight of each pair among its ``k`` users,
so that one big entity does not outweigh a few small ones (Newman's weighting for
collaboration graphs).

NOTE: a ring record holds its entities' ids as they were at its refresh; a key rotation
(:mod:`graph.key_rotation`) re-keys those ids and leaves the records as they are until the
next refresh.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import igraph
import leidenalg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graph.schema import RING
from graph.store import SHARED_VIA, GraphNode, GraphStore
from graph.typing import NodeType

RING_ORDER: Final[tuple[str, ...]] = ("risk", "money_at_stake", "size")
"""How rings rank: by risk, then money at stake, then size (each descending), then id."""


@dataclass(frozen=True)
class RingEntity:
    """A device, phone, address or IP that ``members`` members of a ring share."""

    label: NodeType
    id: str
    members: int


@dataclass(frozen=True)
class Ring:
    """A ring as stored.

    Args:
        ring_id (str): stable across refreshes while most of its members stay.
        members (tuple[str, ...]): member user ids, sorted.
        entities (tuple[RingEntity, ...]): what two or more members share, most shared first.
        risk (float): the mean member risk: 1 for a member labelled fraud, 0 for one cleared,
            else its latest ``fraud_score``, else 0.
        confirmed_fraud_share (float): the share of members labelled fraud.
        money_at_stake (float): the sum of the members' application amounts that were not
            declined.
        refreshed_at (int): when the refresh that found it ran, epoch seconds.
    """

    ring_id: str
    members: tuple[str, ...]
    entities: tuple[RingEntity, ...]
    risk: float
    confirmed_fraud_share: float
    money_at_stake: float
    refreshed_at: int
    shared_entities: int
    """How many entities two or more members share (``entities`` may be left unread)."""

    @property
    def size(self) -> int:
        return len(self.members)

    def row(self) -> dict[str, Any]:
        """Its :data:`graph.schema.RING` node row."""
        return {
            "id": self.ring_id, "size": self.size, "risk": self.risk,
            "confirmed_fraud_share": self.confirmed_fraud_share,
            "money_at_stake": self.money_at_stake, "shared_entities": self.shared_entities,
            "refreshed_at": self.refreshed_at, "members_json": json.dumps(list(self.members)),
            "entities_json": json.dumps([[e.label, e.id, e.members] for e in self.entities]),
        }

    @classmethod
    def from_node(cls, node: GraphNode, *, entities: bool = True) -> Ring:
        """The ring a stored :data:`graph.schema.RING` node holds (``entities``: with its
        shared entities read; a large ring has thousands)."""
        p = node.properties
        return cls(
            ring_id=node.id,
            members=tuple(json.loads(p.get("members_json") or "[]")),
            entities=tuple(RingEntity(str(lab), str(i), int(n))
                           for lab, i, n in json.loads(p.get("entities_json") or "[]"))
            if entities else (),
            shared_entities=int(p.get("shared_entities") or 0),
            risk=float(p.get("risk") or 0.0),
            confirmed_fraud_share=float(p.get("confirmed_fraud_share") or 0.0),
            money_at_stake=float(p.get("money_at_stake") or 0.0),
            refreshed_at=int(p.get("refreshed_at") or 0),
        )


@dataclass(frozen=True)
class RingRefresh:
    """What :func:`refresh_rings` did.

    Args:
        rings (int): rings found and stored.
        members (int): users in them.
        retired (int): rings of the previous refresh no longer found.
        users_left (int): users whose ``ring_id`` was cleared.
        seconds (dict[str, float]): time per step (read, detect, write).
    """

    rings: int
    members: int
    retired: int
    users_left: int
    seconds: Mapping[str, float]


def detect_rings(store: GraphStore, *, hub_size: int = 100, min_size: int = 3, seed: int = 0,
                 now: int | None = None) -> list[Ring]:
    """Find the rings of the graph as it is now; nothing is written.

    Args:
        store (GraphStore): the graph.
        hub_size (int, optional): an entity shared by more users than this is left out of the
            projection. (default: ``100``)
        min_size (int, optional): the fewest members a ring has. (default: ``3``)
        seed (int, optional): Leiden's random seed (the same graph and seed give the same
            rings). (default: ``0``)
        now (int, optional): the refresh time, epoch seconds. (default: the clock)

    Returns:
        list[Ring]: ranked by :data:`RING_ORDER`; ids as :func:`refresh_rings` would give them
        against the ``ring_id`` the users hold now.

    Raises:
        ValueError: on a ``hub_size`` below 2 or a ``min_size`` below 2.
    """
    return _detect(store, hub_size, min_size, seed, now)[0]


def refresh_rings(store: GraphStore, *, hub_size: int = 100, min_size: int = 3, seed: int = 0,
                  now: int | None = None) -> RingRefresh:
    """Find the rings (:func:`detect_rings`) and store them: one :data:`graph.schema.RING` node
    each, ``ring_id`` on each member, ``ring_id`` cleared on users no longer in a ring, and
    ``retired_at`` set on the rings of the previous refresh that are gone.

    A ring keeps the id of the previous ring that holds most of its members (more than half of
    them); a ring without one gets a new id from its members. Writes go in this order: rings,
    members' ``ring_id``, then what left; a refresh stopped midway is completed by the next.

    Args:
        store (GraphStore): the graph.
        hub_size (int, optional): as :func:`detect_rings`. (default: ``100``)
        min_size (int, optional): as :func:`detect_rings`. (default: ``3``)
        seed (int, optional): as :func:`detect_rings`. (default: ``0``)
        now (int, optional): the refresh time, epoch seconds. (default: the clock)
    """
    rings, users, seconds = _detect(store, hub_size, min_size, seed, now)
    started = time.perf_counter()
    refreshed_at = rings[0].refreshed_at if rings else int(time.time() if now is None else now)
    store.upsert_nodes(RING, [r.row() for r in rings])
    # NOTE: a ring found again with the members of a retired one gets its id back.
    store.remove_properties(RING, [r.ring_id for r in rings], ("retired_at",))
    before = dict(zip(users.column("id").to_pylist(), users.column("ring_id").to_pylist()))
    after = {m: r.ring_id for r in rings for m in r.members}
    store.upsert_nodes("User", [{"id": u, "ring_id": rid} for u, rid in sorted(after.items())
                                if before.get(u) != rid])
    left = sorted(u for u, rid in before.items() if rid is not None and u not in after)
    store.remove_properties("User", left, ("ring_id",))
    live = {r.ring_id for r in rings}
    gone = [n.id for n in _live_rings(store) if n.id not in live]
    store.upsert_nodes(RING, [{"id": i, "retired_at": refreshed_at} for i in gone])
    seconds = {**seconds, "write": time.perf_counter() - started}
    return RingRefresh(len(rings), len(after), len(gone), len(left), seconds)


def ranked_rings(store: GraphStore, *, limit: int = 50, min_size: int = 1,
                 entities: bool = False) -> list[Ring]:
    """The live rings (not retired) of at least ``min_size`` members, by :data:`RING_ORDER`
    (``entities``: with their shared entities read, as :meth:`Ring.from_node`)."""
    nodes = store.top_nodes(RING, order_by=RING_ORDER, limit=limit,
                            at_least={"size": min_size}, unset=("retired_at",))
    return [Ring.from_node(n, entities=entities) for n in nodes]


def get_ring(store: GraphStore, ring_id: str) -> Ring | None:
    """One stored ring (retired or not), or ``None``."""
    node = store.get_node(RING, ring_id)
    return None if node is None else Ring.from_node(node)


def _live_rings(store: GraphStore) -> list[GraphNode]:
    table = store.export_nodes(RING)
    live = pc.is_null(table.column("retired_at"))
    return [GraphNode(RING, i) for i in table.filter(live).column("id").to_pylist()]


def _detect(store: GraphStore, hub_size: int, min_size: int, seed: int, now: int | None
            ) -> tuple[list[Ring], pa.Table, dict[str, float]]:
    if hub_size < 2:
        raise ValueError(f"hub_size must be at least 2, got {hub_size}")
    if min_size < 2:
        raise ValueError(f"min_size must be at least 2, got {min_size}")
    refreshed_at = int(time.time() if now is None else now)
    t0 = time.perf_counter()
    users = store.export_nodes("User").select(
        ["id", "fraud_label", "fraud_score", "ring_id"])
    pairs = [(label, store.edge_pairs(rel)) for label, rel in SHARED_VIA.items()]
    money = _money_per_user(store)
    t1 = time.perf_counter()

    index = {u: i for i, u in enumerate(users.column("id").to_pylist())}
    n = len(index)
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    weight: list[np.ndarray] = []
    entity_users: dict[tuple[NodeType, str], np.ndarray] = {}
    for label, table in pairs:
        user = np.fromiter((index.get(u, -1) for u in table.column("src").to_pylist()),
                           dtype=np.int64, count=table.num_rows)
        entity = table.column("dst").to_pylist()
        keep = user >= 0
        groups: dict[str, list[int]] = {}
        for e, u, k in zip(entity, user.tolist(), keep.tolist()):
            if k:
                groups.setdefault(e, []).append(u)
        for e, members in groups.items():
            k = len(members)
            if not 2 <= k <= hub_size:
                continue
            arr = np.array(sorted(members), dtype=np.int64)
            entity_users[(label, e)] = arr
            a, b = np.triu_indices(k, 1)
            src.append(arr[a])
            dst.append(arr[b])
            weight.append(np.full(len(a), 1.0 / (k - 1)))
    graph = igraph.Graph(n=n, edges=np.column_stack(
        [np.concatenate(src), np.concatenate(dst)]).tolist() if src else [])
    graph.es["weight"] = np.concatenate(weight).tolist() if weight else []
    # NOTE: parallel edges (two users sharing several entities) add up their weights.
    graph.simplify(multiple=True, loops=True, combine_edges="sum")
    partition = leidenalg.find_partition(graph, leidenalg.ModularityVertexPartition,
                                         weights="weight", seed=seed)
    t2 = time.perf_counter()

    ids = users.column("id").to_pylist()
    labels = users.column("fraud_label").to_pylist()
    scores = users.column("fraud_score").to_pylist()
    old = users.column("ring_id").to_pylist()
    member_entities: dict[int, list[tuple[NodeType, str]]] = {}
    for key, arr in entity_users.items():
        for u in arr.tolist():
            member_entities.setdefault(u, []).append(key)
    found: list[tuple[list[int], list[RingEntity]]] = []
    for community in partition:
        if len(community) < min_size:
            continue
        members = sorted(community)
        shared: dict[tuple[NodeType, str], int] = {}
        for u in members:
            for key in member_entities.get(u, ()):
                shared[key] = shared.get(key, 0) + 1
        entities = sorted((RingEntity(lab, e, c) for (lab, e), c in shared.items() if c >= 2),
                          key=lambda x: (-x.members, x.label, x.id))
        found.append((members, entities))

    ring_ids = _ring_ids([[ids[u] for u in m] for m, _ in found],
                         {ids[u]: old[u] for u in range(n) if old[u] is not None})
    rings = []
    for (members, entities), ring_id in zip(found, ring_ids, strict=True):
        risks = [_member_risk(labels[u], scores[u]) for u in members]
        rings.append(Ring(
            ring_id=ring_id, members=tuple(sorted(ids[u] for u in members)),
            entities=tuple(entities), shared_entities=len(entities),
            risk=round(float(np.mean(risks)), 6),
            confirmed_fraud_share=round(sum(labels[u] == "fraud" for u in members)
                                        / len(members), 6),
            money_at_stake=round(sum(money.get(ids[u], 0.0) for u in members), 2),
            refreshed_at=refreshed_at))
    rings.sort(key=lambda r: (-r.risk, -r.money_at_stake, -r.size, r.ring_id))
    seconds = {"read": t1 - t0, "detect": t2 - t1, "rank": time.perf_counter() - t2}
    return rings, users, seconds


def _member_risk(fraud_label: str | None, fraud_score: float | None) -> float:
    if fraud_label == "fraud":
        return 1.0
    if fraud_label == "cleared":
        return 0.0
    return float(fraud_score) if fraud_score is not None else 0.0


def _money_per_user(store: GraphStore) -> dict[str, float]:
    apps = store.export_nodes("Application").select(["id", "amount", "decision"])
    counted = pc.and_(pc.is_valid(apps.column("amount")),
                      pc.invert(pc.fill_null(pc.equal(apps.column("decision"), "decline"),
                                             False)))
    amount = dict(zip(apps.column("id").to_pylist(),
                      pc.if_else(counted, apps.column("amount"), 0.0).to_pylist()))
    money: dict[str, float] = {}
    applied = store.edge_pairs("APPLIED")
    for user, app in zip(applied.column("src").to_pylist(), applied.column("dst").to_pylist()):
        money[user] = money.get(user, 0.0) + float(amount.get(app) or 0.0)
    return money


def _ring_ids(communities: Sequence[Sequence[str]], old: Mapping[str, str]) -> list[str]:
    """Each community's id: the previous ring id most of its members (over half) held, each
    id kept by one community only (the one holding most of its members); else a new id."""
    claims: list[tuple[int, int, str]] = []
    for c, members in enumerate(communities):
        held: dict[str, int] = {}
        for m in members:
            if m in old:
                held[old[m]] = held.get(old[m], 0) + 1
        for rid, count in held.items():
            if 2 * count > len(members):
                claims.append((-count, c, rid))
    ids: list[str | None] = [None] * len(communities)
    taken: set[str] = set()
    for _, c, rid in sorted(claims):
        if ids[c] is None and rid not in taken:
            ids[c] = rid
            taken.add(rid)
    out = []
    for c, members in enumerate(communities):
        kept = ids[c]
        digest = hashlib.sha256("\n".join(sorted(members)).encode()).hexdigest()[:16]
        out.append(kept if kept is not None else f"ring_{digest}")
    return out
