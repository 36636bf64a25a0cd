"""Benchmark: bulk-load a simulated world (default 100k users, seed 1) into LadybugDB and into
Neo4j through `graph.loader.load_world`; entities/s, relationships/s, wall time, peak memory,
and where the CPU went (this process vs the Neo4j server), which says what bounds the rate.

    python bench/bench_load.py --backends ladybug neo4j \
        --neo4j-uri bolt://127.0.0.1:7687          # or RISKGRAPH_NEO4J_URI

The Neo4j database is emptied first: point it at a server of its own (scripts/neo4j.sh with
NEO4J_HOME_DIR / NEO4J_BOLT_PORT), never one that tests or people share. Prints one Markdown row
per backend for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from machine_info import machine, peak_rss_gib, today

from graph import GraphStore, Pseudonymiser
from graph.ladybug_store import LadybugStore
from graph.loader import clear_checkpoints, load_world
from graph.neo4j_store import Neo4jStore
from simulator import WorldConfig, simulate_world, write_world

HEADER = ("| date | machine | store | nodes | relationships | labels | wall s | entities/s "
          "(node phase) | relationships/s (edge phase) | client CPU | server CPU | peak RSS "
          "client / server GiB |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


class _Sampler(threading.Thread):
    """Samples the resident memory of a process (the Neo4j server) every half second."""

    def __init__(self, proc: psutil.Process | None) -> None:
        super().__init__(daemon=True)
        self.proc, self.peak, self._stop = proc, 0, threading.Event()

    def run(self) -> None:
        while self.proc is not None and not self._stop.wait(0.5):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> None:
        self._stop.set()


def _server_process(port: int) -> psutil.Process | None:
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "CommunityEntryPoint" in cmd:
            try:
                if any(c.laddr.port == port and c.status == psutil.CONN_LISTEN
                       for c in proc.net_connections()):
                    return proc
            except psutil.Error:
                continue
    return None


def _cpu(proc: psutil.Process | None) -> float:
    if proc is None:
        return float("nan")
    t = proc.cpu_times()
    return float(t.user + t.system)


def run(store: GraphStore, world: Path, server: psutil.Process | None, name: str,
        chunk_rows: int, workers: int) -> dict[str, Any]:
    pseudonymiser = Pseudonymiser(b"bench-load-secret-0123456789")
    me = psutil.Process()
    sampler = _Sampler(server)
    sampler.start()
    cpu_me, cpu_server = _cpu(me), _cpu(server)
    report = load_world(store, world, pseudonymiser, chunk_rows=chunk_rows, workers=workers,
                        target=f"bench:{name}:{time.time_ns()}", progress=True)
    cpu_me, cpu_server = _cpu(me) - cpu_me, _cpu(server) - cpu_server
    sampler.stop()
    counts = store.counts()
    return {"report": report, "counts": counts, "cpu_client": cpu_me, "cpu_server": cpu_server,
            "rss_server": sampler.peak / 2**30}


def row(name: str, r: dict[str, Any]) -> str:
    rep = r["report"]
    node_s, edge_s = rep.seconds_of("node"), rep.seconds_of("edge")
    server = (f"{r['cpu_server'] / rep.seconds:.2f} cores" if r["cpu_server"] == r["cpu_server"]
              else "in process")
    rss_server = f"{r['rss_server']:.2f}" if r["rss_server"] else "-"
    return (f"| {today()} | {machine()} | {name} | {rep.nodes:,} | {rep.edges:,} | "
            f"{rep.labels:,} | {rep.seconds:.0f} | {rep.nodes / node_s:,.0f} | "
            f"{rep.edges / edge_s:,.0f} | {r['cpu_client'] / rep.seconds:.2f} cores | {server} | "
            f"{peak_rss_gib():.2f} / {rss_server} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--world", type=Path, default=Path("data/worlds/100k-s1"),
                    help="world directory; simulated there first if missing")
    ap.add_argument("--backends", nargs="+", default=["ladybug", "neo4j"],
                    choices=["ladybug", "neo4j"])
    ap.add_argument("--neo4j-uri", default=os.environ.get("RISKGRAPH_NEO4J_URI",
                                                          "bolt://127.0.0.1:7687"))
    ap.add_argument("--neo4j-password", default=os.environ.get("NEO4J_PASSWORD",
                                                               "riskgraph-dev-pw"))
    ap.add_argument("--batch-size", type=int, default=5000, help="rows per write transaction")
    ap.add_argument("--ladybug-buffer-pool-mib", type=int, default=0,
                    help="LadybugDB page cache; 0 (default) lets it take 80 %% of RAM")
    ap.add_argument("--chunk-rows", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=1, help="concurrent writers per chunk")
    args = ap.parse_args()

    if not (args.world / "world.json").exists():
        print(f"simulating {args.users:,} users into {args.world} ...", file=sys.stderr)
        write_world(simulate_world(WorldConfig(users=args.users, seed=args.seed)), args.world)
    results: list[str] = []
    for name in args.backends:
        if name == "ladybug":
            tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
            store: GraphStore = LadybugStore(
                tmp / "graph.lbug", batch_size=args.batch_size,
                buffer_pool_bytes=args.ladybug_buffer_pool_mib * 2**20)
            server = None
        else:
            neo = Neo4jStore.from_uri(args.neo4j_uri, auth=("neo4j", args.neo4j_password),
                                      batch_size=args.batch_size)
            neo.apply_schema()
            print(f"emptying {args.neo4j_uri} ...", file=sys.stderr)
            neo.clear()
            store = neo
            server = _server_process(int(args.neo4j_uri.rsplit(":", 1)[1]))
        with store:
            r = run(store, args.world, server, name, args.chunk_rows, args.workers)
        clear_checkpoints(args.world)
        rep = r["report"]
        print(f"{name}: {rep.seconds:.1f} s; per target (s): "
              + ", ".join(f"{k} {v:.1f}" for k, v in rep.seconds_by_target.items()),
              file=sys.stderr)
        label = f"{name}, {args.workers} writer{'s' if args.workers > 1 else ''}"
        if name == "ladybug":
            pool = args.ladybug_buffer_pool_mib
            label += f", {pool} MiB pool" if pool else ", default pool"
        results.append(row(label, r))
    print(HEADER)
    print("\n".join(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
