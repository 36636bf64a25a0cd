"""`riskgraph erase --user ID`: erase a person's identifiers and documents from the store."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from serving.erasure import AUDIT_FILE, erase
from serving.settings import get_settings
from serving.stores import build_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "erase", help="erase a person: identifiers and documents go, risk facts stay",
        description="Erase the person behind an account: the national id's hash, the masked "
                    "name, home and login/application coordinates, the masks of devices, "
                    "phones, addresses and IPs only they used, and the documents of their "
                    "verdicts. The account's relationships, labels and scores stay "
                    "(pseudonymous). Idempotent; each erasure is appended to "
                    f"RISKGRAPH_DATA_DIR/{AUDIT_FILE}. On the embedded store, stop `riskgraph "
                    "serve` first (one process owns the file).")
    p.add_argument("--user", required=True, metavar="ID", help="the account id")
    p.set_defaults(func=_erase)


def _erase(args: argparse.Namespace) -> int:
    settings = get_settings()
    with build_store(settings) as store:
        report = erase(store, args.user, settings.DATA_DIR)
    if report is None:
        print(f"riskgraph erase: the store holds no user {args.user!r}; nothing erased")
        return 1
    print(json.dumps(asdict(report), sort_keys=True))
    return 0
