"""`DocumentFile`: the document properties of LadybugDB nodes, in SQLite beside the database.

A document property (:attr:`graph.schema.Property.document`: a verdict's JSON, several KB a
row) stays out of LadybugDB's node table. LadybugDB rewrites the last node group of a table,
its strings included, at every checkpoint: with 120,000 verdicts' features JSON in the table a
checkpoint after 500 new verdicts took about 975 ms, without it 31 ms
(``bench/bench_checkpoint.py``). SQLite appends a row to a B-tree instead. WAL and
``synchronous=FULL``: a document is durable before its node is written, so a crash between the
two leaves at most an orphan document, which the retried write replaces.

Rows written before documents moved here keep their values in the node table; reads take the
document from here when there is one, else the table's.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from graph.errors import StoreError
from graph.schema import NodeSpec

_CHUNK = 500
"""Ids per ``IN (...)`` look-up (SQLite's default limit on parameters is far above)."""


def _quote(name: str) -> str:
    if not name.isidentifier():
        raise StoreError(f"{name!r} is not an identifier")
    return f'"{name}"'


class DocumentFile:
    """The document properties of ``specs`` in one SQLite file, one table per label.

    Args:
        path (Path): the SQLite file (created unless ``read_only``).
        specs (Sequence[NodeSpec]): the labels that have document properties.
        read_only (bool, optional): open for reading; a missing file reads as empty.
            (default: ``False``)
    """

    def __init__(self, path: Path, specs: Sequence[NodeSpec], *, read_only: bool = False
                 ) -> None:
        self.path = path
        self._specs = {s.label: s for s in specs if s.documents}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if read_only and not path.exists():
            return
        try:
            if read_only:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                           check_same_thread=False, isolation_level=None)
            else:
                self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                for spec in self._specs.values():
                    cols = ", ".join(f"{_quote(n)} TEXT" for n in spec.documents)
                    self._db.execute(f"CREATE TABLE IF NOT EXISTS {_quote(spec.label)} "
                                     f"(id TEXT PRIMARY KEY, {cols})")
        except sqlite3.Error as e:
            raise StoreError(f"document file {path}: {e}") from e

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, labels={sorted(self._specs)})"

    def put(self, spec: NodeSpec, rows: Sequence[Mapping[str, Any]], *,
            replace: bool = False) -> None:
        """Write the document properties of ``rows`` (each with its ``id``), in one transaction.

        A property a row leaves out or gives as ``None`` keeps its stored value, unless
        ``replace`` (a node being created: whatever is stored is an orphan of a failed write).
        """
        names = spec.documents
        rows = [r for r in rows if any(r.get(n) is not None for n in names)]
        if not rows or self._db is None:
            return
        table, cols = _quote(spec.label), ", ".join(_quote(n) for n in names)
        marks = ", ".join("?" for _ in range(len(names) + 1))
        if replace:
            sql = f"INSERT OR REPLACE INTO {table} (id, {cols}) VALUES ({marks})"
        else:
            sets = ", ".join(f"{_quote(n)} = coalesce(excluded.{_quote(n)}, {_quote(n)})"
                             for n in names)
            sql = (f"INSERT INTO {table} (id, {cols}) VALUES ({marks}) "
                   f"ON CONFLICT(id) DO UPDATE SET {sets}")
        values = [(r["id"], *(r.get(n) for n in names)) for r in rows]
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(sql, values)
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                self._db.execute("ROLLBACK")
                raise StoreError(f"document file {self.path}: {e}") from e

    def get(self, spec: NodeSpec, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored document properties of the nodes ``ids`` that have any, by id."""
        if self._db is None or spec.label not in self._specs or not ids:
            return {}
        names = spec.documents
        cols = ", ".join(_quote(n) for n in names)
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(ids))
        with self._lock:
            for lo in range(0, len(unique), _CHUNK):
                chunk = unique[lo:lo + _CHUNK]
                marks = ", ".join("?" for _ in chunk)
                for row in self._db.execute(
                        f"SELECT id, {cols} FROM {_quote(spec.label)} WHERE id IN ({marks})",
                        chunk):
                    found[row[0]] = dict(zip(names, row[1:], strict=True))
        return found

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
