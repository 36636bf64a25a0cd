"""The investigator's graph questions on a loaded world, both stores: two-hop neighbourhoods,
shortest paths, ring queries (p50 / p99), and ring detection over the whole graph (time).

    python bench/bench_investigate.py [--stores ladybug,neo4j] [--ladybug PATH]
                                      [--neo4j-uri bolt://127.0.0.1:7693] [--samples 200]
                                      [--seed 1] [--no-rings] [--out FILE]

The stores must hold a world already (the 100k one: ``riskgraph load /data/w100k`` with
``RISKGRAPH_DATA_DIR`` for LadybugDB, ``riskgraph load /data/w100k --neo4j-import`` for Neo4j);
the script only reads them, except that ring detection writes the rings (``Ring`` nodes and
``User.ring_id``, as ``riskgraph rings refresh`` does) before the ring queries are timed.

What is timed, each call alone, one after another, on the service functions the API routes
call (:mod:`serving.investigation`, under a :class:`serving.store_guard.StoreGuard`, on the
investigators' threads; HTTP and JSON add their own on top):

1. ``neighbourhood``: ``entity_neighbourhood(User, u, hops=2, per_hop=50, hub_size=200)`` (the
   API's defaults) for ``--samples`` users drawn at random;
2. ``path (linked)``: ``shortest_paths(u, v, max_hops=4, limit=3, hub_size=200)`` for pairs two
   or four steps apart (v shares an entity with u, or with such an account);
3. ``path (random)``: the same for two users drawn at random (mostly no path within four
   steps: the whole search);
4. ``rings refresh``: ``refresh_rings`` over the whole graph (hub size 100, min size 3,
   seed 0), once, with its steps;
5. ``ring list``: ``ranked_rings(limit=50)``; ``ring view``: ``ring_view(max_nodes=300)``
   of a ring drawn from the 200 riskiest, and of the largest ring (what ``GET /v1/rings``
   and ``GET /v1/rings/{id}`` read).

``--no-rings`` times 1-3 only (nothing written: before/after runs on one store stay alike).

Prints a Markdown section; ``--out FILE`` also writes it to FILE.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine_info import machine, today  # noqa: E402

from graph import GraphStore  # noqa: E402
from graph.exploration import (  # noqa: E402
    PATH_RELS,
)
from graph.ladybug_store import LadybugStore  # noqa: E402
from graph.neo4j_store import Neo4jStore  # noqa: E402
from graph.rings import ranked_rings, refresh_rings  # noqa: E402
from serving import investigation  # noqa: E402
from serving.store_guard import StoreGuard  # noqa: E402


def _quantiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return p50 * 1000, p99 * 1000, ordered[-1] * 1000


def _timed(calls: list[Callable[[], Any]], warm: int = 3) -> tuple[list[float], list[Any]]:
    for call in calls[:warm]:
        call()
    times, answers = [], []
    for call in calls:
        t0 = time.perf_counter()
        answers.append(call())
        times.append(time.perf_counter() - t0)
    return times, answers


def _linked_pairs(store: GraphStore, users: list[str], rng: random.Random, n: int,
                  hub_size: int) -> list[tuple[str, str]]:
    """Pairs two or four steps apart through entities that are not hubs."""
    def sharing(u: str) -> list[str]:
        rows = store.shared_accounts(u, limit=200)
        vias = sorted({(r.via_label, r.via_id) for r in rows})

        def small(reader: Any) -> set[tuple[str, str]]:
            found = reader.linked(vias, PATH_RELS, hub_size) if vias else {}
            return {via for via in vias if found[via] is not None}

        kept = store.explore(small)
        return sorted({r.user_id for r in rows if (r.via_label, r.via_id) in kept})

    pairs: list[tuple[str, str]] = []
    for u in users:
        if len(pairs) >= n:
            break
        first = sharing(u)
        if not first:
            continue
        v = rng.choice(first)
        if rng.random() < 0.5:
            second = sorted(set(sharing(v)) - set(first) - {u})
            if second:
                v = rng.choice(second)
        pairs.append((u, v))
    return pairs


def bench_store(name: str, store: GraphStore, samples: int, seed: int,
                rings: bool = True) -> list[str]:
    rng = random.Random(seed)
    users = sorted(store.node_ids("User"))
    print(f"{name}: {len(users):,} users", file=sys.stderr)
    drawn = rng.sample(users, samples)
    rows: list[str] = []
    guard = StoreGuard(store, read_timeout_s=60, write_timeout_s=60, probe_interval_s=60,
                       threads=2, investigation_timeout_s=600)

    times, subs = _timed([lambda u=u: investigation.entity_neighbourhood(
        guard, "User", u, hops=2, per_hop=50, hub_size=200) for u in drawn])
    sizes = [len(s.nodes) for s in subs]
    rows.append(_row(name, "neighbourhood, 2 hops", times,
                     f"{statistics.median(sizes):.0f} nodes median, {max(sizes)} max"))

    pairs = _linked_pairs(store, rng.sample(users, samples * 3), rng, samples, 200)
    times, found = _timed([lambda a=a, b=b: investigation.shortest_paths(
        guard, ("User", a), ("User", b), max_hops=4, limit=3, hub_size=200)
        for a, b in pairs])
    lengths = sorted({len(p[0].edges) for p in found if p})
    rows.append(_row(name, "path, linked pairs", times,
                     f"{sum(bool(p) for p in found)}/{len(pairs)} found, lengths {lengths}"))

    randoms = [tuple(rng.sample(users, 2)) for _ in range(samples)]
    times, found = _timed([lambda a=a, b=b: investigation.shortest_paths(
        guard, ("User", a), ("User", b), max_hops=4, limit=3, hub_size=200)
        for a, b in randoms])
    rows.append(_row(name, "path, random pairs", times,
                     f"{sum(bool(p) for p in found)}/{len(randoms)} found"))

    if not rings:
        guard.close()
        return rows
    t0 = time.perf_counter()
    done = refresh_rings(store, hub_size=100, min_size=3, seed=0)
    total = time.perf_counter() - t0
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in done.seconds.items())
    rows.append(f"| {name} | rings refresh, whole graph | {total:.1f} s | | | {done.rings:,} "
                f"rings, {done.members:,} members ({steps}) |")

    times, _ = _timed([lambda: investigation.ranked_rings(guard, limit=50, min_size=1)]
                      * samples)
    rows.append(_row(name, "ring list (top 50)", times, ""))
    top = ranked_rings(store, limit=200)
    picks = [rng.choice(top).ring_id for _ in range(samples)]
    times, views = _timed([lambda r=r: investigation.ring_view(guard, r, max_nodes=300)
                           for r in picks])
    sizes = [len(v.subgraph.nodes) if v.subgraph else 0 for v in views]
    rows.append(_row(name, "ring view (top 200)", times,
                     f"{statistics.median(sizes):.0f} nodes median, {max(sizes)} max"))
    largest = max(ranked_rings(store, limit=100_000), key=lambda r: r.size)
    times, views = _timed([lambda: investigation.ring_view(guard, largest.ring_id,
                                                           max_nodes=300)] * 10, warm=1)
    rows.append(_row(name, f"ring view, largest ({largest.size:,} members)", times,
                     f"{len(views[0].subgraph.nodes) if views[0].subgraph else 0} nodes drawn"))
    guard.close()
    return rows


def _row(store: str, what: str, times: list[float], note: str) -> str:
    p50, p99, worst = _quantiles(times)
    return f"| {store} | {what} | {p50:.1f} ms | {p99:.1f} ms | {worst:.1f} ms | {note} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", default="ladybug,neo4j")
    parser.add_argument("--ladybug", type=Path, default=ROOT / ".cache/bench-lbug/graph.lbug")
    parser.add_argument("--neo4j-uri", default="bolt://127.0.0.1:7693")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-rings", action="store_true",
                        help="time questions 1-3 only: no ring detection (it writes the store)")
    args = parser.parse_args()
    rows: list[str] = []
    for name in args.stores.split(","):
        if name == "ladybug":
            store: GraphStore = LadybugStore(args.ladybug)
        elif name == "neo4j":
            store = Neo4jStore.from_uri(args.neo4j_uri, auth=(
                "neo4j", os.environ.get("NEO4J_PASSWORD", "riskgraph-dev-pw")))
        else:
            raise SystemExit(f"--stores: unknown store {name!r}")
        with store:
            store.apply_schema()
            rows += bench_store(name, store, args.samples, args.seed, rings=not args.no_rings)
    lines = [
        f"### Investigator's graph questions ({today()}, `bench/bench_investigate.py "
        f"--samples {args.samples}{' --no-rings' if args.no_rings else ''}`)", "",
        f"Machine: {machine()}.", "",
        "| store | question | p50 | p99 | max | answers |",
        "|---|---|---|---|---|---|", *rows, ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
