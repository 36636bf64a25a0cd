"""The Cypher that :class:`graph.neo4j_store.Neo4jStore` sends.

Labels, relationship types and property names cannot be parameters, so the builders below put
names from a schema spec (checked against the spec, required to be identifiers, backtick-quoted)
into fixed templates; every value travels as a ``$parameter``. Writes are ``UNWIND $rows AS
row`` batches that MERGE on the unique ``id`` with the label on both end nodes, so each MERGE is
an index seek.
"""

from __future__ import annotations

from typing import Final, LiteralString, cast

from graph.errors import SchemaError
from graph.schema import NodeSpec, RelSpec
from graph.store import quote_identifier

PING: Final[LiteralString] = "RETURN 1 AS ok"

AWAIT_INDEXES: Final[LiteralString] = "CALL db.awaitIndexes($seconds)"
"""Block until every index is online, so the first MERGE after ``apply_schema`` seeks."""

COUNT_ALL_NODES: Final[LiteralString] = "MATCH (n) RETURN count(n) AS n"
"""Every node of the database, whatever its labels (the count store answers it)."""

DELETE_EDGE_BATCH: Final[LiteralString] = (
    "MATCH ()-[r]->() WITH r LIMIT $limit DELETE r RETURN count(*) AS deleted"
)
"""Delete up to ``$limit`` relationships (the first phase of clearing the database)."""

DELETE_BATCH: Final[LiteralString] = (
    "MATCH (n) WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS deleted"
)
"""Delete up to ``$limit`` nodes (with what relationships are left: none once the first phase
ran)."""


def _q(name: str, allowed: tuple[str, ...]) -> str:
    if not name.isidentifier():
        raise SchemaError(f"{name!r} is not a valid identifier")
    return quote_identifier(name, allowed)


def _literal(text: str) -> LiteralString:
    # NOTE: every name in ``text`` went through ``_q`` (allow-listed by the schema, an
    # identifier, backtick-quoted); this is the one place a built string becomes a query.
    return cast(LiteralString, text)  # type: ignore[redundant-cast]  # mypy: LiteralString is str


def _label(spec: NodeSpec) -> str:
    return _q(spec.label, (spec.label,))


def unique_id_constraint(spec: NodeSpec) -> LiteralString:
    """Uniqueness of ``id`` per label; it also gives the index every MERGE seeks on."""
    name = _q(f"{spec.label}_id_unique", (f"{spec.label}_id_unique",))
    return _literal(
        f"CREATE CONSTRAINT {name} IF NOT EXISTS "
        f"FOR (n:{_label(spec)}) REQUIRE n.`id` IS UNIQUE"
    )


def node_index(spec: NodeSpec, prop: str) -> LiteralString:
    """A range index on one node property listed in the schema's ``indexes``."""
    name = _q(f"{spec.label}_{prop}", (f"{spec.label}_{prop}",))
    return _literal(
        f"CREATE INDEX {name} IF NOT EXISTS "
        f"FOR (n:{_label(spec)}) ON (n.{_q(prop, spec.columns)})"
    )


def rel_key_index(spec: RelSpec) -> LiteralString:
    """A relationship property index on an event type's key (``event_id``)."""
    assert spec.key is not None
    name = _q(f"{spec.type}_{spec.key}", (f"{spec.type}_{spec.key}",))
    return _literal(
        f"CREATE INDEX {name} IF NOT EXISTS "
        f"FOR ()-[r:{_q(spec.type, (spec.type,))}]-() ON (r.{_q(spec.key, spec.columns)})"
    )


def _keep_unless_given(var: str, names: tuple[str, ...], cols: tuple[str, ...],
                       earliest: tuple[str, ...] = ()) -> str:
    # NOTE: one SET per property, not ``SET n += row.props``: a map of unknown keys might write
    # what the MERGE matches on, so the planner puts an Eager before it (every row of the batch
    # held in memory, the pipeline broken); named properties do not. A property a row does not
    # give keeps its stored value, as with ``+=``; an ``earliest`` one only moves earlier.
    def one(name: str) -> str:
        p = _q(name, cols)
        if name in earliest:
            return (f"{var}.{p} = CASE WHEN row.props.{p} IS NOT NULL AND ({var}.{p} IS NULL "
                    f"OR row.props.{p} < {var}.{p}) THEN row.props.{p} ELSE {var}.{p} END")
        return f"{var}.{p} = coalesce(row.props.{p}, {var}.{p})"

    sets = ", ".join(one(n) for n in names)
    return f" SET {sets}" if sets else ""


def upsert_nodes(spec: NodeSpec) -> LiteralString:
    """MERGE each ``row`` on ``id``; ``row.props`` holds only the properties given."""
    return _literal(
        f"UNWIND $rows AS row MERGE (n:{_label(spec)} {{`id`: row.id}})"
        + _keep_unless_given("n", spec.columns[1:], spec.columns)
    )


def create_node(spec: NodeSpec) -> LiteralString:
    """Create node ``$id`` with ``$props`` unless it exists; return its properties.

    Whether this call created it is the summary's ``nodes_created``: under the uniqueness
    constraint concurrent MERGEs on one id serialise, so exactly one of them creates it.
    """
    return _literal(
        f"MERGE (n:{_label(spec)} {{`id`: $id}}) ON CREATE SET n += $props "
        "RETURN properties(n) AS props"
    )


def claim_nodes(spec: NodeSpec) -> LiteralString:
    """Per ``row`` of ``$rows``, create node ``row.id`` with ``row.props`` unless it exists;
    return the properties it holds then (this row's, or those of the earlier writer: under
    the uniqueness constraint concurrent MERGEs on one id serialise)."""
    return _literal(
        f"UNWIND $rows AS row MERGE (n:{_label(spec)} {{`id`: row.id}}) "
        "ON CREATE SET n += row.props RETURN row.id AS id, properties(n) AS props"
    )


def upsert_edges(spec: RelSpec) -> LiteralString:
    """MERGE both ends on ``id`` (bare if new), then the relationship, then its properties.

    A structural type is unique per ``(src, dst)``; an event type carries its key in the MERGE
    pattern, so it is unique per event id.
    """
    rel = _q(spec.type, (spec.type,))
    key = "" if spec.key is None else f" {{{_q(spec.key, spec.columns)}: row.key}}"
    names = tuple(c for c in spec.columns[2:] if c != spec.key)
    return _literal(
        "UNWIND $rows AS row "
        f"MERGE (s:{_q(spec.src, (spec.src,))} {{`id`: row.src}}) "
        f"MERGE (t:{_q(spec.dst, (spec.dst,))} {{`id`: row.dst}}) "
        f"MERGE (s)-[r:{rel}{key}]->(t)"
        + _keep_unless_given("r", names, spec.columns, spec.earliest)
    )


def get_nodes(spec: NodeSpec) -> LiteralString:
    """``id`` and properties of the nodes whose id is in ``$ids``."""
    return _literal(
        f"UNWIND $ids AS i MATCH (n:{_label(spec)} {{`id`: i}}) "
        "RETURN n.`id` AS id, properties(n) AS props"
    )


def neighbours(spec: NodeSpec) -> LiteralString:
    """Per node in ``$ids``, its first ``$limit`` distinct neighbours by ``(label, id)``.

    NOTE: the scoped ``CALL (s) { ... }`` subquery needs Neo4j 5.23 or later (5.26 LTS here);
    it caps each node's list on the server, so a hub never ships all its neighbours.
    """
    return _literal(
        f"UNWIND $ids AS i MATCH (s:{_label(spec)} {{`id`: i}}) "
        "CALL (s) { "
        "MATCH (s)--(t) WITH DISTINCT t "
        "RETURN head(labels(t)) AS label, t.`id` AS id ORDER BY label, id LIMIT $limit } "
        "RETURN s.`id` AS near, label, id"
    )


def edges_from(spec: NodeSpec) -> LiteralString:
    """Type, ends and properties of every relationship leaving a node in ``$ids``."""
    return _literal(
        f"UNWIND $ids AS i MATCH (s:{_label(spec)} {{`id`: i}})-[r]->(t) "
        "RETURN s.`id` AS src, type(r) AS type, t.`id` AS dst, properties(r) AS props"
    )


def shared_accounts(via: NodeSpec, rel: RelSpec) -> LiteralString:
    """Other users reaching the same ``via`` node as user ``$id`` over ``rel``.

    NOTE: Neo4j never reuses a relationship within one pattern, but a user with two events on
    the same IP still comes back as its own neighbour: the ``WHERE`` keeps it out.
    """
    typ = _q(rel.type, (rel.type,))
    return _literal(
        f"MATCH (u:`User` {{`id`: $id}})-[:{typ}]->(v:{_label(via)})<-[:{typ}]-(o:`User`) "
        "WHERE o.`id` <> $id "
        "RETURN DISTINCT v.`id` AS via_id, o.`id` AS user_id, "
        "o.`fraud_label` AS fraud_label, o.`default_label` AS default_label "
        "ORDER BY via_id, user_id LIMIT $limit"
    )


def count_nodes(spec: NodeSpec) -> LiteralString:
    return _literal(f"MATCH (n:{_label(spec)}) RETURN count(n) AS n")


def node_ids(spec: NodeSpec) -> LiteralString:
    return _literal(f"MATCH (n:{_label(spec)}) RETURN n.`id` AS id")


def count_edges(spec: RelSpec) -> LiteralString:
    return _literal(f"MATCH ()-[r:{_q(spec.type, (spec.type,))}]->() RETURN count(r) AS n")


def export_nodes(spec: NodeSpec, ordered: bool = True) -> LiteralString:
    """Every node of a label, one column per schema column, ordered by id (``ordered``)."""
    cols = spec.columns
    returns = ", ".join(f"n.{_q(c, cols)} AS {_q(c, cols)}" for c in cols)
    order = " ORDER BY n.`id`" if ordered else ""
    return _literal(f"MATCH (n:{_label(spec)}) RETURN {returns}{order}")


def export_edges(spec: RelSpec, ordered: bool = True) -> LiteralString:
    """Every relationship of a type as ``src``, ``dst`` and properties, in a stable order
    (``ordered``) or in the store's."""
    cols = spec.columns
    props = "".join(f", r.{_q(p.name, cols)} AS {_q(p.name, cols)}" for p in spec.properties)
    order = (" ORDER BY `src`, `dst`" + ("" if spec.key is None else f", {_q(spec.key, cols)}")
             if ordered else "")
    return _literal(
        f"MATCH (s:{_q(spec.src, (spec.src,))})-[r:{_q(spec.type, (spec.type,))}]->"
        f"(t:{_q(spec.dst, (spec.dst,))}) "
        f"RETURN s.`id` AS `src`, t.`id` AS `dst`{props}{order}"
    )


def remove_node_properties(spec: NodeSpec, names: tuple[str, ...]) -> LiteralString:
    """Null the properties ``names`` of the nodes ``$ids`` (erasure; an index probe per id)."""
    cols = spec.columns
    sets = ", ".join(f"n.{_q(n, cols)} = NULL" for n in names)
    return _literal(f"UNWIND $ids AS i MATCH (n:{_label(spec)} {{`id`: i}}) SET {sets}")


def remove_edge_properties(spec: RelSpec, names: tuple[str, ...]) -> LiteralString:
    """Null the properties ``names`` of every ``spec`` relationship leaving a node of ``$ids``
    (erasure)."""
    cols = spec.columns
    sets = ", ".join(f"r.{_q(n, cols)} = NULL" for n in names)
    return _literal(
        f"UNWIND $ids AS i MATCH (s:{_q(spec.src, (spec.src,))} {{`id`: i}})"
        f"-[r:{_q(spec.type, (spec.type,))}]->() SET {sets}")


# NOTE: the mark of a rewrite (graph.store.Rewrite.mark) is a property outside the schema,
# which reads and exports never return; it is left on the rows after the rewrite (a later
# rewrite has another mark), so that finishing one never needs a pass over the whole graph.
def unmarked_nodes(spec: NodeSpec) -> LiteralString:
    """Up to ``$limit`` nodes after id ``$after`` not marked ``$mark`` yet, ordered by id
    (an index range seek: chunk after chunk, never a scan from the start)."""
    cols = spec.columns
    returns = ", ".join(f"n.{_q(c, cols)} AS {_q(c, cols)}" for c in cols)
    return _literal(
        f"MATCH (n:{_label(spec)}) WHERE n.`id` > $after "
        f"AND coalesce(n.`_rewrite_mark`, -1) <> $mark "
        f"RETURN {returns} ORDER BY n.`id` LIMIT $limit")


def rewrite_nodes(spec: NodeSpec) -> LiteralString:
    """Set each node ``row.old``'s id and properties and mark it ``$mark``, unless marked
    already (so that a chunk done twice is done once)."""
    return _literal(
        f"UNWIND $rows AS row MATCH (n:{_label(spec)} {{`id`: row.old}}) "
        f"WHERE coalesce(n.`_rewrite_mark`, -1) <> $mark "
        f"SET n += row.props, n.`id` = row.id, n.`_rewrite_mark` = $mark")


def unmarked_edges(spec: RelSpec, names: tuple[str, ...]) -> LiteralString:
    """Up to ``$limit`` relationships of an event type after key ``$after`` not marked
    ``$mark``: their key and the properties ``names``, ordered by key."""
    cols = spec.columns
    assert spec.key is not None
    key = _q(spec.key, cols)
    props = "".join(f", r.{_q(n, cols)} AS {_q(n, cols)}" for n in names)
    return _literal(
        f"MATCH ()-[r:{_q(spec.type, (spec.type,))}]->() WHERE r.{key} > $after "
        f"AND coalesce(r.`_rewrite_mark`, -1) <> $mark "
        f"RETURN r.{key} AS `key`{props} ORDER BY r.{key} LIMIT $limit")


def rewrite_edges(spec: RelSpec) -> LiteralString:
    """Set the properties of each relationship of key ``row.key`` and mark it ``$mark``,
    unless marked already."""
    cols = spec.columns
    assert spec.key is not None
    return _literal(
        f"UNWIND $rows AS row MATCH ()-[r:{_q(spec.type, (spec.type,))} "
        f"{{{_q(spec.key, cols)}: row.key}}]->() "
        f"WHERE coalesce(r.`_rewrite_mark`, -1) <> $mark "
        f"SET r += row.props, r.`_rewrite_mark` = $mark")


def find_ids(spec: NodeSpec, name: str, is_null: bool) -> LiteralString:
    """Ids of the nodes whose property ``name`` equals ``$value`` (or is null), the first
    ``$limit`` by id."""
    where = f"n.{_q(name, spec.columns)} " + ("IS NULL" if is_null else "= $value")
    return _literal(
        f"MATCH (n:{_label(spec)}) WHERE {where} RETURN n.`id` AS id ORDER BY id LIMIT $limit"
    )


def _anchor(specs: tuple[NodeSpec, ...]) -> str:
    # NOTE: one index seek per id of each label, in one statement: the labels of an
    # exploration step (users, devices, phones...) cost one round trip, not one each.
    if not specs:
        raise ValueError("specs must name at least one label")
    branches = " UNION ALL ".join(
        f"UNWIND $ids[{i}] AS i MATCH (s:{_label(spec)} {{`id`: i}}) "
        f"RETURN s, {i} AS near_label" for i, spec in enumerate(specs))
    return f"CALL () {{ {branches} }} "


def nodes_of(specs: tuple[NodeSpec, ...]) -> LiteralString:
    """The nodes of ``specs[k]`` whose id is in ``$ids[k]``, for every ``k``: the label's
    position ``near_label``, ``id`` and properties."""
    return _literal(_anchor(specs) + "RETURN near_label, s.`id` AS id, properties(s) AS props")


def neighbours_of(specs: tuple[NodeSpec, ...]) -> LiteralString:
    """Per node of ``specs[k]`` whose id is in ``$ids[k]`` (the position ``near_label``, the
    id ``id``), its first ``$limit`` distinct neighbours by ``(label, id)`` as ``[label, id]``
    pairs (``near``).

    NOTE: the scoped ``CALL (s) { ... }`` subquery needs Neo4j 5.23 or later (5.26 LTS here);
    it caps each node's list on the server, so a hub never ships all its neighbours. One
    record per node, its neighbours in a list: the driver builds a record in Python, and a
    record per neighbour (5,000 at a two-hop frontier of 50) cost more than the query.
    """
    return _literal(
        _anchor(specs)
        + "CALL (s) { "
        "MATCH (s)--(t) WITH DISTINCT t "
        "WITH head(labels(t)) AS label, t.`id` AS id ORDER BY label, id LIMIT $limit "
        "RETURN collect([label, id]) AS near } "
        "RETURN near_label, s.`id` AS id, near"
    )


def degrees_of(specs: tuple[NodeSpec, ...]) -> LiteralString:
    """Per node of ``specs[k]`` whose id is in ``$ids[k]`` with more than ``$above`` distinct
    neighbours (any type and direction): the position ``near_label``, ``id`` and its number of
    relationships ``degree``.

    NOTE: the relationship count (``COUNT { (s)--() }``) comes from the node's degree store
    without touching a relationship and bounds the distinct count from above; past it, the
    distinct neighbours are read only until one more than ``$above`` (a merchant of 7,000
    orders is a hub after a few hundred).
    """
    return _literal(
        _anchor(specs)
        + "WITH s, near_label, COUNT { (s)--() } AS degree WHERE degree > $above "
        "CALL (s) { MATCH (s)--(t) WITH DISTINCT t LIMIT $cap RETURN count(t) AS seen } "
        "WITH s, near_label, degree, seen WHERE seen > $above "
        "RETURN near_label, s.`id` AS id, degree"
    )


def edges_between_of(specs: tuple[NodeSpec, ...]) -> LiteralString:
    """Type, ends and properties of every relationship leaving a node of ``specs[k]`` whose
    id is in ``$ids[k]`` for a node whose id is in ``$targets``: one record per type and ends,
    the properties of each relationship of them in a list (``props``).

    NOTE: a user's logins and orders are many events to the same few IPs and merchants, and
    the driver builds a record in Python: one per relationship cost half a two-hop
    neighbourhood's time.
    """
    return _literal(
        _anchor(specs)
        + "MATCH (s)-[r]->(t) WHERE t.`id` IN $targets "
        "RETURN s.`id` AS src, type(r) AS type, t.`id` AS dst, collect(properties(r)) AS props"
    )


def linked_of(specs: tuple[NodeSpec, ...], rels: tuple[RelSpec, ...]) -> LiteralString:
    """Per node of ``specs[k]`` whose id is in ``$ids[k]`` (the position ``near_label``, the
    id ``id``), its distinct neighbours over the relationship types ``rels``, either
    direction, in no order, as ``[label, id]`` pairs (``near``); ``near`` is null for a node
    with more than ``$limit`` of them.

    NOTE: no ``ORDER BY`` before the ``LIMIT``: a path search caps a node at one more than the
    hub size only to learn whether it is a hub, and sorting would read every relationship of a
    merchant with thousands of orders first (seconds per path on the 100k world). A hub's
    neighbours are counted on the server, never shipped: one record per node (a record per
    neighbour, 201 per hub, cost 5-10 ms per hub in the driver).
    """
    types = "|".join(_q(r.type, (r.type,)) for r in rels)
    return _literal(
        _anchor(specs)
        + "CALL (s) { "
        f"MATCH (s)-[:{types}]-(t) WITH DISTINCT t LIMIT $cap "
        "RETURN collect([head(labels(t)), t.`id`]) AS near } "
        "RETURN near_label, s.`id` AS id, CASE WHEN size(near) > $limit THEN null ELSE near END "
        "AS near"
    )


def edge_pairs(spec: RelSpec) -> LiteralString:
    """The distinct ``(src, dst)`` pairs of a relationship type."""
    return _literal(
        f"MATCH (s:{_q(spec.src, (spec.src,))})-[:{_q(spec.type, (spec.type,))}]->"
        f"(t:{_q(spec.dst, (spec.dst,))}) RETURN DISTINCT s.`id` AS src, t.`id` AS dst"
    )


def top_nodes(spec: NodeSpec, order_by: tuple[str, ...], at_least: tuple[str, ...],
              unset: tuple[str, ...]) -> LiteralString:
    """Nodes of a label ordered by ``order_by`` descending then ``id``, the first ``$limit``;
    property ``p`` of ``at_least`` at least ``$min_<p>``, those of ``unset`` null."""
    cols = spec.columns
    where = [f"n.{_q(p, cols)} >= $min_{p}" for p in at_least]
    where += [f"n.{_q(p, cols)} IS NULL" for p in unset]
    order = ", ".join(f"n.{_q(p, cols)} DESC" for p in order_by)
    return _literal(
        f"MATCH (n:{_label(spec)})"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" RETURN n.`id` AS id, properties(n) AS props ORDER BY {order}, n.`id` LIMIT $limit"
    )
