"""Rings (investigator): communities of accounts over shared devices, phones, addresses and
IPs, ranked by risk, and their refresh."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from graph.rings import Ring
from serving import investigation
from serving.api.deps import Investigator, RuntimeDep
from serving.api.errors import ERROR_RESPONSES
from serving.api.routes.graph import subgraph_public
from serving.errors import UnavailableError
from serving.schemas.common import ID_PATTERN
from serving.schemas.graph import (
    RingEntityPublic,
    RingMemberPublic,
    RingPublic,
    RingRefreshPublic,
    RingsPublic,
    RingSummaryPublic,
)

router = APIRouter(prefix="/v1/rings", tags=["investigation"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, 503: {"description": "Graph store unavailable."}}


@router.get("", response_model=RingsPublic, responses=_RESPONSES)
def list_rings(
    runtime: RuntimeDep, _: Investigator,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most rings returned.")] = 50,
    min_size: Annotated[int, Query(ge=1, le=100_000, description="Fewest members.")] = 1,
) -> RingsPublic:
    """The live rings, highest risk first (investigator)."""
    found = investigation.ranked_rings(runtime.guard, limit=limit, min_size=min_size)
    return RingsPublic(rings=[_summary(r) for r in found])


@router.post("/refresh", response_model=RingRefreshPublic, responses=_RESPONSES)
def refresh(runtime: RuntimeDep, _: Investigator) -> RingRefreshPublic:
    """Find the rings of the live graph now and store them (investigator or admin)."""
    if runtime.rings is None:
        raise UnavailableError("ring refresh is not configured in this process")
    done = runtime.rings.refresh()
    return RingRefreshPublic(rings=done.rings, members=done.members, retired=done.retired,
                             users_left=done.users_left,
                             seconds={k: round(v, 3) for k, v in done.seconds.items()})


@router.get("/{ring_id}", response_model=RingPublic,
            responses={**_RESPONSES, 404: {"description": "No such ring."}})
def ring(
    ring_id: Annotated[str, Path(pattern=ID_PATTERN, max_length=64, description="Ring id.")],
    runtime: RuntimeDep, who: Investigator,
    max_nodes: Annotated[int, Query(ge=10, le=5000, description="Most nodes drawn: the "
                                    "riskiest members and most shared entities.")] = 300,
) -> RingPublic:
    """One ring: members, what they share, and its subgraph for drawing (investigator)."""
    view = investigation.ring_view(runtime.guard, ring_id, max_nodes=max_nodes)
    runtime.read_audit.record(who, "/v1/rings/{ring_id}", "Ring", ring_id)
    nodes, edges = subgraph_public(view.subgraph, who) if view.subgraph else ([], [])
    members = []
    for user_id in view.ring.members:
        props = view.members[user_id].properties if user_id in view.members else {}
        label = props.get("fraud_label")
        score = props.get("fraud_score")
        members.append(RingMemberPublic(
            user_id=user_id, fraud_score=float(score) if score is not None else None,
            fraud_label=1 if label == "fraud" else 0 if label == "cleared" else None))
    return RingPublic(
        **_summary(view.ring).model_dump(), members=members,
        entities=[RingEntityPublic(label=e.label, id=e.id, members=e.members)
                  for e in view.ring.entities],
        nodes=nodes, edges=edges, truncated=view.truncated)


def _summary(r: Ring) -> RingSummaryPublic:
    return RingSummaryPublic(ring_id=r.ring_id, size=r.size, risk=r.risk,
                             confirmed_fraud_share=r.confirmed_fraud_share,
                             money_at_stake=r.money_at_stake,
                             shared_entities=r.shared_entities, refreshed_at=r.refreshed_at)
