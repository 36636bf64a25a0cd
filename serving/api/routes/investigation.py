"""What investigators read around a user."""

from __future__ import annotations

from typing import Any, Annotated, Literal

from fastapi import APIRouter, Path, Query

from graph import GraphEdge, GraphNode
from serving import investigation
from serving.api.deps import Investigator, RuntimeDep
from serving.api.errors import ERROR_RESPONSES
from serving.keys import Principal
from serving.read_audit import visible_properties
from serving.schemas.common import ID_PATTERN
from serving.schemas.investigation import (
    EdgePublic,
    NodePublic,
    SharedAccountPublic,
    SharedAccountsPublic,
    SubgraphPublic,
)

router = APIRouter(prefix="/v1/users", tags=["investigation"])
_RESPONSES: dict[int | str, dict[str, Any]] = {**ERROR_RESPONSES, 404: {"description": "No such user."},
              503: {"description": "Graph store unavailable."}}
UserId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64, description="User id.")]


@router.get("/{user_id}/neighbourhood", response_model=SubgraphPublic, responses=_RESPONSES)
def neighbourhood(
    user_id: UserId, runtime: RuntimeDep, who: Investigator,
    hops: Annotated[int, Query(ge=1, le=3, description="Hops from the user, 1 to 3.")] = 2,
    fanout: Annotated[int, Query(ge=1, le=200, description="Neighbours per node and hop.")
                      ] = 50,
) -> SubgraphPublic:
    """Who and what surrounds a user, within a hop limit and a fan-out cap (investigator)."""
    sub = investigation.user_neighbourhood(runtime.guard, user_id, hops=hops, fanout=fanout)
    runtime.read_audit.record(who, "/v1/users/{user_id}/neighbourhood", "User", user_id)
    return SubgraphPublic(seed=_node(sub.seed, who), nodes=[_node(n, who) for n in sub.nodes],
                          edges=[_edge(e) for e in sub.edges])


@router.get("/{user_id}/shared-accounts", response_model=SharedAccountsPublic,
            responses=_RESPONSES)
def shared_accounts(
    user_id: UserId, runtime: RuntimeDep, who: Investigator,
    via: Annotated[list[Literal["Device", "Phone", "Address", "IP"]] | None,
                   Query(description="Kinds of shared entity; default all.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most rows returned.")] = 100,
) -> SharedAccountsPublic:
    """Other accounts sharing a device, phone, address or IP with the user (investigator)."""
    kinds = tuple(dict.fromkeys(via)) if via else ("Device", "Phone", "Address", "IP")
    rows = investigation.shared_accounts(runtime.guard, user_id, via=kinds, limit=limit)
    runtime.read_audit.record(who, "/v1/users/{user_id}/shared-accounts", "User", user_id)
    return SharedAccountsPublic(user_id=user_id, accounts=[
        SharedAccountPublic(via_label=r.via_label, via_id=r.via_id, user_id=r.user_id,
                            fraud_label=r.fraud_label, default_label=r.default_label)
        for r in rows])


def _plain(props: object) -> dict[str, float | int | str | bool | None]:
    items = props.items() if isinstance(props, dict) else dict(props).items()  # type: ignore[call-overload]
    return {str(k): v for k, v in items if v is None or isinstance(v, float | int | str | bool)}


def _node(n: GraphNode, who: Principal) -> NodePublic:
    return NodePublic(label=n.label, id=n.id,
                      properties=_plain(visible_properties(n.label, n.properties, who)))


def _edge(e: GraphEdge) -> EdgePublic:
    return EdgePublic(type=e.type, src=e.src, dst=e.dst, properties=_plain(e.properties))
