"""Who looked at what: every investigator read recorded (key, entity, time), and what each
role is shown of the people behind the graph.

A read is recorded as a ``ReadAudit`` record through the durable writer's spool
(:meth:`serving.writer.DurableWriter.enqueue`): fsynced before the answer leaves, in the store
(shared by every replica) soon after, and kept in the spool while the store is down.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any, Final

from graph import GraphStore
from serving.keys import Principal
from serving.writer import DurableWriter

HIDDEN_FROM: Final[dict[str, frozenset[str]]] = {
    "User": frozenset({"id_hash", "home_lat", "home_lon"}),
    "Address": frozenset({"lat", "lon"}),
}
"""Properties only an ``admin`` key is shown, by label: the keyed hash of a national id (it
links one person across systems that share the key) and where a person lives. Every other
identifier in the store is already a keyed hash or a masked form (:mod:`graph.privacy`)."""


def visible_properties(label: str, properties: Mapping[str, Any],
                       principal: Principal) -> dict[str, Any]:
    """The properties of a ``label`` node that ``principal``'s role may see."""
    hidden = HIDDEN_FROM.get(label)
    if principal.role == "admin" or not hidden:
        return dict(properties)
    return {k: v for k, v in properties.items() if k not in hidden}


class ReadAudit:
    """Records investigator reads (module docstring).

    Args:
        writer (DurableWriter): the durable path the records take to the store.
    """

    def __init__(self, writer: DurableWriter) -> None:
        self.writer = writer

    def __repr__(self) -> str:
        return f"ReadAudit(writer={self.writer!r})"

    def record(self, principal: Principal, route: str, label: str, entity_id: str) -> None:
        """Record that ``principal`` read ``entity_id`` (a ``label``) through ``route``.

        Raises:
            SpoolError: the spool cannot be written (the read is then refused).
        """
        now = time.time()
        row = {"id": f"{int(now * 1000)}-{principal.key_id}-{secrets.token_hex(4)}",
               "key_id": principal.key_id, "role": principal.role, "route": route,
               "entity_label": label, "entity_id": entity_id, "at": int(now)}
        self.writer.enqueue("audit", [{"op": "nodes", "label": "ReadAudit", "rows": [row]}])


def recent_reads(store: GraphStore, *, key_id: str | None, entity_id: str | None,
                 limit: int) -> list[dict[str, Any]]:
    """The latest ``ReadAudit`` records, newest first, optionally of one key or entity."""
    rows = (store.find_nodes("ReadAudit", "key_id", key_id, limit=100_000)
            if key_id is not None else None)
    found = ([{"id": n.id, **n.properties} for n in rows] if rows is not None
             else store.export_nodes("ReadAudit").to_pylist())
    if entity_id is not None:
        found = [r for r in found if r.get("entity_id") == entity_id]
    # NOTE: ids start with the time in milliseconds (13 digits until 2286): newest first.
    found.sort(key=lambda r: str(r["id"]), reverse=True)
    return found[:limit]
