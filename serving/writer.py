"""`DurableWriter`: every write of the service reaches the graph store exactly once.

A write is a short list of idempotent operations (:func:`apply_ops`). Writes whose order
matters (behaviour events, an application's rows) are appended to the
:class:`serving.spool.Spool` (fsynced) and acknowledged at once; a replay thread writes them to
the store in acceptance order, in group commits, whenever the store is up. Writes whose order
does not matter and whose answer the caller needs (a verdict claim, a label) go to the store
directly and to the spool only while the store is down or slow. Operations are idempotent (nodes by id, events by event id, verdicts and label events
created only if absent), so a write replayed after a crash or a timeout that did commit is
still stored once.

Every verdict the service answers is recorded in the spool file with the write it causes
(:class:`serving.spool.Answer`), so that a resend finds it while the store cannot be read. A
spooled verdict that finds another verdict of its application id in the store at replay lost
(the first verdict to reach the store stands): the answer given is kept in the store as a
``VerdictConflict`` record, the listener hears of it (a metric), and the replica's record of
what it answered becomes the stored verdict.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import socket
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from graph import GraphError, GraphNode, GraphStore, LabelWrite
from serving.spool import Answer, SiblingAnswers, Spool, SpoolEntry, SpoolError
from serving.store_guard import StoreDown, StoreGuard

log = logging.getLogger(__name__)

Op = dict[str, Any]
"""One operation: ``{"op": "nodes", "label", "rows"}``, ``{"op": "edges", "rel", "rows"}``,
``{"op": "verdict", "row", "then": [ops]}``, ``{"op": "event", "row", "then": [ops]}`` or
``{"op": "label", "event", "label"}``."""

MAX_ATTEMPTS: Final = 5
REPLAY_BATCH: Final = 500
MERGEABLE: Final = frozenset({"events", "application", "score"})
"""Spool kinds replayed together in one group commit: plain upserts, and verdict claims
(settled together with :meth:`graph.GraphStore.create_nodes` before the upserts)."""
REPLAY_TIMEOUT_S: Final = 60.0
PRUNE_EVERY_S: Final = 60.0
"""How often the replay thread forgets answers older than the writer's ``answers_keep_s``."""


@dataclass
class ApplyResult:
    """What applying a write found: verdicts or label events already there."""

    existing_verdicts: dict[str, GraphNode] = field(default_factory=dict)
    duplicate_events: list[str] = field(default_factory=list)
    conflicting_events: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VerdictConflict:
    """A verdict answered for an application id that lost to the verdict the store holds.

    Args:
        kind (Literal["request", "verdict"]): ``request``: answered for another request body
            (its caller should have had 409); ``verdict``: the same request answered with
            another verdict.
        answered (Mapping[str, Any]): the ``Verdict`` row answered, which lost.
        stored (Mapping[str, Any]): the properties of the stored ``Verdict``, which stands.
    """

    kind: Literal["request", "verdict"]
    answered: Mapping[str, Any]
    stored: Mapping[str, Any]

    @property
    def application_id(self) -> str:
        return str(self.answered["id"])

    @property
    def record_id(self) -> str:
        """The ``VerdictConflict`` record's id: the same answer found twice (a replay retried
        after a crash) is one record."""
        digest = hashlib.sha256(str(self.answered["verdict_json"]).encode()).hexdigest()
        return f"{self.application_id}/{digest[:16]}"

    def record(self, replica: str, found_at: int) -> dict[str, Any]:
        """The ``VerdictConflict`` record (graph/schema.py)."""
        a = self.answered
        return {"id": self.record_id, "application_id": self.application_id, "kind": self.kind,
                "request_hash": a["request_hash"],
                "stored_request_hash": self.stored.get("request_hash"),
                "decision": a["decision"], "degraded": a["degraded"],
                "decided_at": a["decided_at"], "found_at": found_at, "replica": replica,
                "verdict_json": a["verdict_json"], "request_json": a.get("request_json")}

    def stored_answer(self) -> Answer:
        """What the replica that answered ``answered`` answers from now on."""
        return Answer(self.application_id, str(self.stored.get("request_hash")),
                      str(self.stored.get("verdict_json")))


def find_conflict(answered: Mapping[str, Any], stored: Mapping[str, Any]
                  ) -> VerdictConflict | None:
    """The conflict between a ``Verdict`` row answered and the one stored; ``None`` when they
    are one verdict (a claim replayed after it had committed)."""
    if stored.get("request_hash") != answered["request_hash"]:
        return VerdictConflict("request", answered, stored)
    if stored.get("verdict_json") != answered["verdict_json"]:
        return VerdictConflict("verdict", answered, stored)
    return None


def apply_ops(store: GraphStore, ops: Sequence[Op]) -> ApplyResult:
    """Apply operations in order; each is idempotent (see the module docstring).

    Runs of plain ``nodes`` / ``edges`` ops go to the store as one
    :meth:`graph.GraphStore.write_batch` (one transaction). A ``verdict`` op creates the
    ``Verdict`` record unless one exists; its ``then`` ops (the application and its edges) run
    when the record is new or holds the same request hash, and are skipped when another request
    already claimed the id. A ``label`` op writes the label unless its event id was seen, and
    never lets an older label overwrite a newer one. A run of ``event`` ops claims its event
    ids together (:func:`claim_events`) and writes the events it won; the ids another body
    holds are reported in ``conflicting_events``.
    """
    result = ApplyResult()
    plain: list[Op] = []
    events: list[Op] = []

    def flush() -> None:
        if events:
            won, lost = claim_events(store, events)
            result.conflicting_events.extend(lost)
            plain.extend(merge_ops(event_writes(events, won)))
            events.clear()
        if plain:
            store.write_batch([(op["label"], op["rows"]) for op in plain if op["op"] == "nodes"],
                              [(op["rel"], op["rows"]) for op in plain if op["op"] == "edges"])
            plain.clear()

    for op in ops:
        kind = op["op"]
        if kind == "event":
            if plain:
                flush()
            events.append(op)
            continue
        if kind in ("nodes", "edges"):
            if events:
                flush()
            plain.append(op)
            continue
        flush()
        if kind == "verdict":
            row = op["row"]
            existing = store.create_node("Verdict", row)
            if existing is not None:
                result.existing_verdicts[row["id"]] = existing
                if existing.properties.get("request_hash") != row["request_hash"]:
                    continue
            apply_ops(store, op["then"])
        elif kind == "label":
            _apply_label(store, op, result)
        else:
            raise ValueError(f"unknown write op {kind!r}")
    flush()
    return result


def claim_events(store: GraphStore, ops: Sequence[Op]) -> tuple[set[str], list[str]]:
    """Claim the ids of ``event`` ops in one :meth:`graph.GraphStore.claim_nodes` (first
    writer wins per id, across replicas).

    Returns:
        tuple[set[str], list[str]]: the ids whose claim the op's body holds (new, or claimed
        before by the same body: a replay after a crash between the claim and the writes),
        whose writes are due; and the ids another body holds, or that ``ops`` carry twice
        with two bodies (the first stands).
    """
    claims: dict[str, dict[str, Any]] = {}
    conflicts: list[str] = []
    for op in ops:
        row = op["row"]
        first = claims.setdefault(row["id"], row)
        if first["body_hash"] != row["body_hash"]:
            conflicts.append(row["id"])
    held = store.claim_nodes("EventRecord", list(claims.values())) if claims else []
    won: set[str] = set()
    for (event_id, row), node in zip(claims.items(), held, strict=True):
        if node.properties.get("body_hash") == row["body_hash"]:
            won.add(event_id)
        else:
            conflicts.append(event_id)
    return won, conflicts


def event_writes(ops: Sequence[Op], won: set[str]) -> list[Op]:
    """The writes of the ``event`` ops whose id is in ``won``, each id once, in op order."""
    writes: list[Op] = []
    done: set[str] = set()
    for op in ops:
        event_id = op["row"]["id"]
        if event_id in won and event_id not in done:
            done.add(event_id)
            writes.extend(op["then"])
    return writes


class ClaimBatcher:
    """Group commit of verdict claims: the claims that arrive together share one
    :meth:`graph.GraphStore.create_nodes` transaction (first writer wins per id).

    A single-writer store commits a few hundred transactions a second at best; one claim per
    verdict in its own transaction would cap the service there.

    Args:
        guard (StoreGuard): store access under timeouts.
        linger_s (float, optional): how long a batch waits for company. (default: ``0.002``)
        max_batch (int, optional): most claims per transaction. (default: ``128``)
    """

    def __init__(self, guard: StoreGuard, *, linger_s: float = 0.002,
                 max_batch: int = 128) -> None:
        self.guard = guard
        self.linger_s = linger_s
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[dict[str, Any], Future[GraphNode | None]] | None] = (
            queue.Queue())
        self._thread = threading.Thread(target=self._run, name="verdict-claims", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"ClaimBatcher(linger_s={self.linger_s}, max_batch={self.max_batch})"

    def claim(self, row: dict[str, Any]) -> GraphNode | None:
        """Create the ``Verdict`` record of ``row`` unless one exists; return that one.

        Raises:
            StoreDown: the store is unavailable or slow.
        """
        fut: Future[GraphNode | None] = Future()
        self._queue.put((row, fut))
        try:
            return fut.result(timeout=2 * self.guard.write_timeout_s + 1)
        except FutureTimeout:
            raise StoreDown("verdict claim not answered in time") from None

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.linger_s
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            # NOTE: one id twice in a batch (a retry racing its original) goes in the next.
            seen: set[str] = set()
            now: list[tuple[dict[str, Any], Future[GraphNode | None]]] = []
            later: list[tuple[dict[str, Any], Future[GraphNode | None]]] = []
            for item in batch:
                (later if item[0]["id"] in seen else now).append(item)
                seen.add(item[0]["id"])
            for item in later:
                self._queue.put(item)
            rows = [row for row, _ in now]
            try:
                found = self.guard.write(lambda s: s.create_nodes("Verdict", rows))
            except BaseException as e:  # noqa: BLE001 - every waiter hears of it
                for _, fut in now:
                    fut.set_exception(e)
                continue
            for (_, fut), node in zip(now, found, strict=True):
                fut.set_result(node)


def _apply_label(store: GraphStore, op: Op, result: ApplyResult) -> None:
    event, lab = op["event"], op["label"]
    seen = store.get_node("LabelEvent", event["id"])
    if seen is not None:
        same = seen.properties.get("body_hash") == event["body_hash"]
        (result.duplicate_events if same else result.conflicting_events).append(event["id"])
        return
    write = LabelWrite(lab["label"], lab["id"], lab["kind"], lab["at"], lab["source"])
    target = store.get_node(write.label, write.id)
    family = "default" if write.kind == "default" else "fraud"
    known_at = None if target is None else target.properties.get(f"{family}_label_at")
    # NOTE: labels can arrive out of order (late confirmations, replays after an outage);
    # the newest judgement wins, whatever order the events came in.
    if not isinstance(known_at, int) or known_at <= write.at:
        store.write_labels([write])
    store.create_node("LabelEvent", event)


class DurableWriter:
    """Writes to the store through the spool (module docstring).

    Two kinds of writes:

    * :meth:`write` (verdict claims, labels): order does not matter for them (the first claim
      wins, the newest label wins), and the caller needs the store's answer, so they go to the
      store at once when it is up and to the spool only when it is not;
    * :meth:`enqueue` (behaviour events, an application's rows): order matters, the caller does
      not need to wait, so they always go through the spool (fsynced, then acknowledged) and
      the replay thread writes them behind, merging the queued entries into one write per
      label and relationship type: group commit, which is what keeps a single-writer store
      (LadybugDB) ahead of hundreds of verdicts per second.

    Args:
        guard (StoreGuard): store access under timeouts.
        spool (Spool): the durable local queue.
        linger_s (float, optional): how long the replay thread lets writes gather before a
            group commit: longer means fewer, larger writes and less time the store's writer
            is busy; the cost is how long the store lags behind. (default: ``0.5``)
        on_dead_letter (Callable[[SpoolEntry, str], None], optional): told when an entry is
            set aside after :data:`MAX_ATTEMPTS` rejections. (default: ``None``)
        observers (Sequence[Callable[[Sequence[Op]], None]], optional): told every write
            accepted, as soon as it is (the in-memory graph). (default: ``()``)
        on_event_conflict (Callable[[str, str], None], optional): told ``(kind, event id)``
            of each event or label that a spooled write carried and the store refused when it
            was written, because the id was already stored with another body (the first
            stands). (default: ``None``)
        on_verdict_conflict (Callable[[VerdictConflict], None], optional): told each verdict
            answered here that lost to a stored one at replay. (default: ``None``)
        answers_keep_s (float, optional): how long the answers recorded in the spool file
            are kept. (default: ``86400``)
        replica (str, optional): names this replica in ``VerdictConflict`` records.
            (default: host name and spool file)
    """

    def __init__(self, guard: StoreGuard, spool: Spool, *, linger_s: float = 0.5,
                 on_dead_letter: Callable[[SpoolEntry, str], None] | None = None,
                 observers: Sequence[Callable[[Sequence[Op]], None]] = (),
                 on_event_conflict: Callable[[str, str], None] | None = None,
                 on_verdict_conflict: Callable[[VerdictConflict], None] | None = None,
                 answers_keep_s: float = 86_400.0, replica: str | None = None) -> None:
        self.guard = guard
        self.spool = spool
        self.linger_s = linger_s
        self.observers = list(observers)
        self.answers_keep_s = answers_keep_s
        self.replica = replica or f"{socket.gethostname()}:{spool.path.name}"
        self._siblings = SiblingAnswers(spool.path.parent, spool.path)
        self._claims = ClaimBatcher(guard)
        self._on_dead_letter = on_dead_letter
        self._on_event_conflict = on_event_conflict
        self._on_verdict_conflict = on_verdict_conflict
        self._pruned = time.monotonic()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drained = threading.Condition()
        self._thread: threading.Thread | None = None
        self.replayed = 0
        # NOTE: with a store only this process writes, every verdict is claimed here; the
        # ids already decided (loaded at start, grown by each claim) let a look-up of a new
        # application skip the store, whose reads stall while it checkpoints (LadybugDB: a
        # second and more once the verdict table is large). None: always ask the store.
        self._decided: set[str] | None = None
        guard.on_up(self._wake.set)

    def __repr__(self) -> str:
        return f"DurableWriter(depth={self.spool.depth}, linger_s={self.linger_s})"

    @property
    def pending(self) -> int:
        """Writes accepted and not yet in the store."""
        return self.spool.depth

    def start(self) -> None:
        """Load the decided ids (a store only this process writes), start the replay thread
        (replays what an earlier run left at once)."""
        if self.guard.store.exclusive_writer and self._decided is None:
            self._load_decided()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="spool-replay", daemon=True)
            self._thread.start()
            self._wake.set()

    def answered(self, application_id: str) -> Answer | None:
        """The verdict this replica, or another of this host (a sibling spool file), answered
        for ``application_id``, as recorded; ``None`` if none did (within the answers kept)."""
        return self.spool.answer(application_id) or self._siblings.answer(application_id)

    def record_answer(self, answer: Answer) -> None:
        """Record a verdict answered that was read from the store (module docstring), unless
        this replica's record holds it already.

        Raises:
            SpoolError: the spool cannot be written.
        """
        if self.spool.answer(answer.application_id) != answer:
            self.spool.record_answer(answer)

    @property
    def claims_in_store(self) -> bool:
        """Whether :meth:`claim` settles verdict claims in the store (a store other processes
        write): the claim returns the verdict another request made first."""
        return not self.guard.store.exclusive_writer

    def may_have_verdict(self, application_id: str) -> bool:
        """Whether the store may hold a verdict for ``application_id``: ``False`` only when
        this process settles the claims itself and none was made for the id."""
        decided = self._decided
        return decided is None or application_id in decided

    def _load_decided(self) -> None:
        try:
            ids = self.guard.read(lambda s: s.node_ids("Verdict"),
                                  timeout_s=max(REPLAY_TIMEOUT_S, self.guard.read_timeout_s))
        except (StoreDown, GraphError) as e:
            log.warning("decided application ids not loaded (%s); look-ups read the store", e)
            return
        decided = set(ids)
        decided.update(self.spool.keys("score"))
        self._decided = decided
        log.info("%d decided application ids loaded", len(decided))

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the replay thread after one last drain (what is left stays spooled)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        self._claims.close()
        self._siblings.close()

    def write(self, kind: str, ops: Sequence[Op], key: str | None = None
              ) -> ApplyResult | None:
        """Apply order-free ``ops`` now, or spool them durably if the store is unavailable.

        Returns:
            ApplyResult | None: what applying found, or ``None`` when the write was spooled.

        Raises:
            GraphError: the store rejected the write (not an outage: retrying cannot help).
            SpoolError: the store is unavailable and the spool cannot be written either.
        """
        if self.guard.up:
            try:
                result = self.guard.write(lambda s: apply_ops(s, ops))
            except StoreDown as e:
                log.warning("write %s spooled: %s", kind, e)
            else:
                ignored = set(result.duplicate_events) | set(result.conflicting_events)
                self._notify([op for op in ops if op["op"] != "label"
                              or op["event"]["id"] not in ignored])
                return result
        self.spool.append(kind, {"ops": list(ops)}, key)
        self._wake.set()
        self._notify(ops)
        return None

    def _notify(self, ops: Sequence[Op]) -> None:
        if any(op["op"] == "event" for op in ops):
            ops = [w for op in ops for w in (op["then"] if op["op"] == "event" else (op,))]
        for observer in self.observers:
            try:
                observer(ops)
            except Exception:
                log.exception("write observer failed")

    def _conflicts_found(self, kind: str, ids: Sequence[str]) -> None:
        """Surface what a spooled write carried that the store refused as a conflict."""
        for event_id in ids:
            log.warning("%s %s refused when written: its id is stored with another body; "
                        "the first stands", kind, event_id, extra={"event_id": event_id})
            if self._on_event_conflict is not None:
                try:
                    self._on_event_conflict(kind, event_id)
                except Exception:
                    log.exception("conflict listener failed")

    def claim(self, kind: str, op: Op, key: str | None = None, *,
              spool_when_down: bool = True) -> ApplyResult | None:
        """Claim a ``verdict`` op's record in the store now and queue its ``then`` rows behind
        it; or, with the store unavailable, spool the whole op (replayed claim first). The
        verdict answered (this one, or the one that claimed the id first for the same
        request) is recorded with the spool append.

        Args:
            kind (str): what the write is.
            op (Op): the ``verdict`` op.
            key (str, optional): what :meth:`find_spooled` looks it up by. (default: ``None``)
            spool_when_down (bool, optional): ``False``: a claim the store does not answer
                raises instead of spooling (the caller decides again, degraded, and spools that
                with :meth:`spool_claim`). (default: ``True``)

        Returns:
            ApplyResult | None: the claim's result (``existing_verdicts`` holds the record
            another request made first), or ``None`` when the op was spooled.

        Raises:
            StoreDown: the store did not answer the claim and ``spool_when_down`` is ``False``.
        """
        assert op["op"] == "verdict"
        row = op["row"]
        answer = Answer(row["id"], row["request_hash"], row["verdict_json"])
        if self.guard.store.exclusive_writer:
            # NOTE: a store only this process can write has no other claimant: the claim is
            # settled here (the caller holds the id's lock and looked in the spool and in the
            # decided ids or the store) and written behind with the rows, in one group commit
            # per linger.
            self.spool.append(kind, {"ops": [op]}, key, answer=answer)
            if self._decided is not None:
                self._decided.add(row["id"])
            self._wake.set()
            self._notify(op["then"])
            return None
        if self.guard.up:
            try:
                existing = self._claims.claim(row)
            except StoreDown as e:
                if not spool_when_down:
                    raise
                log.warning("claim %s spooled: %s", key, e)
            else:
                result = ApplyResult()
                if existing is None:
                    self.enqueue("application", op["then"], key, answer=answer)
                    return result
                result.existing_verdicts[row["id"]] = existing
                stored = existing.properties
                if stored.get("request_hash") == row["request_hash"]:
                    # NOTE: also when the same request claimed it before: a crash between a
                    # claim and its rows must not leave the application out (rows are
                    # MERGEs); they carry the stored verdict's decision, which is answered.
                    self.enqueue("application", _with_decision(op["then"], stored),
                                 key, answer=Answer(row["id"], row["request_hash"],
                                                    str(stored.get("verdict_json"))))
                return result
        self.spool_claim(kind, op, key)
        return None

    def spool_claim(self, kind: str, op: Op, key: str | None = None) -> None:
        """Spool a ``verdict`` op without trying the store (its claim is replayed first); the
        verdict answered is recorded with the append.

        Raises:
            SpoolError: the spool cannot be written.
        """
        row = op["row"]
        self.spool.append(kind, {"ops": [op]}, key,
                          answer=Answer(row["id"], row["request_hash"], row["verdict_json"]))
        self._wake.set()
        self._notify(op["then"])

    def enqueue(self, kind: str, ops: Sequence[Op], key: str | None = None, *,
                answer: Answer | None = None) -> None:
        """Accept ordered ``ops`` durably; the replay thread writes them behind, in order.

        Args:
            kind (str): what the write is.
            ops (Sequence[Op]): the operations.
            key (str, optional): what :meth:`find_spooled` looks it up by. (default: ``None``)
            answer (Answer, optional): the verdict answered, recorded with the append.
                (default: ``None``)

        Raises:
            SpoolError: the spool cannot be written.
        """
        self.spool.append(kind, {"ops": list(ops)}, key, answer=answer)
        self._wake.set()
        self._notify(ops)

    def find_spooled(self, kind: str, key: str) -> list[Op] | None:
        """The operations of a spooled write of ``kind`` under ``key``, if one waits here."""
        payload = self.spool.find(kind, key)
        return None if payload is None else list(payload["ops"])

    def wait_drained(self, timeout_s: float) -> bool:
        """Block until every accepted write is in the store; ``False`` on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._drained:
            while self.spool.depth > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._drained.wait(min(left, 0.1))
        return True

    def wait_stored(self, timeout_s: float) -> bool:
        """Block until every write accepted before this call is in the store (later ones may
        still wait); ``False`` on timeout. Unlike :meth:`wait_drained` it ends under a steady
        stream of new writes."""
        mark = self.spool.last_seq
        deadline = time.monotonic() + timeout_s
        with self._drained:
            while True:
                oldest = self.spool.oldest_seq()
                if oldest is None or oldest > mark:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._drained.wait(min(left, 0.05))

    def replay(self) -> int:
        """Drain the spool in order while the store is up; returns entries applied."""
        done = 0
        while not self._stop.is_set() or self.spool.depth:
            if not self.guard.up:
                return done
            entries = self.spool.peek(REPLAY_BATCH)
            if not entries:
                with self._drained:
                    self._drained.notify_all()
                return done
            for group in _groups(entries):
                if group[0].kind in MERGEABLE and self._replay_merged(group):
                    done += len(group)
                    self.replayed += len(group)
                    continue
                for entry in group:
                    if not self._replay_one(entry):
                        return done
                    done += 1
                    self.replayed += 1
            if self._stop.is_set():
                return done
        return done

    def _replay_merged(self, group: list[SpoolEntry]) -> bool:
        """Replay consecutive entries as one group commit (:meth:`_commit`); verdicts that
        lost and events refused as conflicts are surfaced (:meth:`_settle`,
        :meth:`_conflicts_found`)."""
        try:
            verdicts, events = self.guard.write(lambda s: self._commit(s, group),
                                                timeout_s=max(REPLAY_TIMEOUT_S,
                                                              self.guard.write_timeout_s))
        except (StoreDown, GraphError):
            return False  # one at a time then, which isolates a rejected entry
        self._settle(group, verdicts)
        self._conflicts_found("event", events)
        return True

    def _commit(self, store: GraphStore, group: list[SpoolEntry]
                ) -> tuple[list[VerdictConflict], list[str]]:
        """Every verdict claim of ``group`` in one :meth:`graph.GraphStore.create_nodes`, each
        one that lost recorded as a ``VerdictConflict``; every event claim in one
        :meth:`graph.GraphStore.claim_nodes`; then every upsert (the rows of the claims that
        stand for their request, the writes of the events that won) merged into one write per
        label and type.

        Returns:
            tuple[list[VerdictConflict], list[str]]: the verdict claims that lost, and the ids
            of the events refused as conflicts.
        """
        claims: dict[str, dict[str, Any]] = {}
        later: list[dict[str, Any]] = []
        rows_of: dict[str, list[Op]] = {}
        plain: list[Op] = []
        events: list[Op] = []
        for entry in group:
            for op in entry.payload["ops"]:
                if op["op"] == "event":
                    events.append(op)
                    plain.append({"op": "event_claimed", "event": op})
                elif op["op"] != "verdict":
                    plain.append(op)
                elif op["row"]["id"] in claims:
                    # NOTE: two answers of one id in one spool file (one left by a dead
                    # process): the first is claimed, the second is settled against it.
                    later.append(op["row"])
                else:
                    claims[op["row"]["id"]] = op["row"]
                    rows_of[op["row"]["id"]] = op["then"]
                    plain.append({"op": "claimed", "id": op["row"]["id"]})
        stored: dict[str, Mapping[str, Any]] = {}
        if claims:
            found = store.create_nodes("Verdict", list(claims.values()))
            for (app_id, row), node in zip(claims.items(), found, strict=True):
                stored[app_id] = row if node is None else node.properties
        conflicts = [c for c in (find_conflict(row, stored[row["id"]])
                                 for row in [*claims.values(), *later]) if c is not None]
        if conflicts:
            found_at = int(time.time())
            store.create_nodes("VerdictConflict", list({
                c.record_id: c.record(self.replica, found_at) for c in conflicts}.values()))
        events_won, event_conflicts = claim_events(store, events) if events else (set(), [])
        ops: list[Op] = []
        for op in plain:
            if op["op"] == "claimed":
                if stored[op["id"]].get("request_hash") == claims[op["id"]]["request_hash"]:
                    ops.extend(_with_decision(rows_of[op["id"]], stored[op["id"]]))
            elif op["op"] == "event_claimed":
                # NOTE: in acceptance order among the other upserts, so that the later of two
                # updates of one edge (USES.last_seen) still wins.
                ops.extend(event_writes([op["event"]], events_won))
                events_won.discard(op["event"]["row"]["id"])
            else:
                ops.append(op)
        apply_ops(store, merge_ops(ops))
        return conflicts, event_conflicts

    def _settle(self, group: list[SpoolEntry], conflicts: list[VerdictConflict]) -> None:
        """Acknowledge replayed entries; where a verdict answered here lost, record the stored
        one as this replica's answer (same transaction) and tell the listener."""
        self.spool.ack_many([entry.seq for entry in group],
                            [c.stored_answer() for c in conflicts])
        for c in conflicts:
            log.warning("verdict answered for %s lost to the stored one (%s conflict); kept "
                        "as VerdictConflict %s", c.application_id, c.kind, c.record_id)
            if self._on_verdict_conflict is not None:
                try:
                    self._on_verdict_conflict(c)
                except Exception:
                    log.exception("conflict listener failed")

    def _replay_one(self, entry: SpoolEntry) -> bool:
        ops: list[Op] = entry.payload["ops"]
        conflicts: list[VerdictConflict] = []
        refused: list[str] = []
        timeout_s = max(REPLAY_TIMEOUT_S, self.guard.write_timeout_s)
        try:
            if entry.kind in MERGEABLE:
                conflicts, refused = self.guard.write(lambda s: self._commit(s, [entry]),
                                                      timeout_s=timeout_s)
            else:
                refused = self.guard.write(lambda s: apply_ops(s, ops),
                                           timeout_s=timeout_s).conflicting_events
        except StoreDown:
            return False
        except GraphError as e:
            attempts = self.spool.record_failure(entry)
            log.error("spooled write %s #%d rejected (%d/%d): %s", entry.kind, entry.seq,
                      attempts, MAX_ATTEMPTS, e)
            if attempts >= MAX_ATTEMPTS:
                self.spool.dead_letter(entry, f"{type(e).__name__}: {e}")
                if self._on_dead_letter is not None:
                    self._on_dead_letter(entry, str(e))
                return True
            return False
        self._settle([entry], conflicts)
        self._conflicts_found("label" if entry.kind == "labels" else "event", refused)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            self._prune_answers()
            self._checkpoint()
            if self.spool.depth == 0:
                continue
            # NOTE: let concurrent writes gather so that one group commit carries them all.
            self._stop.wait(self.linger_s)
            try:
                self.replay()
            except Exception:
                log.exception("spool replay failed; retrying")
                self._stop.wait(1.0)
            if self.spool.depth and self.guard.up:
                self._wake.set()


    def _checkpoint(self) -> None:
        try:
            self.spool.checkpoint()
        except SpoolError:
            log.exception("spool not checkpointed")

    def _prune_answers(self) -> None:
        if time.monotonic() - self._pruned < PRUNE_EVERY_S:
            return
        self._pruned = time.monotonic()
        before = time.time() - self.answers_keep_s
        try:
            # NOTE: a chunk per transaction, so that appends are not held up behind one long
            # delete; until none is left (a minute of answers may be more than a chunk).
            while self.spool.prune_answers(before) and not self._stop.is_set():
                pass
        except Exception:
            log.exception("answers not pruned")


def _with_decision(ops: Sequence[Op], stored: Mapping[str, Any]) -> list[Op]:
    """An application's rows with the stored verdict's decision on its ``Application`` node
    (the rows of a request answered with another verdict of it, which lost)."""
    decision = stored.get("decision")
    return [{**op, "rows": [{**r, "decision": decision} for r in op["rows"]]}
            if op["op"] == "nodes" and op["label"] == "Application" else op for op in ops]


def merge_ops(ops: list[Op]) -> list[Op]:
    """One batched op per node label and relationship type (one ``UNWIND`` each instead of a
    transaction per event): nodes first, then relationships, each in the order of first
    appearance, rows in batch order (so the last of two updates to one edge wins)."""
    groups: dict[tuple[str, str], Op] = {}
    for op in ops:
        key = (op["op"], op.get("label") or op.get("rel") or "")
        if key in groups:
            groups[key]["rows"].extend(op["rows"])
        else:
            groups[key] = {**op, "rows": list(op["rows"])}
    return sorted(groups.values(), key=lambda op: op["op"] != "nodes")


def _groups(entries: list[SpoolEntry]) -> list[list[SpoolEntry]]:
    """Runs of consecutive mergeable entries (plain upserts), every other entry alone."""
    groups: list[list[SpoolEntry]] = []
    for entry in entries:
        if entry.kind in MERGEABLE and groups and groups[-1][0].kind in MERGEABLE:
            groups[-1].append(entry)
        else:
            groups.append([entry])
    return groups
