"""`DurableWriter`: every write of the service reaches the graph store exactly once.

A write is a short list of idempotent operations (:func:`apply_ops`). While the store is up
the writer applies them directly; when the store is down or slow, or while older writes are
still waiting, it appends them to the :class:`serving.spool.Spool` (fsynced) and answers at
once. A replay thread drains the spool in order when the store is back, and only then lets new
writes go straight to the store again, so the store sees writes in the order they were
accepted. Operations are idempotent (nodes by id, events by event id, verdicts and label events
created only if absent), so a write replayed after a crash or a timeout that did commit is
still stored once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from graph import GraphError, GraphNode, GraphStore, LabelWrite
from serving.spool import Spool, SpoolEntry
from serving.store_guard import StoreDown, StoreGuard

log = logging.getLogger(__name__)

Op = dict[str, Any]
"""One operation: ``{"op": "nodes", "label", "rows"}``, ``{"op": "edges", "rel", "rows"}``,
``{"op": "verdict", "row", "then": [ops]}`` or ``{"op": "label", "event", "label"}``."""

MAX_ATTEMPTS: Final = 5
REPLAY_BATCH: Final = 200


@dataclass
class ApplyResult:
    """What applying a write found: verdicts or label events already there."""

    existing_verdicts: dict[str, GraphNode] = field(default_factory=dict)
    duplicate_events: list[str] = field(default_factory=list)
    conflicting_events: list[str] = field(default_factory=list)


def apply_ops(store: GraphStore, ops: Sequence[Op]) -> ApplyResult:
    """Apply operations in order; each is idempotent (see the module docstring).

    A ``verdict`` op creates the ``Verdict`` record unless one exists; its ``then`` ops (the
    application and its edges) run when the record is new or holds the same request hash, and
    are skipped when another request already claimed the id. A ``label`` op writes the label
    unless its event id was seen, and never lets an older label overwrite a newer one.
    """
    result = ApplyResult()
    for op in ops:
        kind = op["op"]
        if kind == "nodes":
            store.upsert_nodes(op["label"], op["rows"])
        elif kind == "edges":
            store.upsert_edges(op["rel"], op["rows"])
        elif kind == "verdict":
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
    return result


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
    """Applies writes to the store, or spools them and replays them in order (module doc).

    Args:
        guard (StoreGuard): store access under timeouts.
        spool (Spool): the durable local queue.
        on_dead_letter (Callable[[SpoolEntry, str], None], optional): told when an entry is
            set aside after :data:`MAX_ATTEMPTS` rejections. (default: ``None``)
    """

    def __init__(self, guard: StoreGuard, spool: Spool, *,
                 on_dead_letter: Callable[[SpoolEntry, str], None] | None = None) -> None:
        self.guard = guard
        self.spool = spool
        self._on_dead_letter = on_dead_letter
        self._route = threading.Lock()
        self._spooling = spool.depth > 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.replayed = 0
        guard.on_up(self._wake.set)

    def __repr__(self) -> str:
        return f"DurableWriter(spooling={self._spooling}, depth={self.spool.depth})"

    @property
    def spooling(self) -> bool:
        """Whether new writes currently go to the spool."""
        return self._spooling

    def start(self) -> None:
        """Start the replay thread (replays what an earlier run left at once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="spool-replay", daemon=True)
            self._thread.start()
            self._wake.set()

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def write(self, kind: str, ops: Sequence[Op], key: str | None = None
              ) -> ApplyResult | None:
        """Apply ``ops`` now, or spool them durably.

        Returns:
            ApplyResult | None: what applying found, or ``None`` when the write was spooled.

        Raises:
            GraphError: the store rejected the write (not an outage: retrying cannot help).
            SpoolError: the store is unavailable and the spool cannot be written either.
        """
        if not self._spooling and self.guard.up:
            try:
                return self.guard.write(lambda s: apply_ops(s, ops))
            except StoreDown as e:
                log.warning("write %s spooled: %s", kind, e)
        with self._route:
            self._spooling = True
            self.spool.append(kind, {"ops": list(ops)}, key)
        self._wake.set()
        return None

    def find_spooled(self, kind: str, key: str) -> list[Op] | None:
        """The operations of a spooled write of ``kind`` under ``key``, if one waits here."""
        payload = self.spool.find(kind, key)
        return None if payload is None else list(payload["ops"])

    def replay(self) -> int:
        """Drain the spool in order while the store is up; returns entries applied."""
        done = 0
        while not self._stop.is_set():
            if not self.guard.up:
                return done
            entries = self.spool.peek(REPLAY_BATCH)
            if not entries:
                with self._route:
                    if self.spool.depth == 0:
                        if self._spooling:
                            log.info("spool drained; writing to the store directly again")
                        self._spooling = False
                        return done
                continue
            for entry in entries:
                if not self._replay_one(entry):
                    return done
                done += 1
                self.replayed += 1
        return done

    def _replay_one(self, entry: SpoolEntry) -> bool:
        ops: list[Op] = entry.payload["ops"]
        try:
            result = self.guard.write(lambda s: apply_ops(s, ops))
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
        for app_id, node in result.existing_verdicts.items():
            if _hash_of(ops, app_id) != node.properties.get("request_hash"):
                log.error("spooled verdict for %s conflicts with a verdict already stored; "
                          "kept the stored one", app_id)
        self.spool.ack(entry.seq)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self.spool.depth > 0 or self._spooling:
                try:
                    self.replay()
                except Exception:
                    log.exception("spool replay failed; retrying")
                    self._stop.wait(1.0)


def _hash_of(ops: Sequence[Mapping[str, Any]], app_id: str) -> str | None:
    for op in ops:
        if op["op"] == "verdict" and op["row"]["id"] == app_id:
            return str(op["row"]["request_hash"])
    return None
