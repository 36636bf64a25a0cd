"""Benchmark: batch rescoring of every user and merchant; time, rate and peak memory per stage,
and each stage's floor (the least it must do over what this machine measurably does).

Two ways in:

    # end to end through a store (the code `riskgraph rescore` runs): export, features,
    # inference, write-back, report
    python bench/bench_rescore.py --data-dir DIR [--device cpu|cuda]
    # a world's files instead of a store's export (a world too large to load and export here),
    # write-back into a scratch LadybugDB store holding the scored nodes' ids
    python bench/bench_rescore.py --world /data/w1m --models DIR [--device cpu|cuda]

``--data-dir`` is a RISKGRAPH_DATA_DIR: ``graph.lbug`` and ``models/``. Prints the stages as they
finish, then Markdown rows for docs/BENCHMARKS.md; ``--out DIR`` also writes them to
``DIR/rescore-benchmark.md`` (scripts/gpu_check.sh passes ``$OUT``).

Floors: memory traffic over the copy bandwidth measured here (``bench/kernel_world.py``), and
for inference the larger of that and its dense multiply-adds over the float32 matrix-product
rate measured here on the same shapes (a roofline's two sides).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernel_world import copy_bandwidth  # noqa: E402
from machine_info import machine, peak_rss_gib, today  # noqa: E402

from gnn import LendingGraph, ModelRegistry  # noqa: E402
from gnn.full_graph_inference import PREFETCHED, FullGraphInference  # noqa: E402
from gnn.rescoring import SCORED_TYPES, rescore_store, write_chunk  # noqa: E402


def matmul_rate(device: torch.device, rows: int = 262144, width: int = 64,
                repeats: int = 7) -> float:
    """float32 FLOP/s of ``[rows, width] @ [width, width]``, the product inference is made of."""
    a = torch.randn(rows, width, device=device)
    b = torch.randn(width, width, device=device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        (a @ b).relu_()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return 2 * rows * width * width / float(np.median(times))


def graph_bytes(graph: LendingGraph) -> int:
    """Bytes of the graph's edge arrays (child and time per edge, every adjacency): what an
    export must at least produce and the features at least read."""
    total = 0
    for adj in graph.relations.values():
        total += adj.num_edges * 16
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data-dir", type=Path, help="a RISKGRAPH_DATA_DIR with graph.lbug")
    src.add_argument("--world", type=Path, help="a world directory (riskgraph simulate)")
    src.add_argument("--simulate-users", type=int, default=None,
                     help="simulate a world of this many users first (a machine with no "
                     "world, the GPU check)")
    ap.add_argument("--models", type=Path, default=None,
                    help="model registry (--world); without it a 3-member model of the "
                    "production shape is trained for a few epochs on a 3,000-user world")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--chunk-size", type=int, default=16384)
    ap.add_argument("--max-edges", type=int, default=262144)
    ap.add_argument("--no-write", action="store_true", help="--world: skip the write-back")
    ap.add_argument("--out", type=Path, default=None, help="write the rows here too")
    ap.add_argument("--note", default="", help="a note for the table (load, other jobs)")
    args = ap.parse_args()
    device = torch.device(args.device)
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s, peak {peak_rss_gib():.2f} GiB] {msg}",
              file=sys.stderr, flush=True)

    bw = copy_bandwidth(np, 1 << 28)
    mm = matmul_rate(device)
    log(f"copy bandwidth {bw / 1e9:.1f} GB/s, matmul {mm / 1e9:.1f} GFLOP/s on {device}")
    seconds: dict[str, float] = {}
    peaks: dict[str, float] = {}
    nodes: dict[str, int] = {}
    inf_bytes = inf_flops = edges = 0
    n_edges = 0
    if args.data_dir is not None:
        from graph.ladybug_store import LadybugStore

        pipeline = ModelRegistry(args.data_dir / "models").load()
        with LadybugStore(args.data_dir / "graph.lbug") as store:
            stamps: dict[str, Any] = {}
            report = rescore_store(store, pipeline, device=device, chunk_size=args.chunk_size,
                                   max_edges=args.max_edges, run_dir=args.data_dir / "rescore",
                                   log=log, on_progress=lambda s, d, t: stamps.update(
                                       {s: (d, t)}))
        seconds = dict(report.seconds)
        nodes = dict(report.scored)
        peaks["run"] = report.peak_rss_mib / 1024
        source = f"store {args.data_dir / 'graph.lbug'}"
        log(f"report {report.files.get('markdown')}")
    else:
        pipeline = (ModelRegistry(args.models).load() if args.models is not None
                    else _quick_model(log))
        world = args.world
        if world is None:
            from simulator import WorldConfig, simulate_world, write_world

            world = Path(tempfile.mkdtemp(prefix="bench-rescore-world-"))
            write_world(simulate_world(WorldConfig(users=args.simulate_users, seed=1)), world)
            log(f"simulated {args.simulate_users} users into {world}")
        import psutil

        rss0 = psutil.Process().memory_info().rss
        t0 = time.perf_counter()
        graph = LendingGraph.from_world(world)
        seconds["export"] = time.perf_counter() - t0
        peaks["export"] = peak_rss_gib()
        peaks["graph held (RSS after the build - before)"] = (
            psutil.Process().memory_info().rss - rss0) / 2**30
        if args.world is None:
            import shutil

            shutil.rmtree(world, ignore_errors=True)
        log(f"graph {graph!r} from the world's files in {seconds['export']:.1f}s")
        n_edges = graph_bytes(graph) // 16
        pipeline.use_kernels(device)
        full = FullGraphInference(pipeline, graph, device=device, chunk_size=args.chunk_size,
                                  max_edges=args.max_edges)
        scores = {}
        for label in SCORED_TYPES:
            scores[label] = full.score(label)
            nodes[label] = graph.num_nodes(label)
            full.release(label)
            log(f"{label}: {nodes[label]} scored; so far {full.times.seconds}")
        full.release()
        seconds.update(full.times.seconds)
        seconds[PREFETCHED] = full.times.prefetched
        peaks["features + inference"] = peak_rss_gib()
        inf_bytes, inf_flops, edges = full.times.bytes, full.times.flops, full.times.edges
        if not args.no_write:
            seconds["write"] = _write_back(graph, scores, args.chunk_size, log)
            peaks["write"] = peak_rss_gib()
        source = f"world {world} (files, not a store's export)"
    total_nodes = sum(nodes.values())
    rows = [f"| {today()} | {machine()} | {device} | {source} | "
            f"{', '.join(f'{k} {v:,}' for k, v in nodes.items())} | "
            + " | ".join(f"{seconds.get(k, float('nan')):.1f}" for k in
                         ("export", "features", "inference", "write"))
            + f" | {sum(v for k, v in seconds.items() if k not in ('report', PREFETCHED)):.1f} | "
            f"{total_nodes / max(seconds.get('features', 0) + seconds.get('inference', 0), 1e-9):,.0f}"
            f" | {peak_rss_gib():.2f} | {args.note} |"]
    lines = ["| date | machine | device | source | nodes | export s | features s | "
             "inference s | write s | total s | nodes/s (features + inference) | "
             "peak RSS GiB | note |", "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
             *rows, ""]
    if inf_bytes:
        floor_bw = inf_bytes / bw
        floor_mm = inf_flops / mm
        floor = max(floor_bw, floor_mm)
        lines += [f"- inference: {edges:,} edge states, {inf_bytes / 1e9:.2f} GB least traffic "
                  f"({floor_bw:.2f} s at {bw / 1e9:.1f} GB/s), {inf_flops / 1e9:.1f} GFLOP "
                  f"({floor_mm:.2f} s at {mm / 1e9:.1f} GFLOP/s measured); floor "
                  f"{floor:.2f} s, time / floor **{seconds['inference'] / floor:.1f}x**"]
        gb = n_edges * 16
        lines += [f"- export/features: {n_edges:,} edges, {gb / 1e9:.2f} GB of edge arrays "
                  f"({gb / bw:.2f} s at the copy bandwidth): export "
                  f"{seconds['export'] / (gb / bw):.0f}x, features "
                  f"{seconds['features'] / (gb / bw):.0f}x that floor"]
    lines += [f"- peak RSS by stage (GiB): {', '.join(f'{k} {v:.2f}' for k, v in peaks.items())}",
              f"- stage seconds: {', '.join(f'{k} {v:.2f}' for k, v in seconds.items())}"]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "rescore-benchmark.md").write_text(text + "\n")
    return 0


def _quick_model(log: Any) -> Any:
    """A pipeline of the production shape (3 members, 64 hidden, 2 layers) trained for two
    epochs on a 3,000-user world: its weights do not matter to the timings."""
    from gnn import RiskTrainConfig, TimeSplit, train_risk_model
    from simulator import WorldConfig, simulate_world, write_world

    with tempfile.TemporaryDirectory() as tmp:
        write_world(simulate_world(WorldConfig(users=3000, seed=1, fraud_rate=0.05)), Path(tmp))
        graph = LendingGraph.from_world(tmp)
    result = train_risk_model(graph, TimeSplit.from_fractions(graph), train_config=(
        RiskTrainConfig(epochs=2, user_seeds=1000, seed=1, members=3)), log=lambda s: None)
    log("trained a 3-member model on a 3,000-user world")
    return result.pipeline


def _write_back(graph: LendingGraph, scores: dict[str, Any], chunk_size: int,
                log: Any) -> float:
    """The write-back of every score, chunk by chunk, into a scratch LadybugDB store whose
    User and Merchant nodes (ids only) were bulk-loaded first (not timed)."""
    import pyarrow as pa

    from graph.ladybug_store import LadybugStore

    scratch = Path(tempfile.mkdtemp(prefix="bench-rescore-", dir="/data" if Path(
        "/data").is_dir() else None))
    with LadybugStore(scratch / "graph.lbug") as store:
        store.apply_schema()
        store.bulk_load([(label, pa.table({"id": pa.array(graph.ids[label].tolist())}))
                         for label in SCORED_TYPES], [])
        log("scratch store holds the ids; writing back")
        t0 = time.perf_counter()
        for label in SCORED_TYPES:
            ids = graph.ids[label]
            s = scores[label]
            for lo in range(0, ids.shape[0], chunk_size):
                hi = min(lo + chunk_size, ids.shape[0])
                write_chunk(store, label, ids[lo:hi].tolist(), s.fraud[lo:hi], s.pd[lo:hi],
                            scored_at=0, model_version="bench",
                            record={"id": f"bench/{label}/{lo}", "chunk": lo // chunk_size})
            log(f"{label} written")
        took = time.perf_counter() - t0
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    return took


if __name__ == "__main__":
    raise SystemExit(main())
