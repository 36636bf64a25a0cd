"""`riskgraph keys create|list|revoke`: API keys, stored hashed in the graph store."""

from __future__ import annotations

import argparse
import json

from serving import keys
from serving.settings import get_settings
from serving.stores import build_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("keys", help="create, list or revoke API keys")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    c = ksub.add_parser("create", help="create a key and print it once")
    c.add_argument("--name", required=True, help="who holds the key")
    c.add_argument("--role", required=True, choices=keys.ROLES)
    c.add_argument("--rate-limit", type=float, default=None,
                   help="requests per second for this key (default: the server's)")
    c.set_defaults(func=_create)
    ls = ksub.add_parser("list", help="list keys (never the secrets)")
    ls.set_defaults(func=_list)
    r = ksub.add_parser("revoke", help="revoke a key by id")
    r.add_argument("key_id")
    r.set_defaults(func=_revoke)


def _create(args: argparse.Namespace) -> int:
    with build_store(get_settings()) as store:
        store.apply_schema()
        record, key = keys.create_key(store, args.name, args.role,
                                      rate_limit_per_s=args.rate_limit)
    print(json.dumps({"key_id": record.key_id, "name": record.name, "role": record.role,
                      "key": key}))
    return 0


def _list(args: argparse.Namespace) -> int:
    with build_store(get_settings(), read_only=True) as store:
        for r in keys.list_keys(store):
            print(json.dumps({"key_id": r.key_id, "name": r.name, "role": r.role,
                              "created_at": r.created_at, "revoked_at": r.revoked_at}))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    with build_store(get_settings()) as store:
        if not keys.revoke_key(store, args.key_id):
            print(f"no key {args.key_id!r}")
            return 1
    print(f"revoked {args.key_id}")
    return 0
