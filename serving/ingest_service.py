"""`IngestService`: behaviour events and labels in, durably; what ``POST /v1/events`` and
``POST /v1/labels`` call.

Both are idempotent by event id, and an id sent again with another body is a conflict (the
first body stands). Labels are written at once: each leaves a ``LabelEvent`` record that a
second delivery finds. Events are written behind (:meth:`DurableWriter.enqueue`): each claims
an ``EventRecord`` (its id and body hash) when it is written, first writer wins across
replicas; at acceptance a batch is checked against those records and against the events this
replica accepted and may not have written yet, so that most repeats and conflicts are answered
at once. What only the write can settle (the first body was accepted by another replica a
moment before, or the records could not be read) is refused then and surfaced by the writer
(docs/API.md, "Idempotency").
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from graph import GraphNode, Pseudonymiser
from serving.graph_writes import AnyEvent, event_ops, label_ops
from serving.metrics import ServingMetrics
from serving.schemas.labels import LabelCreate
from serving.spool import SpoolError
from serving.store_guard import StoreDown
from serving.writer import DurableWriter

RECENT_EVENTS: Final = 65_536
"""Event ids (with their body hash) this replica remembers having accepted: enough to cover
the events written behind and not yet in the store at hundreds of events a second."""


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to a batch.

    Args:
        accepted (int): items accepted (stored, or queued for the store).
        spooled (bool): the store is unavailable; accepted items wait in the spool.
        duplicates (list[str]): ids already accepted with the same body (ignored).
        conflicts (list[str]): ids already accepted with another body (ignored).
        checked (bool): the ids were checked against the store's records. (default: ``True``)
    """

    accepted: int
    spooled: bool
    duplicates: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    checked: bool = True


class IngestService:
    """Writes batches of events and labels through the durable writer.

    Args:
        writer (DurableWriter): to the store, or the spool while it is down.
        pseudonymiser (Pseudonymiser): keyed hashing of device serials.
        metrics (ServingMetrics): where to count.
    """

    def __init__(self, *, writer: DurableWriter, pseudonymiser: Pseudonymiser,
                 metrics: ServingMetrics) -> None:
        self.writer = writer
        self.pseudonymiser = pseudonymiser
        self.metrics = metrics
        self._recent: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"IngestService(writer={self.writer!r})"

    def add_events(self, events: Sequence[AnyEvent]) -> IngestOutcome:
        """Accept a batch of behaviour events durably; they reach the store behind, in order.

        An event whose id was accepted before is not accepted again: with the same body it is
        reported in ``duplicates``, with another in ``conflicts``.

        Raises:
            SpoolError: the spool cannot be written (nothing of the batch is accepted).
        """
        ops = event_ops(events, self.pseudonymiser, int(time.time()))
        ids = [op["row"]["id"] for op in ops]
        stored: dict[str, GraphNode] = {}
        checked = True
        try:
            stored = self.writer.guard.read(lambda s: s.get_nodes("EventRecord", ids))
        except StoreDown:
            checked = False
        accepted, duplicates, conflicts = [], [], []
        with self._lock:
            for op, ev in zip(ops, events, strict=True):
                event_id, body = op["row"]["id"], op["row"]["body_hash"]
                record = stored.get(event_id)
                known = (record.properties.get("body_hash") if record is not None
                         else self._recent.get(event_id))
                if known is None:
                    self._remember(event_id, body)
                    accepted.append((op, ev.type))
                elif known == body:
                    duplicates.append(event_id)
                else:
                    conflicts.append(event_id)
        if accepted:
            try:
                self.writer.enqueue("events", [op for op, _ in accepted])
            except SpoolError:
                with self._lock:
                    for op, _ in accepted:
                        if self._recent.get(op["row"]["id"]) == op["row"]["body_hash"]:
                            del self._recent[op["row"]["id"]]
                raise
        for _, kind in accepted:
            self.metrics.events.labels(kind=kind).inc()
        if conflicts:
            self.metrics.event_conflicts.labels(kind="event", found="accepted").inc(
                len(conflicts))
        return IngestOutcome(len(accepted), not self.writer.guard.up, duplicates, conflicts,
                             checked)

    def _remember(self, event_id: str, body_hash: str) -> None:
        self._recent[event_id] = body_hash
        if len(self._recent) > RECENT_EVENTS:
            self._recent.popitem(last=False)

    def add_labels(self, labels: Sequence[LabelCreate]) -> IngestOutcome:
        """Write a batch of labels; repeated event ids are reported, not applied twice."""
        ops = label_ops(labels, int(time.time()))
        result = self.writer.write("labels", ops)
        self.metrics.events.labels(kind="label").inc(len(labels))
        if result is None:
            return IngestOutcome(len(labels), True, checked=False)
        if result.conflicting_events:
            self.metrics.event_conflicts.labels(kind="label", found="accepted").inc(
                len(result.conflicting_events))
        ignored = set(result.duplicate_events) | set(result.conflicting_events)
        return IngestOutcome(len(labels) - len(ignored), False,
                             sorted(result.duplicate_events), sorted(result.conflicting_events))
