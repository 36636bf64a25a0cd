"""What investigators explore: the neighbourhood of any entity with hubs collapsed, the
shortest paths between two entities through what they share, and the subgraph of a set of
nodes (a ring's, for drawing).

Each answer is built from :class:`graph.store.ExplorationReader` reads inside one read
transaction (:meth:`graph.GraphStore.explore`), so both stores give the same answer to the same
graph, and the same graph always gives the same answer (every choice is in ``(label, id)``
order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from graph.errors import GraphError
from graph.schema import Schema
from graph.store import ExplorationReader, GraphEdge, GraphNode, GraphStore, Subgraph
from graph.typing import NodeKey, NodeType, RelType

MAX_HOPS: Final = 3
"""The most hops a neighbourhood reaches."""
MAX_PATH_HOPS: Final = 6
"""The longest path :func:`shortest_paths` looks for, in relationships."""
PATH_RELS: Final[tuple[RelType, ...]] = (
    "USES", "HAS_PHONE", "LIVES_AT", "WORKS_AT", "LOGGED_IN_FROM", "ORDERED_AT", "OWNS",
)
"""The relationships a path walks: a user to the devices, phones, addresses, IPs and merchants
it uses, lives or works at, logs in from, buys from or owns."""
PATH_LABELS: Final[tuple[NodeType, ...]] = ("User", "Device", "Phone", "Address", "IP",
                                            "Merchant")
"""The labels a path can start, pass and end at."""
_ENDPOINT_FANOUT: Final = 1_000_000
"""Neighbours read from a path's own ends, hubs or not (a hub is skipped only in between)."""

Key = NodeKey


class EntityNotFoundError(GraphError):
    """The entity asked about is not in the store.

    Args:
        label (NodeType): its label.
        node_id (str): its id.
    """

    def __init__(self, label: NodeType, node_id: str) -> None:
        super().__init__(f"no {label} with id {node_id!r}")
        self.label = label
        self.node_id = node_id


@dataclass(frozen=True)
class Path:
    """One path: ``nodes[i]`` and ``nodes[i + 1]`` joined by ``edges[i]``."""

    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]


def entity_neighbourhood(store: GraphStore, label: NodeType, node_id: str, *, hops: int = 2,
                         per_hop: int = 50, hub_size: int = 200) -> Subgraph:
    """The neighbourhood of any node, breadth first, with a cap per hop and hubs collapsed.

    At each hop the frontier's not yet visited neighbours (over every relationship, either
    direction) are taken in turns, one per frontier node in ``(label, id)`` order, each node's
    in ``(label, id)`` order, until ``per_hop`` new nodes are taken. A node with more than
    ``hub_size`` distinct neighbours is returned but not expanded (``Subgraph.hubs`` gives its
    degree: its relationships, each event counted); the seed is expanded whatever its size. Relationships between two returned nodes
    are returned; the events of one type between the same two nodes are one edge with their
    ``count`` and the latest one's properties.

    Args:
        store (GraphStore): the graph.
        label (NodeType): the seed's label.
        node_id (str): the seed's id.
        hops (int, optional): 1 to 3. (default: ``2``)
        per_hop (int, optional): most new nodes per hop. (default: ``50``)
        hub_size (int, optional): the most neighbours a node may have and be expanded.
            (default: ``200``)

    Raises:
        SchemaError: on a label outside the schema.
        ValueError: on an argument out of range.
        EntityNotFoundError: if the seed does not exist.
    """
    spec = store.schema.node(label)
    if spec.record:
        raise ValueError(f"label must be a label of the graph, got {label!r}")
    if not 1 <= hops <= MAX_HOPS:
        raise ValueError(f"hops must be in 1..{MAX_HOPS}, got {hops}")
    if per_hop <= 0:
        raise ValueError(f"per_hop must be positive, got {per_hop}")
    if hub_size <= 0:
        raise ValueError(f"hub_size must be positive, got {hub_size}")
    schema = store.schema
    return store.explore(
        lambda reader: _neighbourhood(reader, schema, (label, node_id), hops, per_hop, hub_size))


def _neighbourhood(reader: ExplorationReader, schema: Schema, seed: Key, hops: int,
                   per_hop: int, hub_size: int) -> Subgraph:
    records = set(schema.labels) - set(schema.graph_labels)
    if seed not in reader.nodes([seed]):
        raise EntityNotFoundError(*seed)
    degree = reader.degrees([seed], hub_size)
    visited: dict[Key, int] = {seed: 0}
    frontier = [seed]
    for hop in range(1, hops + 1):
        expand = [n for n in frontier if n == seed or degree.get(n, 0) <= hub_size]
        # NOTE: a node has at most len(visited) visited neighbours, so this many sorted
        # neighbours always hold its first per_hop new ones, however big a hub it is.
        found = reader.neighbours(expand, per_hop + len(visited))
        queues = [[n for n in found.get(node, ()) if n not in visited and n[0] not in records]
                  for node in sorted(expand)]
        taken: list[Key] = []
        for turn in range(max((len(q) for q in queues), default=0)):
            for queue in queues:
                if turn < len(queue) and queue[turn] not in visited:
                    visited[queue[turn]] = hop
                    taken.append(queue[turn])
                    if len(taken) == per_hop:
                        break
            if len(taken) == per_hop:
                break
        degree.update(reader.degrees(taken, hub_size) if taken else {})
        frontier = taken
        if not frontier:
            break
    hubs = {n: degree[n] for n in visited if degree.get(n, 0) > hub_size}
    sub = _subgraph(reader, schema, sorted(visited, key=lambda n: (visited[n], n)))
    return Subgraph(seed=sub.seed, nodes=sub.nodes, edges=sub.edges, hubs=hubs)


def shortest_paths(store: GraphStore, source: Key, target: Key, *, max_hops: int = 4,
                   limit: int = 3, hub_size: int = 200) -> list[Path]:
    """The shortest paths between two entities through what they share.

    A path walks :data:`PATH_RELS` (users and the devices, phones, addresses, IPs and
    merchants they use, live or work at, log in from, buy from or own), never through a node
    with more than ``hub_size`` distinct neighbours over those relationships (a public Wi-Fi,
    a big merchant), though the two ends may be such nodes. It is a breadth-first search from
    both ends, one whole layer at a time from the smaller side. Every path returned has the
    shortest length; when more than ``limit`` have it, the first ``limit`` in ``(label, id)``
    order of their nodes.

    Args:
        store (GraphStore): the graph.
        source (tuple[NodeType, str]): ``(label, id)`` of one end, a label of
            :data:`PATH_LABELS`.
        target (tuple[NodeType, str]): the other end.
        max_hops (int, optional): longest path looked for, 1 to 6 relationships.
            (default: ``4``)
        limit (int, optional): most paths returned. (default: ``3``)
        hub_size (int, optional): most neighbours of a node a path passes through.
            (default: ``200``)

    Returns:
        list[Path]: empty when no path is within ``max_hops``.

    Raises:
        ValueError: on a label outside :data:`PATH_LABELS`, the same entity twice or an
            argument out of range.
        EntityNotFoundError: if an end does not exist.
    """
    for name, (label, _) in (("from_label", source), ("to_label", target)):
        if label not in PATH_LABELS:
            raise ValueError(f"{name} must be one of {PATH_LABELS}, got {label!r}")
    if source == target:
        raise ValueError("from and to must be two entities, got the same one twice")
    if not 1 <= max_hops <= MAX_PATH_HOPS:
        raise ValueError(f"max_hops must be in 1..{MAX_PATH_HOPS}, got {max_hops}")
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    if hub_size <= 0:
        raise ValueError(f"hub_size must be positive, got {hub_size}")
    schema = store.schema
    return store.explore(
        lambda reader: _paths(reader, schema, source, target, max_hops, limit, hub_size))


def _paths(reader: ExplorationReader, schema: Schema, source: Key, target: Key,
           max_hops: int, limit: int, hub_size: int) -> list[Path]:
    existing = reader.nodes([source, target])
    for end in (source, target):
        if end not in existing:
            raise EntityNotFoundError(*end)
    ends = {source, target}
    dist: list[dict[Key, int]] = [{source: 0}, {target: 0}]
    parents: list[dict[Key, list[Key]]] = [{source: []}, {target: []}]
    frontier: list[list[Key]] = [[source], [target]]
    depth = [0, 0]
    hub: set[Key] = set()
    sized: set[Key] = set()

    def links(nodes: list[Key]) -> dict[Key, list[Key]]:
        found = _linked(reader, [n for n in nodes if n not in ends], hub_size)
        found.update(_linked(reader, [n for n in nodes if n in ends], _ENDPOINT_FANOUT))
        hub.update(n for n, near in found.items() if near is None)
        sized.update(nodes)
        return {n: near for n, near in found.items() if near is not None}

    while depth[0] + depth[1] < max_hops and frontier[0] and frontier[1]:
        side = 0 if len(frontier[0]) <= len(frontier[1]) else 1
        found = links(frontier[side])
        layer: dict[Key, list[Key]] = {}
        for node in sorted(frontier[side]):
            if node in hub:
                continue
            for near in found.get(node, ()):
                if near not in dist[side] or near in layer:
                    layer.setdefault(near, []).append(node)
        depth[side] += 1
        for near, via in layer.items():
            dist[side][near] = depth[side]
            parents[side][near] = via
        frontier[side] = sorted(layer)
        meets = sorted(n for n in layer if n in dist[1 - side])
        # NOTE: a meeting node discovered but never expanded may be a hub, which no path
        # passes through: read its size before taking it.
        unknown = [n for n in meets if n not in ends and n not in sized]
        if unknown:
            links(unknown)
        meets = [n for n in meets if n in ends or n not in hub]
        if meets:
            return _assemble(reader, schema, _enumerate(meets, dist, parents, depth, limit))
    return []


def _enumerate(meets: list[Key], dist: list[dict[Key, int]],
               parents: list[dict[Key, list[Key]]], depth: list[int], limit: int
               ) -> list[list[Key]]:
    # NOTE: every shortest path has exactly one node at the source side's depth, and that
    # node is at the target side's depth from the target: enumerating through those nodes
    # lists each shortest path once.
    paths: list[list[Key]] = []
    for middle in meets:
        if dist[0].get(middle) != depth[0] or dist[1].get(middle) != depth[1]:
            continue
        for head in _walks(middle, parents[0], limit - len(paths)):
            for tail in _walks(middle, parents[1], limit - len(paths)):
                paths.append([*reversed(head), *tail[1:]])
                if len(paths) == limit:
                    return paths
    return paths


def _walks(node: Key, parents: Mapping[Key, list[Key]], limit: int) -> list[list[Key]]:
    """Up to ``limit`` walks from ``node`` back to the root of ``parents``."""
    if not parents[node]:
        return [[node]]
    walks: list[list[Key]] = []
    for parent in sorted(parents[node]):
        for rest in _walks(parent, parents, limit - len(walks)):
            walks.append([node, *rest])
            if len(walks) == limit:
                return walks
    return walks


def _assemble(reader: ExplorationReader, schema: Schema, paths: list[list[Key]]
              ) -> list[Path]:
    keys = sorted({n for path in paths for n in path})
    sub = _subgraph(reader, schema, keys)
    nodes = {(n.label, n.id): n for n in sub.nodes}
    between: dict[tuple[Key, Key], GraphEdge] = {}
    for e in sorted(sub.edges, key=lambda e: e.type):
        rel = schema.rel(e.type)
        if e.type in PATH_RELS:
            between.setdefault(((rel.src, e.src), (rel.dst, e.dst)), e)
    answer = []
    for path in paths:
        edges = []
        for a, b in zip(path, path[1:]):
            edge = between.get((a, b)) or between.get((b, a))
            assert edge is not None, "a path step always has its relationship"
            edges.append(edge)
        answer.append(Path(tuple(nodes[n] for n in path), tuple(edges)))
    return answer


def subgraph(store: GraphStore, nodes: Sequence[Key]) -> Subgraph:
    """The nodes ``nodes`` that exist, with their properties, and the relationships between
    them (events folded as in :func:`entity_neighbourhood`); the seed is the first node.

    Raises:
        EntityNotFoundError: if none of ``nodes`` exists.
    """
    for label, _ in nodes:
        store.schema.node(label)
    if not nodes:
        raise ValueError("nodes must name at least one node")
    schema = store.schema
    return store.explore(lambda reader: _subgraph(reader, schema, list(nodes)))


def _subgraph(reader: ExplorationReader, schema: Schema, order: list[Key]) -> Subgraph:
    props = reader.nodes(order)
    wanted = set(order)
    labels = {label for label, _ in order}
    # NOTE: most labels (devices, phones, addresses, IPs) start no relationship, and
    # reading each node's outgoing ones costs a query per node on LadybugDB.
    starts = {r.src for r in schema.rels if r.dst in labels} & labels
    sources = [n for n in order if n[0] in starts]
    ends = {r.dst for r in schema.rels if r.src in starts}
    targets = sorted({i for label, i in order if label in ends})
    edges = [e for e in reader.edges_between(sources, targets)
             if (schema.rel(e.type).dst, e.dst) in wanted] if sources else []
    nodes = tuple(GraphNode(label, i, props[(label, i)]) for label, i in order
                  if (label, i) in props)
    if not nodes:
        raise EntityNotFoundError(*order[0])
    return Subgraph(seed=nodes[0], nodes=nodes, edges=tuple(fold_events(schema, edges)))


def fold_events(schema: Schema, edges: Iterable[GraphEdge]) -> list[GraphEdge]:
    """One edge per ``(type, src, dst)``: the events of an event type between the same two
    nodes become one with their ``count`` and the properties of the latest (by ``ts``, then
    key); in ``(type, src, dst)`` order."""
    groups: dict[tuple[RelType, str, str], list[GraphEdge]] = {}
    for e in edges:
        groups.setdefault((e.type, e.src, e.dst), []).append(e)
    folded = []
    for (rel_type, src, dst), group in sorted(groups.items()):
        key = schema.rel(rel_type).key or ""
        latest = max(group, key=lambda e: (e.properties.get("ts") or 0,
                                           str(e.properties.get(key, ""))))
        folded.append(GraphEdge(rel_type, src, dst, latest.properties,
                                sum(e.count for e in group)))
    return folded


def _linked(reader: ExplorationReader, nodes: Sequence[Key], limit: int
            ) -> dict[Key, list[Key] | None]:
    return reader.linked(nodes, PATH_RELS, limit) if nodes else {}
