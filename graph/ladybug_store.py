"""`LadybugStore`: the relationship graph in an embedded LadybugDB file.

LadybugDB (the maintained Kùzu fork) lets one process open a database file for writing and runs
one write transaction at a time; a second concurrent writer fails ("Only one write transaction
at a time is allowed"). The store therefore has one write path: a single writer thread owns the
write connection and runs every write in submission order, while callers on any thread wait for
their own write. Reads run concurrently, each on a connection borrowed from a small pool (a
connection serves one thread at a time).

Writes scan a typed Arrow batch (``LOAD FROM $rows MERGE ...``) rather than ``UNWIND`` a list
parameter: the list path infers a type per batch (a column that is null in every row becomes
STRING and breaks the ``SET``) and, measured on 100k rows, is 20-25x slower.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, LiteralString, TypeVar

import ladybug
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from graph import _ladybug_queries as queries
from graph._ladybug_documents import DocumentFile
from graph.errors import (
    BufferPoolFullError,
    GraphError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
)
from graph.schema import SCHEMA, NodeSpec, RelSpec, Schema
from graph.store import (
    SHARED_VIA,
    GraphEdge,
    GraphNode,
    ExplorationReader,
    GraphStore,
    LabelledExplorationReader,
    Rewrite,
    SharedAccount,
    Subgraph,
    collect_neighbourhood,
    edge_arrow_schema,
    node_arrow_schema,
)
from graph.typing import NodeType, RelType, Row, Rows

T = TypeVar("T")
log = logging.getLogger(__name__)

# NOTE: the ladybug client caches a prepared statement per Arrow table passed as a parameter
# (each new table is a new cache key) and never evicts them; after ~1,400 writes every write
# slows down by orders of magnitude (seconds, then minutes). The connection also keeps memory
# in the buffer pool for every row it has written (about 7 KB a relationship row, measured):
# a 100k-user world's 1.4 M logins exhausted a 19 GiB pool. A fresh write connection after
# this many writes or rows drops both (measured: 300k relationships in 0.7 GiB instead of
# failing at 250k in a 2 GiB pool).
_RECYCLE_WRITES: Final = 256
_RECYCLE_ROWS: Final = 50_000
_EXEC_THREADS: Final = os.cpu_count() or 1
"""Threads a statement may use (the database's default: one per core)."""
SMALL_BATCH_ROWS: Final = 512
"""Writes of at most this many rows go one indexed statement per row (online writes: a
verdict's application and edges, a replayed group of them); larger ones as one ``LOAD FROM``
join (bulk loads).

NOTE: the join scans the whole table on every core: on the 100k-user store about 100 ms for
any number of rows (100 applications and their edges: join 320 ms, row by row 62 ms; 400: 106
and 147 ms; 1,000: 116 and 328 ms). At 64, a write-behind that fell behind by a second merged
more than 64 verdicts, went the join way, fell further behind and stayed there (both cores
busy for the rest of a benchmark run)."""

# NOTE: LadybugDB reports every failure as RuntimeError; these messages mean "someone else
# holds the file or it is busy", which retrying later can fix.
_UNAVAILABLE: Final = (
    "Could not set lock on file",
    "checkpoint is in progress",
    "Only one write transaction",
)
_POOL_FULL: Final = "buffer pool is full"
"""LadybugDB's words when its buffer pool cannot take another page (the message of a
``BufferManagerException``; the same text when it fails a commit's checkpoint)."""


class LadybugStore(GraphStore):
    """The graph in a LadybugDB database file, with one writer thread.

    Args:
        path (str or Path): the database file; created on first open unless ``read_only``.
        read_only (bool, optional): open without the write lock, so that other processes may
            read the same file; writes raise :class:`graph.StoreError`. (default: ``False``)
        schema (Schema, optional): the schema to enforce. (default: :data:`graph.SCHEMA`)
        batch_size (int, optional): rows per write transaction. (default: ``5000``)
        buffer_pool_bytes (int, optional): page cache of the database; ``0`` lets LadybugDB
            take 80 % of the machine's memory, which a long-running service sharing a host
            must not. (default: ``0``)
        checkpoint_wal_bytes (int, optional): write-ahead log size at which the database
            checkpoints; ``0`` keeps LadybugDB's own (16 MiB). (default: ``0``)

    Raises:
        StoreUnavailableError: if another process holds the file for writing.
        BufferPoolFullError: here or from any call, when the buffer pool is too small for
            the work (LadybugDB cannot free a page for it).
    """

    backend = "ladybug"
    exclusive_writer = True
    supports_bulk_load = True

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        schema: Schema = SCHEMA,
        batch_size: int = 5000,
        buffer_pool_bytes: int = 0,
        checkpoint_wal_bytes: int = 0,
    ) -> None:
        super().__init__(schema=schema, batch_size=batch_size)
        if buffer_pool_bytes < 0:
            raise ValueError(f"buffer_pool_bytes must be >= 0, got {buffer_pool_bytes}")
        if checkpoint_wal_bytes < 0:
            raise ValueError(f"checkpoint_wal_bytes must be >= 0, got {checkpoint_wal_bytes}")
        self.path = Path(path)
        self.read_only = read_only
        self.buffer_pool_bytes = buffer_pool_bytes
        self.checkpoint_wal_bytes = checkpoint_wal_bytes
        _finish_swap(self.path)
        self._open()

    def _open(self) -> None:
        try:
            self._db = ladybug.Database(str(self.path), read_only=self.read_only,
                                        buffer_pool_size=self.buffer_pool_bytes)
        except RuntimeError as e:
            raise self._translate(e, f"cannot open LadybugDB at {self.path}") from e
        if not self.read_only and self.checkpoint_wal_bytes:
            conn = ladybug.Connection(self._db)
            try:
                _execute(conn, queries.checkpoint_threshold(self.checkpoint_wal_bytes)).close()
            finally:
                conn.close()
        self._documents = DocumentFile(_documents_path(self.path),
                                       [n for n in self.schema.nodes if n.documents],
                                       read_only=self.read_only)
        self._closed = False
        self._pool: queue.SimpleQueue[ladybug.Connection] = queue.SimpleQueue()
        self._connections: list[ladybug.Connection] = []
        self._connections_lock = threading.Lock()
        self._writer = (
            None
            if self.read_only
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="ladybug-writer")
        )
        self._distinct_floor = _DistinctFloor()
        # NOTE: touched only on the writer thread, created there on the first write.
        self._write_connection: ladybug.Connection | None = None
        self._writes = 0  # since the write connection was opened
        self._rows_written = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, read_only={self.read_only})"

    # -- plumbing ----------------------------------------------------------------------------
    def _write(self, fn: Callable[[ladybug.Connection], T], rows: int = 1,
               adds_only: bool = False) -> T:
        """Run ``fn`` on the writer thread with the write connection; wait for its result.

        ``rows`` is how many rows ``fn`` writes (for recycling the connection); ``adds_only``
        says that ``fn`` only creates or updates nodes and relationships (no node or
        relationship goes), so no node loses a neighbour (:class:`_DistinctFloor`)."""
        if self.read_only:
            raise StoreError(f"{self.path} is open read-only")
        if self._closed or self._writer is None:
            raise StoreError("store is closed")

        def task() -> T:
            if self._write_connection is None:
                self._write_connection = ladybug.Connection(self._db)
            try:
                return fn(self._write_connection)
            except RuntimeError as e:
                raise self._translate(e, "LadybugDB write failed") from e
            finally:
                if not adds_only:
                    self._distinct_floor.forget()
                self._writes += 1
                self._rows_written += rows
                if self._writes >= _RECYCLE_WRITES or self._rows_written >= _RECYCLE_ROWS:
                    self._close_write_connection()

        try:
            future = self._writer.submit(task)
        except RuntimeError as e:  # submit after shutdown
            raise StoreError("store is closed") from e
        return future.result()

    @contextmanager
    def _reading(self) -> Iterator[ladybug.Connection]:
        if self._closed:
            raise StoreError("store is closed")
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            try:
                conn = ladybug.Connection(self._db)
            except RuntimeError as e:
                raise self._translate(e, "cannot connect to LadybugDB") from e
            with self._connections_lock:
                self._connections.append(conn)
        try:
            yield conn
        except RuntimeError as e:
            raise self._translate(e, "LadybugDB read failed") from e
        finally:
            self._pool.put(conn)

    def _translate(self, e: RuntimeError, what: str) -> GraphError:
        """LadybugDB's error (always a ``RuntimeError``) as the graph error it means."""
        message = f"{what}: {e}"
        if _POOL_FULL in str(e):
            pool = (f"{self.buffer_pool_bytes / 2**20:g} MiB" if self.buffer_pool_bytes
                    else "LadybugDB's default, 80 % of RAM")
            return BufferPoolFullError(f"{what}: its buffer pool ({pool}) is full and no page "
                                       "in it could be freed", self.buffer_pool_bytes)
        if any(marker in str(e) for marker in _UNAVAILABLE):
            return StoreUnavailableError(message)
        return StoreError(message)

    def _read(self, fn: Callable[[ladybug.Connection], T]) -> T:
        with self._reading() as conn:
            return fn(conn)

    # -- lifecycle ---------------------------------------------------------------------------
    def _apply_schema(self) -> None:
        statements: list[LiteralString] = []
        for node in self.schema.nodes:
            statements.append(queries.create_node_table(node))
            statements.extend(queries.add_columns(node.label, node))
        for rel in self.schema.rels:
            statements.append(queries.create_rel_table(rel))
            statements.extend(queries.add_columns(rel.type, rel))
        # NOTE: LadybugDB indexes only the primary key; the schema's secondary indexes are a
        # Neo4j concern, lookups here go through ``id``.

        def run(conn: ladybug.Connection) -> None:
            for statement in statements:
                _execute(conn, statement).close()

        self._write(run)
        for spec in self.schema.nodes:
            if spec.documents:
                self._move_documents_out(spec)

    def _move_documents_out(self, spec: NodeSpec, chunk: int = 5000) -> None:
        """Move the documents that older versions stored in the node table to the document
        file (:mod:`graph._ladybug_documents`), a chunk per transaction; a no-op once done."""
        names = spec.documents
        moved = 0
        while True:
            def step(conn: ladybug.Connection) -> int:
                rows = _rows(conn, queries.documents_in_table(spec, chunk))
                if not rows:
                    return 0
                ids = [str(r[0]) for r in rows]
                kept = self._documents.get(spec, ids)
                # NOTE: a document already beside the table is the newer one.
                self._documents.put(spec, [dict(zip(("id", *names), r, strict=True))
                                           for r in rows if r[0] not in kept], replace=True)
                _execute(conn, queries.clear_documents(spec), {"ids": ids}).close()
                self._rows_written += len(rows)  # NOTE: on the writer thread, as _write's own
                return len(rows)

            n = self._write(step, rows=0)
            if n == 0:
                break
            moved += n
        if moved:
            log.info("moved the documents of %d %s nodes beside the table", moved, spec.label)

    def _ping(self) -> None:
        try:
            self._read(lambda conn: _rows(conn, queries.PING))
        except StoreError as e:
            raise StoreUnavailableError(f"LadybugDB at {self.path} does not answer: {e}") from e

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.submit(self._close_write_connection)
            self._writer.shutdown(wait=True)
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._db.close()
        self._documents.close()

    def _close_write_connection(self) -> None:
        if self._write_connection is not None:
            self._write_connection.close()
            self._write_connection = None
        self._writes = self._rows_written = 0

    # -- writes ------------------------------------------------------------------------------
    def _upsert_nodes(self, label: NodeType, rows: Rows) -> None:
        self._write_batch([(label, rows)], [])

    def _upsert_edges(self, rel_type: RelType, rows: Rows) -> None:
        self._write_batch([], [(rel_type, rows)])

    def _write_batch(self, nodes: Sequence[tuple[NodeType, Rows]],
                     edges: Sequence[tuple[RelType, Rows]], *,
                     one_transaction: bool = False) -> None:
        """Every label's and type's rows in one writer task and one transaction (one commit:
        a replayed group of verdicts writes seven labels and types), each label's or type's
        rows one statement where there are many; the nodes' documents go to the document file
        first, in the same task.

        A write of more than ``batch_size`` rows goes a transaction per label or type and
        ``batch_size`` rows (bulk writes: the connection is recycled between them), unless
        ``one_transaction``.

        NOTE: a ``LOAD FROM ... MERGE`` costs ~0.15 s besides its rows on a 1M-node table
        (docs/BENCHMARKS.md, "Batch rescoring"): a rescoring chunk written as one statement
        rather than ``batch_size`` rows at a time halves its write-back."""
        total = sum(len(rows) for _, rows in nodes) + sum(len(rows) for _, rows in edges)
        if total > self.batch_size and not one_transaction:
            super()._write_batch(nodes, edges)
            return
        parts: list[tuple[pa.Table, int, _RowQueries, _JoinQuery]] = []
        documents: list[tuple[NodeSpec, list[Row]]] = []
        for label, rows in nodes:
            spec = self.schema.node(label)
            stored, docs = _split_documents(spec, rows)
            documents.append((spec, docs))
            parts.append((node_batch(spec, stored), 1, _node_row_queries(spec),
                          lambda names, spec=spec: queries.upsert_nodes(spec, names)))
        for rel_type, rows in edges:
            spec_r = self.schema.rel(rel_type)
            parts.append((edge_batch(spec_r, rows), 2, _edge_row_queries(spec_r),
                          lambda names, spec=spec_r: queries.upsert_edges(spec, names)))

        def task(conn: ladybug.Connection) -> None:
            for spec, docs in documents:
                self._documents.put(spec, docs)
            with _transaction(conn):
                for batch, keys, row_queries, join_query in parts:
                    _write_rows(conn, batch, keys, row_queries, join_query)

        self._write(task, rows=total, adds_only=True)

    def _bulk_load(self, nodes: Sequence[tuple[NodeType, pa.Table]],
                   edges: Sequence[tuple[RelType, pa.Table]]) -> dict[str, float]:
        """Each table written as a Parquet file beside the database, then ``COPY FROM`` it, all
        in one transaction: a failure (or a kill) anywhere leaves every table as it was.

        NOTE: one transaction across the ``COPY`` statements is what makes a bulk load all or
        nothing: a failed ``COPY`` (a missing endpoint, a full buffer pool) rolls back the
        tables copied before it too (checked with LadybugDB 0.22). The files sit beside the
        database rather than in ``/tmp``: same disk, known to have room for the data.
        """
        if self.read_only or self._closed:
            raise StoreError(f"{self.path} is open read-only" if self.read_only
                             else "store is closed")
        specs: list[tuple[str, pa.Table, NodeSpec | RelSpec]] = [
            (label, table, self.schema.node(label)) for label, table in nodes if table.num_rows]
        specs += [(rel_type, table, self.schema.rel(rel_type)) for rel_type, table in edges
                  if table.num_rows]
        allowed = tuple(name for name, _, _ in specs)
        documents: list[tuple[NodeSpec, list[Row]]] = []
        laid_out: list[tuple[str, pa.Table, NodeSpec | RelSpec]] = []
        for name, table, spec in specs:
            if isinstance(spec, NodeSpec) and spec.documents:
                table, docs = _split_document_columns(spec, table)
                documents.append((spec, docs))
            query = queries.table_columns(name, allowed)
            with self._reading() as conn:
                catalog = [str(r[0]) for r in _rows(conn, query)]
            order = catalog if isinstance(spec, NodeSpec) else ["src", "dst", *catalog]
            if sorted(order) != sorted(table.column_names):
                raise StoreError(f"{name}: the table's columns {order} are not the schema's "
                                 f"{table.column_names}; apply the schema first")
            laid_out.append((name, table.select(order), spec))
        if not laid_out:
            return {}
        prefix = f".{self.path.name}.bulk-"
        for stale in self.path.parent.glob(f"{prefix}*"):
            # NOTE: left by a bulk load that was killed; no other process is loading this
            # store now, since this one holds its write lock (it is not open read-only).
            shutil.rmtree(stale, ignore_errors=True)
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=self.path.parent))
        try:
            started = time.perf_counter()
            files = []
            for i, (name, table, spec) in enumerate(laid_out):
                file = folder / f"{i:02d}-{name}.parquet"
                pq.write_table(table, file)
                files.append((name, spec, queries.copy_from(name, allowed, str(file.resolve()))))
            total = sum(table.num_rows for _, table, _ in laid_out)
            written = time.perf_counter() - started

            def task(conn: ladybug.Connection) -> dict[str, float]:
                seconds: dict[str, float] = {"files": written}
                with _transaction(conn):
                    for name, spec, _ in files:
                        query = (queries.count_nodes(spec) if isinstance(spec, NodeSpec)
                                 else queries.count_edges(spec))
                        if int(_rows(conn, query)[0][0]):
                            raise StoreError(f"bulk_load needs empty tables; {name} has rows")
                    for spec_doc, docs in documents:
                        self._documents.put(spec_doc, docs, replace=True)
                    for name, _, copy in files:
                        started = time.perf_counter()
                        _execute(conn, copy).close()
                        seconds[name] = time.perf_counter() - started
                    started = time.perf_counter()
                seconds["commit"] = time.perf_counter() - started
                return seconds

            return self._write(task, rows=total, adds_only=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _rewrite(self, rewrite: Rewrite, chunk_rows: int) -> dict[str, int]:
        """Into a new database file beside this one, through the bulk path, then swapped in
        for it (docs/ARCHITECTURE.md, Privacy).

        NOTE: LadybugDB cannot change a node's primary key in place (a node would have to be
        deleted and created again with every relationship it has); a new file built whole is
        also all or nothing for free: a run stopped before the swap leaves this file as it was
        (and a new file that the next run removes), a run stopped during the swap is finished
        by the next open (:func:`_finish_swap`). The price: the whole graph in memory as
        Arrow tables, as a bulk load holds it, and a stopped run starts again from nothing.
        """
        if self.read_only or self._closed:
            raise StoreError(f"{self.path} is open read-only" if self.read_only
                             else "store is closed")
        done: dict[str, int] = {}
        nodes: list[tuple[NodeType, pa.Table]] = []
        rewritten = {*rewrite.node_labels, *rewrite.final_labels}
        for spec in self.schema.nodes:
            table = self._export_nodes(spec.label)
            if spec.label in rewritten:
                rows = [rewrite.node_row(spec.label, {k: v for k, v in r.items() if v is not None})
                        for r in table.to_pylist()]
                table = pa.Table.from_pylist(rows, schema=node_arrow_schema(spec))
                done[spec.label] = table.num_rows
            nodes.append((spec.label, table))
        edges: list[tuple[RelType, pa.Table]] = []
        for rel in self.schema.rels:
            table = self._export_edges(rel.type)
            changed = False
            for end, label in (("src", rel.src), ("dst", rel.dst)):
                if label in rewrite.id_labels:
                    table = _map_column(table, end, functools.partial(rewrite.node_id, label))
                    changed = True
            for name in rewrite.edge_columns.get(rel.type, ()):
                table = _map_column(table, name,
                                    functools.partial(rewrite.edge_value, rel.type, name))
                changed = True
            if changed:
                done[rel.type] = table.num_rows
            edges.append((rel.type, table))
        staging = self.path.with_name(f"{self.path.name}{_STAGING}")
        _remove_database(staging)
        fresh = LadybugStore(staging, schema=self.schema, batch_size=self.batch_size,
                             buffer_pool_bytes=self.buffer_pool_bytes)
        try:
            fresh.apply_schema()
            fresh.bulk_load(nodes, edges)
        finally:
            fresh.close()
        self._close()
        _commit_swap(staging, self.path)
        self._open()
        return done

    def _create_node(self, label: NodeType, row: Row) -> GraphNode | None:
        return self._create_nodes(label, [row])[0]

    def _create_nodes(self, label: NodeType, rows: Rows) -> list[GraphNode | None]:
        # NOTE: the read and the write run as one task on the writer thread, so no other
        # write can slip in between them: the first writer wins; one commit for every row it
        # creates.
        spec = self.schema.node(label)

        def run(conn: ladybug.Connection) -> list[GraphNode | None]:
            existing = self._nodes(conn, spec, [row["id"] for row in rows])
            new, documents = _split_documents(
                spec, [row for row in rows if row["id"] not in existing])
            if new:
                self._documents.put(spec, documents, replace=True)
                # NOTE: CREATE, not MERGE, row by row: this task just saw that none exists.
                with _transaction(conn):
                    _write_rows(conn, node_batch(spec, new), 1,
                                lambda names: (queries.create_node_row(spec, names),),
                                lambda names: queries.upsert_nodes(spec, names))
            return [None if row["id"] not in existing
                    else GraphNode(label, row["id"], existing[row["id"]]) for row in rows]

        return self._write(run, adds_only=True)

    # -- reads -------------------------------------------------------------------------------
    def _remove_properties(self, label: NodeType, node_ids: list[str],
                           names: tuple[str, ...]) -> None:
        query = queries.remove_node_properties(self.schema.node(label), names)
        self._write(lambda conn: _execute(conn, query, {"ids": node_ids}).close(),
                    rows=len(node_ids))

    def _remove_edge_properties(self, rel_type: RelType, src_ids: list[str],
                                names: tuple[str, ...]) -> None:
        query = queries.remove_edge_properties(self.schema.rel(rel_type), names)
        self._write(lambda conn: _execute(conn, query, {"ids": src_ids}).close(),
                    rows=len(src_ids))

    def _get_node(self, label: NodeType, node_id: str) -> GraphNode | None:
        spec = self.schema.node(label)
        found = self._read(lambda conn: self._nodes(conn, spec, [node_id])).get(node_id)
        return None if found is None else GraphNode(label, node_id, found)

    def _get_nodes(self, label: NodeType, node_ids: list[str]) -> dict[str, GraphNode]:
        spec = self.schema.node(label)
        found = self._read(lambda conn: self._nodes(conn, spec, node_ids))
        return {node_id: GraphNode(label, node_id, props) for node_id, props in found.items()}

    def _nodes(self, conn: ladybug.Connection, spec: NodeSpec, ids: list[str]
               ) -> dict[str, dict[str, Any]]:
        """Properties of the nodes ``ids`` that exist, their documents included."""
        found = _Reader(conn, self.schema, self._distinct_floor).nodes(spec.label, ids)
        if spec.documents and found:
            for node_id, docs in self._documents.get(spec, list(found)).items():
                found[node_id].update({k: v for k, v in docs.items() if v is not None})
        return found

    def _neighbourhood(self, label: NodeType, node_id: str, hops: int, fanout: int) -> Subgraph:
        return self._read(
            lambda conn: collect_neighbourhood(
                _Reader(conn, self.schema, self._distinct_floor), self.schema, label, node_id,
                hops, fanout
            )
        )

    def _shared_accounts(
        self, user_id: str, via: tuple[NodeType, ...], limit: int
    ) -> list[SharedAccount]:
        def run(conn: ladybug.Connection) -> list[SharedAccount]:
            found: list[SharedAccount] = []
            for label in via:
                via_spec = self.schema.node(label)
                query = queries.shared_accounts(via_spec, self.schema.rel(SHARED_VIA[label]))
                for via_id, other, fraud, default in _rows(
                    conn, query, {"id": user_id, "limit": limit}
                ):
                    found.append(SharedAccount(label, via_id, other, fraud, default))
            return found[:limit]

        return self._read(run)

    def _counts(self) -> dict[str, int]:
        def run(conn: ladybug.Connection) -> dict[str, int]:
            # NOTE: a store written before a label existed has no table for it, and a read-only
            # open cannot create one: such a label counts 0, as a missing label does on Neo4j.
            tables = {str(row[0]) for row in _rows(conn, queries.show_tables())}
            counts: dict[str, int] = {}
            for node in self.schema.nodes:
                counts[node.label] = (int(_rows(conn, queries.count_nodes(node))[0][0])
                                      if node.label in tables else 0)
            for rel in self.schema.rels:
                counts[rel.type] = (int(_rows(conn, queries.count_edges(rel))[0][0])
                                    if rel.type in tables else 0)
            return counts

        return self._read(run)

    def _find_ids(self, label: NodeType, name: str, value: str | None,
                  limit: int) -> list[str]:
        spec = self.schema.node(label)
        query = queries.find_ids(spec, name, value is None)
        params: dict[str, Any] = {"limit": limit} if value is None else {"value": value,
                                                                           "limit": limit}
        return [str(r[0]) for r in self._read(lambda conn: _rows(conn, query, params))]

    def _explore(self, fn: Callable[[ExplorationReader], T]) -> T:
        return self._read(
            lambda conn: fn(LabelledExplorationReader(
                _Reader(conn, self.schema, self._distinct_floor))))

    def _edge_pairs(self, rel_type: RelType) -> pa.Table:
        query = queries.edge_pairs(self.schema.rel(rel_type))
        table = self._read(lambda conn: _arrow(conn, query))
        return pa.table({"src": table.column(0).cast(pa.string()),
                         "dst": table.column(1).cast(pa.string())})

    def _top_nodes(self, label: NodeType, order_by: tuple[str, ...], limit: int,
                   at_least: dict[str, float], unset: tuple[str, ...]) -> list[GraphNode]:
        spec = self.schema.node(label)
        query = queries.top_nodes(spec, order_by, tuple(at_least), unset)
        params: dict[str, Any] = {"limit": limit, **{f"min_{k}": v for k, v in at_least.items()}}

        def run(conn: ladybug.Connection) -> list[GraphNode]:
            ids = [str(row[0]) for row in _rows(conn, query, params)]
            found = self._nodes(conn, spec, ids) if ids else {}
            return [GraphNode(label, i, found[i]) for i in ids if i in found]

        return self._read(run)

    def _node_ids(self, label: NodeType) -> list[str]:
        spec = self.schema.node(label)
        table = self._read(lambda conn: _arrow(conn, queries.node_ids(spec)))
        return [str(i) for i in table.column(0).to_pylist()]

    def _export_nodes(self, label: NodeType, *, ordered: bool = True) -> pa.Table:
        spec = self.schema.node(label)
        query = queries.export_nodes(spec, ordered)
        table = _conform(self._read(lambda conn: _arrow(conn, query)), node_arrow_schema(spec))
        if not spec.documents or table.num_rows == 0:
            return table
        ids = table.column("id").to_pylist()
        docs = self._documents.get(spec, ids)
        for name in spec.documents:
            stored = table.column(name).to_pylist()
            merged = [(docs.get(i) or {}).get(name) or v for i, v in zip(ids, stored, strict=True)]
            table = table.set_column(table.schema.get_field_index(name), name,
                                     pa.array(merged, type=table.schema.field(name).type))
        return table

    def _export_edges(self, rel_type: RelType, *, ordered: bool = True) -> pa.Table:
        spec = self.schema.rel(rel_type)
        query = queries.export_edges(spec, ordered)
        table = self._read(lambda conn: _arrow(conn, query))
        return _conform(table, edge_arrow_schema(spec))


class _DistinctFloor:
    """What the store last counted of nodes' distinct neighbours, kept across reads so that a
    hub met again needs no second ``count(DISTINCT)`` (1 ms on the 100k world against 0.2 ms
    for its relationships, and a neighbourhood meets ~20 hubs, mostly the same merchants and
    IPs).

    A count is a floor, not a value: while writes only add (upserts; ``adds_only`` in
    :meth:`LadybugStore._write`) a node's distinct neighbours can only grow, so a node once
    counted above a hub size is above it still. Any other write forgets every count, and a
    count read while such a write ran is not kept: ``forget`` runs after that write
    commits, and a reader keeps its count only if no ``forget`` came since it read the
    generation, before its own query. A store opened again (a rewrite swaps its file) starts
    with none.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._floor: dict[tuple[NodeType, str], int] = {}
        self._generation = 0

    def generation(self) -> int:
        """To read before the count that :meth:`keep` is given."""
        return self._generation

    def above(self, key: tuple[NodeType, str], size: int) -> bool:
        """Whether the node was counted with more than ``size`` distinct neighbours."""
        return self._floor.get(key, 0) > size

    def keep(self, generation: int, key: tuple[NodeType, str], distinct: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._floor[key] = max(distinct, self._floor.get(key, 0))

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._floor.clear()


class _Reader:
    """:class:`graph.store.LabelExplorationReader` over one LadybugDB connection.

    Args:
        conn (ladybug.Connection): the connection read through.
        schema (Schema): the store's schema.
        floor (_DistinctFloor): the store's counts of distinct neighbours.
    """

    def __init__(self, conn: ladybug.Connection, schema: Schema, floor: _DistinctFloor
                 ) -> None:
        self._conn = conn
        self._schema = schema
        self._floor = floor

    def neighbours(
        self, label: NodeType, ids: list[str], limit: int
    ) -> dict[str, list[tuple[NodeType, str]]]:
        query = queries.neighbours(self._schema.node(label))
        return {
            i: sorted({(lab, j) for lab, j in _rows(self._conn, query, {"id": i})})[:limit]
            for i in ids
        }

    def degrees(self, label: NodeType, ids: list[str], above: int) -> dict[str, int]:
        spec = self._schema.node(label)
        count, distinct = (queries.degree(spec, distinct=False),
                           queries.degree(spec, distinct=True))
        found: dict[str, int] = {}
        for i in ids:
            generation = self._floor.generation()
            degree = int(_rows(self._conn, count, {"id": i})[0][0])
            if degree <= above:
                continue
            if not self._floor.above((label, i), above):
                n = int(_rows(self._conn, distinct, {"id": i})[0][0])
                self._floor.keep(generation, (label, i), n)
                if n <= above:
                    continue
            found[i] = degree
        return found

    def linked(self, label: NodeType, ids: list[str], rel_types: tuple[RelType, ...],
               limit: int) -> dict[str, list[tuple[NodeType, str]] | None]:
        rels = tuple(r for r in map(self._schema.rel, rel_types) if label in (r.src, r.dst))
        if not rels or not ids:
            return {i: [] for i in ids}
        spec = self._schema.node(label)
        count, distinct, every = (queries.linked(spec, rels, mode=m)
                                  for m in ("count", "distinct", "all"))
        found: dict[str, list[tuple[NodeType, str]] | None] = {}
        for i in ids:
            if (int(_rows(self._conn, count, {"id": i})[0][0]) > limit
                    and int(_rows(self._conn, distinct, {"id": i})[0][0]) > limit):
                found[i] = None
            else:
                found[i] = sorted({(lab, j) for lab, j in _rows(self._conn, every, {"id": i})})
        return found

    def edges_between(self, label: NodeType, ids: list[str], targets: list[str]
                      ) -> list[GraphEdge]:
        query = queries.edges_between(self._schema.node(label))
        edges: list[GraphEdge] = []
        for i in ids:
            for rel_type, dst, rel in _rows(self._conn, query, {"id": i, "targets": targets}):
                names = [p.name for p in self._schema.rel(rel_type).properties]
                props = {k: rel[k] for k in names if rel.get(k) is not None}
                edges.append(GraphEdge(rel_type, i, dst, props))
        return edges

    def nodes(self, label: NodeType, ids: list[str]) -> dict[str, dict[str, Any]]:
        spec = self._schema.node(label)
        if not ids:
            return {}
        names = spec.columns[1:]
        return {
            row[0]: {k: v for k, v in zip(names, row[1:]) if v is not None}
            for row in _rows(self._conn, queries.get_nodes(spec), {"ids": ids})
        }

    def edges_from(self, label: NodeType, ids: list[str]) -> list[GraphEdge]:
        query = queries.edges_from(self._schema.node(label))
        edges: list[GraphEdge] = []
        for i in ids:
            for rel_type, dst, rel in _rows(self._conn, query, {"id": i}):
                names = [p.name for p in self._schema.rel(rel_type).properties]
                props = {k: rel[k] for k in names if rel.get(k) is not None}
                edges.append(GraphEdge(rel_type, i, dst, props))
        return edges


# -- row building (pure, unit-tested without a database) -------------------------------------
def merge_rows(rows: Rows, key: Callable[[Row], Any],
               earliest: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Fold rows with the same key into one, later non-null values winning (the smallest for
    ``earliest`` properties: :attr:`graph.schema.Property.earliest`), first-seen order.

    LadybugDB reads a node's old values once per statement, so two rows for one key in the same
    batch would undo each other's ``coalesce``; Neo4j applies them in turn. Folding first gives
    both stores the same result.
    """
    merged: dict[Any, dict[str, Any]] = {}
    for row in rows:
        target = merged.setdefault(key(row), {})
        for k, v in row.items():
            if k in earliest and v is not None and target.get(k) is not None:
                target[k] = min(target[k], v)
            elif v is not None or k not in target:
                target[k] = v
    return list(merged.values())


def node_batch(spec: NodeSpec, rows: Rows) -> pa.Table:
    """Validated node rows as a typed Arrow table, duplicates folded.

    Columns: ``id``, then the schema's properties that some row sets (in schema order).
    """
    return _to_arrow(merge_rows(rows, lambda r: r["id"]), node_arrow_schema(spec), 1, spec.label)


def edge_batch(spec: RelSpec, rows: Rows) -> pa.Table:
    """Validated relationship rows as a typed Arrow table, rows for one edge folded.

    Columns: ``src``, ``dst``, then the properties that some row sets (the key always).
    """
    if spec.key is None:
        merged = merge_rows(rows, lambda r: (r["src"], r["dst"]), spec.earliest)
    else:
        key = spec.key
        merged = merge_rows(rows, lambda r: (r["src"], r["dst"], r[key]), spec.earliest)
    return _to_arrow(merged, edge_arrow_schema(spec), 2, spec.type)


def _to_arrow(
    rows: list[dict[str, Any]], schema: pa.Schema, fixed: int, owner: str
) -> pa.Table:
    present = {k for row in rows for k, v in row.items() if v is not None}
    fields = [f for i, f in enumerate(schema) if i < fixed or f.name in present]
    try:
        return pa.Table.from_pylist(rows, schema=pa.schema(fields))
    except (pa.ArrowException, OverflowError) as e:
        raise SchemaError(f"{owner} rows do not fit the schema: {e}") from e


# -- helpers ---------------------------------------------------------------------------------
_RowQueries = Callable[[tuple[str, ...]], Sequence[LiteralString]]
_JoinQuery = Callable[[tuple[str, ...]], LiteralString]


def _node_row_queries(spec: NodeSpec) -> _RowQueries:
    """A node row's statements: update it if there, else create it."""
    return lambda names: (queries.update_node_row(spec, names),
                          queries.create_node_row(spec, names))


def _edge_row_queries(spec: RelSpec) -> _RowQueries:
    """An edge row's statements: update, else create between its ends, else the MERGE (for a
    row whose ends are not both there yet: they are created bare)."""
    return lambda names: (queries.update_edge_row(spec, names),
                          queries.create_edge_row(spec, names),
                          queries.upsert_edge_row(spec, names))


@contextmanager
def _transaction(conn: ladybug.Connection) -> Iterator[None]:
    """One explicit transaction around the statements run inside: committed at the end, rolled
    back on any error."""
    _execute(conn, "BEGIN TRANSACTION").close()
    try:
        yield
    except BaseException:
        try:
            _execute(conn, "ROLLBACK").close()
        except RuntimeError as e:
            # NOTE: a statement that failed on a full buffer pool has rolled the transaction
            # back already ("No active transaction for ROLLBACK"); the error that ended it is
            # the one to raise, not this one.
            log.debug("no rollback after a failed statement: %s", e)
        raise
    _execute(conn, "COMMIT").close()


def _write_rows(conn: ladybug.Connection, batch: pa.Table, keys: int,
                row_queries: _RowQueries, join_query: _JoinQuery) -> None:
    """Write ``batch`` (its first ``keys`` columns identify a row) row by row when small
    (:func:`_row_by_row`), else as one ``LOAD FROM`` join (:data:`SMALL_BATCH_ROWS`); inside
    the caller's transaction, if it has one."""
    if batch.num_rows <= SMALL_BATCH_ROWS:
        _row_by_row(conn, batch, row_queries, fixed=keys)
        return
    # NOTE: results are closed at once on the writer thread: one left to the garbage
    # collector is closed later from whichever thread runs it, which can deadlock with the
    # writer in the middle of its next statement.
    _execute(conn, join_query(tuple(batch.column_names[keys:])), {"rows": batch}).close()


def _split_documents(spec: NodeSpec, rows: Rows) -> tuple[list[Row], list[Row]]:
    """``rows`` without their document properties, and those properties with each row's id
    (:class:`graph._ladybug_documents.DocumentFile`)."""
    if not spec.documents:
        return list(rows), []
    names = set(spec.documents)
    stored: list[Row] = [{k: v for k, v in row.items() if k not in names} for row in rows]
    documents: list[Row] = [{"id": row["id"], **{k: v for k, v in row.items() if k in names}}
                            for row in rows if names.intersection(row)]
    return stored, documents


def _split_document_columns(spec: NodeSpec, table: pa.Table) -> tuple[pa.Table, list[Row]]:
    """:func:`_split_documents` for a whole table: the table with its document columns null,
    and the documents with each row's id."""
    names = spec.documents
    docs: list[Row] = [row for row in table.select(["id", *names]).to_pylist()
                       if any(row[n] is not None for n in names)]
    for name in names:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, table.schema.field(i), pa.nulls(table.num_rows,
                                                                    table.schema.field(i).type))
    return table, docs


def _row_by_row(conn: ladybug.Connection, batch: pa.Table, queries_for: _RowQueries, *,
                fixed: int) -> None:
    """Write ``batch`` row by row; each row sets only its non-null properties (the first
    ``fixed`` columns are the keys, always given).

    A row runs the statements ``queries_for`` gives for its properties in turn until one
    returns a row; the last runs whatever the others returned (update if there, else create,
    else the general ``MERGE``).

    NOTE: on one execution thread: an index probe and a one-row MERGE are too small to share,
    and handing them to the database's worker threads cost a third more CPU (measured: 20
    edges 13.8 ms of CPU on all threads, 8.9 ms on one).
    """
    built: dict[tuple[str, ...], Sequence[LiteralString]] = {}
    conn.set_max_threads_for_exec(1)
    try:
        for row in batch.to_pylist():
            items = list(row.items())
            props = {k: v for k, v in items[fixed:] if v is not None}
            params = {**dict(items[:fixed]), **props}
            names = tuple(props)
            if names not in built:
                built[names] = queries_for(names)
            *tries, last = built[names]
            for query in tries:
                result = _execute(conn, query, params)
                try:
                    done = result.has_next()
                finally:
                    result.close()
                if done:
                    break
            else:
                _execute(conn, last, params).close()
    finally:
        conn.set_max_threads_for_exec(_EXEC_THREADS)


def _execute(
    conn: ladybug.Connection, query: LiteralString, params: dict[str, Any] | None = None
) -> ladybug.QueryResult:
    result = conn.execute(query, params or {})
    assert not isinstance(result, list), "one statement per call"
    return result


def _rows(
    conn: ladybug.Connection, query: LiteralString, params: dict[str, Any] | None = None
) -> list[list[Any]]:
    result = _execute(conn, query, params)
    try:
        return result.get_all()  # type: ignore[return-value]
    finally:
        result.close()


def _arrow(conn: ladybug.Connection, query: LiteralString) -> pa.Table:
    result = _execute(conn, query)
    try:
        return result.get_as_arrow()
    finally:
        result.close()


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Rename LadybugDB's result columns to the schema's and cast them to its types."""
    return table.rename_columns(schema.names).cast(schema)




# -- swapping a rebuilt database file in (LadybugStore._rewrite) ------------------------------
_STAGING: Final = ".rewriting"
"""Suffix of the new database file a rewrite builds beside the store's."""
_SWAP: Final = ".swap"
"""Suffix of the file that says a swap has begun: the new files are whole, the renames go on."""
_SIDECARS: Final = (".wal", ".shadow", ".tmp")
"""Files LadybugDB may keep beside a database file."""


def _documents_path(path: Path) -> Path:
    return Path(f"{path}.documents.sqlite")


def _database_files(path: Path) -> list[Path]:
    """The database file, its LadybugDB sidecars and its document file (with SQLite's own)."""
    docs = _documents_path(path)
    return [path, *(Path(f"{path}{s}") for s in _SIDECARS),
            docs, Path(f"{docs}-wal"), Path(f"{docs}-shm")]


def _remove_database(path: Path) -> None:
    for file in _database_files(path):
        if file.is_dir():
            shutil.rmtree(file)
        else:
            file.unlink(missing_ok=True)


def _commit_swap(staging: Path, path: Path) -> None:
    """Put the closed database ``staging`` (and its document file) in the place of the closed
    ``path``: the swap file first (the commit), then the renames, which :func:`_finish_swap`
    finishes when a stop interrupts them."""
    marker = Path(f"{path}{_SWAP}")
    written = Path(f"{marker}.tmp")
    written.write_text(str(staging))
    with written.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(written, marker)
    _finish_swap(path)


def _finish_swap(path: Path) -> None:
    """Finish a swap a stop interrupted (nothing when none was under way): each file of the
    new database replaces the old one's; the old one's files the new one lacks (a stale
    write-ahead log would be replayed onto the new file) are removed first."""
    marker = Path(f"{path}{_SWAP}")
    if not marker.exists():
        return
    staging = Path(marker.read_text())
    pairs = list(zip(_database_files(staging), _database_files(path), strict=True))
    if staging.exists():
        for new, old in pairs:
            if not new.exists() and old.exists() and old != path:
                old.unlink()
    for new, old in pairs:
        if new.exists():
            os.replace(new, old)
    marker.unlink()


def _map_column(table: pa.Table, name: str, fn: Callable[[Any], Any]) -> pa.Table:
    """``table`` with ``fn`` applied to each distinct non-null string of column ``name``."""
    column = table.column(name)
    distinct = pc.unique(column)
    mapped = pa.array([None if v is None else fn(v) for v in distinct.to_pylist()],
                      type=column.type)
    return table.set_column(table.schema.get_field_index(name), name,
                            pc.take(mapped, pc.index_in(column, value_set=distinct)))
