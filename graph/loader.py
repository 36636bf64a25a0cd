"""Load a simulated world into a :class:`graph.GraphStore`, and append single events.

:func:`load_world` reads the Parquet tables of a world directory chunk by chunk, turns each
chunk into schema rows with :mod:`graph.ingest` (hashing identifiers with the injected
pseudonymiser) and writes them through the store's public API: every node label first, then
every relationship type, then the labels visible by ``as_of``. Writes are upserts, so a second
load adds nothing; a checkpoint file in the world directory records each finished chunk, so a
load stopped half-way (Ctrl-C, a crash) continues where it stopped when run again into the same
store. The checkpoint names the store instance it was written for
(:meth:`graph.GraphStore.identity`): a store deleted and created again at the same path or URI
is loaded afresh, never taken to hold the chunks its predecessor held.

An empty store that has a bulk path (:attr:`graph.GraphStore.supports_bulk_load`: LadybugDB's
``COPY FROM``; Neo4j's offline ``neo4j-admin database import`` when the store was given its
server, :mod:`graph.neo4j_import`) is loaded another way, to the same result: every chunk goes
through the same row builders, the rows of each label and type are folded as the upserts would
fold them (later non-null values win, ``earliest`` properties keep the smallest, endpoints that
no node row names become bare nodes), and the whole tables go to
:meth:`graph.GraphStore.bulk_load` (LadybugDB: one transaction; Neo4j: a database built aside
and swapped in). That is all or nothing: a bulk load stopped anywhere leaves the store empty,
and the checkpoint records its chunks only once it committed, so the next run loads in bulk
again.

:func:`append_events` writes single events (a login, an application, a label ...) as they happen,
through the same row builders, for the serving layer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final, TextIO, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from graph.errors import GraphError, LoadError, SchemaError, TransactionLimitError
from graph.ingest import (
    PLAN,
    columns_table,
    IngestStep,
    device_usage,
    hash_column,
    label_writes,
    mask_column,
    visible_as_of,
)
from graph.privacy import Pseudonymiser
from graph.schema import SCHEMA
from graph.world_files import TABLES, read_metadata
from graph.store import (
    GraphStore,
    StoreIdentity,
    count_distinct_keys,
    edge_arrow_schema,
    fold_rows,
    label_rows,
    node_arrow_schema,
)
from graph.typing import NodeType, RelType, Row

__all__ = [
    "APPEND_KINDS",
    "BulkLoadRefusedError",
    "DEFAULT_CHUNK_ROWS",
    "LoadError",
    "LoadLimitError",
    "LoadReport",
    "append_events",
    "checkpoint_path",
    "clear_checkpoints",
    "fold_rows",
    "load_world",
]

DEFAULT_CHUNK_ROWS: Final = 50_000
CHECKPOINT_PREFIX: Final = ".load-"
MAX_HALVINGS: Final = 3
"""How many times a write that hit the store's transaction limit is split in two and retried
before the load stops: a transaction of an eighth of the batch that still does not pass means
a limit too tight for this store, not an unlucky batch."""

log = logging.getLogger(__name__)

APPEND_KINDS: Final[dict[str, str]] = {
    "user": "users",
    "phone": "phones",
    "address": "addresses",
    "device": "devices",
    "ip": "ips",
    "merchant": "merchants",
    "ownership": "ownership",
    "contact": "contacts",
    "login": "logins",
    "order": "orders",
    "application": "applications",
    "repayment": "repayments",
    "sales": "merchant_sales",
    "label": "label_events",
}
"""Event kind -> the raw table whose columns its records carry."""


class BulkLoadRefusedError(LoadError):
    """``bulk=True`` was asked of a store that cannot be bulk-loaded now (no bulk path, or not
    empty: :meth:`graph.GraphStore.bulk_load_refusal`); no chunk was read or written.

    Args:
        store (str): the store, as its ``repr``.
        reason (str): why, e.g. ``it is not empty (12 User, 40 USES)``.
    """

    def __init__(self, store: str, reason: str) -> None:
        super().__init__(f"{store} cannot be bulk-loaded: {reason}")
        self.store = store
        self.reason = reason


class LoadLimitError(LoadError):
    """A chunk's writes ran past the store's transaction limit (time, memory or lock wait) even
    in transactions of an eighth of the batch size; finished chunks stay recorded.

    Args:
        chunk (str): the chunk, ``<target>:<index>``.
        rows (int): rows in the smallest transaction tried.
        cause (str): the store's error, first line.
    """

    def __init__(self, chunk: str, rows: int, cause: str) -> None:
        super().__init__(f"chunk {chunk}: a transaction of {rows} rows still ran past the "
                         f"store's limit after {MAX_HALVINGS} halvings ({cause})")
        self.chunk = chunk
        self.rows = rows
        self.cause = cause


@dataclass
class LoadReport:
    """What a load did.

    Args:
        written (dict[str, int]): rows written per label, relationship type and ``labels``.
        seconds_by_target (dict[str, float]): wall time spent per target (reading, building
            rows and writing; on the bulk path: building its rows and its ``COPY``).
        chunks_done (int): chunks written by this run.
        chunks_skipped (int): chunks a previous run had finished (resume).
        seconds (float): wall time.
        as_of (int): the time the graph was loaded as of.
        bulk (bool): whether the store was loaded through its bulk path.
        bulk_seconds (dict[str, float]): on the bulk path, the seconds after the rows were
            built: ``fold`` (into one table per label and type), then what
            :meth:`graph.GraphStore.bulk_load` reports (``check``, ``files``, each table's
            ``COPY``, ``commit``).
    """

    written: dict[str, int] = field(default_factory=dict)
    seconds_by_target: dict[str, float] = field(default_factory=dict)
    chunks_done: int = 0
    chunks_skipped: int = 0
    seconds: float = 0.0
    as_of: int = 0
    bulk: bool = False
    bulk_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def nodes(self) -> int:
        labels = {s.target for s in PLAN if s.kind == "node"}
        return sum(v for k, v in self.written.items() if k in labels)

    @property
    def edges(self) -> int:
        rels = {s.target for s in PLAN if s.kind == "edge"}
        return sum(v for k, v in self.written.items() if k in rels)

    @property
    def labels(self) -> int:
        return self.written.get("labels", 0)

    def seconds_of(self, kind: str) -> float:
        """Wall time of the ``node`` or ``edge`` phase."""
        targets = {s.target for s in PLAN if s.kind == kind}
        return sum(v for k, v in self.seconds_by_target.items() if k in targets)


class _Checkpoint:
    """Append-only record of the chunks finished in one store instance, flushed and synced:
    a header line naming the store (:class:`graph.StoreIdentity`), then one line per chunk.

    A file written for another instance (the store was deleted or wiped and created again at
    the same path or URI), or before checkpoints named one, records nothing about this store:
    its chunks are not skipped, and the first chunk finished replaces the file.
    """

    def __init__(self, path: Path, store: StoreIdentity) -> None:
        self.path = path
        self.store = store
        self.done: set[str] = set()
        self._header = {"store": store.instance_id, "store_created_at": store.created_at}
        self._append = False
        if path.exists():
            try:
                records = [json.loads(line) for line in path.read_text().splitlines()
                           if line.strip()]
                owner = records[0].get("store") if records else None
                if owner == store.instance_id:
                    self.done = {r["chunk"] for r in records[1:]}
                    self._append = True
            except (ValueError, KeyError, AttributeError) as e:
                raise LoadError(f"checkpoint {path} is unreadable; delete it to reload: {e}"
                                ) from e
            if not self._append and records:
                log.warning("checkpoint %s records %d chunks loaded into %s, not into this "
                            "store (instance %s, created %s): loading every chunk", path,
                            sum(1 for r in records if "chunk" in r),
                            f"store instance {owner}" if owner else "a store it does not name",
                            store.instance_id, _utc(store.created_at))
        self._fh: TextIO | None = None

    def mark(self, chunk: str) -> None:
        if self._fh is None:
            if self._append:
                self._fh = self.path.open("a")
            else:
                # NOTE: written to a new file, then renamed over the old one: a crash in
                # between leaves the old file, which still records nothing about this store.
                fresh = self.path.with_name(self.path.name + ".new")
                with fresh.open("w") as fh:
                    fh.write(json.dumps(self._header) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                fresh.replace(self.path)
                self._append = True
                self._fh = self.path.open("a")
        self._fh.write(json.dumps({"chunk": chunk}) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.done.add(chunk)

    def mark_all(self, chunks: Sequence[str]) -> None:
        """:meth:`mark` every chunk of ``chunks``, with one sync at the end."""
        for chunk in chunks[:1]:
            self.mark(chunk)
        if len(chunks) > 1:
            assert self._fh is not None
            self._fh.writelines(json.dumps({"chunk": c}) + "\n" for c in chunks[1:])
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.done.update(chunks)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _utc(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def checkpoint_path(directory: Path, *, target: str, as_of: int, chunk_rows: int,
                    pseudonymiser: Pseudonymiser) -> Path:
    """Where the checkpoint of one load lives.

    One checkpoint per (store path or URI, as-of time, chunk size, secret): loading the same
    world into another store, as of another time or under another secret starts afresh. The
    secret enters only as a keyed hash, never in clear. Inside, the file names the store
    instance it belongs to (:class:`_Checkpoint`), so a new store at the same path or URI starts
    afresh too.
    """
    secret_mark = pseudonymiser.hash("name", "riskgraph-load-checkpoint")
    key = hashlib.sha256(f"{target}|{as_of}|{chunk_rows}|{secret_mark}".encode()).hexdigest()
    return directory / f"{CHECKPOINT_PREFIX}{key[:16]}.jsonl"


def load_world(
    store: GraphStore,
    directory: Path,
    pseudonymiser: Pseudonymiser,
    *,
    as_of: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    target: str | None = None,
    workers: int = 1,
    progress: bool = True,
    bulk: bool | None = None,
) -> LoadReport:
    """Bulk-load a simulated world; idempotent and resumable.

    Into an empty store with a bulk path (:attr:`graph.GraphStore.supports_bulk_load`), the
    world goes through :meth:`graph.GraphStore.bulk_load`: all or nothing, to the same nodes,
    relationships and properties as the chunk-by-chunk upserts (see the module's docstring).
    Whether the store can take it is :meth:`graph.GraphStore.bulk_load_refusal`: for
    LadybugDB, no node of any label of the relationship graph
    (:attr:`graph.Schema.graph_labels`) and no relationship of any type (operational records
    do not count, since the load writes none of them); for Neo4j's offline import, which
    replaces the whole database, no node at all but the store's identity. Any other store is
    loaded chunk by chunk through upserts, as before.

    Args:
        store (GraphStore): where to write; its schema is applied first (idempotent) and its
            identity drawn if it has none (:meth:`graph.GraphStore.identity`).
        directory (Path): a directory written by :func:`simulator.write_world`.
        pseudonymiser (Pseudonymiser): hashes people's identifiers at the boundary.
        as_of (int, optional): load the graph as it was known at this time (epoch seconds):
            later events, entities and labels are left out. (default: the world's end)
        chunk_rows (int, optional): source rows per chunk, the unit of resumption.
            (default: ``50000``)
        target (str, optional): names the store in the checkpoint's file name; the CLI passes
            the URI or file. The file also names the store instance, so that a store created
            again at the same target is loaded afresh. (default: ``repr(store)``)
        workers (int, optional): concurrent write calls per chunk. A chunk's rows are split by
            node id (nodes) or target id (relationships, ordered by source so that shared nodes
            are locked in one order; relationships into an application by its applicant);
            both stores are thread-safe. On the 2-core benchmark machine two Neo4j writers
            load a 100k-user world at about 20k relationships/s against 17.3k for one (see
            docs/BENCHMARKS.md); the default stays one, which never meets a deadlock retry.
            (default: ``1``)
        progress (bool, optional): show a tqdm progress bar. (default: ``True``)
        bulk (bool, optional): ``None`` takes the bulk path when the store has one and is
            empty; ``False`` never does (chunk by chunk, resumable); ``True`` insists, and
            raises :class:`BulkLoadRefusedError` when the store has no bulk path or is not
            empty.
            ``workers`` and the transaction limits do not apply to the bulk path.
            (default: ``None``)

    Returns:
        LoadReport: rows written per target, chunks done and skipped, wall time.

    Raises:
        ValueError: on a non-positive ``chunk_rows``.
        LoadError: if the directory holds no world or a table is missing.
        BulkLoadRefusedError: ``bulk=True`` and the store cannot be bulk-loaded; checked before
            any chunk is read.
        LoadLimitError: a chunk's writes ran past the store's transaction limit even in
            smaller transactions (each write that hits it is split in two and retried, up to
            :data:`MAX_HALVINGS` times); finished chunks stay recorded.
        KeyboardInterrupt: passed on after the chunk in flight; finished chunks stay recorded
            (a bulk load records none: it is rolled back whole).
    """
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    if workers <= 0:
        raise ValueError(f"workers must be positive, got {workers}")
    directory = Path(directory)
    try:
        meta = read_metadata(directory)
    except FileNotFoundError as e:
        raise LoadError(str(e)) from e
    end_ts = meta["end_ts"]
    assert isinstance(end_ts, int)
    cutoff = end_ts if as_of is None else int(as_of)
    for name in {s.table for s in PLAN} - {"device_usage"} | {"label_events"}:
        if not (directory / f"{name}.parquet").exists():
            raise LoadError(f"{directory} has no {name}.parquet")
    started = time.perf_counter()
    report = LoadReport(as_of=cutoff)
    store.apply_schema()
    ckpt = _Checkpoint(checkpoint_path(directory, target=target or repr(store), as_of=cutoff,
                                       chunk_rows=chunk_rows, pseudonymiser=pseudonymiser),
                       store.identity())
    sources = _Sources(directory, cutoff)
    total = sum(sources.rows(s.table) for s in PLAN) + sources.rows("label_events")
    bar = tqdm(total=total, unit="row", unit_scale=True, desc="load", disable=not progress,
               dynamic_ncols=True)
    steps: list[tuple[str, str, IngestStep | None]] = [(s.target, s.table, s) for s in PLAN]
    steps.append(("labels", "label_events", None))
    refusal = store.bulk_load_refusal() if bulk is not False else None
    if bulk is None:
        bulk = refusal is None
    elif bulk and refusal is not None:
        raise BulkLoadRefusedError(repr(store), refusal)
    if bulk:
        report.bulk = True
        try:
            # NOTE: the same hashes, each made once: hashing devices and IPs again in every
            # chunk of logins was a third of a bulk load's time (100k-user world).
            _load_bulk(store, _BulkJob(sources, steps, cutoff, pseudonymiser.remembering(),
                                       chunk_rows), report, ckpt, bar)
        finally:
            bar.close()
            ckpt.close()
        report.seconds = time.perf_counter() - started
        return report

    pool = ThreadPoolExecutor(workers, thread_name_prefix="load") if workers > 1 else None
    builder = ThreadPoolExecutor(1, thread_name_prefix="load-build")

    def chunks() -> Iterator[_Chunk]:
        for target, table, step in steps:
            for i, chunk in enumerate(sources.chunks(table, chunk_rows)):
                yield _Chunk(f"{target}:{i}", target, table, step, chunk)

    def build(job: _Chunk) -> list[Any] | None:
        if job.key in ckpt.done:
            return None
        visible = visible_as_of(job.table, job.data, cutoff)
        if job.step is None:
            return label_writes(visible)
        return job.step.build(visible, pseudonymiser)

    try:
        clock = time.perf_counter()
        for job, rows in _prefetched(chunks(), build, builder):
            bar.set_postfix_str(job.target, refresh=False)
            if rows is None:
                report.chunks_skipped += 1
            else:
                try:
                    _write_chunk(store, job.step, rows, pool, workers)
                except _LimitReached as e:
                    raise LoadLimitError(job.key, e.rows, e.cause) from e.__cause__
                report.written[job.target] = report.written.get(job.target, 0) + len(rows)
                ckpt.mark(job.key)
                report.chunks_done += 1
            bar.update(job.data.num_rows)
            now = time.perf_counter()
            report.seconds_by_target[job.target] = (
                report.seconds_by_target.get(job.target, 0.0) + now - clock)
            clock = now
    finally:
        builder.shutdown(wait=True, cancel_futures=True)
        if pool is not None:
            pool.shutdown(wait=True)
        bar.close()
        ckpt.close()
    report.seconds = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class _BulkJob:
    """What a bulk load reads, and how."""

    sources: _Sources
    steps: list[tuple[str, str, IngestStep | None]]
    cutoff: int
    pseudonymiser: Pseudonymiser
    chunk_rows: int


def _load_bulk(store: GraphStore, job: _BulkJob, report: LoadReport, ckpt: _Checkpoint,
               bar: tqdm[Any]) -> None:
    """Build every chunk's rows, fold them into one table per label and type, and hand the
    tables to :meth:`graph.GraphStore.bulk_load`; mark every chunk once it committed.

    NOTE: the chunks are the upsert path's (same size, same order), so that a row builder that
    folds rows within a chunk (:func:`graph.ingest.phone_nodes` keeps the last row per id)
    sees what it sees there; the fold across chunks is then the one the upserts make.
    """
    schema = store.schema
    parts: dict[str, list[pa.Table]] = {}
    keys: list[str] = []
    bar.set_description("load (bulk: build rows)")
    clock = time.perf_counter()
    for target, table, step in job.steps:
        for i, chunk in enumerate(job.sources.chunks(table, job.chunk_rows)):
            bar.set_postfix_str(target, refresh=False)
            visible = visible_as_of(table, chunk, job.cutoff)
            if step is None:
                writes = label_writes(visible)
                for label, rows in label_rows(writes).items():
                    parts.setdefault(label, []).append(
                        _typed(label, rows, node_arrow_schema(schema.node(label))))
                written = len(writes)
            else:
                arrow = (node_arrow_schema(schema.node(target)) if step.kind == "node"
                         else edge_arrow_schema(schema.rel(target)))
                # NOTE: the row builder's own columns, before it zips them into rows: the
                # same values, without a dict per row (a third of building 1.4 M logins).
                built = columns_table(target, step.columns(visible, job.pseudonymiser),
                                       arrow)
                parts.setdefault(target, []).append(built)
                written = (count_distinct_keys(built, ("id",)) if step.one_row_per_id
                           else built.num_rows)
            report.written[target] = report.written.get(target, 0) + written
            keys.append(f"{target}:{i}")
            bar.update(chunk.num_rows)
            now = time.perf_counter()
            report.seconds_by_target[target] = (
                report.seconds_by_target.get(target, 0.0) + now - clock)
            clock = now
    nodes, edges = _fold_tables(store, parts)
    folded = time.perf_counter() - clock
    bar.set_description("load (bulk: COPY)")
    bar.set_postfix_str(f"{sum(t.num_rows for _, t in nodes):,} nodes, "
                        f"{sum(t.num_rows for _, t in edges):,} relationships")
    report.bulk_seconds = {"fold": folded, **store.bulk_load(nodes, edges)}
    for name, seconds in report.bulk_seconds.items():
        if name in report.seconds_by_target:
            report.seconds_by_target[name] += seconds
    ckpt.mark_all(keys)
    report.chunks_done = len(keys)


def _typed(owner: str, rows: list[Row], schema: pa.Schema) -> pa.Table:
    """``rows`` as a table of ``schema`` (a property a row leaves out is null)."""
    unknown = set().union(*rows) - set(schema.names) if rows else set()
    if unknown:
        raise SchemaError(f"{owner} has no properties {sorted(unknown)}")
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowException, OverflowError) as e:
        raise SchemaError(f"{owner} rows do not fit the schema: {e}") from e


def _fold_tables(store: GraphStore, parts: dict[str, list[pa.Table]]
                 ) -> tuple[list[tuple[NodeType, pa.Table]], list[tuple[RelType, pa.Table]]]:
    """Per label and type, the rows of every chunk folded into what the upserts leave; each
    label's table holds, besides its own rows, a bare row for every relationship endpoint that
    none names (the upserts ``MERGE`` those ends)."""
    schema = store.schema
    edges: list[tuple[RelType, pa.Table]] = []
    ends: dict[NodeType, list[pa.ChunkedArray]] = {}
    for spec in schema.rels:
        if spec.type not in parts:
            continue
        key = ("src", "dst") if spec.key is None else ("src", "dst", spec.key)
        table = fold_rows(pa.concat_tables(parts[spec.type]), key, spec.earliest)
        edges.append((spec.type, table))
        ends.setdefault(spec.src, []).append(table.column("src"))
        ends.setdefault(spec.dst, []).append(table.column("dst"))
    nodes: list[tuple[NodeType, pa.Table]] = []
    for node in schema.nodes:
        arrow = node_arrow_schema(node)
        table = (fold_rows(pa.concat_tables(parts[node.label]), ("id",))
                 if node.label in parts else arrow.empty_table())
        if node.label in ends:
            named = pc.unique(pa.chunked_array(
                [c for column in ends[node.label] for c in column.chunks], type=pa.string()))
            bare = pc.filter(named, pc.invert(pc.is_in(named, table.column("id"))))
            if len(bare):
                table = pa.concat_tables([table, pa.table(
                    [bare, *(pa.nulls(len(bare), f.type) for f in list(arrow)[1:])], schema=arrow)])
        if table.num_rows:
            nodes.append((node.label, table))
    return nodes, edges


@dataclass(frozen=True)
class _Chunk:
    """One unit of loading and of resumption."""

    key: str
    target: str
    table: str
    step: IngestStep | None  # None: label events
    data: pa.Table


T = TypeVar("T")
R = TypeVar("R")


def _prefetched(items: Iterator[T], fn: Callable[[T], R],
                executor: ThreadPoolExecutor) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` while ``fn`` already runs on the next item in ``executor``.

    NOTE: building rows (hashing, masking) then overlaps with the store's write of the previous
    chunk, most of which waits on the server or the store's writer thread with the GIL free.
    """
    it = iter(items)
    try:
        current = next(it)
    except StopIteration:
        return
    future = executor.submit(fn, current)
    for following in it:
        upcoming = executor.submit(fn, following)
        yield current, future.result()
        current, future = following, upcoming
    yield current, future.result()


def _write_chunk(store: GraphStore, step: IngestStep | None, rows: list[Any],
                 pool: ThreadPoolExecutor | None, workers: int) -> None:
    raw: Callable[[Sequence[Any]], object] = (
        store.write_labels if step is None else partial(_write, store, step))
    write = partial(_write_in_batches, raw, store.batch_size)
    if step is None or step.kind == "node":
        _in_parallel(pool, workers, rows, "id", write)
    elif SCHEMA.rel(step.target).dst == "Application":
        # NOTE: an application has one applicant, so splitting by the user keeps both ends of
        # every relationship in one stream: no lock is shared. Split by the application, a
        # user with two loans is locked by both writers, and Neo4j found deadlocks (REPAID
        # took 16x longer with two writers than with one).
        _in_parallel(pool, workers, rows, "src", write, "dst")
    else:
        # NOTE: relationships are split by target (a hub stays in one stream) and ordered by
        # source, so that concurrent writers lock shared sources in one order.
        _in_parallel(pool, workers, rows, "dst", write, "src")


class _LimitReached(Exception):
    """A write still hit the transaction limit at the smallest size tried."""

    def __init__(self, rows: int, cause: str) -> None:
        super().__init__(f"{rows} rows: {cause}")
        self.rows = rows
        self.cause = cause


def _write_in_batches(write: Callable[[Sequence[Any]], object], batch_size: int,
                      rows: Sequence[Any]) -> None:
    """``write`` one store transaction's worth of ``rows`` at a time; a transaction that hits
    the store's limit is rolled back whole, so it is split in two and retried (the writes are
    upserts), at most :data:`MAX_HALVINGS` times."""
    for start in range(0, len(rows), batch_size):
        _write_halving(write, rows[start:start + batch_size], MAX_HALVINGS)


def _write_halving(write: Callable[[Sequence[Any]], object], rows: Sequence[Any],
                   halvings: int) -> None:
    try:
        write(rows)
    except TransactionLimitError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        cause = first if len(first) <= 160 else first[:159] + "…"
        if halvings == 0 or len(rows) < 2:
            raise _LimitReached(len(rows), cause) from e
        half = len(rows) // 2
        log.warning("a write of %d rows ran past the store's transaction limit; retrying as "
                    "two of %d and %d (%s)", len(rows), half, len(rows) - half, cause)
        _write_halving(write, rows[:half], halvings - 1)
        _write_halving(write, rows[half:], halvings - 1)


def _in_parallel(pool: ThreadPoolExecutor | None, workers: int, items: Sequence[Any],
                 key: str, write: Callable[[Any], object], order_by: str | None = None) -> None:
    """Write ``items`` in ``workers`` partitions by ``key`` at once; return when all are done.

    Each partition is sorted (stably) by ``order_by``: concurrent transactions then take the
    locks of shared nodes in the same order and wait for each other instead of deadlocking.
    """
    if pool is None or len(items) < 2 * workers:
        write(items)
        return
    parts: list[list[Any]] = [[] for _ in range(workers)]
    for item in items:
        parts[zlib.crc32(_field(item, key).encode()) % workers].append(item)
    if order_by is not None:
        for part in parts:
            part.sort(key=lambda item: _field(item, order_by))
    for future in [pool.submit(write, part) for part in parts if part]:
        future.result()


def _field(item: Any, name: str) -> str:
    value = item[name] if isinstance(item, Mapping) else getattr(item, name)
    assert isinstance(value, str)
    return value


class _Sources:
    """Reads the source tables of a world in deterministic chunks."""

    def __init__(self, directory: Path, as_of: int) -> None:
        self.directory = directory
        self.as_of = as_of
        self._usage: pa.Table | None = None

    def usage(self) -> pa.Table:
        # NOTE: first/last use must be aggregated over the whole history (as of the cutoff),
        # not per chunk, or a later chunk would overwrite first_seen.
        if self._usage is None:
            cols = ["user_id", "device_serial", "ts"]
            logins = visible_as_of("logins", pq.read_table(self._path("logins"), columns=cols),
                                   self.as_of)
            apps = visible_as_of("applications",
                                 pq.read_table(self._path("applications"), columns=cols),
                                 self.as_of)
            self._usage = device_usage(logins, apps)
        return self._usage

    def _path(self, table: str) -> Path:
        return self.directory / f"{table}.parquet"

    def rows(self, table: str) -> int:
        if table == "device_usage":
            return int(self.usage().num_rows)
        return int(pq.ParquetFile(self._path(table)).metadata.num_rows)

    def chunks(self, table: str, chunk_rows: int) -> Iterator[pa.Table]:
        if table == "device_usage":
            usage = self.usage()
            for lo in range(0, usage.num_rows, chunk_rows):
                yield usage.slice(lo, chunk_rows)
            return
        with pq.ParquetFile(self._path(table)) as pf:
            for batch in pf.iter_batches(batch_size=chunk_rows):
                yield pa.Table.from_batches([batch])


def append_events(
    store: GraphStore,
    kind: str,
    records: Sequence[Mapping[str, Any]],
    pseudonymiser: Pseudonymiser,
) -> dict[str, int]:
    """Write single events as they happen, through the same row builders as the bulk load.

    Each record has the columns of the raw table of its kind (:data:`APPEND_KINDS`, schemas in
    :data:`simulator.TABLES`), identifiers in clear; they are hashed here. A login or
    application also updates ``USES``: a device never seen before gets its node with
    ``first_seen``; for a known device only ``last_seen`` moves.

    Args:
        store (GraphStore): where to write.
        kind (str): one of :data:`APPEND_KINDS`.
        records (Sequence[Mapping[str, Any]]): the events.
        pseudonymiser (Pseudonymiser): hashes people's identifiers.

    Returns:
        dict[str, int]: rows written per label / relationship type (``labels`` for labels).

    Raises:
        ValueError: on an unknown kind, a missing required column or a mistyped value.
    """
    table_name = APPEND_KINDS.get(kind)
    if table_name is None:
        raise ValueError(f"kind must be one of {tuple(APPEND_KINDS)}, got {kind!r}")
    schema = TABLES[table_name]
    for i, rec in enumerate(records):
        for f in schema:
            if not f.nullable and rec.get(f.name) is None:
                raise ValueError(f"{kind} record {i} needs {f.name!r}")
    try:
        table = pa.Table.from_pylist([dict(r) for r in records], schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
        raise ValueError(f"{kind} records do not match the {table_name} schema: {e}") from e
    written: dict[str, int] = {}
    if table_name == "label_events":
        written["labels"] = store.write_labels(label_writes(table))
        return written
    if table_name in ("logins", "applications") and table.num_rows:
        written.update(_append_usage(store, table, pseudonymiser))
    for step in PLAN:
        if step.table == table_name:
            rows = step.build(table, pseudonymiser)
            if rows:
                _write(store, step, rows)
                written[step.target] = written.get(step.target, 0) + len(rows)
    return written


def _write(store: GraphStore, step: IngestStep, rows: list[Row]) -> None:
    if step.kind == "node":
        store.upsert_nodes(step.target, rows)
    else:
        store.upsert_edges(step.target, rows)


def _append_usage(store: GraphStore, events: pa.Table,
                  pseudonymiser: Pseudonymiser) -> dict[str, int]:
    serial = events.column("device_serial").combine_chunks()
    device_ids = hash_column(pseudonymiser, "device", serial).to_pylist()
    masked = mask_column("device", serial).to_pylist()
    users = events.column("user_id").to_pylist()
    ts = events.column("ts").to_pylist()
    first_ts: dict[str, int] = {}
    for d, t in zip(device_ids, ts, strict=True):
        first_ts[d] = min(t, first_ts.get(d, t))
    new = {d for d in first_ts if store.get_node("Device", d) is None}
    dev_rows: list[Row] = [{"id": d, "masked": m, "first_seen": first_ts[d]}
                           for d, m in dict(zip(device_ids, masked, strict=True)).items()
                           if d in new]
    uses: dict[tuple[str, str], dict[str, Any]] = {}
    for u, d, t in zip(users, device_ids, ts, strict=True):
        row = uses.setdefault((u, d), {"src": u, "dst": d, "last_seen": t})
        row["last_seen"] = max(row["last_seen"], t)
        if d in new:
            row["first_seen"] = min(row.get("first_seen", t), t)
    if dev_rows:
        store.upsert_nodes("Device", dev_rows)
    store.upsert_edges("USES", list(uses.values()))
    return {"Device": len(dev_rows), "USES": len(uses)} if dev_rows else {"USES": len(uses)}


def clear_checkpoints(directory: Path) -> int:
    """Delete every load checkpoint of a world directory; returns how many."""
    n = 0
    for path in Path(directory).glob(f"{CHECKPOINT_PREFIX}*.jsonl"):
        path.unlink()
        n += 1
    return n
