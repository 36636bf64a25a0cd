"""`IngestService`: behaviour events and labels in, durably; what ``POST /v1/events`` and
``POST /v1/labels`` call.

Both are idempotent by event id: events because every event relationship is keyed by its
event id in the store (and sales reports are nodes named by it), labels because each label
event leaves a ``LabelEvent`` record that a second delivery finds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from graph import Pseudonymiser
from serving.graph_writes import AnyEvent, event_ops, label_ops
from serving.metrics import ServingMetrics
from serving.schemas.labels import LabelCreate
from serving.writer import DurableWriter


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to a batch."""

    accepted: int
    spooled: bool
    duplicates: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


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

    def __repr__(self) -> str:
        return f"IngestService(writer={self.writer!r})"

    def add_events(self, events: Sequence[AnyEvent]) -> IngestOutcome:
        """Accept a batch of behaviour events durably; they reach the store behind, in order."""
        ops = event_ops(events, self.pseudonymiser)
        self.writer.enqueue("events", ops)
        for ev in events:
            self.metrics.events.labels(kind=ev.type).inc()
        return IngestOutcome(len(events), not self.writer.guard.up)

    def add_labels(self, labels: Sequence[LabelCreate]) -> IngestOutcome:
        """Write a batch of labels; repeated event ids are reported, not applied twice."""
        ops = label_ops(labels, int(time.time()))
        result = self.writer.write("labels", ops)
        self.metrics.events.labels(kind="label").inc(len(labels))
        if result is None:
            return IngestOutcome(len(labels), True)
        ignored = set(result.duplicate_events) | set(result.conflicting_events)
        return IngestOutcome(len(labels) - len(ignored), False,
                             sorted(result.duplicate_events), sorted(result.conflicting_events))
