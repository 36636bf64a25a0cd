"""`riskgraph rings refresh|list`: the rings of the configured store (:mod:`graph.rings`)."""

from __future__ import annotations

import argparse
import json

from graph.rings import ranked_rings
from serving.ring_refresher import RingRefresher
from serving.settings import get_settings
from serving.stores import build_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("rings", help="find the rings of the graph and store them (refresh), "
                       "or list the riskiest",
                       description="Rings: communities of accounts sharing devices, phones, "
                       "addresses or IPs (Leiden; RISKGRAPH_RINGS_HUB_SIZE, _MIN_SIZE, _SEED). "
                       "The embedded store allows one process: while `riskgraph serve` holds "
                       "it, refresh through POST /v1/rings/refresh instead.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    refresh = actions.add_parser("refresh", help="find the rings now and store them")
    refresh.set_defaults(func=_refresh)
    listing = actions.add_parser("list", help="print the riskiest live rings as JSON lines")
    listing.add_argument("--limit", type=int, default=20, help="most rings (default 20)")
    listing.add_argument("--min-size", type=int, default=1, help="fewest members (default 1)")
    listing.set_defaults(func=_list)


def _refresh(args: argparse.Namespace) -> int:
    settings = get_settings()
    with build_store(settings) as store:
        store.apply_schema()
        done = RingRefresher(store, hub_size=settings.RINGS_HUB_SIZE,
                             min_size=settings.RINGS_MIN_SIZE,
                             seed=settings.RINGS_SEED).refresh()
    print(json.dumps({"rings": done.rings, "members": done.members, "retired": done.retired,
                      "users_left": done.users_left,
                      "seconds": {k: round(v, 2) for k, v in done.seconds.items()}}))
    return 0


def _list(args: argparse.Namespace) -> int:
    if args.limit <= 0:
        raise SystemExit(f"riskgraph rings list: --limit must be positive, got {args.limit}")
    with build_store(get_settings(), read_only=True) as store:
        for ring in ranked_rings(store, limit=args.limit, min_size=args.min_size):
            print(json.dumps({"ring_id": ring.ring_id, "size": ring.size, "risk": ring.risk,
                              "confirmed_fraud_share": ring.confirmed_fraud_share,
                              "money_at_stake": ring.money_at_stake,
                              "shared_entities": ring.shared_entities,
                              "refreshed_at": ring.refreshed_at}))
    return 0
