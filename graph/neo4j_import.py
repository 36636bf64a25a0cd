"""Neo4j's bulk path: folded tables imported offline with ``neo4j-admin database import full``.

:class:`Neo4jImport` is what a :class:`graph.neo4j_store.Neo4jStore` given one uses as its
:meth:`graph.GraphStore.bulk_load`. It writes each label's and type's table as a CSV file with
the header neo4j-admin reads (``id:ID(User)``, ``:START_ID(User)``, typed properties), then asks
the server (:class:`Neo4jServer`) to stop, import the files into the database offline, and
start again. The store then applies its schema (constraints and indexes are built on the
imported data once the server is up: Community's importer takes no schema at all, its
``--schema`` answers "Record format batch import does not support schema changes").

The database is replaced whole, never patched: :class:`Neo4jScript` (the server that
``scripts/neo4j.sh`` runs) imports into a staging data directory and moves the new database in
only when neo4j-admin succeeded, so a failed or killed import leaves the database it was to
replace as it was, and the server serves that one again.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from graph.errors import StoreError
from graph.schema import NodeSpec, PropertyType, RelSpec, Schema
from graph.typing import NodeType, RelType

__all__ = ["IMPORT_TYPES", "Neo4jImport", "Neo4jScript", "Neo4jServer", "write_import_files"]

IMPORT_TYPES: Final[dict[PropertyType, str]] = {
    "STRING": "string",
    "INT64": "long",
    "DOUBLE": "double",
    "BOOL": "boolean",
}
"""The neo4j-admin header type of each schema property type: what the upserts store (a Python
int is a Neo4j long, a float a double)."""

log = logging.getLogger(__name__)


class Neo4jServer(Protocol):
    """A Neo4j server on this machine that an offline import can stop, import into and start.

    Attributes:
        import_dir (Path): a directory on the server's disk for the import files.
    """

    import_dir: Path

    def stop(self) -> None:
        """Stop the server (nothing to do when it is stopped)."""
        ...

    def start(self) -> None:
        """Start the server and return once it answers on Bolt."""
        ...

    def import_database(self, database: str, arguments: Sequence[str]) -> None:
        """Run ``neo4j-admin database import full ARGUMENTS DATABASE`` with the server
        stopped; on success the imported database replaces ``database``, on failure
        ``database`` is left as it was.

        Raises:
            StoreError: neo4j-admin failed (the message carries its last lines).
        """
        ...


class Neo4jScript:
    """The Neo4j server that ``scripts/neo4j.sh`` runs from one home directory and Bolt port.

    Args:
        script (Path): ``scripts/neo4j.sh``.
        home (Path): the server's home (the script's ``NEO4J_HOME_DIR``).
        bolt_port (int): its Bolt port on 127.0.0.1 (``NEO4J_BOLT_PORT``).
        password (str): the password of user ``neo4j`` (``NEO4J_PASSWORD``); the script
            checks it when it starts the server.
        environment (Mapping[str, str], optional): more of the script's variables
            (``NEO4J_HEAP_MAX``, ``JAVA_HOME`` ...). (default: none)
        timeout (float, optional): seconds one call of the script may take. (default: ``3600``)
    """

    def __init__(self, script: Path, *, home: Path, bolt_port: int, password: str,
                 environment: Mapping[str, str] | None = None, timeout: float = 3600.0) -> None:
        if not 0 < bolt_port < 65536:
            raise ValueError(f"bolt_port must be a TCP port, got {bolt_port}")
        self.script = Path(script)
        self.home = Path(home)
        self.bolt_port = bolt_port
        self.import_dir = self.home / "import"
        self.timeout = timeout
        self._environment = {
            **(environment or {}), "NEO4J_HOME_DIR": str(self.home),
            "NEO4J_BOLT_PORT": str(bolt_port), "NEO4J_PASSWORD": password}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(home={str(self.home)!r}, bolt_port={self.bolt_port})"

    def stop(self) -> None:
        self._run("stop")

    def start(self) -> None:
        self._run("start")

    def import_database(self, database: str, arguments: Sequence[str]) -> None:
        for line in self._run("import", database, *arguments).splitlines():
            if line.strip():
                log.info("neo4j-admin: %s", line.strip())

    def _run(self, *arguments: str) -> str:
        """Run the script with ``arguments``; its standard output."""
        command = ["bash", str(self.script), *arguments]
        try:
            done = subprocess.run(command, env={**os.environ, **self._environment},
                                  capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise StoreError(f"{self.script.name} {arguments[0]} failed: {e}") from e
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise StoreError(f"{self.script.name} {arguments[0]} failed (exit status "
                             f"{done.returncode}): " + " | ".join(lines[-8:]))
        return done.stdout


@dataclass(frozen=True)
class Neo4jImport:
    """How a :class:`graph.neo4j_store.Neo4jStore` runs its bulk path.

    Args:
        server (Neo4jServer): the server to stop, import into and start.
        threads (int, optional): neo4j-admin's ``--threads``. (default: the machine's cores)
        max_off_heap_memory (str, optional): neo4j-admin's ``--max-off-heap-memory``; its own
            default is 90 % of the free memory, too greedy for a shared machine.
            (default: ``"2G"``)
    """

    server: Neo4jServer
    threads: int | None = None
    max_off_heap_memory: str = "2G"

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads <= 0:
            raise ValueError(f"threads must be positive, got {self.threads}")

    def run(self, schema: Schema, database: str, nodes: Sequence[tuple[NodeType, pa.Table]],
            edges: Sequence[tuple[RelType, pa.Table]]) -> dict[str, float]:
        """Write the files, stop the server, import them into ``database``, start it.

        The server is started again whatever happened after it stopped; the files are
        deleted.

        Returns:
            dict[str, float]: seconds spent on ``files``, ``stop``, ``import`` and ``start``.

        Raises:
            StoreError: a step failed; the message says what is left (the database as it was,
                or imported with the server not started) and what to do.
        """
        seconds: dict[str, float] = {}
        self.server.import_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="riskgraph-import-", dir=self.server.import_dir))
        try:
            clock = time.perf_counter()
            try:
                arguments = write_import_files(schema, nodes, edges, folder)
            except (OSError, pa.ArrowException) as e:
                raise StoreError(f"could not write the import files into {folder} ({e}); the "
                                 "server was not stopped: make room there and run the load "
                                 "again") from e
            seconds["files"] = time.perf_counter() - clock
            clock = time.perf_counter()
            self.server.stop()
            seconds["stop"] = time.perf_counter() - clock
            clock = time.perf_counter()
            try:
                # NOTE: --verbose: without it a failure says only "Error importing csv
                # file", with it the cause ("Caused by: ...") reaches the error message.
                self.server.import_database(database, [
                    "--verbose", f"--threads={self.threads or os.cpu_count() or 1}",
                    f"--max-off-heap-memory={self.max_off_heap_memory}", *arguments])
            except StoreError as e:
                _start_after_failure(self.server, e)
                raise StoreError(f"the import into {database!r} failed and the database is as "
                                 f"it was (the server is running again); fix what neo4j-admin "
                                 f"says and run the load again: {e}") from e
            except BaseException as e:  # NOTE: Ctrl-C too: the server must not stay down.
                _start_after_failure(self.server, e)
                raise
            seconds["import"] = time.perf_counter() - clock
            clock = time.perf_counter()
            try:
                self.server.start()
            except StoreError as e:
                raise StoreError(f"{database!r} was imported whole, but the server did not "
                                 f"start again ({e}); start it, then apply the schema "
                                 "(`riskgraph schema`)") from e
            seconds["start"] = time.perf_counter() - clock
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return seconds


def _start_after_failure(server: Neo4jServer, error: BaseException) -> None:
    try:
        server.start()
    except StoreError as e:
        raise StoreError(f"the import failed ({error}) and the server, with its database as it "
                         f"was, did not start again: {e}") from error


def write_import_files(schema: Schema, nodes: Sequence[tuple[NodeType, pa.Table]],
                       edges: Sequence[tuple[RelType, pa.Table]], folder: Path) -> list[str]:
    """Write one CSV file per label and type, header first, into ``folder``.

    Every label is an id space of its own (``id:ID(User)``), so that ids need only be unique
    per label, as the schema's constraints say; a null is an empty field (no property), an
    empty string a quoted one.

    Args:
        schema (Schema): the schema the tables follow.
        nodes (Sequence[tuple[NodeType, pa.Table]]): per label, ``id`` and properties.
        edges (Sequence[tuple[RelType, pa.Table]]): per type, ``src``, ``dst`` and properties.
        folder (Path): an existing directory.

    Returns:
        list[str]: neo4j-admin's options that import these files: ``--nodes``,
        ``--relationships`` and the parsing options they need.
    """
    arguments = ["--input-type=csv", "--id-type=string", "--bad-tolerance=0",
                 "--skip-bad-relationships=false", "--skip-duplicate-nodes=false"]
    multiline = False
    for i, (label, table) in enumerate(nodes):
        if table.num_rows:
            spec = schema.node(label)
            file = folder / f"{i:02d}-{label}.csv"
            multiline |= _write_csv(table, _node_header(spec, table.column_names), file)
            arguments.append(f"--nodes={label}={file}")
    for i, (rel_type, table) in enumerate(edges):
        if table.num_rows:
            rel = schema.rel(rel_type)
            file = folder / f"{len(nodes) + i:02d}-{rel_type}.csv"
            multiline |= _write_csv(table, _edge_header(rel, table.column_names), file)
            arguments.append(f"--relationships={rel_type}={file}")
    # NOTE: a field that spans lines needs the slower reader that finds record ends by
    # parsing; none of a simulated world's values has a line break, so it is asked only then.
    arguments.append(f"--multiline-fields={'true' if multiline else 'false'}")
    return arguments


def _node_header(spec: NodeSpec, columns: Sequence[str]) -> list[str]:
    return [f"id:ID({spec.label})" if c == "id"
            else f"{c}:{IMPORT_TYPES[spec.property(c).type]}" for c in columns]


def _edge_header(spec: RelSpec, columns: Sequence[str]) -> list[str]:
    ends = {"src": f":START_ID({spec.src})", "dst": f":END_ID({spec.dst})"}
    return [ends[c] if c in ends else f"{c}:{IMPORT_TYPES[spec.property(c).type]}"
            for c in columns]


def _write_csv(table: pa.Table, header: list[str], file: Path) -> bool:
    """Write ``table`` under ``header``; whether a string value holds a line break."""
    multiline = any(
        pc.any(pc.match_substring_regex(table.column(f.name), r"[\r\n]")).as_py()
        for f in table.schema if pa.types.is_string(f.type) and table.column(f.name).null_count
        < table.num_rows)
    with pa.output_stream(str(file)) as out:
        out.write((",".join(header) + "\n").encode())
        # NOTE: Arrow quotes every string (a quote inside doubled, as neo4j-admin reads it),
        # writes a null as an empty field (no property), floats in the shortest form that
        # reads back to the same double, and booleans as true/false.
        pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False))
    return bool(multiline)
