"""`GraphStore`: the one interface in front of Neo4j and LadybugDB.

Public methods validate their arguments against the schema and raise; subclasses implement the
private ``_hooks`` (the pattern of PyG's ``GraphStore``). Callers never branch on the backend.
"""

from __future__ import annotations

import abc
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from graph.errors import GraphError, SchemaError, StoreError
from graph.schema import SCHEMA, STORE_IDENTITY, NodeSpec, RelSpec, Schema
from graph.typing import NodeKey, NodeType, RelType, Row, Rows

T = TypeVar("T")

MAX_HOPS: Final = 3
LabelKind = Literal["fraud", "cleared", "default"]
LABEL_KINDS: Final[tuple[str, ...]] = ("fraud", "cleared", "default")
LABELLED: Final[tuple[NodeType, ...]] = ("User", "Merchant", "Application")
SHARED_VIA: Final[dict[NodeType, RelType]] = {
    "Device": "USES",
    "Phone": "HAS_PHONE",
    "Address": "LIVES_AT",
    "IP": "LOGGED_IN_FROM",
}
"""How a user reaches each kind of shareable entity."""
_IDENTITY_ID: Final = "store"
"""The id of the one :data:`graph.schema.STORE_IDENTITY` node of a store."""


@dataclass(frozen=True)
class LabelWrite:
    """An investigator's or the ledger's verdict on one entity.

    Args:
        label (NodeType): ``User``, ``Merchant`` or ``Application``.
        id (str): the entity id.
        kind (LabelKind): ``fraud`` (confirmed), ``cleared`` (not fraud) or ``default``.
        at (int): when the label became known, epoch seconds.
        source (str): who or what set it (``investigator:alice``, ``ledger``).
    """

    label: NodeType
    id: str
    kind: LabelKind
    at: int
    source: str

    def __post_init__(self) -> None:
        if self.label not in LABELLED:
            raise SchemaError(f"label must be one of {LABELLED}, got {self.label!r}")
        if self.kind not in LABEL_KINDS:
            raise SchemaError(f"kind must be one of {LABEL_KINDS}, got {self.kind!r}")
        if not self.id:
            raise SchemaError("id must be non-empty")
        if isinstance(self.at, bool) or not isinstance(self.at, int) or self.at < 0:
            raise SchemaError(f"at must be epoch seconds, got {self.at!r}")

    def properties(self) -> dict[str, Any]:
        """The node properties this label sets."""
        if self.kind == "default":
            return {
                "default_label": True,
                "default_label_at": self.at,
                "default_label_source": self.source,
            }
        return {
            "fraud_label": self.kind,
            "fraud_label_at": self.at,
            "fraud_label_source": self.source,
        }


@dataclass(frozen=True)
class StoreIdentity:
    """Which store instance this is (:meth:`GraphStore.identity`).

    Args:
        instance_id (str): 32 random hex digits, drawn once per store instance.
        created_at (int): when it was drawn, epoch seconds.
    """

    instance_id: str
    created_at: int


@dataclass(frozen=True)
class GraphNode:
    label: NodeType
    id: str
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GraphEdge:
    """A relationship; ``count`` > 1 when it stands for that many events between the same two
    nodes (:mod:`graph.exploration` folds them, keeping the latest one's properties)."""

    type: RelType
    src: str
    dst: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    count: int = 1


@dataclass(frozen=True)
class Subgraph:
    """Nodes and edges around a seed, as an investigator sees them.

    ``hubs`` maps each node returned but not expanded for its size, ``(label, id)``, to its
    degree (its relationships, each event counted).
    """

    seed: GraphNode
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    hubs: Mapping[tuple[NodeType, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class SharedAccount:
    """Another account reachable from a user through one shared entity."""

    via_label: NodeType
    via_id: str
    user_id: str
    fraud_label: str | None
    default_label: bool | None


class Rewrite(Protocol):
    """What :meth:`GraphStore.rewrite` does to the rows of a store (a key rotation:
    :class:`graph.key_rotation.Rekeying`)."""

    mark: int
    """Marks the rows rewritten, so that a run stopped midway and run again rewrites each row
    once; a later rewrite needs another mark."""
    node_labels: tuple[NodeType, ...]
    """Labels whose rows :meth:`node_row` rewrites, in this order."""
    final_labels: tuple[NodeType, ...]
    """Labels rewritten the same way, after every other label and type: the commit of the
    whole (a key chain's ``current``)."""
    id_labels: frozenset[NodeType]
    """Labels whose ids change (by :meth:`node_id`): relationship ends follow them."""
    edge_columns: Mapping[RelType, tuple[str, ...]]
    """Per relationship type (event types, with a key), the properties :meth:`edge_value`
    rewrites."""

    def node_row(self, label: NodeType, row: dict[str, Any]) -> dict[str, Any]:
        """A whole row (``id`` and every property) as it is to be."""
        ...

    def node_id(self, label: NodeType, node_id: str) -> str:
        """The id a node of ``label`` is to have (what :meth:`node_row` gives it)."""
        ...

    def edge_value(self, rel_type: RelType, name: str, value: Any) -> Any:
        """The value a relationship property of :attr:`edge_columns` is to have."""
        ...


def label_rows(labels: Sequence[LabelWrite]) -> dict[NodeType, list[Row]]:
    """The node rows that :meth:`GraphStore.write_labels` upserts for ``labels``, by label."""
    by_label: dict[NodeType, list[Row]] = {}
    for lab in labels:
        by_label.setdefault(lab.label, []).append({"id": lab.id, **lab.properties()})
    return by_label


class GraphStore(abc.ABC):
    """The relationship graph, whatever holds it.

    Args:
        schema (Schema, optional): the schema to enforce. (default: :data:`graph.SCHEMA`)
        batch_size (int, optional): rows per write transaction. (default: ``5000``)
    """

    backend: str = "abstract"
    exclusive_writer: bool = False
    """True when one process at a time can write the store (an embedded file): no other
    process can race its writes, so it may settle first-writer-wins claims itself."""
    supports_bulk_load: bool = False
    """True when :meth:`bulk_load` takes the store's own bulk path (LadybugDB's ``COPY FROM``,
    Neo4j's offline ``neo4j-admin database import`` when the store was given the server);
    :func:`graph.loader.load_world` then loads an empty store through it."""

    def __init__(self, *, schema: Schema = SCHEMA, batch_size: int = 5000) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.schema = schema
        self.batch_size = batch_size

    # -- lifecycle --------------------------------------------------------------------------
    def apply_schema(self) -> None:
        """Create the constraints, indexes or tables of the schema. Idempotent."""
        self._apply_schema()

    def ping(self) -> None:
        """Raise :class:`graph.StoreUnavailableError` unless the store answers
        (:class:`graph.StoreError` when it answers but refuses the credentials)."""
        self._ping()

    def close(self) -> None:
        """Release connections and file handles."""
        self._close()

    def identity(self) -> StoreIdentity:
        """This store instance's identity: drawn at random and written into the store (a
        :data:`graph.schema.STORE_IDENTITY` node) the first time it is asked for.

        A store deleted and created again at the same path or URI (a new LadybugDB file, a
        wiped Neo4j database) draws a new one, so that what was recorded about the old store
        (the chunks a bulk load finished) is not taken for the new one. When several processes
        ask a new store at once, the first writer wins and all get its identity.

        Raises:
            SchemaError: if the store's schema has no ``StoreIdentity`` label.
            StoreError: if the store has none yet and is open read-only.
        """
        found = self.get_node(STORE_IDENTITY, _IDENTITY_ID)
        if found is None:
            (found,) = self.claim_nodes(STORE_IDENTITY, [{
                "id": _IDENTITY_ID, "instance_id": secrets.token_hex(16),
                "created_at": int(time.time())}])
        return StoreIdentity(str(found.properties["instance_id"]),
                             int(found.properties["created_at"]))

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ------------------------------------------------------------------------------
    def upsert_nodes(self, label: NodeType, rows: Rows) -> int:
        """Create or update nodes by ``id``; properties absent from a row are left as they are.

        Args:
            label (NodeType): a label of the schema.
            rows (Sequence[Row]): one mapping per node with ``id`` and schema properties.

        Returns:
            int: the number of rows written.

        Raises:
            SchemaError: on an unknown label, property or a mistyped value; nothing is written.
        """
        for row in rows:
            self.schema.check_node_row(label, row)
        for batch in _batches(rows, self.batch_size):
            self._upsert_nodes(label, batch)
        return len(rows)

    def upsert_edges(self, rel_type: RelType, rows: Rows) -> int:
        """Create or update relationships; missing end nodes are created with only their id.

        A structural relationship is unique per ``(src, dst)``; an event relationship is unique
        per ``event_id``, so replaying an event never duplicates it.

        Args:
            rel_type (RelType): a relationship type of the schema.
            rows (Sequence[Row]): ``src``, ``dst`` (node ids) and the relationship properties.

        Returns:
            int: the number of rows written.

        Raises:
            SchemaError: on an unknown type, property or a mistyped value; nothing is written.
        """
        for row in rows:
            self.schema.check_rel_row(rel_type, row)
        for batch in _batches(rows, self.batch_size):
            self._upsert_edges(rel_type, batch)
        return len(rows)

    def create_node(self, label: NodeType, row: Row) -> GraphNode | None:
        """Create a node unless one with the same ``id`` exists; never overwrite it.

        The first writer wins, which is what idempotency keys and audit records need when
        several API replicas share one store.

        Args:
            label (NodeType): a label of the schema.
            row (Row): ``id`` and schema properties.

        Returns:
            GraphNode | None: the node already there (nothing was written), or ``None`` when
            this call created it.

        Raises:
            SchemaError: on an unknown label, property or a mistyped value.
        """
        self.schema.check_node_row(label, row)
        return self._create_node(label, row)

    def create_nodes(self, label: NodeType, rows: Rows) -> list[GraphNode | None]:
        """:meth:`create_node` for many ids at once (one transaction where the backend can).

        Returns:
            list[GraphNode | None]: per row, the node already there, or ``None`` if created.

        Raises:
            SchemaError: on an unknown label, property or a mistyped value; nothing is written.
            ValueError: if two rows name the same id.
        """
        for row in rows:
            self.schema.check_node_row(label, row)
        if len({row["id"] for row in rows}) != len(rows):
            raise ValueError("rows must name distinct ids")
        return self._create_nodes(label, rows) if rows else []

    def claim_nodes(self, label: NodeType, rows: Rows) -> list[GraphNode]:
        """Create each node unless one with its ``id`` exists, and return the node each id
        holds then: the row's own where this call created it, the earlier writer's where it
        did not (first writer wins, across processes).

        Unlike :meth:`create_nodes` it does not say who created a node, which lets a backend
        claim every row in one statement; a caller that needs to know compares a property
        (an idempotency key's body hash).

        Raises:
            SchemaError: on an unknown label, property or a mistyped value; nothing is written.
            ValueError: if two rows name the same id.
        """
        for row in rows:
            self.schema.check_node_row(label, row)
        if len({row["id"] for row in rows}) != len(rows):
            raise ValueError("rows must name distinct ids")
        return self._claim_nodes(label, rows) if rows else []

    def write_batch(self, nodes: Sequence[tuple[NodeType, Rows]],
                    edges: Sequence[tuple[RelType, Rows]], *,
                    one_transaction: bool = False) -> int:
        """Upsert several labels and relationship types together: the nodes, then the
        relationships, in one transaction where the backend can (all or nothing), which costs
        one commit instead of one per label and type.

        Args:
            nodes (Sequence[tuple[NodeType, Rows]]): ``(label, rows)`` as for
                :meth:`upsert_nodes`.
            edges (Sequence[tuple[RelType, Rows]]): ``(type, rows)`` as for
                :meth:`upsert_edges`.
            one_transaction (bool, optional): commit every row in one transaction however
                many there are (the caller bounds them: a rescoring chunk); otherwise a backend
                may write more than :attr:`batch_size` rows in several. (default: ``False``)

        Returns:
            int: the number of rows written.

        Raises:
            SchemaError: on an unknown label, type, property or a mistyped value; nothing is
                written.
        """
        for label, rows in nodes:
            for row in rows:
                self.schema.check_node_row(label, row)
        for rel_type, rows in edges:
            for row in rows:
                self.schema.check_rel_row(rel_type, row)
        nodes = [(label, rows) for label, rows in nodes if rows]
        edges = [(rel_type, rows) for rel_type, rows in edges if rows]
        if nodes or edges:
            self._write_batch(nodes, edges, one_transaction=one_transaction)
        return sum(len(r) for _, r in nodes) + sum(len(r) for _, r in edges)

    def bulk_load(self, nodes: Sequence[tuple[NodeType, pa.Table]],
                  edges: Sequence[tuple[RelType, pa.Table]]) -> dict[str, float]:
        """Fill empty tables with whole tables of rows through the store's own bulk path, all
        or nothing (one transaction where the backend can).

        The rows are final: one per node id and one per relationship (per ``(src, dst)``, or
        per ``(src, dst, key)`` for event relationships), every endpoint among the nodes given.
        What :meth:`upsert_nodes` and :meth:`upsert_edges` would make of many writes (later
        non-null values winning, bare endpoint nodes) is the caller's to fold first
        (:func:`graph.loader.load_world` does).

        NOTE: the fold sits with the loader, beside the row builders and the checkpoint: it is
        what that load's upserts would leave on any backend, so it is written once; a store
        brings only its own bulk mechanics (LadybugDB: Parquet files, ``COPY FROM``, one
        transaction) behind :meth:`_bulk_load`.

        Args:
            nodes (Sequence[tuple[NodeType, pa.Table]]): per label, a table with ``id`` and
                any of the label's properties (a column left out is null).
            edges (Sequence[tuple[RelType, pa.Table]]): per type, a table with ``src``, ``dst``
                and any of its properties.

        Returns:
            dict[str, float]: seconds spent per label and type, and on the steps around them:
            ``check`` (these checks), ``commit`` and whatever else the backend does (its
            ``files``).

        Raises:
            SchemaError: on an unknown label, type or property, a mistyped column, a missing
                or repeated id or key, or an endpoint that is not among the nodes given;
                nothing is written.
            StoreError: if the store has no bulk path (:attr:`supports_bulk_load`) or a table
                to fill is not empty; nothing is written.
        """
        if not self.supports_bulk_load:
            raise StoreError(f"{type(self).__name__} has no bulk path; use upsert_nodes")
        started = time.perf_counter()
        node_tables = [(label, conform_node_table(self.schema.node(label), table))
                       for label, table in nodes]
        edge_tables = [(rel_type, conform_edge_table(self.schema.rel(rel_type), table))
                       for rel_type, table in edges]
        given = {label: table.column("id") for label, table in node_tables}
        if len(given) != len(node_tables):
            raise SchemaError("bulk_load: a label is given twice")
        for rel_type, table in edge_tables:
            spec = self.schema.rel(rel_type)
            for end, label in (("src", spec.src), ("dst", spec.dst)):
                ids = given.get(label)
                missing = (table.num_rows if ids is None
                           else pc.sum(pc.invert(pc.is_in(table.column(end), ids))).as_py() or 0)
                if missing:
                    raise SchemaError(f"bulk_load: {missing} {rel_type} rows name a {label} "
                                      f"({end}) that is not among the nodes given")
        checked = time.perf_counter() - started
        return {"check": checked, **self._bulk_load(node_tables, edge_tables)}

    def bulk_load_refusal(self) -> str | None:
        """Why :meth:`bulk_load` cannot fill this store now, or ``None`` when it can.

        Returns:
            str | None: ``"no bulk path"``, or ``"it is not empty (...)"`` naming what the
            store holds: by default any node of the relationship graph's labels or any
            relationship (operational records do not count: a bulk load fills only the
            graph's tables); a backend whose bulk path replaces the whole store counts every
            node but the store's identity.
        """
        if not self.supports_bulk_load:
            return "no bulk path"
        return self._bulk_load_refusal()

    def remove_properties(self, label: NodeType, node_ids: Sequence[str],
                          names: Sequence[str]) -> None:
        """Null the properties ``names`` of the nodes ``node_ids`` (erasure); absent ids are
        skipped, so a removal run twice is one.

        Raises:
            SchemaError: on an unknown label or property, ``id``, or a document property
                (documents are replaced through :meth:`upsert_nodes`).
        """
        spec = self.schema.node(label)
        for name in names:
            if name == "id" or spec.property(name).document:
                raise SchemaError(f"{label}.{name} cannot be removed, only replaced")
        if node_ids and names:
            for chunk in _batches([{"id": i} for i in node_ids], self.batch_size):
                self._remove_properties(label, [r["id"] for r in chunk], tuple(names))

    def remove_edge_properties(self, rel_type: RelType, src_ids: Sequence[str],
                               names: Sequence[str]) -> None:
        """Null the properties ``names`` of every ``rel_type`` relationship that leaves a node
        of ``src_ids`` (erasure: the relationship stays).

        Raises:
            SchemaError: on an unknown type or property, or the relationship's key.
        """
        spec = self.schema.rel(rel_type)
        for name in names:
            spec.property(name)
            if name == spec.key:
                raise SchemaError(f"{rel_type}.{name} identifies the relationship")
        if src_ids and names:
            for chunk in _batches([{"id": i} for i in src_ids], self.batch_size):
                self._remove_edge_properties(rel_type, [r["id"] for r in chunk], tuple(names))

    def rewrite(self, rewrite: Rewrite, *, chunk_rows: int = 5000) -> dict[str, int]:
        """Rewrite rows in place by ``rewrite`` (a key rotation), ids included; run again with
        the same ``rewrite`` after a stop anywhere, it leaves what one whole run leaves.

        Nothing else may write the store meanwhile.

        Args:
            rewrite (Rewrite): what to do to each row.
            chunk_rows (int, optional): rows per transaction where the backend rewrites in
                place. (default: ``5000``)

        Returns:
            dict[str, int]: rows rewritten per label and type by this call.

        Raises:
            ValueError: on a non-positive ``chunk_rows``.
            SchemaError: on a label or type outside the schema, or an ``edge_columns`` type
                without a key.
        """
        if chunk_rows <= 0:
            raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
        for label in (*rewrite.node_labels, *rewrite.final_labels, *rewrite.id_labels):
            self.schema.node(label)
        for rel_type, names in rewrite.edge_columns.items():
            spec = self.schema.rel(rel_type)
            if spec.key is None:
                raise SchemaError(f"rewrite: {rel_type} has no key to rewrite it by")
            for name in names:
                if name == spec.key:
                    raise SchemaError(f"{rel_type}.{name} identifies the relationship")
                spec.property(name)
        return self._rewrite(rewrite, chunk_rows)

    def write_labels(self, labels: Sequence[LabelWrite]) -> int:
        """Set fraud / cleared / default labels; creates a bare node if the id is new."""
        for label, rows in label_rows(labels).items():
            self.upsert_nodes(label, rows)
        return len(labels)

    # -- reads -------------------------------------------------------------------------------
    def get_node(self, label: NodeType, node_id: str) -> GraphNode | None:
        """Return one node with its properties, or ``None``."""
        self.schema.node(label)
        return self._get_node(label, node_id)

    def get_nodes(self, label: NodeType, node_ids: Sequence[str]) -> dict[str, GraphNode]:
        """The nodes of ``node_ids`` that exist, by id (one read where the backend can)."""
        self.schema.node(label)
        return self._get_nodes(label, list(dict.fromkeys(node_ids))) if node_ids else {}

    def find_nodes(self, label: NodeType, name: str, value: str | None, *,
                   limit: int = 1000) -> list[GraphNode]:
        """The nodes of ``label`` whose property ``name`` equals ``value`` (is null when
        ``value`` is ``None``), at most ``limit`` of them, in ``id`` order.

        Meant for operational records looked up by an indexed property (a case's notes by
        ``case_id``); on a label of millions without an index it scans.

        Raises:
            SchemaError: on an unknown label or property, or a document property.
            ValueError: on a non-positive ``limit``.
        """
        spec = self.schema.node(label)
        if name == "id" or spec.property(name).document:
            raise SchemaError(f"{label}.{name} cannot be searched by")
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        ids = self._find_ids(label, name, value, limit)
        found = self._get_nodes(label, ids) if ids else {}
        return [found[i] for i in sorted(found)]

    def neighbourhood(
        self, label: NodeType, node_id: str, *, hops: int = 2, fanout: int = 50
    ) -> Subgraph:
        """The nodes within ``hops`` of a node, at most ``fanout`` new neighbours per node and hop.

        Args:
            label (NodeType): label of the seed.
            node_id (str): id of the seed.
            hops (int, optional): 1 to 3. (default: ``2``)
            fanout (int, optional): cap on neighbours expanded per node per hop. (default: ``50``)

        Raises:
            ValueError: on a hop count outside 1..3 or a non-positive fan-out.
            GraphError: if the seed does not exist.
        """
        self.schema.node(label)
        if not 1 <= hops <= MAX_HOPS:
            raise ValueError(f"hops must be in 1..{MAX_HOPS}, got {hops}")
        if fanout <= 0:
            raise ValueError(f"fanout must be positive, got {fanout}")
        return self._neighbourhood(label, node_id, hops, fanout)

    def shared_accounts(
        self, user_id: str, *, via: Iterable[NodeType] = tuple(SHARED_VIA), limit: int = 100
    ) -> list[SharedAccount]:
        """Other users that share a device, phone, address or IP with ``user_id``.

        The user itself is never in the answer (LadybugDB matches with walk semantics).
        """
        via = tuple(via)
        for label in via:
            if label not in SHARED_VIA:
                raise ValueError(f"via must be among {tuple(SHARED_VIA)}, got {label!r}")
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        return self._shared_accounts(user_id, via, limit)

    def explore(self, fn: Callable[[ExplorationReader], T]) -> T:
        """Run ``fn`` with a reader of the graph in one read transaction (Neo4j) or on one
        connection (LadybugDB): what :mod:`graph.exploration` builds its answers on."""
        return self._explore(fn)

    def edge_pairs(self, rel_type: RelType) -> pa.Table:
        """The distinct ``(src, dst)`` pairs of ``rel_type``, without properties: columns
        ``src`` and ``dst`` (an event type's many events between two nodes are one pair)."""
        self.schema.rel(rel_type)
        return self._edge_pairs(rel_type)

    def top_nodes(self, label: NodeType, *, order_by: Sequence[str], limit: int,
                  at_least: Mapping[str, float] | None = None,
                  unset: Sequence[str] = ()) -> list[GraphNode]:
        """The first ``limit`` nodes of ``label`` ordered by ``order_by`` (each descending,
        then ``id`` ascending), among those whose properties are at least ``at_least`` and
        whose ``unset`` properties are null.

        Raises:
            SchemaError: on an unknown label or property.
            ValueError: on a non-positive ``limit`` or an empty ``order_by``.
        """
        spec = self.schema.node(label)
        at_least = dict(at_least or {})
        for name in (*order_by, *at_least, *unset):
            spec.property(name)
        if not order_by:
            raise ValueError("order_by must name at least one property")
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        return self._top_nodes(label, tuple(order_by), limit, at_least, tuple(unset))

    def counts(self) -> dict[str, int]:
        """Number of nodes per label and relationships per type."""
        return self._counts()

    def node_ids(self, label: NodeType) -> list[str]:
        """The ids of every node of ``label`` (no properties), in no particular order."""
        self.schema.node(label)
        return self._node_ids(label)

    def export_nodes(self, label: NodeType, *, ordered: bool = True) -> pa.Table:
        """Every node of ``label`` as a table with the schema's columns, ordered by id (or in
        the store's order with ``ordered=False``: cheaper, for a reader that orders them
        itself, as :meth:`graph.snapshot.GraphSnapshot.from_store` does)."""
        self.schema.node(label)
        return self._export_nodes(label, ordered=ordered)

    def export_edges(self, rel_type: RelType, *, ordered: bool = True) -> pa.Table:
        """Every relationship of ``rel_type`` as a table: ``src``, ``dst`` and its
        properties, ordered by ``src``, ``dst`` and the type's key (or in the store's order
        with ``ordered=False``: at 1M users the store's sort is half of exporting the
        relationships; docs/BENCHMARKS.md)."""
        self.schema.rel(rel_type)
        return self._export_edges(rel_type, ordered=ordered)

    def iter_export(self) -> Iterator[tuple[str, str, pa.Table]]:
        """Yield ``("node", label, table)`` then ``("edge", type, table)`` for the whole graph
        (every label the schema marks ``exported``: a copy never carries the store's
        identity)."""
        for spec in self.schema.nodes:
            if spec.exported:
                yield "node", spec.label, self.export_nodes(spec.label)
        for rel in self.schema.rel_types:
            yield "edge", rel, self.export_edges(rel)

    # -- hooks -------------------------------------------------------------------------------
    @abc.abstractmethod
    def _apply_schema(self) -> None: ...

    @abc.abstractmethod
    def _ping(self) -> None: ...

    @abc.abstractmethod
    def _close(self) -> None: ...

    @abc.abstractmethod
    def _upsert_nodes(self, label: NodeType, rows: Rows) -> None: ...

    @abc.abstractmethod
    def _upsert_edges(self, rel_type: RelType, rows: Rows) -> None: ...

    @abc.abstractmethod
    def _get_node(self, label: NodeType, node_id: str) -> GraphNode | None: ...

    def _get_nodes(self, label: NodeType, node_ids: list[str]) -> dict[str, GraphNode]:
        # NOTE: one read per id; backends override with one query.
        found = (self._get_node(label, node_id) for node_id in node_ids)
        return {node.id: node for node in found if node is not None}

    def _create_node(self, label: NodeType, row: Row) -> GraphNode | None:
        # NOTE: read-then-write is atomic only with a single writer (LadybugDB's one write
        # path); a backend with concurrent writers (Neo4j) overrides this with one
        # `MERGE ... ON CREATE SET` transaction.
        existing = self._get_node(label, row["id"])
        if existing is not None:
            return existing
        self._upsert_nodes(label, [row])
        return None

    def _create_nodes(self, label: NodeType, rows: Rows) -> list[GraphNode | None]:
        # NOTE: one transaction per row; backends override to claim many in one commit.
        return [self._create_node(label, row) for row in rows]

    def _claim_nodes(self, label: NodeType, rows: Rows) -> list[GraphNode]:
        found = self._create_nodes(label, rows)
        return [node if node is not None else GraphNode(
            label, row["id"], {k: v for k, v in row.items() if k != "id" and v is not None})
            for row, node in zip(rows, found, strict=True)]

    def _write_batch(self, nodes: Sequence[tuple[NodeType, Rows]],
                     edges: Sequence[tuple[RelType, Rows]], *,
                     one_transaction: bool = False) -> None:
        # NOTE: not atomic; backends override with one transaction.
        del one_transaction
        for label, rows in nodes:
            for batch in _batches(rows, self.batch_size):
                self._upsert_nodes(label, batch)
        for rel_type, rows in edges:
            for batch in _batches(rows, self.batch_size):
                self._upsert_edges(rel_type, batch)

    def _bulk_load(self, nodes: Sequence[tuple[NodeType, pa.Table]],
                   edges: Sequence[tuple[RelType, pa.Table]]) -> dict[str, float]:
        raise NotImplementedError(f"{type(self).__name__} has no bulk path")

    def _bulk_load_refusal(self) -> str | None:
        counts = self.counts()
        held = {name: counts[name] for name in (*self.schema.graph_labels,
                                                 *self.schema.rel_types) if counts.get(name)}
        return f"it is not empty ({describe_counts(held)})" if held else None

    def _rewrite(self, rewrite: Rewrite, chunk_rows: int) -> dict[str, int]:
        raise NotImplementedError(f"{type(self).__name__} cannot rewrite rows")

    def _remove_properties(self, label: NodeType, node_ids: list[str],
                           names: tuple[str, ...]) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot remove properties")

    def _remove_edge_properties(self, rel_type: RelType, src_ids: list[str],
                                names: tuple[str, ...]) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot remove properties")

    @abc.abstractmethod
    def _neighbourhood(self, label: NodeType, node_id: str, hops: int, fanout: int) -> Subgraph: ...

    @abc.abstractmethod
    def _shared_accounts(
        self, user_id: str, via: tuple[NodeType, ...], limit: int
    ) -> list[SharedAccount]: ...

    def _explore(self, fn: Callable[[ExplorationReader], T]) -> T:
        raise NotImplementedError(f"{type(self).__name__} has no exploration reader")

    def _edge_pairs(self, rel_type: RelType) -> pa.Table:
        # NOTE: the whole export, then distinct pairs; backends override with one query.
        table = self._export_edges(rel_type).select(["src", "dst"])
        return table.group_by(["src", "dst"], use_threads=False).aggregate([])

    def _top_nodes(self, label: NodeType, order_by: tuple[str, ...], limit: int,
                   at_least: dict[str, float], unset: tuple[str, ...]) -> list[GraphNode]:
        raise NotImplementedError(f"{type(self).__name__} cannot rank nodes")

    @abc.abstractmethod
    def _find_ids(self, label: NodeType, name: str, value: str | None,
                  limit: int) -> list[str]: ...

    @abc.abstractmethod
    def _counts(self) -> dict[str, int]: ...

    @abc.abstractmethod
    def _node_ids(self, label: NodeType) -> list[str]: ...

    @abc.abstractmethod
    def _export_nodes(self, label: NodeType, *, ordered: bool = True) -> pa.Table: ...

    @abc.abstractmethod
    def _export_edges(self, rel_type: RelType, *, ordered: bool = True) -> pa.Table: ...


def _batches(rows: Rows, size: int) -> Iterator[Rows]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def describe_counts(counts: Mapping[str, int], most: int = 4) -> str:
    """``{"User": 12, "USES": 40}`` as ``12 User, 40 USES``: the ``most`` largest, then how
    many more names hold rows."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{n:,} {name}" for name, n in ranked[:most])
    return text + (f" and {len(ranked) - most} more" if len(ranked) > most else "")


def quote_identifier(name: str, allowed: Iterable[str]) -> str:
    """Backtick-quote a label, type or property after checking it against an allow-list.

    Labels and property names cannot be query parameters, so this is the only way they enter
    a query string.
    """
    if name not in set(allowed):
        raise SchemaError(f"{name!r} is not in the schema")
    return f"`{name}`"


def rows_to_pylist(table: pa.Table) -> list[dict[str, Any]]:
    """A table as plain Python rows with nulls dropped, ready for :meth:`GraphStore.upsert_nodes`."""
    return [{k: v for k, v in row.items() if v is not None} for row in table.to_pylist()]


ARROW_TYPES: Final[dict[str, pa.DataType]] = {
    "STRING": pa.string(),
    "INT64": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOL": pa.bool_(),
}
"""The Arrow type of each schema property type, shared by every store's export."""


def node_arrow_schema(spec: NodeSpec) -> pa.Schema:
    """The export schema of a label: ``id`` then its properties, typed."""
    return pa.schema(
        [
            pa.field("id", pa.string()),
            *(pa.field(p.name, ARROW_TYPES[p.type]) for p in spec.properties),
        ]
    )


def edge_arrow_schema(spec: RelSpec) -> pa.Schema:
    """The export schema of a relationship type: ``src``, ``dst`` then its properties, typed."""
    return pa.schema(
        [
            pa.field("src", pa.string()),
            pa.field("dst", pa.string()),
            *(pa.field(p.name, ARROW_TYPES[p.type]) for p in spec.properties),
        ]
    )


def conform_node_table(spec: NodeSpec, table: pa.Table) -> pa.Table:
    """``table`` with exactly the columns of :func:`node_arrow_schema` (a column it leaves out
    is null), checked: every ``id`` a non-empty string, no id twice.

    Raises:
        SchemaError: on an unknown or mistyped column, a missing, empty or repeated id.
    """
    table = _conform_columns(spec.label, table, node_arrow_schema(spec))
    _check_keys(spec.label, table, ("id",), ("id",))
    return table


def conform_edge_table(spec: RelSpec, table: pa.Table) -> pa.Table:
    """``table`` with exactly the columns of :func:`edge_arrow_schema` (a column it leaves out
    is null), checked: ``src``, ``dst`` (and the key of an event relationship) non-empty
    strings, no relationship twice.

    Raises:
        SchemaError: on an unknown or mistyped column, a missing key or a repeated
            relationship.
    """
    table = _conform_columns(spec.type, table, edge_arrow_schema(spec))
    required = ("src", "dst") if spec.key is None else ("src", "dst", spec.key)
    _check_keys(spec.type, table, required, required)
    return table


def _conform_columns(owner: str, table: pa.Table, schema: pa.Schema) -> pa.Table:
    unknown = set(table.column_names) - set(schema.names)
    if unknown:
        raise SchemaError(f"{owner} has no properties {sorted(unknown)}")
    columns = []
    for f in schema:
        if f.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, f.type))
            continue
        try:
            columns.append(table.column(f.name).cast(f.type, safe=True))
        except (pa.ArrowException, OverflowError) as e:
            raise SchemaError(f"{owner}.{f.name} must be {f.type}: {e}") from e
    return pa.Table.from_arrays(columns, schema=schema)


def _check_keys(owner: str, table: pa.Table, required: tuple[str, ...],
                unique: tuple[str, ...]) -> None:
    for name in required:
        column = table.column(name)
        if column.null_count or (table.num_rows and pc.min(pc.utf8_length(column)).as_py() == 0):
            raise SchemaError(f"{owner} rows need a non-empty string {name!r}")
    distinct = count_distinct_keys(table, unique)
    if distinct != table.num_rows:
        raise SchemaError(f"{owner}: {table.num_rows - distinct} rows repeat a "
                          f"{'/'.join(unique)} of another row")


def count_distinct_keys(table: pa.Table, keys: Sequence[str]) -> int:
    """How many distinct combinations of the columns ``keys`` the rows of ``table`` hold.

    NOTE: a column unique on its own (an event id, a node id) settles it at the cost of hashing
    one column: a third of a multi-column ``group_by`` on 1.4 M logins (0.18 against 0.56 s).
    """
    for key in reversed(keys):  # NOTE: the event key, when there is one, is last
        n = int(table.group_by([key], use_threads=False).aggregate([]).num_rows)
        if n == table.num_rows or len(keys) == 1:
            return n
    return int(table.group_by(list(keys), use_threads=False).aggregate([]).num_rows)


def fold_rows(table: pa.Table, keys: Sequence[str], earliest: Sequence[str] = ()) -> pa.Table:
    """One row per distinct ``keys``, as upserting the rows in order would leave it: per column,
    the last non-null value (the smallest for ``earliest`` columns), null if none.

    Args:
        table (pa.Table): rows in the order they would be written.
        keys (Sequence[str]): the columns that identify a row (``id``; ``src``, ``dst`` and the
            event key).
        earliest (Sequence[str], optional): columns that only move earlier
            (:attr:`graph.schema.Property.earliest`). (default: ``()``)

    Returns:
        pa.Table: the folded rows, columns in ``table``'s order, first-seen order.
    """
    if count_distinct_keys(table, keys) == table.num_rows:
        return table
    others = [c for c in table.column_names if c not in keys]
    aggregates = [(c, "min" if c in earliest else "last") for c in others]
    # NOTE: one thread keeps the rows in order, which ``last`` needs.
    folded = table.group_by(list(keys), use_threads=False).aggregate(aggregates)
    names = {f"{c}_{fn}": c for c, fn in aggregates}
    folded = folded.rename_columns([names.get(c, c) for c in folded.column_names])
    return folded.select(table.column_names).cast(table.schema)


class NeighbourhoodReader(Protocol):
    """The reads :func:`collect_neighbourhood` needs, run inside one read transaction."""

    def neighbours(
        self, label: NodeType, ids: list[str], limit: int
    ) -> dict[str, list[tuple[NodeType, str]]]:
        """Per id, its distinct neighbours over any type and direction, sorted by
        ``(label, id)``, the first ``limit`` of them."""
        ...

    def nodes(self, label: NodeType, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Id -> non-null schema properties (without ``id``) of the ``label`` nodes in ``ids``."""
        ...

    def edges_from(self, label: NodeType, ids: list[str]) -> list[GraphEdge]:
        """Every relationship leaving a ``label`` node in ``ids``, with non-null properties."""
        ...


class LabelExplorationReader(NeighbourhoodReader, Protocol):
    """The reads of :class:`ExplorationReader`, one label per call: what a store whose every
    query is as cheap as its round trip implements (LadybugDB, embedded), adapted by
    :class:`LabelledExplorationReader`."""

    def degrees(self, label: NodeType, ids: list[str], above: int) -> dict[str, int]:
        """Id -> number of relationships (any type, either direction) of the ``label`` nodes
        in ``ids`` that have more than ``above`` distinct neighbours; the others are left
        out."""
        ...

    def edges_between(self, label: NodeType, ids: list[str], targets: list[str]
                      ) -> list[GraphEdge]:
        """Every relationship leaving a ``label`` node in ``ids`` for a node whose id is in
        ``targets`` (of any label), with non-null properties."""
        ...

    def linked(self, label: NodeType, ids: list[str], rel_types: tuple[RelType, ...],
               limit: int) -> dict[str, list[tuple[NodeType, str]] | None]:
        """Per id, its distinct neighbours over ``rel_types`` (either direction), sorted by
        ``(label, id)``; ``None`` for a node that has more than ``limit`` of them."""
        ...


class ExplorationReader(Protocol):
    """What :mod:`graph.exploration` reads, in one transaction, each read over nodes of any
    labels at once (one round trip per read on a server)."""

    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, dict[str, Any]]:
        """Key -> non-null schema properties (without ``id``) of the nodes of ``keys`` that
        exist."""
        ...

    def neighbours(self, keys: Sequence[NodeKey], limit: int) -> dict[NodeKey, list[NodeKey]]:
        """Per node of ``keys``, its distinct neighbours over any type and direction, sorted
        by ``(label, id)``, the first ``limit`` of them."""
        ...

    def degrees(self, keys: Sequence[NodeKey], above: int) -> dict[NodeKey, int]:
        """Key -> number of relationships (any type, either direction) of the nodes of
        ``keys`` that have more than ``above`` distinct neighbours; the others are left out."""
        ...

    def edges_between(self, keys: Sequence[NodeKey], targets: list[str]) -> list[GraphEdge]:
        """Every relationship leaving a node of ``keys`` for a node whose id is in ``targets``
        (of any label), with non-null properties."""
        ...

    def linked(self, keys: Sequence[NodeKey], rel_types: tuple[RelType, ...], limit: int
               ) -> dict[NodeKey, list[NodeKey] | None]:
        """Per node of ``keys``, its distinct neighbours over ``rel_types`` (either
        direction), sorted by ``(label, id)``; ``None`` for a node that has more than
        ``limit`` of them."""
        ...


def ids_by_label(keys: Iterable[NodeKey]) -> dict[NodeType, list[str]]:
    """The distinct ids of ``keys`` per label, labels and ids sorted."""
    found: dict[NodeType, set[str]] = {}
    for label, node_id in keys:
        found.setdefault(label, set()).add(node_id)
    return {label: sorted(found[label]) for label in sorted(found)}


class LabelledExplorationReader:
    """An :class:`ExplorationReader` over a :class:`LabelExplorationReader`: one call of the
    latter per label, labels in sorted order.

    Args:
        reader (LabelExplorationReader): the per-label reads.
    """

    def __init__(self, reader: LabelExplorationReader) -> None:
        self._reader = reader

    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, dict[str, Any]]:
        return {(label, i): props for label, ids in ids_by_label(keys).items()
                for i, props in self._reader.nodes(label, ids).items()}

    def neighbours(self, keys: Sequence[NodeKey], limit: int) -> dict[NodeKey, list[NodeKey]]:
        return {(label, i): near for label, ids in ids_by_label(keys).items()
                for i, near in self._reader.neighbours(label, ids, limit).items()}

    def degrees(self, keys: Sequence[NodeKey], above: int) -> dict[NodeKey, int]:
        return {(label, i): degree for label, ids in ids_by_label(keys).items()
                for i, degree in self._reader.degrees(label, ids, above).items()}

    def edges_between(self, keys: Sequence[NodeKey], targets: list[str]) -> list[GraphEdge]:
        return [e for label, ids in ids_by_label(keys).items()
                for e in self._reader.edges_between(label, ids, targets)]

    def linked(self, keys: Sequence[NodeKey], rel_types: tuple[RelType, ...], limit: int
               ) -> dict[NodeKey, list[NodeKey] | None]:
        return {(label, i): near for label, ids in ids_by_label(keys).items()
                for i, near in self._reader.linked(label, ids, rel_types, limit).items()}


def collect_neighbourhood(
    reader: NeighbourhoodReader,
    schema: Schema,
    label: NodeType,
    node_id: str,
    hops: int,
    fanout: int,
) -> Subgraph:
    """Breadth-first neighbourhood with a per-node, per-hop cap, the same for every store.

    Hop by hop, each frontier node (in ``(label, id)`` order) takes its not yet visited
    neighbours over every relationship type and direction, sorted by ``(label, id)``, and keeps
    the first ``fanout``. The answer holds the visited nodes in ``(hop, label, id)`` order and
    every relationship between two visited nodes in ``(type, src, dst, key)`` order, so the same
    graph always gives the same subgraph.

    Raises:
        GraphError: if the seed does not exist.
    """
    if node_id not in reader.nodes(label, [node_id]):
        raise GraphError(f"no {label} with id {node_id!r}")
    visited: dict[tuple[NodeType, str], int] = {(label, node_id): 0}
    frontier: list[tuple[NodeType, str]] = [(label, node_id)]
    for hop in range(1, hops + 1):
        # NOTE: a node has at most len(visited) visited neighbours, so this many sorted
        # neighbours always hold its first ``fanout`` new ones, however big a hub it is.
        limit = fanout + len(visited)
        found: dict[tuple[NodeType, str], list[tuple[NodeType, str]]] = {}
        for near in sorted({lab for lab, _ in frontier}):
            ids = sorted(i for lab, i in frontier if lab == near)
            for i, neighbours in reader.neighbours(near, ids, limit).items():
                found[(near, i)] = neighbours
        next_frontier: list[tuple[NodeType, str]] = []
        for node in sorted(frontier):
            new = [n for n in sorted(found.get(node, ())) if n not in visited][:fanout]
            for neighbour in new:
                visited[neighbour] = hop
            next_frontier.extend(new)
        frontier = next_frontier
        if not frontier:
            break

    by_label: dict[NodeType, list[str]] = {}
    for lab, i in visited:
        by_label.setdefault(lab, []).append(i)
    props: dict[tuple[NodeType, str], dict[str, Any]] = {}
    edges: list[GraphEdge] = []
    for lab in sorted(by_label):
        ids = sorted(by_label[lab])
        for i, p in reader.nodes(lab, ids).items():
            props[(lab, i)] = p
        edges.extend(
            e for e in reader.edges_from(lab, ids) if (schema.rel(e.type).dst, e.dst) in visited
        )
    edges.sort(key=lambda e: (e.type, e.src, e.dst, _edge_key(schema, e)))
    order = sorted(visited, key=lambda n: (visited[n], n))
    nodes = tuple(GraphNode(lab, i, props.get((lab, i), {})) for lab, i in order)
    return Subgraph(seed=nodes[0], nodes=nodes, edges=tuple(edges))


def _edge_key(schema: Schema, edge: GraphEdge) -> str:
    key = schema.rel(edge.type).key
    return "" if key is None else str(edge.properties.get(key, ""))
