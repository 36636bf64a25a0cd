"""Graph questions (investigator): any entity's neighbourhood, shortest paths between two."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from graph import SCHEMA, GraphEdge, GraphNode, Subgraph
from graph.typing import NodeType
from serving import investigation
from serving.api.deps import Investigator, RuntimeDep
from serving.api.errors import ERROR_RESPONSES
from serving.keys import Principal
from serving.read_audit import visible_properties
from serving.schemas.common import ID_PATTERN
from serving.schemas.graph import (
    GraphEdgePublic,
    GraphNodePublic,
    NeighbourhoodPublic,
    PathPublic,
    PathsPublic,
)

router = APIRouter(prefix="/v1/graph", tags=["investigation"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, 404: {"description": "No such entity (the message names it)."},
    503: {"description": "Graph store unavailable."}}
EntityLabel = Literal["User", "Device", "Phone", "Address", "IP", "Merchant", "Application"]
PathLabel = Literal["User", "Device", "Phone", "Address", "IP", "Merchant"]
EntityId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64, description="Entity id.")]


@router.get("/{label}/{entity_id}/neighbourhood", response_model=NeighbourhoodPublic,
            responses=_RESPONSES)
def neighbourhood(
    label: Annotated[EntityLabel, Path(description="Node label of the entity.")],
    entity_id: EntityId, runtime: RuntimeDep, who: Investigator,
    hops: Annotated[int, Query(ge=1, le=3, description="Hops from the entity, 1 to 3.")] = 2,
    per_hop: Annotated[int, Query(ge=1, le=200, description="Most new nodes per hop.")] = 50,
    hub_size: Annotated[int, Query(ge=2, le=10_000, description="A node with more distinct "
                                   "neighbours is returned but not expanded.")] = 200,
) -> NeighbourhoodPublic:
    """Any entity's neighbourhood with latest scores and labels, hubs collapsed (investigator)."""
    sub = investigation.entity_neighbourhood(runtime.guard, label, entity_id, hops=hops,
                                             per_hop=per_hop, hub_size=hub_size)
    runtime.read_audit.record(who, "/v1/graph/{label}/{entity_id}/neighbourhood", label,
                              entity_id)
    return NeighbourhoodPublic(seed=node_public(sub.seed, who, sub.hubs),
                               nodes=[node_public(n, who, sub.hubs) for n in sub.nodes],
                               edges=[edge_public(e) for e in sub.edges])


@router.get("/paths", response_model=PathsPublic, responses=_RESPONSES)
def paths(
    from_label: Annotated[PathLabel, Query(description="Label of the first entity.")],
    from_id: Annotated[str, Query(pattern=ID_PATTERN, max_length=64,
                                  description="Id of the first entity.")],
    to_label: Annotated[PathLabel, Query(description="Label of the second entity.")],
    to_id: Annotated[str, Query(pattern=ID_PATTERN, max_length=64,
                                description="Id of the second entity.")],
    runtime: RuntimeDep, who: Investigator,
    max_hops: Annotated[int, Query(ge=1, le=6, description="Longest path looked for, in "
                                   "relationships.")] = 4,
    limit: Annotated[int, Query(ge=1, le=10, description="Most paths returned.")] = 3,
    hub_size: Annotated[int, Query(ge=2, le=10_000, description="A path never passes through "
                                   "a node with more distinct neighbours (its ends may be "
                                   "one).")] = 200,
) -> PathsPublic:
    """Shortest paths between two entities through shared devices, phones, addresses, IPs and
    merchants (investigator)."""
    found = investigation.shortest_paths(runtime.guard, (from_label, from_id),
                                         (to_label, to_id), max_hops=max_hops, limit=limit,
                                         hub_size=hub_size)
    runtime.read_audit.record(who, "/v1/graph/paths", from_label, from_id)
    runtime.read_audit.record(who, "/v1/graph/paths", to_label, to_id)
    return PathsPublic(paths=[PathPublic(nodes=[node_public(n, who) for n in p.nodes],
                                         edges=[edge_public(e) for e in p.edges])
                              for p in found])


def subgraph_public(sub: Subgraph, who: Principal
                    ) -> tuple[list[GraphNodePublic], list[GraphEdgePublic]]:
    """A subgraph's nodes and edges as ``who`` may see them."""
    return ([node_public(n, who, sub.hubs) for n in sub.nodes],
            [edge_public(e) for e in sub.edges])


def node_public(n: GraphNode, who: Principal,
                hubs: Mapping[tuple[NodeType, str], int] | None = None) -> GraphNodePublic:
    """A node with its scores and labels lifted out of its properties, showing what ``who``'s
    role may see (serving.read_audit)."""
    p = visible_properties(n.label, n.properties, who)
    fraud = p.get("fraud_label")
    default = p.get("default_label")
    return GraphNodePublic(
        label=n.label, id=n.id, properties=_plain(p),
        fraud_score=_number(p.get("fraud_score")), pd_score=_number(p.get("pd_score")),
        scored_at=p.get("scored_at"), model_version=p.get("model_version"),
        fraud_label=1 if fraud == "fraud" else 0 if fraud == "cleared" else None,
        default_label=None if default is None else int(bool(default)),
        ring_id=p.get("ring_id"), hub_size=(hubs or {}).get((n.label, n.id)))


def edge_public(e: GraphEdge) -> GraphEdgePublic:
    rel = SCHEMA.rel(e.type)
    return GraphEdgePublic(type=e.type, src=e.src, dst=e.dst, src_label=rel.src,
                           dst_label=rel.dst, properties=_plain(e.properties), count=e.count)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _plain(props: Mapping[str, Any]) -> dict[str, float | int | str | bool | None]:
    return {str(k): v for k, v in props.items()
            if v is None or isinstance(v, float | int | str | bool)}
