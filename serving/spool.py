"""`Spool`: the durable local queue of writes accepted while the graph store is unavailable.

SQLite in WAL mode with ``synchronous=FULL`` rather than a hand-rolled append-only file: each
append is a transaction whose commit is fsynced before the caller answers, a torn write is
rolled back by SQLite's own recovery instead of by framing code of ours, entries keep their
order by an autoincrement key, acknowledged entries are deleted in place (no compaction pass),
and a lookup by key (has this application already been decided here?) is an index probe. The
cost, an fsynced commit (0.2-3 ms on this machine, several appends sharing one), is paid by
every write on the embedded store, whose writes all go behind through the spool, and on Neo4j
by the ordered writes and while the store is down. The log is copied into the database file by
the replay thread (:meth:`Spool.checkpoint`), not by an append.

One spool file belongs to one process at a time: :func:`claim_spool` takes the first file of
the spool directory whose lock it can hold, so two replicas on one host never drain the same
queue, and a restarted replica picks up (and replays) what a dead one left behind.

The same file keeps the replica's answers (:class:`Answer`): every verdict it answered, by
application id, written in the transaction that queues the verdict's rows, so that a resent
application gets the same verdict (or 409) while the store cannot be asked, also after a
restart. :class:`SiblingAnswers` reads the answers of the other spool files of the directory
(the other replicas of the host).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

MAX_SPOOL_FILES: Final = 64
WAL_AUTOCHECKPOINT_PAGES: Final = 10_000
"""Write-ahead-log pages at which an append copies the log into the database file itself; far
above what gathers between two :meth:`Spool.checkpoint` calls of the replay thread (at most a
second apart), so only an append that found no checkpoint for a long while does it.

NOTE: SQLite's default (1,000 pages) made every ~3 s at 100 verdicts/s one request's commit
also copy the log and fsync the database file, with every other append waiting behind it."""
SIBLING_RESCAN_S: Final = 5.0
"""How often :class:`SiblingAnswers` looks for spool files that appeared."""

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
CREATE TABLE IF NOT EXISTS answers (
    application_id TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    verdict BLOB NOT NULL,
    answered_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_at ON answers (answered_at);
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
class Answer:
    """A verdict a replica answered: what a resend of the application id must get again (the
    same request) or be refused for (another request)."""

    application_id: str
    request_hash: str
    verdict_json: str


@dataclass
class _Append:
    """One append (a queued entry, an answer, or both) waiting for its group commit."""

    kind: str
    key: str | None
    text: str
    payload: dict[str, Any]
    answer: Answer | None = None
    queued: bool = True
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
            self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            self._db.executescript(_SCHEMA)
            # NOTE: answers are read on a connection of their own: in WAL mode a reader never
            # waits for the writer's fsync.
            self._reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._reader.execute("PRAGMA query_only=1")
            # NOTE: a PASSIVE checkpoint on a connection of its own takes no lock an append
            # needs: appends go on while the log is copied.
            self._checkpointer = sqlite3.connect(path, isolation_level=None,
                                                 check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            raise SpoolError(f"spool {path} cannot be opened: {e}") from e
        # NOTE: one connection shared by threads; SQLite serialises writers anyway, and the
        # lock keeps a transaction's statements together.
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()
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

    def append(self, kind: str, payload: Mapping[str, Any], key: str | None = None, *,
               answer: Answer | None = None) -> int:
        """Durably queue one write; returns its sequence number once fsynced.

        Appends that arrive while another is being committed share the next transaction
        (group commit: one fsync for all of them), in the order they arrived.

        Args:
            kind (str): what the write is (``score``, ``events`` ...).
            payload (Mapping[str, Any]): the write, as JSON.
            key (str, optional): what :meth:`find` looks it up by. (default: ``None``)
            answer (Answer, optional): the verdict this write answers with, recorded in the
                same transaction (:meth:`answer`). (default: ``None``)

        Raises:
            SpoolError: the write failed; nothing of this append is kept.
        """
        item = _Append(kind, key, json.dumps(payload, separators=(",", ":"), sort_keys=True),
                       dict(payload), answer)
        return self._submit(item)

    def record_answer(self, answer: Answer) -> None:
        """Durably record a verdict answered that queues no write (one read from the store).

        Raises:
            SpoolError: the write failed.
        """
        self._submit(_Append("", None, "", {}, answer, queued=False))

    def answer(self, application_id: str) -> Answer | None:
        """The verdict this spool's replica answered for ``application_id``, if it did
        (within the answers kept: :meth:`prune_answers`)."""
        with self._read_lock:
            row = self._reader.execute(_ANSWER_QUERY, (application_id,)).fetchone()
        return None if row is None else _answer(application_id, row)

    def prune_answers(self, answered_before: float, limit: int = 5000) -> int:
        """Forget up to ``limit`` answers last recorded before ``answered_before`` (epoch
        seconds); returns how many went."""
        with self._tx() as db:
            return int(db.execute(
                "DELETE FROM answers WHERE rowid IN (SELECT rowid FROM answers "
                "WHERE answered_at < ? LIMIT ?)", (answered_before, limit)).rowcount)

    def _submit(self, item: _Append) -> int:
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
                    now = time.time()
                    queued = [item for item in batch if item.queued]
                    for item in queued:
                        cur = db.execute(
                            "INSERT INTO entries (kind, key, payload, created_at) "
                            "VALUES (?, ?, ?, ?)", (item.kind, item.key, item.text, now))
                        item.seq = int(cur.lastrowid or 0)
                    _write_answers(db, [a for a in (item.answer for item in batch)
                                        if a is not None], now)
                    self._depth += len(queued)
                    if queued:
                        self._last_seq = queued[-1].seq  # NOTE: AUTOINCREMENT: only grows
                for item in batch:
                    if item.queued and item.key is not None:
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

    def ack_many(self, seqs: list[int], answers: Sequence[Answer] = ()) -> None:
        """Forget several entries in one transaction.

        Args:
            seqs (list[int]): the entries the store now holds.
            answers (Sequence[Answer], optional): answers to record instead of those made
                (the verdicts the store kept where this replica's lost), in the same
                transaction. (default: ``()``)
        """
        with self._tx() as db:
            for seq in seqs:
                if db.execute("DELETE FROM entries WHERE seq = ?", (seq,)).rowcount:
                    self._depth -= 1
            _write_answers(db, answers, time.time())
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

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database file without holding up appends (the
        replay thread calls it; :data:`WAL_AUTOCHECKPOINT_PAGES` is the backstop).

        Raises:
            SpoolError: the checkpoint failed.
        """
        with self._checkpoint_lock:
            try:
                self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as e:
                raise SpoolError(f"spool {self.path}: checkpoint: {e}") from e

    def forget_answers(self) -> int:
        """Forget every answer recorded (their hashes were made under a key that a rotation
        retired; the store holds the verdicts); returns how many."""
        with self._tx() as db:
            return int(db.execute("DELETE FROM answers").rowcount)

    def dead_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM dead").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
        with self._read_lock:
            self._reader.close()
        with self._checkpoint_lock:
            self._checkpointer.close()


_ANSWER_QUERY: Final = "SELECT request_hash, verdict FROM answers WHERE application_id = ?"


def _write_answers(db: sqlite3.Connection, answers: Sequence[Answer], now: float) -> None:
    db.executemany(
        "INSERT INTO answers (application_id, request_hash, verdict, answered_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (application_id) DO UPDATE SET "
        "request_hash = excluded.request_hash, verdict = excluded.verdict, "
        "answered_at = excluded.answered_at",
        [(a.application_id, a.request_hash, zlib.compress(a.verdict_json.encode()), now)
         for a in answers])


def _answer(application_id: str, row: tuple[Any, ...]) -> Answer:
    return Answer(application_id, str(row[0]), zlib.decompress(row[1]).decode())


class SiblingAnswers:
    """The answers recorded in the other spool files of a directory: what the other replicas
    of this host answered (read-only; a file without answers, or not readable yet, is
    skipped).

    Args:
        directory (Path): the spool directory.
        own (Path): this replica's spool file, left out.
    """

    def __init__(self, directory: Path, own: Path) -> None:
        self.directory = directory
        self.own = own
        self._lock = threading.Lock()
        self._conns: dict[Path, sqlite3.Connection] = {}
        self._scanned = float("-inf")

    def __repr__(self) -> str:
        return f"SiblingAnswers(directory={str(self.directory)!r}, files={len(self._conns)})"

    def answer(self, application_id: str) -> Answer | None:
        """The first answer for ``application_id`` found in a sibling file, if any."""
        with self._lock:
            self._rescan()
            for conn in self._conns.values():
                try:
                    row = conn.execute(_ANSWER_QUERY, (application_id,)).fetchone()
                except sqlite3.Error:
                    continue  # a file still being created, or of a version without answers
                if row is not None:
                    return _answer(application_id, row)
        return None

    def close(self) -> None:
        with self._lock:
            for conn in self._conns.values():
                conn.close()
            self._conns.clear()

    def _rescan(self) -> None:
        now = time.monotonic()
        if now - self._scanned < SIBLING_RESCAN_S:
            return
        self._scanned = now
        for path in sorted(self.directory.glob("spool-*.sqlite")):
            if path == self.own or path in self._conns:
                continue
            try:
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                       check_same_thread=False)
            except sqlite3.Error:
                continue
            self._conns[path] = conn


class ClaimedSpool(Spool):
    """A :class:`Spool` holding an exclusive lock on its file for the life of the process."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self._lock_fd = lock_fd
        super().__init__(path)

    def close(self) -> None:
        super().close()
        os.close(self._lock_fd)


@contextmanager
def hold_spools(directory: Path) -> Iterator[list[ClaimedSpool]]:
    """Hold every spool file of ``directory`` (so that no replica of this host starts on one
    meanwhile), each checked empty: work that needs no write under way (a key rotation).

    Raises:
        SpoolError: a file is held by a running replica, or still holds writes or dead
            letters (the message says which and what to do).
    """
    held: list[ClaimedSpool] = []
    try:
        for i in range(MAX_SPOOL_FILES):
            path = directory / f"spool-{i}.sqlite"
            if not path.exists():
                continue
            fd = os.open(directory / f"spool-{i}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise SpoolError(f"{path} is held by a running replica: stop `riskgraph "
                                 "serve` on this host first") from None
            spool = ClaimedSpool(path, fd)
            held.append(spool)
            if spool.depth or spool.dead_count():
                raise SpoolError(
                    f"{path} holds {spool.depth} writes and {spool.dead_count()} dead letters "
                    "not in the store: run `riskgraph serve` with the store up until they are "
                    "replayed (dead letters: replay or delete them), then stop it")
        yield held
    finally:
        for spool in held:
            spool.close()


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
