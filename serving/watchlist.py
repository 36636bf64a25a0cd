"""The investigators' watchlist: devices, phones, addresses, IPs and merchants that every
verdict touching them names (``WATCHLISTED_<KIND>`` reasons).

Entries are ``WatchlistEntry`` records in the store, so every replica shares them; each replica
holds them in memory (:class:`Watchlist`), reloaded with the API keys, so a verdict never waits
on the store to see them and sees them while it is down. An entry added or removed here is in
this replica's copy at once and in the others' within one refresh (``KEYS_REFRESH_S``).

A hit is a fraud reason weighing :data:`WATCHLIST_WEIGHT` logits, more than any reason of the
model's, so it is the strongest reason against the application and the policy's rule "a
verdict never approves on a fraud signal" (``review_fraud_reason``) sends an approval to
review; a decline stays a decline.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from graph import GraphNode, GraphStore, Pseudonymiser, mask
from graph.privacy import IdentifierKind
from serving.errors import InvalidFieldError, NotFoundError, UnavailableError
from serving.keys import Principal
from serving.schemas.common import ID_PATTERN
from serving.scoring import ApplicationFacts, Evidence, Signal
from serving.store_guard import StoreDown, StoreGuard

T = TypeVar("T")
WatchLabel = Literal["Device", "Phone", "Address", "IP", "Merchant"]
WATCH_LABELS: Final[tuple[WatchLabel, ...]] = ("Device", "Phone", "Address", "IP", "Merchant")
PSEUDONYMISED: Final[dict[str, IdentifierKind]] = {"Device": "device", "Phone": "phone",
                                        "Address": "address", "IP": "ip"}
"""The kinds whose ids are keyed hashes of a value in clear (:mod:`graph.privacy`)."""
WATCHLIST_WEIGHT: Final = 9.0
"""A hit's weight in logits: above every model reason, below the policy's own decline."""


@dataclass(frozen=True)
class WatchEntry:
    label: WatchLabel
    entity_id: str
    masked: str | None
    reason: str
    active: bool
    added_by: str
    added_at: int

    @property
    def record_id(self) -> str:
        return f"{self.label}:{self.entity_id}"


class Watchlist:
    """This replica's copy of the active watchlist entries (module docstring)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], WatchEntry] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Watchlist(entries={len(self._entries)})"

    def refresh(self, store: GraphStore) -> int:
        """Reload every active entry from the store; returns how many."""
        rows = store.export_nodes("WatchlistEntry").to_pylist()
        entries: dict[tuple[str, str], WatchEntry] = {
            (e.label, e.entity_id): e for e in map(_entry, rows) if e.active}
        with self._lock:
            self._entries = entries
        return len(entries)

    def put(self, entry: WatchEntry) -> None:
        with self._lock:
            entries = dict(self._entries)
            if entry.active:
                entries[(entry.label, entry.entity_id)] = entry
            else:
                entries.pop((entry.label, entry.entity_id), None)
            self._entries = entries

    def entries(self) -> list[WatchEntry]:
        return sorted(self._entries.values(), key=lambda e: (-e.added_at, e.record_id))

    def signals(self, facts: ApplicationFacts) -> list[Signal]:
        """A ``WATCHLISTED_<KIND>`` signal per entity of the application on the list."""
        entries = self._entries
        if not entries:
            return []
        touched: list[tuple[WatchLabel, str | None, str | None]] = [
            ("Device", facts.device_id, facts.device_masked),
            ("IP", facts.ip, facts.ip_masked),
            ("Phone", facts.phone_id, None),
            ("Address", facts.address_id, None),
            ("Merchant", facts.merchant_id, facts.merchant_id),
        ]
        found: list[Signal] = []
        for label, entity_id, display in touched:
            entry = entries.get((label, entity_id)) if entity_id is not None else None
            if entry is None:
                continue
            shown = display or entry.masked or entry.entity_id
            found.append(Signal(f"WATCHLISTED_{label.upper()}", WATCHLIST_WEIGHT,
                                Evidence(label, entry.entity_id, shown, "watchlisted", 1.0),
                                {"reason": entry.reason}))
        return found


def add_entry(guard: StoreGuard, watchlist: Watchlist, pseudonymiser: Pseudonymiser, *,
              label: WatchLabel, entity_id: str | None, value: str | None, reason: str,
              by: Principal) -> WatchEntry:
    """Put an entity on the watchlist (again: with the new reason).

    Args:
        label (WatchLabel): its kind.
        entity_id (str, optional): its id as the graph shows it; it must exist.
        value (str, optional): or its value in clear, keyed-hashed here; it need not exist
            yet (an investigator may know a device from a document before it is seen).

    Raises:
        InvalidFieldError: neither or both of ``entity_id`` and ``value``, or no such entity.
        UnavailableError: the store is down or slow.
    """
    if (entity_id is None) == (value is None):
        raise InvalidFieldError(("body", "entity_id"), "give entity_id or value, not both",
                                entity_id)
    masked: str | None
    if value is not None:
        kind = PSEUDONYMISED.get(label)
        try:
            entity_id = value if kind is None else pseudonymiser.hash(kind, value)
            masked = value if kind is None else mask(kind, value)
        except ValueError as e:
            raise InvalidFieldError(("body", "value"), str(e), value) from e
        if kind is None and re.fullmatch(ID_PATTERN, value) is None:
            raise InvalidFieldError(("body", "value"), f"must match {ID_PATTERN}", value)
    else:
        assert entity_id is not None
        node = _call(guard.investigate, lambda s: s.get_node(label, entity_id))
        if node is None:
            raise InvalidFieldError(("body", "entity_id"), f"no {label} with this id", entity_id)
        shown = node.properties.get("masked") or node.properties.get("name_masked")
        masked = str(shown) if shown is not None else None
    entry = WatchEntry(label, entity_id, masked, reason, True, by.key_id, int(time.time()))
    found = _call(guard.investigate, lambda s: _records(s, label, entity_id))
    # NOTE: a record id of its own, not the entity's id: a key rotation re-keys the entity's
    # keyed hash (serving.key_rotation.rewrite_record), which a record id cannot follow.
    record = found[0].id if found else f"wl-{secrets.token_hex(12)}"
    _call(guard.write, lambda s: s.upsert_nodes("WatchlistEntry", [{
        "id": record, "entity_label": label, "entity_id": entity_id,
        "masked": masked, "reason": reason, "active": True, "added_by": by.key_id,
        "added_at": entry.added_at}]))
    watchlist.put(entry)
    return entry


def remove_entry(guard: StoreGuard, watchlist: Watchlist, *, label: WatchLabel,
                 entity_id: str, by: Principal) -> None:
    """Take an entity off the watchlist (its record stays, marked inactive, for the audit).

    Raises:
        NotFoundError: it is not on the list.
        UnavailableError: the store is down or slow.
    """
    found = [n for n in _call(guard.investigate, lambda s: _records(s, label, entity_id))
             if n.properties.get("active") is True]
    if not found:
        raise NotFoundError(f"{label} {entity_id!r} is not on the watchlist")
    now = int(time.time())
    _call(guard.write, lambda s: s.upsert_nodes("WatchlistEntry", [{
        "id": n.id, "active": False, "removed_by": by.key_id, "removed_at": now}
        for n in found]))
    watchlist.put(WatchEntry(label, entity_id, None, "", False, by.key_id, 0))


def _records(store: GraphStore, label: str, entity_id: str) -> list[GraphNode]:
    """The ``WatchlistEntry`` records of an entity (one, unless two replicas added it at
    once)."""
    return [n for n in store.find_nodes("WatchlistEntry", "entity_id", entity_id)
            if n.properties.get("entity_label") == label]


def _call(run: Callable[[Callable[[GraphStore], T]], T], fn: Callable[[GraphStore], T]) -> T:
    try:
        return run(fn)
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e


def _entry(row: Mapping[str, object]) -> WatchEntry:
    found: list[WatchLabel] = [w for w in WATCH_LABELS if w == row.get("entity_label")]
    return WatchEntry(found[0] if found else "Device",
                      str(row.get("entity_id")),
                      None if row.get("masked") is None else str(row.get("masked")),
                      str(row.get("reason") or ""), row.get("active") is True,
                      str(row.get("added_by") or ""), int(str(row.get("added_at") or 0)))
