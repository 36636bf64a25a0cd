"""Erasure of a person on request (``riskgraph erase --user ID``): what the service adds to
:func:`graph.erasure.erase_user`: how its own documents are redacted, and the audit trail.

A verdict's stored JSON keeps its decision, scores, grade, limit and versions and loses its
reasons (their messages name cities, masked identifiers and amounts of the person); the stored
request and features are replaced by ``{}``; investigators' notes on the person's cases and the
reasons of watchlist entries of entities only they used by :data:`ERASED_TEXT`. A resent application id of an erased person is
still answered with its stored decision (now without reasons), or 409 for another body: the
request hash stays.
"""

from __future__ import annotations

import getpass
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Final

from graph import GraphStore
from graph.erasure import ErasureReport, erase_user

__all__ = ["AUDIT_FILE", "ERASED_TEXT", "erase", "redact_document"]

AUDIT_FILE: Final = "erasures.jsonl"
"""The audit trail of erasures, one JSON line each, in ``RISKGRAPH_DATA_DIR``."""

log = logging.getLogger(__name__)


ERASED_TEXT: Final = "[erased at the person's request]"
"""What an investigator's free text (a case note, a watchlist reason) becomes."""


def redact_document(label: str, name: str, text: str) -> str:
    """What an erased person's record keeps of a document or an investigator's free text."""
    if label in ("CaseNote", "WatchlistEntry"):
        return ERASED_TEXT
    if name != "verdict_json":
        return "{}"
    try:
        verdict = json.loads(text)
    except json.JSONDecodeError:
        return "{}"
    if not isinstance(verdict, dict):
        return "{}"
    verdict["reasons"] = []
    return json.dumps(verdict, separators=(",", ":"), ensure_ascii=False)


def erase(store: GraphStore, user_id: str, audit_dir: Path) -> ErasureReport | None:
    """Erase the person behind ``user_id`` and append the erasure to the audit trail.

    Args:
        store (GraphStore): the store.
        user_id (str): the account id.
        audit_dir (Path): where :data:`AUDIT_FILE` is (the data directory).

    Returns:
        ErasureReport | None: what was erased; ``None`` when the store knows no such account
        (nothing is written, the audit trail included).
    """
    report = erase_user(store, user_id, redact_document)
    if report is None:
        return None
    entry = {"at": int(time.time()), "by": getpass.getuser(), "action": "erase",
             "store": store.identity().instance_id, **asdict(report)}
    audit_dir.mkdir(parents=True, exist_ok=True)
    with (audit_dir / AUDIT_FILE).open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    log.info("erased user %s: %s", user_id, entry)
    return report
