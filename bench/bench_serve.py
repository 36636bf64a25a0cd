"""Benchmark: `riskgraph serve` under load on loopback, and the in-process scoring time.

    python bench/bench_serve.py --world /path/to/world100k          # embedded store
    python bench/bench_serve.py --world ... --neo4j-uri bolt://127.0.0.1:7697

1. The world (a directory from `riskgraph simulate`) is loaded into the store unless the store
   already holds it (`--skip-load`).
2. `riskgraph serve` starts in its own process; the load generator runs in another process:
   open loop (each request has a scheduled send time; latency counts from that time, so a slow
   server cannot hide its queue), persistent HTTP/1.1 connections, fresh application ids (new
   verdicts, not idempotent replays) built from the world's applications: its users, devices,
   IPs, places, merchants and amounts, time = now.
3. Phases: `--rate` requests/s for `--sustain` s, then a ramp of `--step-seconds` s steps
   (`--ramp`) that stops at the first step whose p99 passes `--p99-limit-ms` or that has an
   error. Per phase: p50/p95/p99, throughput, errors, CPU of the server, of a local
   Neo4j server (found by its port) and of the generator.
4. In-process scoring (no HTTP, after the server has stopped, since the embedded store admits
   one process): `ScoringService.score` (validation to stored claim) and the scorer alone.

Prints a Markdown section and, with `--doc`, writes it between the serving markers of
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pyarrow.parquet as pq
from machine_info import machine, today

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-0123456789abcdef"
ADMIN_KEY = "rgk_benchadmin_" + "B" * 43
MARK_START = "<!-- serving:start -->"
MARK_END = "<!-- serving:end -->"
MAX_AMOUNT = {"bnpl": 50_000.0, "cash_loan": 200_000.0, "merchant_loan": 1_000_000.0,
              "sme_owner_loan": 1_000_000.0}


# -- requests ------------------------------------------------------------------------------------
def application_bodies(world: Path, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` application bodies drawn from the world's applications (ids made fresh later)."""
    table = pq.read_table(world / "applications.parquet").to_pylist()
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(table), size=min(n, len(table)), replace=False)
    bodies = []
    for i in picks:
        row = table[int(i)]
        product = row["product"]
        if product in ("bnpl", "merchant_loan") and not row["merchant_id"]:
            continue
        body = {
            "product": product, "amount": float(min(row["amount"], MAX_AMOUNT[product])),
            "currency": "CNY", "user_id": row["user_id"], "device_id": row["device_serial"],
            "ip": row["ip"], "geo": {"lat": row["lat"], "lon": row["lon"]},
        }
        if row["merchant_id"]:
            body["merchant_id"] = row["merchant_id"]
        if row.get("term_months"):
            body["term_months"] = row["term_months"]
        bodies.append(body)
    return bodies


# -- the load generator (its own process) --------------------------------------------------------
class _Connection:
    """One persistent HTTP/1.1 connection: write a request, read one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def post(self, path: str, body: bytes, headers: bytes) -> tuple[int, bytes]:
        self.writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\n" + headers
                          + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


async def _run_phases(port: int, key: str, bodies: list[dict[str, Any]],
                      phases: Sequence[tuple[str, float, float]], p99_limit_ms: float,
                      run: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    headers = (b"Host: 127.0.0.1\r\nContent-Type: application/json\r\nX-API-Key: "
               + key.encode() + b"\r\n")
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await _Connection.open("127.0.0.1", port))
    me = psutil.Process()
    counter = 0
    for name, rate, seconds in phases:
        n = int(rate * seconds)
        results: list[tuple[float, int, str, bool, float, float, float]] = []

        async def one(at: float, body: dict[str, Any]) -> None:
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            conn = await pool.get()
            # NOTE: how late the request leaves against its schedule: the generator's own lag
            # (or no free connection), counted in the latency all the same.
            late = time.perf_counter() - at
            try:
                status, data = await conn.post("/v1/score", json.dumps(body).encode(), headers)
                pool.put_nowait(conn)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                status, data = 0, b"{}"
                pool.put_nowait(await _Connection.open("127.0.0.1", port))
            verdict = json.loads(data) if status == 200 else {}
            results.append((time.perf_counter() - at, status, verdict.get("decision", ""),
                            bool(verdict.get("degraded")), float(verdict.get("elapsed_ms", 0)),
                            at - start, late))

        # NOTE: every body is built before the schedule starts, and the first send is due
        # only after every task exists: with the schedule started first (0.2 s ahead of
        # building 6,000-9,000 bodies and tasks), the generator itself sent the first second's
        # requests up to ~0.4 s late, and those ~70 requests, counted from their scheduled
        # time, were most of a 60 s run's slowest 1 % (session 8, docs/BENCHMARKS.md).
        applied_at = datetime.now(UTC).isoformat()
        phase_bodies = []
        for i in range(n):
            body = dict(bodies[(counter + i) % len(bodies)])
            body["application_id"] = f"bench-{run}-{counter + i}"
            body["applied_at"] = applied_at
            phase_bodies.append(body)
        counter += n
        cpu0, t0 = me.cpu_times(), time.perf_counter()
        start = t0 + 0.5 + n * 20e-6
        started_at = time.time() + (start - time.perf_counter())
        tasks = [asyncio.create_task(one(start + i / rate, body))
                 for i, body in enumerate(phase_bodies)]
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
        cpu1 = me.cpu_times()
        lat = sorted(r[0] * 1000 for r in results)
        # NOTE: the verdict's own elapsed_ms: from validation to the stored claim, in the
        # service; the rest of a request's latency is HTTP, queues and scheduling.
        inside = sorted(r[4] for r in results if r[1] == 200) or [0.0]
        errors = sum(1 for r in results if r[1] != 200)
        summary = {
            "phase": name, "rate": rate, "seconds": seconds, "requests": n, "errors": errors,
            "throughput": round(sum(1 for r in results if r[1] == 200) / wall, 1),
            "p50_ms": round(lat[len(lat) // 2], 2), "p95_ms": round(lat[int(len(lat) * .95)], 2),
            "p99_ms": round(lat[int(len(lat) * .99)], 2), "max_ms": round(lat[-1], 2),
            "service_p50_ms": round(inside[len(inside) // 2], 2),
            "service_p99_ms": round(inside[int(len(inside) * .99)], 2),
            "degraded": sum(1 for r in results if r[3]),
            "decisions": {d: sum(1 for r in results if r[2] == d)
                          for d in ("approve", "review", "decline")},
            "send_late_p99_ms": round(sorted(r[6] for r in results)[int(n * .99)] * 1000, 2),
            "send_late_max_ms": round(max(r[6] for r in results) * 1000, 2),
            "generator_cpu_cores": round((cpu1.user + cpu1.system - cpu0.user - cpu0.system)
                                         / wall, 2),
            "wall_s": round(wall, 1),
            # the phase's window in Unix time, to line it up with the store's own logs
            "started_at": round(started_at, 3), "ended_at": round(started_at + wall, 3),
            # per request: scheduled send (s into the phase), latency and in-service ms
            "trace": sorted((round(r[5], 4), round(r[0] * 1000, 2), r[4]) for r in results),
        }
        out.put(summary)
        if name.startswith("ramp") and (summary["p99_ms"] > p99_limit_ms or errors):
            break
    out.put(None)


def _generator(port: int, key: str, bodies: list[dict[str, Any]],
               phases: Sequence[tuple[str, float, float]], p99_limit_ms: float, run: str,
               out: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_run_phases(port, key, bodies, phases, p99_limit_ms, run, out))


# -- the server ----------------------------------------------------------------------------------
def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - the process owns it until it exits
    proc = subprocess.Popen([sys.executable, "-m", "serving.cli", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("serve did not become ready")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model_batches(port: int) -> tuple[float, float, float, float]:
    """The champion's batches so far, from /metrics: how many, their applications, and the
    model's busy and CPU seconds."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"X-API-Key": ADMIN_KEY},
                     timeout=10).text
    got = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("slot") == "champion" and sample.name in (
                    "riskgraph_model_batch_applications_count",
                    "riskgraph_model_batch_applications_sum",
                    "riskgraph_model_busy_seconds_total", "riskgraph_model_cpu_seconds_total"):
                got[sample.name] = sample.value
    return (got.get("riskgraph_model_batch_applications_count", 0.0),
            got.get("riskgraph_model_batch_applications_sum", 0.0),
            got.get("riskgraph_model_busy_seconds_total", 0.0),
            got.get("riskgraph_model_cpu_seconds_total", 0.0))


def stage_times(metrics: str) -> dict[str, dict[str, float]]:
    """Mean and bucket-interpolated p50 / p99 (ms) of each scoring stage, over the run."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[str, list[tuple[float, float]]] = {}
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics):
        if family.name != "riskgraph_score_stage_duration_seconds":
            continue
        for sample in family.samples:
            stage = sample.labels["stage"]
            if sample.name.endswith("_bucket"):
                buckets.setdefault(stage, []).append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_sum"):
                sums[stage] = sample.value
    out = {}
    for stage, bs in buckets.items():
        bs.sort()
        total = bs[-1][1]

        def q(frac: float, bs: list[tuple[float, float]] = bs, total: float = total) -> float:
            lo_le, lo_n = 0.0, 0.0
            for le, n in bs:
                if n >= frac * total:
                    if le == float("inf"):
                        return lo_le * 1000
                    share = (frac * total - lo_n) / max(n - lo_n, 1e-9)
                    return (lo_le + share * (le - lo_le)) * 1000
                lo_le, lo_n = le, n
            return lo_le * 1000

        out[stage] = {"n": total, "mean_ms": round(sums.get(stage, 0) / max(total, 1) * 1000, 2),
                      "p50_ms": round(q(0.5), 1), "p99_ms": round(q(0.99), 1)}
    return out


def store_process(uri: str | None) -> psutil.Process | None:
    """The local process that listens on the Neo4j URI's port, if any (its CPU is measured
    beside the server's: on one machine the store competes for the same cores)."""
    if not uri:
        return None
    port = int(uri.rsplit(":", 1)[1].split("/")[0]) if uri.count(":") > 1 else 7687
    try:
        for c in psutil.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid:
                return psutil.Process(c.pid)
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        pass  # NOTE: another user's server, or a remote one: its CPU is not reported
    return None


def _cpu_s(proc: psutil.Process | None) -> float:
    if proc is None:
        return 0.0
    try:
        t = proc.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return t.user + t.system


def _server_cpu_s(server: psutil.Process) -> tuple[float, float]:
    """CPU seconds of the server process and of its child processes (the GNN scorer's)."""
    out = [0.0, 0.0]
    for i, p in enumerate([server, *server.children(recursive=True)]):
        out[min(i, 1)] += _cpu_s(p)
    return out[0], out[1]


# -- in process ----------------------------------------------------------------------------------
def in_process(env: dict[str, str], bodies: list[dict[str, Any]], n: int, run: str
               ) -> dict[str, Any]:
    """ScoringService.score and the scorer alone, no HTTP; p50 / p99 in ms."""
    os.environ.update(env)
    from serving.api import create_app
    from serving.graph_writes import to_facts
    from serving.schemas.application import ApplicationCreate
    from serving.scorers import load_live_graph, load_scorer
    from serving.settings import Settings
    from serving.stores import build_store

    settings = Settings()
    store = build_store(settings)
    t0 = time.perf_counter()
    live = load_live_graph(settings, store)
    load_s = time.perf_counter() - t0
    rss = psutil.Process().memory_info().rss / 2**30
    app = create_app(settings, store, load_scorer(settings, live, store), live_graph=live)
    runtime = app.state.runtime
    runtime.writer.start()
    apps = []
    for i in range(n):
        body = dict(bodies[i % len(bodies)])
        body["application_id"] = f"bench-inproc-{run}-{i}"
        body["applied_at"] = datetime.now(UTC).isoformat()
        apps.append(ApplicationCreate.model_validate(body))
    service_ms, scorer_ms = [], []
    for a in apps:
        t = time.perf_counter()
        runtime.scoring.score(a)
        service_ms.append((time.perf_counter() - t) * 1000)
    pseud = settings.pseudonymiser()
    facts = [to_facts(a, pseud) for a in apps]
    for f in facts:
        t = time.perf_counter()
        runtime.scorer.score(f, store)
        scorer_ms.append((time.perf_counter() - t) * 1000)
    runtime.writer.wait_drained(120)
    runtime.stop()
    store.close()

    def pct(v: list[float], q: float) -> float:
        return round(sorted(v)[int(len(v) * q)], 3)

    return {"n": n, "service_p50_ms": pct(service_ms, .5), "service_p99_ms": pct(service_ms, .99),
            "scorer_p50_ms": pct(scorer_ms, .5), "scorer_p99_ms": pct(scorer_ms, .99),
            "live_graph_load_s": round(load_s, 1), "rss_gib": round(rss, 2),
            "scorer": runtime.scorer.model_version}


# -- the report ----------------------------------------------------------------------------------
def markdown(meta: dict[str, Any], phases: list[dict[str, Any]], inproc: dict[str, Any]) -> str:
    lines = [
        f"### `riskgraph serve` on {meta['backend']}, {meta['world']}",
        "",
        f"- machine: {meta['machine']}, {meta['date']}; {meta['noise']}",
        f"- command: `{meta['command']}`",
        f"- store: {meta['store']}; scorer: {meta['scorer']}; server start to ready "
        f"{meta['ready_s']} s (in-memory graph loaded from the store), server RSS "
        f"{meta['server_rss_gib']} GiB; the store held {meta['verdicts_at_start']:,} verdicts "
        f"and {meta['applications_at_start']:,} applications at the start",
        "- latency from the scheduled send time (open loop, 64 keep-alive connections), "
        "fresh application ids (every request is a new verdict: scored, claimed in the store, "
        "written behind)",
        "",
        "| phase | offered req/s | s | throughput req/s | p50 ms | p95 ms | p99 ms | max ms | "
        "in-service p50 / p99 ms | errors | degraded | server CPU cores (of which GNN process) | "
        "store CPU cores | generator CPU cores | model batches: mean applications, busy share |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        lines.append(
            f"| {p['phase']} | {p['rate']:g} | {p['seconds']:g} | {p['throughput']} | "
            f"{p['p50_ms']} | {p['p95_ms']} | {p['p99_ms']} | {p['max_ms']} | "
            f"{p.get('service_p50_ms', '-')} / {p.get('service_p99_ms', '-')} | {p['errors']} | "
            f"{p['degraded']} | {p['server_cpu_cores']} ({p.get('gnn_process_cpu_cores', 0)}) | "
            f"{p.get('store_cpu_cores', '-')} | {p['generator_cpu_cores']} | "
            f"{p.get('model_batch_mean', '-')}, {p.get('model_busy_share', '-')} |")
    sustain = phases[0]
    ok = [p for p in phases if p["p99_ms"] <= meta["p99_limit_ms"] and not p["errors"]]
    best = max((p["rate"] for p in ok), default=None)
    lines += [
        "",
        f"- target p99 <= {meta['p99_limit_ms']:g} ms at {sustain['rate']:g} req/s with 0 "
        f"errors: **{'met' if sustain in ok else 'not met'}** (p99 {sustain['p99_ms']} ms, "
        f"{sustain['errors']} errors)",
        f"- highest offered rate with p99 <= {meta['p99_limit_ms']:g} ms and no error: "
        f"**{best if best is not None else 'none'} req/s**",
    ]
    if inproc:
        lines.append(
            f"- in process, no HTTP ({inproc['n']} verdicts, sequential): "
            f"`ScoringService.score` p50 {inproc['service_p50_ms']} ms / p99 "
            f"{inproc['service_p99_ms']} ms; the scorer alone p50 {inproc['scorer_p50_ms']} ms "
            f"/ p99 {inproc['scorer_p99_ms']} ms; in-memory graph loaded in "
            f"{inproc['live_graph_load_s']} s")
    lines.append("")
    return "\n".join(lines)


def write_doc(doc: Path, section: str) -> None:
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    block = f"{MARK_START}\n{section}\n{MARK_END}"
    if MARK_START in text:
        head, rest = text.split(MARK_START, 1)
        text = head + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Serving\n\n" + block + "\n"
    doc.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world", type=Path, required=True, help="world from `riskgraph simulate`")
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="RISKGRAPH_DATA_DIR for the embedded store and the spool")
    ap.add_argument("--neo4j-uri", default=None, help="benchmark Neo4j instead (own server!)")
    ap.add_argument("--skip-load", action="store_true", help="the store holds the world")
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--sustain", type=float, default=60.0)
    ap.add_argument("--ramp", default="150,200,300,400,600,800,1200",
                    help="comma-separated rates of the ramp's steps; '' for no ramp")
    ap.add_argument("--step-seconds", type=float, default=20.0)
    ap.add_argument("--p99-limit-ms", type=float, default=50.0)
    ap.add_argument("--in-process", type=int, default=2000, help="verdicts timed in process")
    ap.add_argument("--noise", default="machine shared with other engineers' jobs",
                    help="what else ran on the machine, for the report")
    ap.add_argument("--json", type=Path, default=None, help="write the raw results here")
    ap.add_argument("--doc", type=Path, default=None, help="docs/BENCHMARKS.md to update")
    ap.add_argument("--prefill", type=int, default=0,
                    help="only fill the store: send this many fresh applications at "
                    "--prefill-rate through the running service (scored and stored like any "
                    "other), wait until they are stored, stop; nothing is measured")
    ap.add_argument("--prefill-rate", type=float, default=120.0)
    ap.add_argument("--trace", type=Path, default=None,
                    help="write every request's send time, latency and service time (CSV)")
    args = ap.parse_args(argv)
    if any(float(r) <= 0 for r in args.ramp.split(",") if r.strip()):
        ap.error(f"--ramp: rates must be positive, got {args.ramp!r} ('' for no ramp)")

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="rg-bench-"))
    env = {**os.environ, "RISKGRAPH_DATA_DIR": str(data_dir),
           "RISKGRAPH_PSEUDONYM_SECRET": SECRET, "RISKGRAPH_ADMIN_API_KEY": ADMIN_KEY,
           "RISKGRAPH_RATE_LIMIT_PER_S": "100000", "RISKGRAPH_RATE_LIMIT_BURST": "100000",
           "RISKGRAPH_LIVE_GRAPH_REFRESH_S": "0"}
    if args.neo4j_uri:
        env["RISKGRAPH_NEO4J_URI"] = args.neo4j_uri
    else:
        env.pop("RISKGRAPH_NEO4J_URI", None)
    if not args.skip_load:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "serving.cli", "load", str(args.world),
                        "--quiet"], cwd=ROOT, env=env, check=True)
        print(f"loaded in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    # NOTE: each run adds its verdicts to the store, and the embedded store's checkpoints
    # grow with its verdict table: the figures belong to the store as it was.
    counts = json.loads(subprocess.run(
        [sys.executable, "-m", "serving.cli", "counts"], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True).stdout)
    # NOTE: the applicants depend on the store's verdict count, so that a run on a fresh store
    # is repeatable and the next run on the same store draws other applicants: with one seed
    # for every run, the same users applied again in each run (16 runs, ~16 applications
    # more for each of them), which a store growing in service does not see.
    bodies = application_bodies(args.world, 20_000, seed=7 + int(counts.get("Verdict") or 0))
    run = uuid.uuid4().hex[:8]
    port = free_port()
    log = data_dir / f"serve-{run}.log"
    t0 = time.perf_counter()
    server = start_server(env, port, log)
    ready_s = round(time.perf_counter() - t0, 1)
    sproc = psutil.Process(server.pid)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}",
                      headers={"X-API-Key": ADMIN_KEY}) as c:
        key = c.post("/v1/keys", json={"name": "bench", "role": "scoring"}).json()["key"]
    phases = [("sustain", args.rate, args.sustain)] + [
        (f"ramp {r}", float(r), args.step_seconds) for r in args.ramp.split(",") if r.strip()]
    if args.prefill:
        # NOTE: chunks of 20k, so that the generator never holds every request at once
        chunk = 20_000
        phases = [("prefill", args.prefill_rate, min(chunk, args.prefill - i) / args.prefill_rate)
                  for i in range(0, args.prefill, chunk)]
    queue: mp.Queue[dict[str, Any] | None] = mp.get_context("spawn").Queue()
    gen = mp.get_context("spawn").Process(
        target=_generator, args=(port, key, bodies, phases, args.p99_limit_ms, run, queue))
    results: list[dict[str, Any]] = []
    store = store_process(args.neo4j_uri)
    cpu, store_cpu = _server_cpu_s(sproc), _cpu_s(store)
    batches = model_batches(port)
    wall = time.perf_counter()
    gen.start()
    traces: list[str] = []
    while (item := queue.get()) is not None:
        traces += [f"{item['phase']},{at},{ms},{inside}" for at, ms, inside in item.pop("trace")]
        now_cpu, now = _server_cpu_s(sproc), time.perf_counter()
        item["server_cpu_cores"] = round((sum(now_cpu) - sum(cpu)) / (now - wall), 2)
        item["gnn_process_cpu_cores"] = round((now_cpu[1] - cpu[1]) / (now - wall), 2)
        if store is not None:
            now_store = _cpu_s(store)
            item["store_cpu_cores"] = round((now_store - store_cpu) / (now - wall), 2)
            store_cpu = now_store
        now_batches = model_batches(port)
        n, apps, busy, busy_cpu = (b - a for a, b in zip(batches, now_batches, strict=True))
        item["model_batch_mean"] = round(apps / n, 2) if n else None
        item["model_busy_share"] = round(busy / (now - wall), 2)
        item["model_cpu_of_busy"] = round(busy_cpu / busy, 2) if busy else None
        cpu, wall, batches = now_cpu, now, now_batches
        results.append(item)
        print(json.dumps(item), file=sys.stderr, flush=True)
    gen.join()
    if args.trace:
        args.trace.write_text("phase,sent_s,latency_ms,service_ms\n" + "\n".join(traces) + "\n")
    rss = round(sproc.memory_info().rss / 2**30, 2)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}",
                      headers={"X-API-Key": ADMIN_KEY}) as c:
        stages = stage_times(c.get("/metrics").text)
        print(json.dumps({"stages": stages}), file=sys.stderr, flush=True)
        deadline = time.monotonic() + 300
        while c.get("/readyz").json()["spool_depth"] and time.monotonic() < deadline:
            time.sleep(0.5)
    server.terminate()
    server.wait(timeout=60)
    if args.prefill:
        verdicts = json.loads(subprocess.run(
            [sys.executable, "-m", "serving.cli", "counts"], cwd=ROOT, env=env, check=True,
            capture_output=True, text=True).stdout).get("Verdict")
        print(f"prefilled: the store holds {verdicts:,} verdicts", file=sys.stderr)
        return 0
    inproc: dict[str, Any] = {}
    if args.in_process > 0:
        inproc = in_process({k: v for k, v in env.items() if k.startswith("RISKGRAPH_")},
                            bodies, args.in_process, run)
    users = pq.ParquetFile(args.world / "users.parquet").metadata.num_rows
    logins = pq.ParquetFile(args.world / "logins.parquet").metadata.num_rows
    meta = {
        "backend": "Neo4j" if args.neo4j_uri else "the embedded store (LadybugDB)",
        "world": f"{users:,} users, {logins:,} logins (`{args.world.name}`)",
        "machine": machine(), "date": today(), "noise": args.noise,
        "command": "python bench/bench_serve.py " + " ".join(
            a for a in (argv or sys.argv[1:])),
        "store": args.neo4j_uri or "LadybugDB file", "scorer": inproc.get("scorer", "-"),
        "ready_s": ready_s, "server_rss_gib": rss, "p99_limit_ms": args.p99_limit_ms,
        "verdicts_at_start": counts.get("Verdict"),
        "applications_at_start": counts.get("Application"),
    }
    section = markdown(meta, results, inproc)
    print(section)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "phases": results, "in_process": inproc,
                                         "stages": stages}, indent=2))
    if args.doc:
        write_doc(args.doc, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
