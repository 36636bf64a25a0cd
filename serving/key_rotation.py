"""Rotation of the pseudonymisation key (``riskgraph rotate-key``): what the service adds to
:func:`graph.key_rotation.rotate_key`: how its own records are re-keyed, the spool's part, the
audit trail, and the pseudonymiser every command that hashes a clear value uses.

Records (:func:`rewrite_record`):

* a verdict's stored request (``request_json``) has its keyed hashes re-keyed and its
  ``request_hash`` computed again over it, so that the same application resent afterwards
  (hashed under the new chain) matches it: the stored verdict is answered, a different body
  is still 409. An erased person's verdict has no request left (``{}``): its hash cannot be
  computed again and is re-keyed as a digest (:func:`graph.privacy.rekey_digest`), so a
  resend is 409;
* the reasons of a stored verdict name entities by keyed hash: re-keyed, with the display a
  hash prefix gave (``entity_id[:12]``) and the messages that quote it;
* a login's ``EventRecord.body_hash`` covers the login's hashed device and IP, which are
  not stored with it: it is re-keyed as a digest, so a login resent after the rotation is
  reported as a conflict and not written again (it is stored already); other events' and
  labels' hashes cover no keyed hash and stay.

The spool must be drained first (its queued writes and each replica's recorded answers hold
hashes under the old key); the answers, copies of verdicts the store holds, are dropped.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

from graph import GraphStore, Pseudonymiser
from graph.key_rotation import (
    HASHED_LABELS,
    Rekeying,
    RotationReport,
    rotate_key,
    store_pseudonymiser,
)
from graph.privacy import HASHED_ID, key_check
from graph.typing import NodeType
from serving.graph_writes import canonical_json, sha256_hex
from serving.settings import ConfigurationError, Settings
from serving.spool import hold_spools

__all__ = ["AUDIT_FILE", "CHAIN_FILE", "cached_pseudonymiser", "pseudonymiser_for",
           "rewrite_record", "rotate"]

AUDIT_FILE: Final = "key_rotations.jsonl"
"""The audit trail of key rotations, one JSON line each, in ``RISKGRAPH_DATA_DIR``."""
CHAIN_FILE: Final = "key_chain.json"
"""This host's copy of the store's key chain, in ``RISKGRAPH_DATA_DIR``: the retired keys and
the newest key's check value, as the store holds them (no more secret), written whenever the
chain is read; what a replica that starts while the store is down hashes with."""
_REQUEST_IDS: Final = ("device_id", "ip", "address_id", "phone_id")
"""The keyed hashes of a canonical request (:func:`serving.graph_writes.canonical_request`)."""
_DISPLAY_PREFIX: Final = 12
"""How much of an id a reason shows when it has no masked form
(:meth:`serving.explanations._Values.entity`)."""

log = logging.getLogger(__name__)


def pseudonymiser_for(settings: Settings, store: GraphStore, *, claim: bool = False
                      ) -> Pseudonymiser:
    """The configured key with the store's retired keys before it
    (:func:`graph.key_rotation.store_pseudonymiser`).

    Raises:
        ConfigurationError: the secret is missing or a placeholder.
        KeyChainError: it is not the store's current key, or a rotation is unfinished.
    """
    pseudonymiser = store_pseudonymiser(store, settings.pseudonym_secret(), claim=claim)
    _remember_chain(settings.DATA_DIR, pseudonymiser)
    return pseudonymiser


def cached_pseudonymiser(settings: Settings) -> Pseudonymiser:
    """The configured key with the retired keys this host last read from the store
    (:data:`CHAIN_FILE`), for a start while the store is down; the configured key alone (with
    a warning) when this host never read the chain.

    Raises:
        ConfigurationError: the secret is missing, or it is not the newest key of the chain
            this host last read (the store's chain is needed: start when the store answers).
    """
    secret = settings.pseudonym_secret()
    path = settings.DATA_DIR / CHAIN_FILE
    try:
        chain = json.loads(path.read_text())
        check, retired = str(chain["check"]), [bytes.fromhex(k) for k in chain["retired"]]
    except FileNotFoundError:
        log.warning("the store is down and this host never read its key chain (%s): hashing "
                    "under the configured key alone, right unless the store's key was rotated",
                    path)
        return Pseudonymiser(secret)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigurationError(f"{path} cannot be read ({e}): start `riskgraph serve` when "
                                 "the store answers, so that its key chain is read") from e
    if check != key_check(secret):
        raise ConfigurationError(
            f"the store is down and the configured pseudonym secret is not the newest key of "
            f"the chain this host last read ({path}): start `riskgraph serve` when the store "
            "answers, so that its key chain is read")
    return Pseudonymiser(secret, retired)


def _remember_chain(data_dir: Path, pseudonymiser: Pseudonymiser) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CHAIN_FILE
    # NOTE: a name per process: the workers of one host start (and write it) at once.
    written = path.with_name(f".{CHAIN_FILE}.{os.getpid()}.tmp")
    written.write_text(json.dumps({"check": pseudonymiser.check,
                                   "retired": [k.hex() for k in pseudonymiser.retired]}))
    os.replace(written, path)


def rewrite_record(label: NodeType, row: dict[str, Any], rekeying: Rekeying) -> dict[str, Any]:
    """A ``Verdict``, ``VerdictConflict``, ``EventRecord``, ``WatchlistEntry`` or
    ``ReadAudit`` row re-keyed (module docstring)."""
    if label in ("WatchlistEntry", "ReadAudit"):
        # NOTE: the entity a watchlist entry flags or a read looked at, by its id in the graph.
        if row.get("entity_label") in HASHED_LABELS and row.get("entity_id"):
            row["entity_id"] = rekeying.id(str(row["entity_id"]))
        return row
    if label == "EventRecord":
        if row.get("type") == "login" and row.get("body_hash"):
            row["body_hash"] = rekeying.digest(str(row["body_hash"]))
        return row
    old_hash = row.get("request_hash")
    request, new_hash = _rekey_request(row, rekeying)
    if request is not None:
        row["request_json"] = request
    if old_hash is not None:
        row["request_hash"] = new_hash or rekeying.digest(str(old_hash))
    if isinstance(row.get("verdict_json"), str):
        row["verdict_json"] = _rekey_verdict(row["verdict_json"], rekeying)
    if isinstance(row.get("features_json"), str):
        row["features_json"] = _rekey_document(row["features_json"], rekeying)
    stored = row.get("stored_request_hash")
    if label == "VerdictConflict" and stored is not None:
        if stored == old_hash:
            row["stored_request_hash"] = row["request_hash"]
        else:
            verdict = rekeying.read_record("Verdict", str(row.get("application_id")))
            again = (_rekey_request(dict(verdict), rekeying)[1]
                     if verdict is not None and verdict.get("request_hash") == stored else None)
            row["stored_request_hash"] = again or rekeying.digest(str(stored))
    return row


def _rekey_request(row: dict[str, Any], rekeying: Rekeying) -> tuple[str | None, str | None]:
    """The re-keyed request and its hash; ``(None, None)`` when the stored text is not the
    request its hash was taken over (an erased one)."""
    text = row.get("request_json")
    if not isinstance(text, str) or sha256_hex(text) != row.get("request_hash"):
        return None, None
    request = json.loads(text)
    if not isinstance(request, dict) or not request:
        return None, None
    for name in _REQUEST_IDS:
        value = request.get(name)
        if isinstance(value, str) and HASHED_ID.match(value):
            request[name] = rekeying.id(value)
    again = canonical_json(request)
    return again, sha256_hex(again)


def _rekey_verdict(text: str, rekeying: Rekeying) -> str:
    try:
        verdict = json.loads(text)
    except json.JSONDecodeError:
        return text
    if not isinstance(verdict, dict):
        return text
    changed = False
    for reason in verdict.get("reasons") or []:
        evidence = reason.get("evidence") or {}
        old = evidence.get("entity_id")
        if evidence.get("entity_type") not in HASHED_LABELS or not isinstance(old, str) \
                or not HASHED_ID.match(old):
            continue
        new = rekeying.id(old)
        evidence["entity_id"] = new
        shown, now = old[:_DISPLAY_PREFIX], new[:_DISPLAY_PREFIX]
        if evidence.get("display") == shown:
            evidence["display"] = now
            for name in ("message_en", "message_zh"):
                if isinstance(reason.get(name), str):
                    reason[name] = reason[name].replace(shown, now)
        changed = True
    return json.dumps(verdict, separators=(",", ":"), ensure_ascii=False) if changed else text


def _rekey_document(text: str, rekeying: Rekeying) -> str:
    """Every string of a JSON document that is a keyed hash, re-keyed."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return text
    changed = False

    def walk(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, str) and HASHED_ID.match(value):
            changed = True
            return rekeying.id(value)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    document = walk(document)
    return canonical_json(document) if changed and isinstance(document, dict) else text


def rotate(store: GraphStore, current: bytes, new: bytes, *, spool_dir: Path, data_dir: Path,
           chunk_rows: int = 5000) -> RotationReport | None:
    """Re-key the store from ``current`` to ``new`` and append the rotation to the audit trail.

    Args:
        store (GraphStore): the store.
        current (bytes): the configured key, retired by this rotation.
        new (bytes): the new key.
        spool_dir (Path): the spool directory of this host's replicas: every file must be
            drained and none held (no replica running here); its answers are dropped.
        data_dir (Path): the data directory, where :data:`AUDIT_FILE` and :data:`CHAIN_FILE`
            are.
        chunk_rows (int, optional): rows per transaction. (default: ``5000``)

    Returns:
        RotationReport | None: what was rewritten; ``None`` when the store was under ``new``
        already (nothing is written, the audit trail included).

    Raises:
        SpoolError: a spool file is held by a running replica or still holds writes.
        KeyChainError: see :func:`graph.key_rotation.rotate_key`.
    """
    store.apply_schema()
    with hold_spools(spool_dir) as spools:
        report = rotate_key(store, current, new, rewrite_record, chunk_rows=chunk_rows)
        if report is None:
            return None
        for spool in spools:
            spool.forget_answers()
    _remember_chain(data_dir, store_pseudonymiser(store, new))
    entry = {"at": int(time.time()), "by": getpass.getuser(), "action": "rotate-key",
             "store": store.identity().instance_id, **asdict(report)}
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / AUDIT_FILE).open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    log.info("rotated the pseudonymisation key: %s", entry)
    return report

