"""`riskgraph erase --user ID` and `riskgraph rotate-key --new-secret-file F`: erase a person's
identifiers and documents; re-key every keyed hash of the store under a new key."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from pathlib import Path

from serving.erasure import AUDIT_FILE, erase
from serving.settings import get_settings, read_secret_file
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
    p = sub.add_parser(
        "rotate-key", help="re-key every keyed hash of the store under a new pseudonym secret",
        description="Re-key every keyed hash the store holds (device, phone, address and IP "
                    "ids, national-id hashes, the ids in stored requests and reasons, and "
                    "their request hashes) under the key in --new-secret-file: each becomes "
                    "HMAC(new key, stored hash). The key being retired is the configured one "
                    "(RISKGRAPH_PSEUDONYM_SECRET or RISKGRAPH_PSEUDONYM_SECRET_FILE); the store "
                    "keeps it, and every retired key, so that clear values hashed later meet "
                    "the same nodes. Stop every `riskgraph serve` first (the spool under "
                    "RISKGRAPH_DATA_DIR must be drained); a stopped run resumes when run again "
                    "with the same file. Then configure the new key and start serving. Each "
                    "rotation is appended to RISKGRAPH_DATA_DIR/key_rotations.jsonl.")
    p.add_argument("--new-secret-file", required=True, type=Path, metavar="FILE",
                   help="file holding the new key (at least 16 bytes, e.g. `openssl rand "
                        "-hex 32 > FILE`)")
    p.add_argument("--chunk-rows", type=int, default=5000, metavar="N",
                   help="rows per transaction on Neo4j (default 5000)")
    p.set_defaults(func=_rotate_key)


def _erase(args: argparse.Namespace) -> int:
    settings = get_settings()
    with build_store(settings) as store:
        report = erase(store, args.user, settings.DATA_DIR)
    if report is None:
        print(f"riskgraph erase: the store holds no user {args.user!r}; nothing erased")
        return 1
    print(json.dumps(asdict(report), sort_keys=True))
    return 0


def _rotate_key(args: argparse.Namespace) -> int:
    # NOTE: imported here: the rotation's modules are needed by this command alone.
    from serving.key_rotation import rotate

    settings = get_settings()
    current = settings.pseudonym_secret()
    new = read_secret_file(args.new_secret_file, "--new-secret-file")
    if args.chunk_rows <= 0:
        raise SystemExit(f"riskgraph rotate-key: --chunk-rows must be positive, got "
                         f"{args.chunk_rows}")
    with build_store(settings) as store:
        report = rotate(store, current, new, spool_dir=settings.spool_dir,
                        data_dir=settings.DATA_DIR, chunk_rows=args.chunk_rows)
    if report is None:
        print("riskgraph rotate-key: the store is under the new key already; nothing to do")
        return 0
    print(json.dumps(asdict(report), sort_keys=True))
    print("now set RISKGRAPH_PSEUDONYM_SECRET (or _FILE) to the new key before `riskgraph "
          "serve`, `load` or `rotate-key`", file=sys.stderr)
    return 0
