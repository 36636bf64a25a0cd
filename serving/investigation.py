"""What investigators read: neighbourhoods, shared accounts, paths and rings, straight from the
store, under the investigators' own read budget
(:meth:`serving.store_guard.StoreGuard.investigate`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graph import (
    GraphError,
    GraphNode,
    GraphStore,
    SharedAccount,
    StoreError,
    StoreUnavailableError,
    Subgraph,
    exploration,
    rings,
)
from graph.exploration import EntityNotFoundError, Path
from graph.rings import Ring
from graph.typing import NodeType
from serving.errors import InvalidFieldError, NotFoundError, UnavailableError
from serving.store_guard import StoreDown, StoreGuard


def user_neighbourhood(guard: StoreGuard, user_id: str, *, hops: int, fanout: int) -> Subgraph:
    """The user's neighbourhood within ``hops`` (1-3), ``fanout`` neighbours per node and hop.

    Raises:
        NotFoundError: no such user.
        UnavailableError: the store is down or slower than the investigators' budget.
    """
    def read(store: GraphStore) -> Subgraph | None:
        if store.get_node("User", user_id) is None:
            return None
        try:
            return store.neighbourhood("User", user_id, hops=hops, fanout=fanout)
        except (StoreUnavailableError, StoreError):
            raise
        except GraphError:
            return None

    try:
        sub = guard.investigate(read)
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e
    if sub is None:
        raise NotFoundError(f"no user {user_id!r}")
    return sub


def shared_accounts(guard: StoreGuard, user_id: str, *, via: Sequence[NodeType],
                    limit: int) -> list[SharedAccount]:
    """Accounts sharing a device, phone, address or IP with the user.

    Raises:
        NotFoundError: no such user.
        UnavailableError: the store is down or slower than the investigators' budget.
    """
    def read(store: GraphStore) -> list[SharedAccount] | None:
        if store.get_node("User", user_id) is None:
            return None
        return store.shared_accounts(user_id, via=via, limit=limit)

    try:
        accounts = guard.investigate(read)
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e
    if accounts is None:
        raise NotFoundError(f"no user {user_id!r}")
    return accounts


def entity_neighbourhood(guard: StoreGuard, label: NodeType, entity_id: str, *, hops: int,
                         per_hop: int, hub_size: int) -> Subgraph:
    """Any entity's neighbourhood, hubs collapsed (:func:`graph.exploration.entity_neighbourhood`).

    Raises:
        NotFoundError: no such entity.
        UnavailableError: the store is down or slower than the investigators' budget.
    """
    try:
        return guard.investigate(lambda store: exploration.entity_neighbourhood(
            store, label, entity_id, hops=hops, per_hop=per_hop, hub_size=hub_size))
    except EntityNotFoundError as e:
        raise NotFoundError(str(e)) from e
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e


def shortest_paths(guard: StoreGuard, source: tuple[NodeType, str], target: tuple[NodeType, str],
                   *, max_hops: int, limit: int, hub_size: int) -> list[Path]:
    """Shortest paths between two entities (:func:`graph.exploration.shortest_paths`).

    Raises:
        InvalidFieldError: the two ends are the same entity.
        NotFoundError: an end does not exist.
        UnavailableError: the store is down or slower than the investigators' budget.
    """
    if source == target:
        raise InvalidFieldError(("query", "to_id"), "must name another entity than from",
                                target[1])
    try:
        return guard.investigate(lambda store: exploration.shortest_paths(
            store, source, target, max_hops=max_hops, limit=limit, hub_size=hub_size))
    except EntityNotFoundError as e:
        raise NotFoundError(str(e)) from e
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e


@dataclass(frozen=True)
class RingView:
    """A ring with its members' nodes and the subgraph drawn of it (``truncated``: not all of
    its members and entities fitted in the drawing)."""

    ring: Ring
    members: dict[str, GraphNode]
    subgraph: Subgraph | None
    truncated: bool


def ranked_rings(guard: StoreGuard, *, limit: int, min_size: int) -> list[Ring]:
    """The live rings, highest risk first.

    Raises:
        UnavailableError: the store is down or slower than the investigators' budget.
    """
    try:
        return guard.investigate(
            lambda store: rings.ranked_rings(store, limit=limit, min_size=min_size))
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e


def ring_view(guard: StoreGuard, ring_id: str, *, max_nodes: int) -> RingView:
    """One ring (retired or not) with its members and a subgraph of at most ``max_nodes``
    nodes: its riskiest members (confirmed fraud, then by fraud score) and most shared
    entities, about two members to one entity.

    Raises:
        NotFoundError: no such ring.
        UnavailableError: the store is down or slower than the investigators' budget.
    """
    def read(store: GraphStore) -> RingView | None:
        ring = rings.get_ring(store, ring_id)
        if ring is None:
            return None
        members = store.get_nodes("User", ring.members)
        keys = _drawn(ring, members, max_nodes)
        try:
            sub = exploration.subgraph(store, keys) if keys else None
        except EntityNotFoundError:
            sub = None
        return RingView(ring, members, sub, len(keys) < ring.size + len(ring.entities))

    try:
        view = guard.investigate(read)
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e
    if view is None:
        raise NotFoundError(f"no ring {ring_id!r}")
    return view


def _drawn(ring: Ring, members: dict[str, GraphNode], max_nodes: int
           ) -> list[tuple[NodeType, str]]:
    def risk(user_id: str) -> tuple[int, float, str]:
        props = members[user_id].properties if user_id in members else {}
        score = props.get("fraud_score")
        return (props.get("fraud_label") != "fraud",
                -float(score) if isinstance(score, int | float) else 0.0, user_id)

    entities = min(len(ring.entities), max(max_nodes // 3, max_nodes - ring.size))
    people = sorted(ring.members, key=risk)[:max_nodes - entities]
    return ([("User", m) for m in people]
            + [(e.label, e.id) for e in ring.entities[:entities]])
