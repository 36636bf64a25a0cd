"""Erasure of one person: their identifiers and documents go, the graph's risk facts stay.

What goes (:func:`erase_user`):

* the ``User`` node's identifiers: the national id's keyed hash, the masked name, the home
  city and coordinates;
* the coordinates of the person's logins (``LOGGED_IN_FROM``) and applications;
* the masked forms (and an address's city and coordinates) of the devices, phones,
  addresses and IPs only this person used: a node another account also reaches keeps them,
  they are that account's data as much as this one's;
* the documents kept for the person's applications (``Verdict`` and ``VerdictConflict``
  records): each is replaced by what ``redact`` makes of it (the caller knows their formats);
* the investigators' notes on every case that held one of the person's applications (free
  text that may name, quote or locate them; the case, its items and its disposition stay);
* what a watchlist entry shows of an entity only this person used (its masked form and the
  investigator's free-text reason); the entry itself stays, so the entity stays watched.

What stays, pseudonymous: the account id, every relationship (to the keyed-hash ids of
devices, phones, addresses and IPs, so a ring the person was part of is still a ring), labels,
scores, and the verdicts' decisions and probabilities. Running it twice changes nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from graph.store import GraphStore
from graph.typing import NodeType

__all__ = ["USER_IDENTIFIERS", "ErasureReport", "erase_user"]

USER_IDENTIFIERS: Final[tuple[str, ...]] = (
    "id_hash", "name_masked", "home_city", "home_lat", "home_lon")
"""The ``User`` properties that identify or locate the person."""
_ENTITY_IDENTIFIERS: Final[dict[NodeType, tuple[str, ...]]] = {
    "Device": ("masked",), "Phone": ("masked",), "Address": ("masked", "city", "lat", "lon"),
    "IP": ("masked",),
}
_RECORDS: Final[tuple[NodeType, ...]] = ("Verdict", "VerdictConflict")
_FANOUT: Final = 1_000_000
"""Enough for every relationship of one account (its logins included)."""
_SHARED_PROBE: Final = 64
"""Neighbours read of an entity to tell whether another account reaches it."""

Redact = Callable[[NodeType, str, str], str]
"""``(label, document property, text) -> the text kept instead``."""


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure touched.

    Args:
        user_id (str): the account.
        applications (int): its applications (their coordinates and documents erased).
        logins (int): its logins (their coordinates erased).
        records (int): verdict records whose documents were replaced.
        private_entities (int): devices, phones, addresses, IPs only it used (masks erased).
        shared_entities (int): those another account also reaches (kept as they are).
        notes (int): investigators' case notes whose text was replaced.
        watchlist_entries (int): watchlist entries of its private entities made anonymous.
    """

    user_id: str
    applications: int
    logins: int
    records: int
    private_entities: int
    shared_entities: int
    notes: int
    watchlist_entries: int


def erase_user(store: GraphStore, user_id: str, redact: Redact) -> ErasureReport | None:
    """Erase the person behind account ``user_id`` (module docstring); ``None`` when the store
    holds no such account.

    Args:
        store (GraphStore): the store.
        user_id (str): the account id.
        redact (Redact): the text each document of the person's verdict records is replaced by.
    """
    if store.get_node("User", user_id) is None:
        return None
    mine = store.neighbourhood("User", user_id, hops=1, fanout=_FANOUT)
    out = [e for e in mine.edges if e.src == user_id]
    applications = sorted({e.dst for e in out if e.type == "APPLIED"})
    logins = sum(1 for e in out if e.type == "LOGGED_IN_FROM")
    entities = {(n.label, n.id) for n in mine.nodes if n.label in _ENTITY_IDENTIFIERS}
    for app in applications:
        around = store.neighbourhood("Application", app, hops=1, fanout=_FANOUT)
        entities |= {(n.label, n.id) for n in around.nodes if n.label in _ENTITY_IDENTIFIERS}
    own = {("User", user_id), *(("Application", a) for a in applications)}
    private: dict[NodeType, list[str]] = {}
    shared = 0
    for label, entity in sorted(entities):
        near = store.neighbourhood(label, entity, hops=1, fanout=_SHARED_PROBE)
        if all((n.label, n.id) in own for n in near.nodes if n.id != entity):
            private.setdefault(label, []).append(entity)
        else:
            shared += 1
    records = _redact_records(store, applications, redact)
    notes = _redact_case_notes(store, applications, redact)
    watched = _anonymise_watchlist(store, [e for ids in private.values() for e in ids], redact)
    store.remove_properties("User", [user_id], USER_IDENTIFIERS)
    store.remove_edge_properties("LOGGED_IN_FROM", [user_id], ("lat", "lon"))
    store.remove_properties("Application", applications, ("lat", "lon"))
    for label, ids in private.items():
        store.remove_properties(label, ids, _ENTITY_IDENTIFIERS[label])
    return ErasureReport(user_id, len(applications), logins, records,
                         sum(len(ids) for ids in private.values()), shared, notes, watched)


def _redact_records(store: GraphStore, applications: list[str], redact: Redact) -> int:
    """Replace the documents of the verdict records of ``applications``; returns how many
    records were found."""
    found = 0
    wanted = set(applications)
    for label in _RECORDS:
        spec = store.schema.node(label)
        if label == "Verdict":
            nodes = list(store.get_nodes(label, applications).values())
        else:
            # NOTE: conflicts are rare (one per verdict answered twice during an outage) and
            # not indexed by application; their ids are read and filtered here.
            ids = store.node_ids(label)
            nodes = [n for n in store.get_nodes(label, ids).values()
                     if n.properties.get("application_id") in wanted] if ids else []
        rows = []
        for node in nodes:
            row: dict[str, object] = {"id": node.id}
            for name in spec.documents:
                text = node.properties.get(name)
                if isinstance(text, str):
                    row[name] = redact(label, name, text)
            rows.append(row)
        if rows:
            store.upsert_nodes(label, rows)
        found += len(nodes)
    return found


def _redact_case_notes(store: GraphStore, applications: list[str], redact: Redact) -> int:
    """Replace the text of every note on a case that held one of ``applications`` (their
    ``CaseItem`` records carry the application's id); returns how many notes."""
    items = store.get_nodes("CaseItem", applications) if applications else {}
    cases = sorted({str(c) for n in items.values()
                    if (c := n.properties.get("case_id")) not in (None, "-")})
    rows = []
    for case_id in cases:
        for note in store.find_nodes("CaseNote", "case_id", case_id, limit=_FANOUT):
            text = note.properties.get("text")
            if isinstance(text, str):
                rows.append({"id": note.id, "text": redact("CaseNote", "text", text)})
    if rows:
        store.upsert_nodes("CaseNote", rows)
    return len(rows)


def _anonymise_watchlist(store: GraphStore, entities: list[str], redact: Redact) -> int:
    """Watchlist entries of ``entities`` (ids only the erased person used) lose their masked
    form and their reason's text; returns how many entries."""
    entries = [e for entity in entities
               for e in store.find_nodes("WatchlistEntry", "entity_id", entity, limit=_FANOUT)]
    if not entries:
        return 0
    ids = [e.id for e in entries]
    store.remove_properties("WatchlistEntry", ids, ("masked",))
    store.upsert_nodes("WatchlistEntry", [
        {"id": e.id, "reason": redact("WatchlistEntry", "reason", str(e.properties["reason"]))}
        for e in entries if isinstance(e.properties.get("reason"), str)])
    return len(entries)
