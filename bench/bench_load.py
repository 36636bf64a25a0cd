"""Benchmark: bulk-load a simulated world (default 100k users, seed 1) into LadybugDB and into
Neo4j through `graph.loader.load_world`; entities/s, relationships/s, wall time, peak memory,
and where the CPU went (this process vs the Neo4j server), which says what bounds the rate.

    python bench/bench_load.py --backends ladybug neo4j \
        --neo4j-uri bolt://127.0.0.1:7687          # or RISKGRAPH_NEO4J_URI

The Neo4j database is emptied first: point it at a server of its own (scripts/neo4j.sh with
NEO4J_HOME_DIR / NEO4J_BOLT_PORT), never one that tests or people share. Prints one Markdown row
per backend for docs/BENCHMARKS.md.

The embedded store's two paths side by side, each run in a fresh process and a fresh store, the
median of three (the world is only read: its files are linked into a scratch directory, where
the load's checkpoint goes):

    python bench/bench_load.py --backends ladybug --path upsert bulk --repeat 3 \
        --world /data/w100k --ladybug-buffer-pool-mib 4096

``--path auto`` (the default) is what `riskgraph load` does: the bulk path into an empty store
that has one (LadybugDB's ``COPY FROM``), else chunk by chunk.

Neo4j's bulk path, the offline ``neo4j-admin database import`` that `riskgraph load
--neo4j-import` runs, into the server that ``scripts/neo4j.sh`` runs from HOME (it is emptied,
stopped, replaced and started again: never point it at a shared server):

    python bench/bench_load.py --backends neo4j --neo4j-import HOME \
        --neo4j-uri bolt://127.0.0.1:PORT --world /data/w100k --import-threads 2

prints one row: wall, relationships/s over the wall, each phase (building the rows, fold,
checks, CSV files, stop, import, start, schema), CPU and peak memory of the load process and of
neo4j-admin.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

# NOTE: this checkout's packages, whatever `pip install -e` points at (the runs in child
# processes import them too).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine_info import machine, peak_rss_gib, today  # noqa: E402

from graph import GraphStore, Pseudonymiser
from graph.ladybug_store import LadybugStore
from graph.loader import clear_checkpoints, load_world
from graph.neo4j_import import Neo4jImport, Neo4jScript
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


PATH_HEADER = ("| date | machine | store | path | runs | nodes | relationships | wall s | "
               "nodes/s (node phase) | relationships/s (edge phase) | relationships/s (wall) | "
               "bulk steps s: fold / check / files / COPY / commit | load process CPU | "
               "peak RSS GiB |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
_BULK_PATH = {"auto": None, "upsert": False, "bulk": True}


def run(store: GraphStore, world: Path, server: psutil.Process | None, name: str,
        chunk_rows: int, workers: int, bulk: bool | None = None) -> dict[str, Any]:
    pseudonymiser = Pseudonymiser(b"bench-load-secret-0123456789")
    me = psutil.Process()
    sampler = _Sampler(server)
    sampler.start()
    cpu_me, cpu_server = _cpu(me), _cpu(server)
    report = load_world(store, world, pseudonymiser, chunk_rows=chunk_rows, workers=workers,
                        target=f"bench:{name}:{time.time_ns()}", progress=True, bulk=bulk)
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


def summary(r: dict[str, Any]) -> dict[str, Any]:
    """One run's figures as plain numbers (what a child process hands back)."""
    rep = r["report"]
    steps = rep.bulk_seconds
    copies = sum(v for k, v in steps.items() if k not in ("fold", "check", "files", "commit"))
    return {
        "bulk": rep.bulk, "nodes": rep.nodes, "edges": rep.edges, "labels": rep.labels,
        "wall": rep.seconds, "node_rate": rep.nodes / rep.seconds_of("node"),
        "edge_rate": rep.edges / rep.seconds_of("edge"), "wall_rate": rep.edges / rep.seconds,
        "steps": [steps.get("fold", 0.0), steps.get("check", 0.0), steps.get("files", 0.0),
                  copies, steps.get("commit", 0.0)],
        "cpu": r["cpu_client"] / rep.seconds, "rss": peak_rss_gib(),
        "counts": r["counts"],
    }


def path_row(name: str, path: str, runs: list[dict[str, Any]]) -> str:
    """The median of ``runs`` (each figure's own median) as one Markdown row."""
    def med(key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    steps = ([statistics.median(r["steps"][i] for r in runs) for i in range(5)]
             if runs[0]["bulk"] else None)
    spread = f" ({min(r['wall'] for r in runs):.1f}–{max(r['wall'] for r in runs):.1f})"
    took = " (bulk)" if runs[0]["bulk"] else " (upsert)"
    return (f"| {today()} | {machine()} | {name} | {path}{took if path == 'auto' else ''} "
            f"| {len(runs)} | {runs[0]['nodes']:,} | {runs[0]['edges']:,} | {med('wall'):.1f}"
            f"{spread if len(runs) > 1 else ''} | {med('node_rate'):,.0f} | "
            f"{med('edge_rate'):,.0f} | {med('wall_rate'):,.0f} | "
            + (" / ".join(f"{x:.1f}" for x in steps) if steps else "-")
            + f" | {med('cpu'):.2f} cores | {med('rss'):.2f} |")


def _scratch_world(world: Path) -> Path:
    """A directory of links to ``world``'s files: the load's checkpoint goes there, never into
    the world (which may be read-only, e.g. /data)."""
    scratch = Path(tempfile.mkdtemp(prefix="bulk-world-"))
    for file in world.iterdir():
        if file.is_file() and not file.name.startswith("."):
            (scratch / file.name).symlink_to(file.resolve())
    return scratch


def _compare_paths(args: argparse.Namespace) -> int:
    """Each (backend, path) ``--repeat`` times, each run a child process of its own."""
    rows: list[str] = []
    for name in args.backends:
        for path in args.path:
            runs: list[dict[str, Any]] = []
            for i in range(args.repeat):
                with tempfile.NamedTemporaryFile(suffix=".json") as out:
                    cmd = [sys.executable, __file__, "--backends", name, "--path", path,
                           "--repeat", "1", "--world", str(args.world), "--json-out", out.name,
                           "--chunk-rows", str(args.chunk_rows), "--workers", str(args.workers),
                           "--batch-size", str(args.batch_size), "--ladybug-buffer-pool-mib",
                           str(args.ladybug_buffer_pool_mib), "--neo4j-uri", args.neo4j_uri]
                    subprocess.run(cmd, check=True)
                    runs.append(json.loads(Path(out.name).read_text()))
                print(f"{name} {path} run {i + 1}: {runs[-1]['wall']:.1f} s, "
                      f"{runs[-1]['wall_rate']:,.0f} relationships/s over the wall, peak RSS "
                      f"{runs[-1]['rss']:.2f} GiB", file=sys.stderr)
            if any(r["counts"] != runs[0]["counts"] for r in runs):
                raise SystemExit(f"{name} {path}: the runs stored different graphs")
            rows.append(path_row(name, path, runs))
    print(PATH_HEADER)
    print("\n".join(rows))
    return 0


IMPORT_HEADER = ("| date | machine | store | path | nodes | relationships | wall s | "
                 "relationships/s (wall) | build rows s | fold / check s | CSV files s | "
                 "stop s | import s | start s | schema s | load process CPU | neo4j-admin CPU | "
                 "peak RSS load process / neo4j-admin GiB |\n"
                 "|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
                 "---:|---:|")


def _neo4j_import(args: argparse.Namespace, world: Path) -> str:
    """One load through Neo4j's offline import into the emptied server; its Markdown row."""
    port = int(args.neo4j_uri.rsplit(":", 1)[1])
    server = Neo4jScript(Path(__file__).resolve().parents[1] / "scripts" / "neo4j.sh",
                         home=args.neo4j_import, bolt_port=port, password=args.neo4j_password,
                         environment={"PYTHON": sys.executable})
    store = Neo4jStore.from_uri(args.neo4j_uri, auth=("neo4j", args.neo4j_password),
                                bulk_import=Neo4jImport(server, threads=args.import_threads))
    with store:
        store.apply_schema()
        print(f"emptying {args.neo4j_uri} ...", file=sys.stderr)
        store.clear()
        me = psutil.Process()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_me = _cpu(me)
        report = load_world(store, world, Pseudonymiser(b"bench-load-secret-0123456789"),
                            chunk_rows=args.chunk_rows, target=f"bench:import:{time.time_ns()}",
                            progress=True, bulk=True)
        cpu_me = _cpu(me) - cpu_me
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        counts = store.counts()
    clear_checkpoints(world)
    steps = report.bulk_seconds
    build = sum(report.seconds_by_target.values())
    cpu_admin = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    print(f"neo4j import: {report.seconds:.1f} s; steps (s): build {build:.1f}, "
          + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()) + f"; counts {counts}",
          file=sys.stderr)
    return (f"| {today()} | {machine()} | Neo4j | import ({args.import_threads or 'all'} "
            f"threads) | {report.nodes:,} | {report.edges:,} | {report.seconds:.1f} | "
            f"{report.edges / report.seconds:,.0f} | {build:.1f} | "
            f"{steps['fold']:.1f} / {steps['check']:.1f} | {steps['files']:.1f} | "
            f"{steps['stop']:.1f} | {steps['import']:.1f} | {steps['start']:.1f} | "
            f"{steps['schema']:.1f} | {cpu_me / report.seconds:.2f} cores | "
            f"{cpu_admin / steps['import']:.2f} cores (over the import) | "
            f"{peak_rss_gib():.2f} / {after.ru_maxrss / 2**20:.2f} |")


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
    ap.add_argument("--path", nargs="+", default=["auto"], choices=list(_BULK_PATH),
                    help="load path(s): auto (what `riskgraph load` does), upsert (chunk by "
                    "chunk), bulk (the store's bulk path; the store starts empty)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="with more than 1: each backend and path this many times, each run in "
                    "a fresh process and store; prints the median row")
    ap.add_argument("--neo4j-import", type=Path, default=None, metavar="HOME",
                    help="Neo4j through its offline import (`riskgraph load --neo4j-import`): "
                    "the home of the server scripts/neo4j.sh runs on --neo4j-uri's port")
    ap.add_argument("--import-threads", type=int, default=None,
                    help="neo4j-admin's --threads (default: the cores)")
    ap.add_argument("--json-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if not (args.world / "world.json").exists():
        print(f"simulating {args.users:,} users into {args.world} ...", file=sys.stderr)
        write_world(simulate_world(WorldConfig(users=args.users, seed=args.seed)), args.world)
    if args.repeat > 1 or len(args.path) > 1:
        return _compare_paths(args)
    world = _scratch_world(args.world)
    if args.neo4j_import is not None:
        if args.backends != ["neo4j"]:
            raise SystemExit("--neo4j-import loads Neo4j only: give --backends neo4j")
        try:
            result = _neo4j_import(args, world)
        finally:
            shutil.rmtree(world, ignore_errors=True)
        print(IMPORT_HEADER)
        print(result)
        return 0
    results: list[str] = []
    for name in args.backends:
        if name == "ladybug":
            tmp = Path(tempfile.mkdtemp(prefix="bulk-load-"))
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
            r = run(store, world, server, name, args.chunk_rows, args.workers,
                    _BULK_PATH[args.path[0]])
        clear_checkpoints(world)
        if args.json_out is not None:
            args.json_out.write_text(json.dumps(summary(r)))
            if name == "ladybug":
                shutil.rmtree(tmp, ignore_errors=True)
            continue
        rep = r["report"]
        print(f"{name}: {rep.seconds:.1f} s; per target (s): "
              + ", ".join(f"{k} {v:.1f}" for k, v in rep.seconds_by_target.items()),
              file=sys.stderr)
        label = f"{name}, {args.workers} writer{'s' if args.workers > 1 else ''}"
        if name == "ladybug":
            pool = args.ladybug_buffer_pool_mib
            label += f", {pool} MiB pool" if pool else ", default pool"
        results.append(row(label, r))
    shutil.rmtree(world, ignore_errors=True)
    if args.json_out is not None:
        return 0
    print(HEADER)
    print("\n".join(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
