"""Rotation of the pseudonymisation key: every keyed hash the store holds, re-keyed.

An HMAC cannot be re-keyed without the clear values, which the store does not have; what can
be done is to hash the stored hash again under the new key: ``new = HMAC(k_new, old)``
(:func:`graph.privacy.rekey_id`, same kind prefix and length). Whatever hashes a clear value
afterwards applies the whole chain, ``HMAC(k_n, ... HMAC(k_1, HMAC(k_0, value)))``, so it
meets the nodes already there. The store keeps its chain (:data:`graph.schema.PSEUDONYM_KEY`,
one node per key): the retired keys in clear, oldest first, which need no secrecy while the
newest is secret (without it nobody can test a guess against a stored id), and the newest
key's check value only (:func:`graph.privacy.key_check`), never the key itself.

:func:`rotate_key` rewrites, in order: the ids of the hashed labels (:data:`HASHED_LABELS`),
and with them every relationship end that names them; ``User.id_hash``;
``LOGGED_IN_FROM.device_id``; the records whose documents or digests name keyed hashes, through
the caller's ``rewrite_record`` (the service knows its documents' formats); last, the chain
(the new key becomes current). The store does the rewriting (:meth:`GraphStore.rewrite`):
Neo4j in place, chunk by chunk, each chunk's rows marked with the new generation in the
transaction that rewrites them (a run stopped anywhere resumes at the first unmarked row);
LadybugDB into a new file through its bulk path, swapped in for the old one at the end (a
stopped run leaves the old file as it was and starts again).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from graph.errors import GraphError
from graph.privacy import Pseudonymiser, key_check, rekey_digest, rekey_id
from graph.schema import PSEUDONYM_KEY
from graph.store import GraphStore
from graph.typing import NodeType, RelType

__all__ = [
    "HASHED_LABELS",
    "KeyChainError",
    "KeyRecord",
    "Rekeying",
    "RotationReport",
    "read_chain",
    "rotate_key",
    "store_pseudonymiser",
]

HASHED_LABELS: Final[tuple[NodeType, ...]] = ("Device", "Phone", "Address", "IP")
"""The labels whose node ids are keyed hashes."""
HASHED_NODE_PROPERTIES: Final[dict[NodeType, tuple[str, ...]]] = {"User": ("id_hash",)}
"""Node properties (besides ids) that hold keyed hashes."""
HASHED_EDGE_PROPERTIES: Final[dict[RelType, tuple[str, ...]]] = {
    "LOGGED_IN_FROM": ("device_id",)}
"""Relationship properties that hold keyed hashes."""
RECORDS: Final[tuple[NodeType, ...]] = ("VerdictConflict", "Verdict", "EventRecord",
                                         "WatchlistEntry", "ReadAudit")
"""The records ``rewrite_record`` is given, in this order (a conflict's rewrite may read its
stored verdict, which is still as it was)."""

RecordRewrite = Callable[[NodeType, dict[str, Any], "Rekeying"], dict[str, Any]]
"""``(label, row, rekeying) -> the row re-keyed`` for a record of :data:`RECORDS`."""


class KeyChainError(GraphError):
    """The configured key is not the store's, or a key rotation is unfinished; the message
    says what to do."""


@dataclass(frozen=True)
class KeyRecord:
    """One key of a store's chain.

    Args:
        generation (int): 0 for the first key, one more per rotation.
        check (str): the key's check value (:func:`graph.privacy.key_check`).
        retired_key (bytes | None): the key, once retired; ``None`` while it is the newest.
        state (str): ``current``, ``rotating`` (a rotation to it is under way) or ``retired``.
    """

    generation: int
    check: str
    retired_key: bytes | None
    state: str


@dataclass(frozen=True)
class RotationReport:
    """What a rotation rewrote.

    Args:
        generation (int): the new key's generation.
        resumed (bool): whether it finished a rotation an earlier run had begun.
        rows (dict[str, int]): rows rewritten per label and relationship type (in this run).
        seconds (float): how long it took.
    """

    generation: int
    resumed: bool
    rows: dict[str, int]
    seconds: float


def read_chain(store: GraphStore) -> list[KeyRecord]:
    """The store's key chain, oldest first (empty for a store that never recorded a key)."""
    ids = store.node_ids(PSEUDONYM_KEY)
    records = [KeyRecord(int(p["generation"]), str(p["check"]),
                         bytes.fromhex(str(p["retired_key"])) if p.get("retired_key") else None,
                         str(p["state"]))
               for p in (n.properties for n in store.get_nodes(PSEUDONYM_KEY, ids).values())]
    return sorted(records, key=lambda r: r.generation)


def store_pseudonymiser(store: GraphStore, secret: bytes, *, claim: bool = False
                        ) -> Pseudonymiser:
    """The pseudonymiser that meets the store's ids: ``secret`` as the newest key, the chain's
    retired keys before it.

    Args:
        store (GraphStore): the store.
        secret (bytes): the configured key.
        claim (bool, optional): record ``secret`` as the store's first key when the store has
            no chain yet (first writer wins, so two loaders with two keys cannot both pass).
            (default: ``False``)

    Raises:
        KeyChainError: ``secret`` is not the store's current key, or a rotation is unfinished.
    """
    chain = read_chain(store)
    if not chain:
        if not claim:
            return Pseudonymiser(secret)
        (node,) = store.claim_nodes(PSEUDONYM_KEY, [_key_row(0, key_check(secret), "current")])
        chain = [KeyRecord(0, str(node.properties["check"]), None, "current")]
    newest = chain[-1]
    if newest.state == "rotating":
        raise KeyChainError(
            f"a rotation of the pseudonymisation key to generation {newest.generation} is "
            "unfinished: run `riskgraph rotate-key` again with the same --new-secret-file")
    if newest.check != key_check(secret):
        older = [r.generation for r in chain[:-1] if r.retired_key is not None
                 and key_check(r.retired_key) == key_check(secret)]
        what = (f"generation {older[0]}, retired by a rotation: configure the newest key"
                if older else "not a key of the store's chain")
        raise KeyChainError(
            f"the configured pseudonym secret is not the store's current key (generation "
            f"{newest.generation}); it is {what} (RISKGRAPH_PSEUDONYM_SECRET / _FILE)")
    return Pseudonymiser(secret, _retired(chain[:-1]))


class Rekeying:
    """What one rotation does to a row (:class:`graph.store.Rewrite`): the ids of
    :data:`HASHED_LABELS`, the hashed properties, the records through ``rewrite_record``, and
    the chain's nodes.

    Args:
        new_secret (bytes): the new key.
        generation (int): the new key's generation (the mark of the rows rewritten).
        rewrite_record (RecordRewrite): re-keys a record's documents and digests.
        read_record (Callable[[NodeType, str], Mapping[str, Any] | None]): a record's
            properties as they were before the rotation (a conflict's stored verdict).
        now (int): when the rotation finishes, epoch seconds.
    """

    def __init__(self, new_secret: bytes, generation: int, rewrite_record: RecordRewrite,
                 read_record: Callable[[NodeType, str], Mapping[str, Any] | None],
                 now: int) -> None:
        self._secret = new_secret
        self.mark = generation
        self._rewrite_record = rewrite_record
        self.read_record = read_record
        self._now = now
        self.node_labels: tuple[NodeType, ...] = (
            *HASHED_LABELS, *HASHED_NODE_PROPERTIES, *RECORDS)
        self.final_labels: tuple[NodeType, ...] = (PSEUDONYM_KEY,)
        self.id_labels: frozenset[NodeType] = frozenset(HASHED_LABELS)
        self.edge_columns: Mapping[RelType, tuple[str, ...]] = HASHED_EDGE_PROPERTIES

    def __repr__(self) -> str:
        return f"Rekeying(generation={self.mark})"

    def id(self, hashed: str) -> str:
        """A keyed hash under the new key."""
        return rekey_id(self._secret, hashed)

    def digest(self, digest: str) -> str:
        """A digest that cannot be computed again, re-keyed (:func:`graph.privacy.rekey_digest`)."""
        return rekey_digest(self._secret, digest)

    def node_id(self, label: NodeType, node_id: str) -> str:
        return self.id(node_id) if label in self.id_labels else node_id

    def node_row(self, label: NodeType, row: dict[str, Any]) -> dict[str, Any]:
        out = dict(row)
        if label in self.id_labels:
            out["id"] = self.id(str(row["id"]))
        for name in HASHED_NODE_PROPERTIES.get(label, ()):
            if row.get(name) is not None:
                out[name] = self.id(str(row[name]))
        if label in RECORDS:
            out = self._rewrite_record(label, out, self)
        if label == PSEUDONYM_KEY:
            out = self._chain_row(out)
        return out

    def edge_value(self, rel_type: RelType, name: str, value: Any) -> Any:
        return None if value is None else self.id(str(value))

    def _chain_row(self, row: dict[str, Any]) -> dict[str, Any]:
        if row.get("generation") == self.mark:
            return {**row, "state": "current", "rotated_at": self._now}
        return row


def rotate_key(store: GraphStore, current: bytes, new: bytes, rewrite_record: RecordRewrite,
               *, chunk_rows: int = 5000, now: int | None = None) -> RotationReport | None:
    """Re-key every keyed hash of ``store`` from ``current`` to ``new`` (module docstring);
    run again after a stop, it finishes what the stopped run began.

    Nothing else may write the store meanwhile (a serving replica would write ids under the
    old key).

    Args:
        store (GraphStore): the store.
        current (bytes): the key the store is under (the configured one).
        new (bytes): the new key.
        rewrite_record (RecordRewrite): re-keys the records' documents and digests.
        chunk_rows (int, optional): rows per transaction where the store rewrites in place.
            (default: ``5000``)
        now (int, optional): the time recorded, epoch seconds. (default: now)

    Returns:
        RotationReport | None: what was rewritten; ``None`` when the store is already under
        ``new`` (a finished rotation run again).

    Raises:
        KeyChainError: ``current`` is not the store's key, ``new`` is a key of its chain, or
            an unfinished rotation was to another key.
        ValueError: ``new`` is shorter than 16 bytes.
    """
    started = time.perf_counter()
    Pseudonymiser(new)  # NOTE: the same floor on the key's length as every key.
    now = int(time.time()) if now is None else now
    new_check = key_check(new)
    chain = read_chain(store)
    if not chain:
        store_pseudonymiser(store, current, claim=True)
        chain = read_chain(store)
    newest = chain[-1]
    resumed = newest.state == "rotating"
    if resumed:
        if newest.check != new_check:
            raise KeyChainError(
                f"an unfinished rotation to another key (generation {newest.generation}) is "
                "in the store: run `riskgraph rotate-key` again with that --new-secret-file")
        previous = chain[-2]
        if previous.retired_key is None or key_check(previous.retired_key) != key_check(current):
            raise KeyChainError("the configured pseudonym secret is not the key the "
                                "unfinished rotation retires: configure that one")
        generation = newest.generation
    else:
        if newest.check == new_check and len(chain) > 1:
            return None
        if any(r.check == new_check for r in chain):
            raise KeyChainError("the new key is a key of the store's chain already: "
                                "generate a new one")
        store_pseudonymiser(store, current)  # NOTE: raises unless `current` is the newest.
        generation = newest.generation + 1
        # NOTE: the old key is kept before any id changes: a stop from here on leaves a store
        # that needs it, and `rotating` makes serving refuse it until the rotation finishes.
        store.upsert_nodes(PSEUDONYM_KEY, [
            {"id": _key_id(newest.generation), "retired_key": current.hex(),
             "state": "retired"},
            _key_row(generation, new_check, "rotating", now)])
    rekeying = Rekeying(new, generation, rewrite_record, _reader(store), now)
    rows = store.rewrite(rekeying, chunk_rows=chunk_rows)
    return RotationReport(generation, resumed, rows, time.perf_counter() - started)


def _reader(store: GraphStore) -> Callable[[NodeType, str], Mapping[str, Any] | None]:
    def read(label: NodeType, node_id: str) -> Mapping[str, Any] | None:
        node = store.get_node(label, node_id)
        return None if node is None else node.properties
    return read


def _key_id(generation: int) -> str:
    return f"{generation:06d}"


def _key_row(generation: int, check: str, state: str, now: int | None = None
             ) -> dict[str, Any]:
    return {"id": _key_id(generation), "generation": generation, "check": check,
            "state": state, "created_at": int(time.time()) if now is None else now}


def _retired(chain: list[KeyRecord]) -> list[bytes]:
    keys = [r.retired_key for r in chain]
    if any(k is None for k in keys):
        raise KeyChainError("the store's key chain lacks a retired key; it cannot be used")
    return [k for k in keys if k is not None]
