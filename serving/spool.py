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
from dataclasses import dataclass, field
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


@dataclass
class _Append:
    """One append waiting for its group commit."""

    kind: str
    key: str | None
    text: str
    payload: dict[str, Any]
    seq: int = 0
    error: SpoolError | None = None
    done: threading.Event = field(default_factory=threading.Event)


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
        # Appends waiting for the next group commit, and whether a thread is committing.
        self._pending: list[_Append] = []
        self._pending_lock = threading.Lock()
        self._committing = False
        # Waiting payloads by (kind, key), so that a look-up never waits on a commit.
        self._keyed: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self._seq_keys: dict[int, tuple[str, str]] = {}
        with self._lock:
            for seq, kind, key, payload in self._db.execute(
                    "SELECT seq, kind, key, payload FROM entries WHERE key IS NOT NULL "
                    "ORDER BY seq"):
                self._keyed[(kind, key)] = (seq, json.loads(payload))
                self._seq_keys[seq] = (kind, key)
        self._depth = self._count()
        with self._lock:
            self._last_seq = int(self._db.execute(
                "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'entries'"
            ).fetchone()[0])

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

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest entry ever appended to this spool (0: none yet)."""
        return self._last_seq

    def oldest_seq(self) -> int | None:
        """Sequence number of the oldest entry waiting; ``None`` when none waits."""
        with self._lock:
            row = self._db.execute("SELECT min(seq) FROM entries").fetchone()
        return None if row[0] is None else int(row[0])

    def append(self, kind: str, payload: Mapping[str, Any], key: str | None = None) -> int:
        """Durably queue one write; returns its sequence number once fsynced.

        Appends that arrive while another is being committed share the next transaction
        (group commit: one fsync for all of them), in the order they arrived.

        Raises:
            SpoolError: the write failed; nothing of this append is kept.
        """
        item = _Append(kind, key, json.dumps(payload, separators=(",", ":"), sort_keys=True),
                       dict(payload))
        with self._pending_lock:
            self._pending.append(item)
            lead = not self._committing
            if lead:
                self._committing = True
        if lead:
            self._commit_pending()
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.seq

    def _commit_pending(self) -> None:
        while True:
            with self._pending_lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._committing = False
                    return
            try:
                with self._tx() as db:
                    for item in batch:
                        cur = db.execute(
                            "INSERT INTO entries (kind, key, payload, created_at) "
                            "VALUES (?, ?, ?, ?)", (item.kind, item.key, item.text, time.time()))
                        item.seq = int(cur.lastrowid or 0)
                    self._depth += len(batch)
                    self._last_seq = batch[-1].seq  # NOTE: AUTOINCREMENT: only grows
                for item in batch:
                    if item.key is not None:
                        self._keyed[(item.kind, item.key)] = (item.seq, item.payload)
                        self._seq_keys[item.seq] = (item.kind, item.key)
            except Exception as e:  # noqa: BLE001 - every waiter must hear of it
                err = e if isinstance(e, SpoolError) else SpoolError(f"spool {self.path}: {e}")
                for item in batch:
                    item.error = err
            finally:
                for item in batch:
                    item.done.set()

    def peek(self, limit: int = 100) -> list[SpoolEntry]:
        """The oldest ``limit`` entries, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, key, payload, attempts FROM entries ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [SpoolEntry(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]

    def keys(self, kind: str) -> list[str]:
        """The keys of the waiting entries of ``kind`` (from memory)."""
        return [key for (k, key) in list(self._keyed) if k == kind]

    def find(self, kind: str, key: str) -> dict[str, Any] | None:
        """The newest waiting payload of ``kind`` under ``key``, or ``None`` (from memory)."""
        found = self._keyed.get((kind, key))
        return None if found is None else found[1]

    def _forget(self, seq: int) -> None:
        key = self._seq_keys.pop(seq, None)
        if key is not None and self._keyed.get(key, (None,))[0] == seq:
            del self._keyed[key]

    def ack(self, seq: int) -> None:
        """Forget an entry the store now holds."""
        self.ack_many([seq])

    def ack_many(self, seqs: list[int]) -> None:
        """Forget several entries in one transaction."""
        with self._tx() as db:
            for seq in seqs:
                if db.execute("DELETE FROM entries WHERE seq = ?", (seq,)).rowcount:
                    self._depth -= 1
        for seq in seqs:
            self._forget(seq)

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
        self._forget(entry.seq)

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
