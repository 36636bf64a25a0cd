"""`Neo4jStore`: the relationship graph in Neo4j, through the official driver.

One driver per store (thread-safe, pooled); every call opens a short session on the named
database and runs one managed transaction (``session.execute_read`` / ``execute_write``), which
the driver retries on transient errors, so every transaction function here only reads or MERGEs
and returns plain values. Reads are routed to readers and writes to the leader, so a
``neo4j://`` routing URI to a cluster works unchanged.

Given a :class:`graph.neo4j_import.Neo4jImport` (the server on this machine, which it may stop
and start), the store has a bulk path: an empty database is replaced by one that
``neo4j-admin database import`` builds offline from the loader's folded tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final, LiteralString, TypeVar

import neo4j
import pyarrow as pa
from neo4j import (
    GraphDatabase,
    ManagedTransaction,
    NotificationDisabledClassification,
    RoutingControl,
)
from neo4j.exceptions import (
    ConnectionPoolError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from graph import _neo4j_queries as queries
from graph.errors import GraphError, StoreError, StoreUnavailableError, TransactionLimitError
from graph.neo4j_import import Neo4jImport
from graph.schema import PSEUDONYM_KEY, SCHEMA, STORE_IDENTITY, NodeSpec, RelSpec, Schema
from graph.store import (
    SHARED_VIA,
    GraphEdge,
    GraphNode,
    ExplorationReader,
    GraphStore,
    Rewrite,
    SharedAccount,
    Subgraph,
    collect_neighbourhood,
    describe_counts,
    edge_arrow_schema,
    ids_by_label,
    node_arrow_schema,
)
from graph.typing import NodeKey, NodeType, RelType, Row, Rows

T = TypeVar("T")

_BOLT_SCHEMES: Final = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
_UNAVAILABLE: Final = (ServiceUnavailable, SessionExpired, ConnectionPoolError, TransientError)
_LIMIT_CODES: Final = ("TransactionTimedOut", "MemoryPoolOutOfMemoryError",
                       "LockAcquisitionTimeout", "LockClientStopped")
"""Server errors of a transaction that ran past a time, memory or lock-wait limit
(``LockClientStopped``: timed out while waiting for a lock)."""
_CARRIED_OVER: Final = (STORE_IDENTITY, PSEUDONYM_KEY)
"""What an offline import keeps of the database it replaces (:meth:`Neo4jStore._bulk_load`)."""


class Neo4jStore(GraphStore):
    """The graph in a Neo4j database.

    Args:
        driver (neo4j.Driver): the process's driver; the store closes it only when it built it
            (:meth:`from_uri`).
        database (str, optional): the database to use, named on every call.
            (default: ``"neo4j"``)
        query_timeout (float, optional): server-side timeout of each transaction in seconds;
            ``None`` keeps the server's default. (default: ``None``)
        schema (Schema, optional): the schema to enforce. (default: :data:`graph.SCHEMA`)
        batch_size (int, optional): rows per write transaction. (default: ``5000``)
        bulk_import (Neo4jImport, optional): the server's offline import, which makes
            :meth:`bulk_load` (and so :func:`graph.loader.load_world` into an empty database)
            stop the server, replace the database and start it again. (default: ``None``: no
            bulk path)
    """

    backend = "neo4j"

    def __init__(
        self,
        driver: neo4j.Driver,
        *,
        database: str = "neo4j",
        query_timeout: float | None = None,
        schema: Schema = SCHEMA,
        batch_size: int = 5000,
        bulk_import: Neo4jImport | None = None,
    ) -> None:
        super().__init__(schema=schema, batch_size=batch_size)
        self.bulk_import = bulk_import
        self.supports_bulk_load = bulk_import is not None
        if not database:
            raise ValueError(f"database must be a non-empty name, got {database!r}")
        if query_timeout is not None and query_timeout <= 0:
            raise ValueError(f"query_timeout must be positive, got {query_timeout}")
        self.driver = driver
        self.database = database
        self.query_timeout = query_timeout
        self._owns_driver = False

    @classmethod
    def from_uri(
        cls,
        uri: str,
        *,
        auth: tuple[str, str],
        database: str = "neo4j",
        max_connection_pool_size: int = 100,
        connection_timeout: float = 30.0,
        query_timeout: float | None = None,
        max_transaction_retry_time: float = 30.0,
        schema: Schema = SCHEMA,
        batch_size: int = 5000,
        bulk_import: Neo4jImport | None = None,
    ) -> Neo4jStore:
        """Build the driver for ``uri`` (``bolt://``, ``neo4j://`` or their ``+s`` forms) and a
        store that owns it.

        Args:
            uri (str): server or cluster address.
            auth (tuple[str, str]): user and password.
            database (str, optional): database name. (default: ``"neo4j"``)
            max_connection_pool_size (int, optional): connections per server.
                (default: ``100``)
            connection_timeout (float, optional): seconds to open a connection.
                (default: ``30.0``)
            query_timeout (float, optional): seconds per transaction. (default: ``None``)
            max_transaction_retry_time (float, optional): seconds the driver keeps retrying a
                transaction that failed transiently. (default: ``30.0``)
            schema (Schema, optional): the schema. (default: :data:`graph.SCHEMA`)
            batch_size (int, optional): rows per write transaction. (default: ``5000``)
            bulk_import (Neo4jImport, optional): the server's offline import (see the class).
                (default: ``None``)

        Raises:
            ValueError: on a URI that is not Bolt (``http://`` is the driver's preview API,
                without managed transactions).
            StoreError: on a malformed URI or configuration.
        """
        scheme = uri.partition("://")[0]
        if scheme not in _BOLT_SCHEMES:
            raise ValueError(f"uri must use one of {_BOLT_SCHEMES}, got {uri!r}")
        try:
            driver = GraphDatabase.driver(
                uri,
                auth=auth,
                max_connection_pool_size=max_connection_pool_size,
                connection_timeout=connection_timeout,
                max_transaction_retry_time=max_transaction_retry_time,
            )
        except (ValueError, DriverError) as e:
            raise StoreError(f"cannot build a Neo4j driver for {uri!r}: {e}") from e
        store = cls(
            driver,
            database=database,
            query_timeout=query_timeout,
            schema=schema,
            batch_size=batch_size,
            bulk_import=bulk_import,
        )
        store._owns_driver = True
        return store

    def __repr__(self) -> str:
        return f"{type(self).__name__}(database={self.database!r})"

    # -- plumbing ----------------------------------------------------------------------------
    def _execute(
        self, text: LiteralString, params: dict[str, Any], routing: RoutingControl,
        *, untimed: bool = False,
    ) -> list[dict[str, Any]]:
        """One statement in one managed transaction; its records as dicts, fully read."""

        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            return [record.data() for record in tx.run(text, params)]

        return self._transaction(work, routing, untimed=untimed)

    def _transaction(
        self, work: Callable[[ManagedTransaction], T], routing: RoutingControl,
        *, untimed: bool = False,
    ) -> T:
        """Run ``work`` in one managed transaction (retried as a whole on transient errors);
        ``untimed``: without the store's ``query_timeout``."""
        unit = neo4j.unit_of_work(timeout=None if untimed else self.query_timeout)(work)
        try:
            # NOTE: schema-driven queries name every property of a label, set or not, and
            # apply_schema creates each index "IF NOT EXISTS": the server's "property does not
            # exist" and "index already exists" notices are noise (one log line per index on
            # every `riskgraph load`).
            with self.driver.session(
                database=self.database,
                notifications_disabled_classifications=[
                    NotificationDisabledClassification.UNRECOGNIZED,
                    NotificationDisabledClassification.SCHEMA,
                ],
            ) as session:
                if routing == RoutingControl.READ:
                    return session.execute_read(unit)
                return session.execute_write(unit)
        except (Neo4jError, DriverError) as e:
            raise _translate(e, "Neo4j transaction failed") from e

    # -- lifecycle ---------------------------------------------------------------------------
    def _apply_schema(self, *, untimed: bool = False) -> None:
        statements: list[LiteralString] = []
        for node in self.schema.nodes:
            statements.append(queries.unique_id_constraint(node))
            statements.extend(queries.node_index(node, prop) for prop in node.indexes)
        for rel in self.schema.rels:
            if rel.key is not None:
                statements.append(queries.rel_key_index(rel))
        # NOTE: schema commands cannot share a transaction with each other's data, so one each.
        for statement in statements:
            self._execute(statement, {}, RoutingControl.WRITE, untimed=untimed)
        self._execute(queries.AWAIT_INDEXES, {"seconds": 300}, RoutingControl.WRITE,
                      untimed=untimed)

    def _ping(self) -> None:
        # NOTE: one auto-commit query, not a managed transaction: the driver retries those for
        # up to max_transaction_retry_time, and a ping must say "down" within one connection
        # timeout (a replica starting or probing while the server is down waits on it).
        try:
            with self.driver.session(database=self.database,
                                     default_access_mode=neo4j.READ_ACCESS) as session:
                session.run(queries.PING).consume()
        except (Neo4jError, DriverError) as e:
            # NOTE: refused credentials stay a StoreError: not an outage to wait out.
            raise _translate(e, "Neo4j does not answer") from e

    def _close(self) -> None:
        if self._owns_driver:
            self.driver.close()

    def clear(self, *, batch_size: int = 10_000) -> int:
        """Delete every node and relationship of the database, in batches; for tests and
        rebuilds. Returns the number of nodes deleted."""
        # NOTE: relationships first, each batch bounded: a batch of nodes deleted with their
        # relationships holds every relationship of its hubs in one transaction (a partly
        # loaded 100k-user world: over the server's 1.4 GiB of transaction memory, and a clear
        # that never finishes).
        while int(self._execute(queries.DELETE_EDGE_BATCH, {"limit": batch_size},
                                RoutingControl.WRITE)[0]["deleted"]):
            pass
        total = 0
        while True:
            records = self._execute(
                queries.DELETE_BATCH, {"limit": batch_size}, RoutingControl.WRITE
            )
            deleted = int(records[0]["deleted"])
            total += deleted
            if deleted == 0:
                return total

    # -- writes ------------------------------------------------------------------------------
    def _upsert_nodes(self, label: NodeType, rows: Rows) -> None:
        spec = self.schema.node(label)
        params = {"rows": node_rows(spec, rows)}
        self._execute(queries.upsert_nodes(spec), params, RoutingControl.WRITE)

    def _upsert_edges(self, rel_type: RelType, rows: Rows) -> None:
        spec = self.schema.rel(rel_type)
        params = {"rows": edge_rows(spec, rows)}
        self._execute(queries.upsert_edges(spec), params, RoutingControl.WRITE)

    def _create_node(self, label: NodeType, row: Row) -> GraphNode | None:
        spec = self.schema.node(label)
        (params,) = node_rows(spec, [row])
        query = queries.create_node(spec)

        def work(tx: ManagedTransaction) -> tuple[dict[str, Any], bool]:
            result = tx.run(query, id=params["id"], props=params["props"])
            record = result.single(strict=True)
            created = result.consume().counters.nodes_created > 0
            return dict(record["props"]), created

        props, created = self._transaction(work, RoutingControl.WRITE)
        if created:
            return None
        return GraphNode(label, row["id"], _schema_props(spec.columns[1:], props))

    def _create_nodes(self, label: NodeType, rows: Rows) -> list[GraphNode | None]:
        spec = self.schema.node(label)
        params = node_rows(spec, rows)
        query = queries.create_node(spec)

        def work(tx: ManagedTransaction) -> list[tuple[dict[str, Any], bool]]:
            found = []
            for p in params:
                result = tx.run(query, id=p["id"], props=p["props"])
                record = result.single(strict=True)
                found.append((dict(record["props"]), result.consume().counters.nodes_created > 0))
            return found

        found = self._transaction(work, RoutingControl.WRITE)
        return [None if created else GraphNode(label, row["id"], _schema_props(
            spec.columns[1:], props)) for row, (props, created) in zip(rows, found, strict=True)]

    def _claim_nodes(self, label: NodeType, rows: Rows) -> list[GraphNode]:
        spec = self.schema.node(label)
        # NOTE: in id order, so that two claims of overlapping ids take their locks in one
        # order and cannot deadlock.
        params = sorted(node_rows(spec, rows), key=lambda p: str(p["id"]))
        records = self._execute(queries.claim_nodes(spec), {"rows": params},
                                RoutingControl.WRITE)
        held = {r["id"]: _schema_props(spec.columns[1:], r["props"]) for r in records}
        return [GraphNode(label, row["id"], held[row["id"]]) for row in rows]

    def _write_batch(self, nodes: Sequence[tuple[NodeType, Rows]],
                     edges: Sequence[tuple[RelType, Rows]], *,
                     one_transaction: bool = False) -> None:
        # NOTE: always one transaction, its statements of ``batch_size`` rows each.
        del one_transaction
        statements: list[tuple[LiteralString, list[dict[str, Any]]]] = []
        for label, rows in nodes:
            spec = self.schema.node(label)
            statements.append((queries.upsert_nodes(spec), node_rows(spec, rows)))
        for rel_type, rows in edges:
            rel = self.schema.rel(rel_type)
            statements.append((queries.upsert_edges(rel), edge_rows(rel, rows)))

        def work(tx: ManagedTransaction) -> None:
            for query, batch in statements:
                for start in range(0, len(batch), self.batch_size):
                    tx.run(query, rows=batch[start:start + self.batch_size]).consume()

        self._transaction(work, RoutingControl.WRITE)

    def _remove_properties(self, label: NodeType, node_ids: list[str],
                           names: tuple[str, ...]) -> None:
        query = queries.remove_node_properties(self.schema.node(label), names)
        self._execute(query, {"ids": node_ids}, RoutingControl.WRITE)

    def _remove_edge_properties(self, rel_type: RelType, src_ids: list[str],
                                names: tuple[str, ...]) -> None:
        query = queries.remove_edge_properties(self.schema.rel(rel_type), names)
        self._execute(query, {"ids": src_ids}, RoutingControl.WRITE)

    def _bulk_load_refusal(self) -> str | None:
        # NOTE: the import replaces the whole database, so every node counts, API keys and
        # verdicts too (they would be lost), and nodes of labels the schema does not know;
        # only the store's identity and its pseudonymisation keys are carried over (into the
        # imported database: `load` records the key before it loads).
        counts = self.counts()
        held = {name: n for name, n in counts.items() if n and name not in _CARRIED_OVER}
        if not held:
            known = sum(counts[label] for label in self.schema.labels)
            (total,) = self._execute(queries.COUNT_ALL_NODES, {}, RoutingControl.READ)
            if int(total["n"]) > known:
                held = {"nodes of other labels": int(total["n"]) - known}
        return f"it is not empty ({describe_counts(held)})" if held else None

    def _bulk_load(self, nodes: Sequence[tuple[NodeType, pa.Table]],
                   edges: Sequence[tuple[RelType, pa.Table]]) -> dict[str, float]:
        """Replace the (empty) database with one neo4j-admin imports offline from the tables,
        carrying over the store's identity, then apply the schema on it.

        NOTE: neo4j-admin builds the database in a staging directory that replaces this one
        only when the import succeeded (:class:`graph.neo4j_import.Neo4jScript`): all or
        nothing, like LadybugDB's one transaction. Nothing can write the database while the
        server is down; the check for emptiness runs again right before the server stops.
        """
        assert self.bulk_import is not None
        refusal = self._bulk_load_refusal()
        if refusal is not None:
            raise StoreError(f"bulk_load replaces the whole database {self.database!r}, so it "
                             f"must be empty; {refusal}")
        for label in _CARRIED_OVER:
            kept = self._export_nodes(label)
            if kept.num_rows:
                nodes = [*nodes, (label, kept)]
        seconds = self.bulk_import.run(self.schema, self.database, nodes, edges)
        clock = time.perf_counter()
        try:
            # NOTE: untimed: on an imported database each constraint and index is built over
            # all the rows at once, which may take longer than one transaction is allowed.
            self._apply_schema(untimed=True)
        except GraphError as e:
            raise StoreError(f"{self.database!r} was imported whole, but its schema could not "
                             f"be applied ({e}); apply it with `riskgraph schema`") from e
        seconds["schema"] = time.perf_counter() - clock
        return seconds

    def _rewrite(self, rewrite: Rewrite, chunk_rows: int) -> dict[str, int]:
        """In place, chunk by chunk: each chunk's rows are rewritten and marked in one
        transaction, so a run stopped anywhere resumes at the first row not marked.

        NOTE: relationship ends need no rewriting here: a relationship points at its nodes,
        not at their ids."""
        done: dict[str, int] = {}
        for label in rewrite.node_labels:
            done[label] = self._rewrite_nodes(rewrite, label, chunk_rows)
        for rel_type, names in rewrite.edge_columns.items():
            done[rel_type] = self._rewrite_edges(rewrite, rel_type, names, chunk_rows)
        for label in rewrite.final_labels:
            done[label] = self._rewrite_nodes(rewrite, label, chunk_rows)
        return done

    def _rewrite_nodes(self, rewrite: Rewrite, label: NodeType, chunk_rows: int) -> int:
        spec = self.schema.node(label)
        after, total = "", 0
        while True:
            records = self._execute(queries.unmarked_nodes(spec), {
                "after": after, "mark": rewrite.mark, "limit": chunk_rows}, RoutingControl.READ)
            if not records:
                return total
            rows = []
            for record in records:
                row = {k: v for k, v in record.items() if v is not None}
                new = rewrite.node_row(label, row)
                self.schema.check_node_row(label, new)
                (params,) = node_rows(spec, [new])
                rows.append({"old": record["id"], **params})
            self._execute(queries.rewrite_nodes(spec), {"rows": rows, "mark": rewrite.mark},
                          RoutingControl.WRITE)
            total += len(rows)
            after = str(records[-1]["id"])

    def _rewrite_edges(self, rewrite: Rewrite, rel_type: RelType, names: tuple[str, ...],
                       chunk_rows: int) -> int:
        spec = self.schema.rel(rel_type)
        after, total = "", 0
        while True:
            records = self._execute(queries.unmarked_edges(spec, names), {
                "after": after, "mark": rewrite.mark, "limit": chunk_rows}, RoutingControl.READ)
            if not records:
                return total
            rows = [{"key": r["key"], "props": {
                n: v for n in names
                if (v := rewrite.edge_value(rel_type, n, r[n])) is not None}}
                for r in records]
            self._execute(queries.rewrite_edges(spec), {"rows": rows, "mark": rewrite.mark},
                          RoutingControl.WRITE)
            total += len(rows)
            after = str(records[-1]["key"])

    # -- reads -------------------------------------------------------------------------------
    def _get_node(self, label: NodeType, node_id: str) -> GraphNode | None:
        spec = self.schema.node(label)
        records = self._execute(queries.get_nodes(spec), {"ids": [node_id]}, RoutingControl.READ)
        if not records:
            return None
        return GraphNode(label, node_id, _schema_props(spec.columns[1:], records[0]["props"]))

    def _get_nodes(self, label: NodeType, node_ids: list[str]) -> dict[str, GraphNode]:
        spec = self.schema.node(label)
        records = self._execute(queries.get_nodes(spec), {"ids": node_ids}, RoutingControl.READ)
        return {r["id"]: GraphNode(label, r["id"], _schema_props(spec.columns[1:], r["props"]))
                for r in records}

    def _neighbourhood(self, label: NodeType, node_id: str, hops: int, fanout: int) -> Subgraph:
        schema = self.schema
        return self._transaction(
            lambda tx: collect_neighbourhood(
                _Reader(tx, schema), schema, label, node_id, hops, fanout
            ),
            RoutingControl.READ,
        )

    def _shared_accounts(
        self, user_id: str, via: tuple[NodeType, ...], limit: int
    ) -> list[SharedAccount]:
        rels = {label: self.schema.rel(SHARED_VIA[label]) for label in via}
        per_via = [
            (label, queries.shared_accounts(self.schema.node(label), rels[label])) for label in via
        ]

        def work(tx: ManagedTransaction) -> list[SharedAccount]:
            found: list[SharedAccount] = []
            for label, query in per_via:
                for record in tx.run(query, id=user_id, limit=limit):
                    found.append(
                        SharedAccount(
                            label,
                            record["via_id"],
                            record["user_id"],
                            record["fraud_label"],
                            record["default_label"],
                        )
                    )
            return found[:limit]

        return self._transaction(work, RoutingControl.READ)

    def _find_ids(self, label: NodeType, name: str, value: str | None,
                  limit: int) -> list[str]:
        spec = self.schema.node(label)
        records = self._execute(queries.find_ids(spec, name, value is None),
                                {"value": value, "limit": limit}, RoutingControl.READ)
        return [str(r["id"]) for r in records]

    def _explore(self, fn: Callable[[ExplorationReader], T]) -> T:
        schema = self.schema
        return self._transaction(lambda tx: fn(_ExplorationReader(tx, schema)),
                                 RoutingControl.READ)

    def _edge_pairs(self, rel_type: RelType) -> pa.Table:
        query = queries.edge_pairs(self.schema.rel(rel_type))

        def work(tx: ManagedTransaction) -> tuple[list[str], list[str]]:
            src: list[str] = []
            dst: list[str] = []
            for record in tx.run(query):
                src.append(record[0])
                dst.append(record[1])
            return src, dst

        src, dst = self._transaction(work, RoutingControl.READ)
        return pa.table({"src": pa.array(src, pa.string()), "dst": pa.array(dst, pa.string())})

    def _top_nodes(self, label: NodeType, order_by: tuple[str, ...], limit: int,
                   at_least: dict[str, float], unset: tuple[str, ...]) -> list[GraphNode]:
        spec = self.schema.node(label)
        query = queries.top_nodes(spec, order_by, tuple(at_least), unset)
        params: dict[str, Any] = {"limit": limit, **{f"min_{k}": v for k, v in at_least.items()}}
        return [GraphNode(label, r["id"], _schema_props(spec.columns[1:], r["props"]))
                for r in self._execute(query, params, RoutingControl.READ)]

    def _node_ids(self, label: NodeType) -> list[str]:
        spec = self.schema.node(label)
        return [str(r["id"]) for r in self._execute(queries.node_ids(spec), {},
                                                    RoutingControl.READ)]

    def _counts(self) -> dict[str, int]:
        counters = [(n.label, queries.count_nodes(n)) for n in self.schema.nodes]
        counters += [(r.type, queries.count_edges(r)) for r in self.schema.rels]

        def work(tx: ManagedTransaction) -> dict[str, int]:
            return {name: int(tx.run(query).single(strict=True)["n"]) for name, query in counters}

        return self._transaction(work, RoutingControl.READ)

    def _export_nodes(self, label: NodeType, *, ordered: bool = True) -> pa.Table:
        spec = self.schema.node(label)
        return self._export(queries.export_nodes(spec, ordered), node_arrow_schema(spec))

    def _export_edges(self, rel_type: RelType, *, ordered: bool = True) -> pa.Table:
        spec = self.schema.rel(rel_type)
        return self._export(queries.export_edges(spec, ordered), edge_arrow_schema(spec))

    def _export(self, query: LiteralString, schema: pa.Schema) -> pa.Table:
        def work(tx: ManagedTransaction) -> list[list[Any]]:
            columns: list[list[Any]] = [[] for _ in schema.names]
            for record in tx.run(query):
                for column, value in zip(columns, record.values()):
                    column.append(value)
            return columns

        # NOTE: untimed: an export reads a whole label or type (1.4M logins of the 100k-user
        # world: 30-80 s on a busy two-core host), longer than any timeout meant for the
        # service's short transactions; ended at that timeout, the service started without its
        # graph. A read takes no locks, so it holds up no writer meanwhile.
        columns = self._transaction(work, RoutingControl.READ, untimed=True)
        try:
            return pa.table(
                [pa.array(c, type=f.type) for c, f in zip(columns, schema)], schema=schema
            )
        except (pa.ArrowException, OverflowError) as e:
            raise StoreError(f"stored values do not fit the schema: {e}") from e


class _Reader:
    """:class:`graph.store.NeighbourhoodReader` inside one Neo4j read transaction."""

    def __init__(self, tx: ManagedTransaction, schema: Schema) -> None:
        self._tx = tx
        self._schema = schema

    def neighbours(
        self, label: NodeType, ids: list[str], limit: int
    ) -> dict[str, list[tuple[NodeType, str]]]:
        found: dict[str, list[tuple[NodeType, str]]] = {i: [] for i in ids}
        known = set(self._schema.labels)
        query = queries.neighbours(self._schema.node(label))
        for record in self._tx.run(query, ids=ids, limit=limit):
            if record["label"] in known and record["id"] is not None:
                found[record["near"]].append((record["label"], record["id"]))
        return {i: sorted(n) for i, n in found.items()}

    def nodes(self, label: NodeType, ids: list[str]) -> dict[str, dict[str, Any]]:
        spec = self._schema.node(label)
        names = spec.columns[1:]
        return {
            record["id"]: _schema_props(names, record["props"])
            for record in self._tx.run(queries.get_nodes(spec), ids=ids)
        }

    def edges_from(self, label: NodeType, ids: list[str]) -> list[GraphEdge]:
        return self._edges(queries.edges_from(self._schema.node(label)), {"ids": ids})

    def _edges(self, query: LiteralString, params: dict[str, Any]) -> list[GraphEdge]:
        known = set(self._schema.rel_types)
        edges: list[GraphEdge] = []
        for record in self._tx.run(query, params):
            rel_type = record["type"]
            if rel_type not in known:
                continue
            names = tuple(p.name for p in self._schema.rel(rel_type).properties)
            props = _schema_props(names, record["props"])
            edges.append(GraphEdge(rel_type, record["src"], record["dst"], props))
        return edges


class _ExplorationReader:
    """:class:`graph.store.ExplorationReader` inside one Neo4j read transaction: each read
    is one statement over the nodes of every label it is given."""

    def __init__(self, tx: ManagedTransaction, schema: Schema) -> None:
        self._tx = tx
        self._schema = schema

    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, dict[str, Any]]:
        if not keys:
            return {}
        specs, params = self._anchor(keys)
        names = [spec.columns[1:] for spec in specs]
        return {
            (specs[r["near_label"]].label, r["id"]): _schema_props(names[r["near_label"]],
                                                                   r["props"])
            for r in self._tx.run(queries.nodes_of(specs), params)
        }

    def neighbours(self, keys: Sequence[NodeKey], limit: int) -> dict[NodeKey, list[NodeKey]]:
        found: dict[NodeKey, list[NodeKey]] = {key: [] for key in keys}
        if not keys:
            return found
        known = set(self._schema.labels)
        specs, params = self._anchor(keys)
        for r in self._tx.run(queries.neighbours_of(specs), params, limit=limit):
            found[(specs[r["near_label"]].label, r["id"])] = sorted(
                (label, i) for label, i in r["near"] if label in known and i is not None)
        return found

    def degrees(self, keys: Sequence[NodeKey], above: int) -> dict[NodeKey, int]:
        if not keys:
            return {}
        specs, params = self._anchor(keys)
        return {(specs[r["near_label"]].label, r["id"]): int(r["degree"])
                for r in self._tx.run(queries.degrees_of(specs), params, above=above,
                                      cap=above + 1)}

    def edges_between(self, keys: Sequence[NodeKey], targets: list[str]) -> list[GraphEdge]:
        if not keys:
            return []
        specs, params = self._anchor(keys)
        known = set(self._schema.rel_types)
        edges: list[GraphEdge] = []
        for r in self._tx.run(queries.edges_between_of(specs), params, targets=targets):
            if r["type"] not in known:
                continue
            names = tuple(p.name for p in self._schema.rel(r["type"]).properties)
            edges.extend(GraphEdge(r["type"], r["src"], r["dst"], _schema_props(names, props))
                         for props in r["props"])
        return edges

    def linked(self, keys: Sequence[NodeKey], rel_types: tuple[RelType, ...], limit: int
               ) -> dict[NodeKey, list[NodeKey] | None]:
        rels = tuple(map(self._schema.rel, rel_types))
        # NOTE: a label that none of ``rels`` touches has no such neighbours: not read.
        touched = [key for key in keys if any(key[0] in (r.src, r.dst) for r in rels)]
        found: dict[NodeKey, list[NodeKey] | None] = {key: [] for key in keys}
        if touched:
            specs, params = self._anchor(touched)
            for r in self._tx.run(queries.linked_of(specs, rels), params, limit=limit,
                                  cap=limit + 1):
                near = r["near"]
                found[(specs[r["near_label"]].label, r["id"])] = None if near is None else sorted(
                    (label, i) for label, i in near if i is not None)
        return found

    def _anchor(self, keys: Sequence[NodeKey]) -> tuple[tuple[NodeSpec, ...], dict[str, Any]]:
        by_label = ids_by_label(keys)
        specs = tuple(self._schema.node(label) for label in by_label)
        return specs, {"ids": list(by_label.values())}


# -- row building (pure, unit-tested without a database) -------------------------------------
def node_rows(spec: NodeSpec, rows: Rows) -> list[dict[str, Any]]:
    """Validated node rows as ``{"id", "props"}`` parameters.

    ``props`` drops nulls (Neo4j's ``SET n += {p: null}`` would delete ``p``, while a null here
    means "not given") and turns ints in DOUBLE properties into floats, so that Neo4j stores
    the type the schema says.
    """
    doubles = {p.name for p in spec.properties if p.type == "DOUBLE"}
    return [
        {"id": row["id"], "props": _props(row, ("id",), doubles)} for row in rows
    ]


def edge_rows(spec: RelSpec, rows: Rows) -> list[dict[str, Any]]:
    """Validated relationship rows as ``{"src", "dst", "key", "props"}`` parameters."""
    doubles = {p.name for p in spec.properties if p.type == "DOUBLE"}
    fixed = ("src", "dst") if spec.key is None else ("src", "dst", spec.key)
    out = []
    for row in rows:
        params = {"src": row["src"], "dst": row["dst"], "props": _props(row, fixed, doubles)}
        if spec.key is not None:
            params["key"] = row[spec.key]
        out.append(params)
    return out


def _props(row: Row, skip: Sequence[str], doubles: set[str]) -> dict[str, Any]:
    return {
        k: float(v) if k in doubles else v
        for k, v in row.items()
        if v is not None and k not in skip
    }


def _schema_props(names: Sequence[str], props: dict[str, Any]) -> dict[str, Any]:
    return {k: props[k] for k in names if props.get(k) is not None}


def _translate(e: Exception, what: str) -> GraphError:
    message = f"{what}: {e}"
    code = (e.code or "") if isinstance(e, Neo4jError) else ""
    # NOTE: checked before the transient errors: the memory pool's refusal is transient to the
    # driver (it retries it), but only a smaller transaction gets past it.
    if any(limit in code for limit in _LIMIT_CODES):
        return TransactionLimitError(message)
    if isinstance(e, _UNAVAILABLE):
        return StoreUnavailableError(message)
    return StoreError(message)
