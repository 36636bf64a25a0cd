"""Investigators' cases: every ``review`` verdict in one, a queue, notes and a disposition.

A review verdict writes a ``CaseItem`` record with the application's rows, on the verdict's
durable path (:func:`serving.graph_writes.application_ops`): whatever was accepted while the
store was down is replayed with it. :func:`sync_cases` then puts each new item in the open case
of its user's ring (the ``ring_id`` a ring refresh wrote on the ``User`` node), or of the user
when it is in none, opening that case first when none is open. It runs before every read of
the queue, so no background job is needed and replicas share one set of cases through the
store: a case is claimed first-writer-wins (:meth:`graph.GraphStore.claim_nodes`) under an id
made of its scope and a sequence number, and a disposition likewise, so two replicas never
open two cases for one ring nor record two dispositions of one case.

A disposition closes the case and labels its users and applications through the labels path
(:meth:`serving.ingest_service.IngestService.add_labels`: idempotent by event id, on the live
graph at once, in the store for the next training run).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeVar

from graph import GraphNode, GraphStore
from serving.errors import NotFoundError, StateConflictError, UnavailableError
from serving.ingest_service import IngestService
from serving.keys import Principal
from serving.schemas.labels import LabelCreate
from serving.store_guard import StoreDown, StoreGuard

T = TypeVar("T")
Disposition = Literal["confirmed_fraud", "cleared", "default_risk"]
DISPOSITIONS: Final[tuple[Disposition, ...]] = ("confirmed_fraud", "cleared", "default_risk")
LABEL_KIND: Final[dict[str, Literal["fraud", "cleared", "default"]]] = {
    "confirmed_fraud": "fraud", "cleared": "cleared", "default_risk": "default"}
"""The label each disposition writes on the case's users and applications."""
SYNC_BATCH: Final = 500
"""New case items put in cases per store round trip."""
MAX_CASE_ITEMS: Final = 10_000
MAX_CASES: Final = 100_000


@dataclass(frozen=True)
class CaseItem:
    """One review verdict in a case."""

    application_id: str
    user_id: str
    product: str
    amount: float
    risk: float
    decided_at: int
    verdict: Mapping[str, Any]
    """The verdict exactly as it was returned (decision, reasons with evidence)."""


@dataclass(frozen=True)
class CaseNote:
    note_id: str
    author: str
    author_name: str
    at: int
    text: str


@dataclass(frozen=True)
class Case:
    """A case as the queue lists it, and with its items and notes when read alone."""

    case_id: str
    properties: Mapping[str, Any]
    items: tuple[CaseItem, ...] = ()
    notes: tuple[CaseNote, ...] = ()


def case_scope(user: GraphNode | None, user_id: str) -> str:
    """``ring:<ring id>`` when the user's node names a ring, else ``user:<user id>``."""
    ring = None if user is None else user.properties.get("ring_id")
    return f"ring:{ring}" if isinstance(ring, str) and ring else f"user:{user_id}"


def _sequence(case_id: str) -> int:
    return int(case_id.rsplit(":", 1)[1])


class CaseService:
    """Cases over the store (module docstring).

    Args:
        guard (StoreGuard): store access under timeouts.
        ingest (IngestService): the labels path a disposition writes through.
    """

    def __init__(self, *, guard: StoreGuard, ingest: IngestService) -> None:
        self.guard = guard
        self.ingest = ingest
        self._sync_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CaseService(guard={self.guard!r})"

    # -- reads ----------------------------------------------------------------------------------
    def queue(self, *, status: Literal["open", "closed"] = "open", product: str | None = None,
              reason: str | None = None, assignee: str | None = None,
              limit: int = 100) -> list[Case]:
        """Cases of ``status``, highest risk first, then largest amount, filtered.

        Raises:
            UnavailableError: the store is down or slow.
        """
        self.sync()
        nodes = self._investigate(
            lambda s: s.find_nodes("Case", "status", status, limit=MAX_CASES))
        cases = [n for n in nodes
                 if (product is None or product in _csv(n.properties.get("products")))
                 and (reason is None or reason in _csv(n.properties.get("reasons")))
                 and (assignee is None or n.properties.get("assignee") == assignee)]
        cases.sort(key=lambda n: (-float(n.properties.get("risk") or 0.0),
                                  -float(n.properties.get("amount") or 0.0), n.id))
        return [Case(n.id, dict(n.properties)) for n in cases[:limit]]

    def get(self, case_id: str) -> Case:
        """One case with its verdicts and notes.

        Raises:
            NotFoundError: no such case.
            UnavailableError: the store is down or slow.
        """
        self.sync()

        def read(store: GraphStore) -> Case | None:
            node = store.get_node("Case", case_id)
            if node is None:
                return None
            items = store.find_nodes("CaseItem", "case_id", case_id, limit=MAX_CASE_ITEMS)
            verdicts = store.get_nodes("Verdict", [i.id for i in items])
            notes = store.find_nodes("CaseNote", "case_id", case_id, limit=MAX_CASE_ITEMS)
            return Case(node.id, dict(node.properties),
                        tuple(sorted((_item(i, verdicts.get(i.id)) for i in items),
                                     key=lambda i: (-i.risk, -i.amount, i.application_id))),
                        tuple(sorted((_note(n) for n in notes), key=lambda n: (n.at, n.note_id))))

        case = self._investigate(read)
        if case is None:
            raise NotFoundError(f"no case {case_id!r}")
        return case

    # -- writes ---------------------------------------------------------------------------------
    def sync(self) -> int:
        """Put every case item not in a case yet into its open case; returns how many.

        Raises:
            UnavailableError: the store is down or slow.
        """
        done = 0
        with self._sync_lock:
            while True:
                looked, placed = self._write(lambda s: sync_cases(s, int(time.time())))
                done += placed
                # NOTE: a full batch of items none of which could be placed (their verdicts
                # not stored yet) would be looked at again and again.
                if looked < SYNC_BATCH or placed == 0:
                    return done

    def assign(self, case_id: str, assignee: str, by: Principal) -> Case:
        """Assign an open case to an investigator (again: to another one).

        Raises:
            NotFoundError: no such case.
            StateConflictError: the case is closed.
            UnavailableError: the store is down or slow.
        """
        case = self._require(case_id)
        if case.properties.get("status") != "open":
            raise StateConflictError(f"case {case_id!r} is closed")
        now = int(time.time())
        self._write(lambda s: s.upsert_nodes("Case", [{
            "id": case_id, "assignee": assignee, "assigned_at": now,
            "assigned_by": by.key_id, "updated_at": now}]))
        return self.get(case_id)

    def add_note(self, case_id: str, text: str, by: Principal) -> CaseNote:
        """Add a note to a case (open or closed).

        Raises:
            NotFoundError: no such case.
            UnavailableError: the store is down or slow.
        """
        self._require(case_id)
        now = int(time.time())
        salt = hashlib.sha256(f"{by.key_id}:{text}:{time.time_ns()}".encode()).hexdigest()
        note = CaseNote(f"{case_id}/{now}-{salt[:12]}", by.key_id, by.name, now, text)
        self._write(lambda s: s.upsert_nodes("CaseNote", [{
            "id": note.note_id, "case_id": case_id, "author": note.author,
            "author_name": note.author_name, "at": note.at, "text": note.text}]))
        return note

    def dispose(self, case_id: str, disposition: Disposition, by: Principal) -> Case:
        """Record the case's disposition (once; the same one again is a no-op), close it and
        label its users and applications.

        Raises:
            NotFoundError: no such case.
            StateConflictError: the case was disposed of otherwise.
            UnavailableError: the store is down or slow.
        """
        self._require(case_id)
        now = int(time.time())
        claim = {"id": case_id, "disposition": disposition, "by": by.key_id,
                 "by_name": by.name, "at": now}
        (held,) = self._write(lambda s: s.claim_nodes("CaseDisposition", [claim]))
        stored = held.properties
        if stored.get("disposition") != disposition:
            raise StateConflictError(
                f"case {case_id!r} was disposed of as {stored.get('disposition')} by "
                f"{stored.get('by')}")
        at = int(stored.get("at") or now)
        case = self.get(case_id)
        # NOTE: the labels' bodies come from the stored disposition, so a retry (a lost answer)
        # sends the same label events again, which the labels path reports as duplicates.
        self.ingest.add_labels(disposition_labels(case, disposition, str(stored.get("by")), at))
        self._write(lambda s: s.upsert_nodes("Case", [{
            "id": case_id, "status": "closed", "disposition": disposition,
            "disposed_at": at, "disposed_by": str(stored.get("by")), "updated_at": now}]))
        return self.get(case_id)

    # -- helpers --------------------------------------------------------------------------------
    def _require(self, case_id: str) -> Case:
        self.sync()
        node = self._investigate(lambda s: s.get_node("Case", case_id))
        if node is None:
            raise NotFoundError(f"no case {case_id!r}")
        return Case(node.id, dict(node.properties))

    def _investigate(self, fn: Callable[[GraphStore], T]) -> T:
        try:
            return self.guard.investigate(fn)
        except StoreDown as e:
            raise UnavailableError(f"graph store unavailable: {e}") from e

    def _write(self, fn: Callable[[GraphStore], T]) -> T:
        try:
            return self.guard.write(fn)
        except StoreDown as e:
            raise UnavailableError(f"graph store unavailable: {e}") from e


def sync_cases(store: GraphStore, now: int) -> tuple[int, int]:
    """Put up to :data:`SYNC_BATCH` case items that are in no case yet into the open case of
    their scope (:func:`case_scope`), then refresh those cases' totals.

    An item whose stored verdict is not a review (its request was answered again with the
    verdict another replica stored first) is marked ``-`` and joins none.

    Returns:
        tuple[int, int]: how many items were looked at, and how many were placed (in a case,
        or set aside).
    """
    pending = store.find_nodes("CaseItem", "case_id", None, limit=SYNC_BATCH)
    if not pending:
        return 0, 0
    verdicts = store.get_nodes("Verdict", [i.id for i in pending])
    users = store.get_nodes("User", sorted({str(i.properties.get("user_id")) for i in pending}))
    open_of: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for item in pending:
        verdict = verdicts.get(item.id)
        if verdict is None:
            continue  # NOTE: not possible on the write path; left for a later sync
        if verdict.properties.get("decision") != "review":
            rows.append({"id": item.id, "case_id": "-"})
            continue
        user_id = str(item.properties.get("user_id"))
        scope = case_scope(users.get(user_id), user_id)
        if scope not in open_of:
            open_of[scope] = open_case(store, scope, now)
        codes = [r.get("code") for r in _verdict_json(verdict).get("reasons", [])]
        rows.append({"id": item.id, "case_id": open_of[scope],
                     "reasons": ",".join(c for c in codes if isinstance(c, str))})
    if rows:
        store.upsert_nodes("CaseItem", rows)
    for case_id in sorted(set(open_of.values())):
        refresh_case(store, case_id, now)
    return len(pending), len(rows)


def open_case(store: GraphStore, scope: str, now: int) -> str:
    """The id of the open case of ``scope``, claimed first when none is open."""
    while True:
        cases = store.find_nodes("Case", "scope", scope, limit=MAX_CASES)
        open_ = [c for c in cases if c.properties.get("status") == "open"]
        if open_:
            return max(open_, key=lambda c: _sequence(c.id)).id
        seq = 1 + max((_sequence(c.id) for c in cases), default=0)
        kind, _, ident = scope.partition(":")
        row: dict[str, Any] = {"id": f"{scope}:{seq}", "scope": scope, "status": "open",
                               "opened_at": now, "updated_at": now, "items": 0, "risk": 0.0,
                               "amount": 0.0}
        row["ring_id" if kind == "ring" else "user_id"] = ident
        (held,) = store.claim_nodes("Case", [row])
        if held.properties.get("status") == "open":
            return held.id
        # NOTE: another replica claimed this sequence number and closed it meanwhile.


def refresh_case(store: GraphStore, case_id: str, now: int) -> None:
    """Recompute a case's totals (risk, amount, products, reasons) from its items."""
    items = store.find_nodes("CaseItem", "case_id", case_id, limit=MAX_CASE_ITEMS)
    props = [i.properties for i in items]
    store.upsert_nodes("Case", [{
        "id": case_id, "items": len(items), "updated_at": now,
        "risk": max((float(p.get("risk") or 0.0) for p in props), default=0.0),
        "amount": float(sum(float(p.get("amount") or 0.0) for p in props)),
        "products": ",".join(sorted({str(p.get("product")) for p in props if p.get("product")})),
        "reasons": ",".join(sorted({c for p in props for c in _csv(p.get("reasons"))})),
    }])


def disposition_labels(case: Case, disposition: Disposition, by: str,
                       at: int) -> list[LabelCreate]:
    """The label events a disposition writes: one per user and per application of the case,
    named by the case, the entity and the disposition (so that a retry is a duplicate)."""
    kind = LABEL_KIND[disposition]
    when = datetime.fromtimestamp(at, UTC)
    targets: list[tuple[Literal["User", "Application"], str]] = []
    for item in case.items:
        targets.append(("User", item.user_id))
        targets.append(("Application", item.application_id))
    labels = []
    for label, entity_id in dict.fromkeys(targets):
        digest = hashlib.sha256(
            f"{case.case_id}|{label}|{entity_id}|{disposition}".encode()).hexdigest()[:32]
        labels.append(LabelCreate.model_validate({
            "event_id": f"case-{digest}", "entity_type": label, "entity_id": entity_id,
            "kind": kind, "at": when.isoformat(), "source": f"investigator:{by}"}))
    return labels


def _item(node: GraphNode, verdict: GraphNode | None) -> CaseItem:
    p = node.properties
    return CaseItem(node.id, str(p.get("user_id")), str(p.get("product")),
                    float(p.get("amount") or 0.0), float(p.get("risk") or 0.0),
                    int(p.get("decided_at") or 0),
                    {} if verdict is None else _verdict_json(verdict))


def _note(node: GraphNode) -> CaseNote:
    p = node.properties
    return CaseNote(node.id, str(p.get("author")), str(p.get("author_name") or ""),
                    int(p.get("at") or 0), str(p.get("text") or ""))


def _verdict_json(verdict: GraphNode) -> dict[str, Any]:
    text = verdict.properties.get("verdict_json")
    loaded = json.loads(text) if isinstance(text, str) else {}
    return loaded if isinstance(loaded, dict) else {}


def _csv(value: object) -> Sequence[str]:
    return [v for v in value.split(",") if v] if isinstance(value, str) else []
