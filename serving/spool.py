"""`Spool`: the durable local queue of writes accepted while the graph store is unavailable.

SQLite in WAL mode with ``synchronous=FULL`` rather than a hand-rolled append-only file: each
append is a transaction whose commit is fsynced before the caller answers, a torn write is
rolled back by SQLite's own recovery instead of by framing code of ours, entries keep their
order by an autoincrement key, acknowledged entries are deleted in place (no compaction pass),
and a lookup by key (has this application already been decided here?) is an index probe. The
cost, about 3 ms per fsynced commit on this machine, is paid only while the store is down.

One spool file belongs to one process at a time: :func:`claim_spool` takes the first file of
the spool directory whose lock it can hold, so two replicas on one host never drain the same
queue, and a restarted replica picks up (and replays) what a dead one left behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

MAX_SPOOL_FILES: Final = 64

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS entries_key ON entries (kind, key);
CREATE TABLE IF NOT EXISTS dead (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    error TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""


class SpoolError(RuntimeError):
    """The spool cannot be opened or written; nothing can be accepted durably."""


@dataclass(frozen=True)
class SpoolEntry:
    """One accepted write waiting for the store."""

    seq: int
    kind: str
    key: str | None
    payload: dict[str, Any]
    attempts: int


class Spool:
    """An ordered, durable queue in one SQLite file (see the module docstring).

    Args:
        path (Path): the database file; created with its parent directory if missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise SpoolError(f"spool {path} cannot be opened: {e}") from e
        # NOTE: one connection shared by threads; SQLite serialises writers anyway, and the
        # lock keeps a transaction's statements together.
        self._lock = threading.Lock()
        self._depth = self._count()

    def __repr__(self) -> str:
        return f"Spool(path={str(self.path)!r}, depth={self._depth})"

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                raise SpoolError(f"spool {self.path}: {e}") from e

    def _count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    @property
    def depth(self) -> int:
        """Entries waiting (kept in memory, no query)."""
        return self._depth

    def append(self, kind: str, payload: Mapping[str, Any], key: str | None = None) -> int:
        """Durably queue one write; returns its sequence number once fsynced."""
        text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO entries (kind, key, payload, created_at) VALUES (?, ?, ?, ?)",
                (kind, key, text, time.time()),
            )
            seq = int(cur.lastrowid or 0)
            self._depth += 1
        return seq

    def peek(self, limit: int = 100) -> list[SpoolEntry]:
        """The oldest ``limit`` entries, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, key, payload, attempts FROM entries ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [SpoolEntry(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]

    def find(self, kind: str, key: str) -> dict[str, Any] | None:
        """The newest waiting payload of ``kind`` under ``key``, or ``None``."""
        with self._lock:
            row = self._db.execute(
                "SELECT payload FROM entries WHERE kind = ? AND key = ? ORDER BY seq DESC "
                "LIMIT 1", (kind, key),
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def ack(self, seq: int) -> None:
        """Forget an entry the store now holds."""
        with self._tx() as db:
            if db.execute("DELETE FROM entries WHERE seq = ?", (seq,)).rowcount:
                self._depth -= 1

    def ack_many(self, seqs: list[int]) -> None:
        """Forget several entries in one transaction."""
        with self._tx() as db:
            for seq in seqs:
                if db.execute("DELETE FROM entries WHERE seq = ?", (seq,)).rowcount:
                    self._depth -= 1

    def record_failure(self, entry: SpoolEntry) -> int:
        """Count a failed replay attempt; returns the attempts so far."""
        with self._tx() as db:
            db.execute("UPDATE entries SET attempts = attempts + 1 WHERE seq = ?", (entry.seq,))
        return entry.attempts + 1

    def dead_letter(self, entry: SpoolEntry, error: str) -> None:
        """Move an entry the store keeps rejecting aside, kept for an operator."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO dead (seq, kind, key, payload, created_at, error, "
                "failed_at) SELECT seq, kind, key, payload, created_at, ?, ? FROM entries "
                "WHERE seq = ?", (error, time.time(), entry.seq),
            )
            if db.execute("DELETE FROM entries WHERE seq = ?", (entry.seq,)).rowcount:
                self._depth -= 1

    def dead_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM dead").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class ClaimedSpool(Spool):
    """A :class:`Spool` holding an exclusive lock on its file for the life of the process."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self._lock_fd = lock_fd
        super().__init__(path)

    def close(self) -> None:
        super().close()
        os.close(self._lock_fd)


def claim_spool(directory: Path) -> ClaimedSpool:
    """Open the first spool file in ``directory`` no other process holds.

    Raises:
        SpoolError: if every one of the :data:`MAX_SPOOL_FILES` files is held.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpoolError(f"spool directory {directory} cannot be created: {e}") from e
    for i in range(MAX_SPOOL_FILES):
        lock_path = directory / f"spool-{i}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return ClaimedSpool(directory / f"spool-{i}.sqlite", fd)
    raise SpoolError(f"all {MAX_SPOOL_FILES} spool files in {directory} are held by other "
                     "processes")
