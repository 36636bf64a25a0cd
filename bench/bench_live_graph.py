"""The live graph state (`gnn.LendingGraph`): the one-pass build, then a stream of online
applications applied one accepted write at a time, with the features computed between writes.

    python bench/bench_live_graph.py [--world DIR | --users N] [--apps 2000] [--seed 1]
                                     [--out FILE]

1. Build: ``LendingGraph.from_world`` of the world: ``--world DIR``, else /data/w100k when it
   exists and ``--users`` is not given, else the simulator's world of ``--users`` users (seed 1,
   written to a temporary directory first; the simulation is not timed). Then, as the server
   does once its state is loaded, ``gc.collect(); gc.freeze()``.
2. Stream: ``--apps`` new applications after the world's last event, in time order:
   * existing users' applications copied from random applications of the world (the user, its
     device, IP, place, product, merchant and amount);
   * some of them from a device the platform has never seen;
   * some repeated by the same user from the same device within a minute;
   * ring bursts: 4-8 new accounts applying minutes apart from one new device, declaring one new
     phone and one new address.
   For each application in turn: its root features as the scorer computes them, against the
   graph that does not hold it yet (``ApplicationQueries.from_facts`` +
   ``RiskFeatures.application_features``, NumPy); then the write the service makes when it is
   accepted (``serving.graph_writes.application_ops`` through ``serving.live_graph.
   graph_writes``: the same node and relationship rows) applied with
   ``LendingGraph.apply_writes``; after every ``COMPACT_EVERY`` writes, ``maybe_compact`` (as
   ``serving.graph_scorer.apply_writes`` runs it).
3. After the stream: the garbage the in-place growth left, ``maybe_compact`` and ``compact``,
   peak RSS, and the check: the same applications' root features computed in one batch from
   the graph that now holds them (``ApplicationQueries.from_graph``) equal the online ones
   (rtol 1e-6, atol 1e-6 on the float32 features, the tolerance of
   tests/gnn/test_live_lending_graph.py). A column that differs is named with the kinds of
   application it differs on, and the script exits 1 after printing the table.

Prints a Markdown section; ``--out FILE`` also writes it to FILE.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow.parquet as pq
from machine_info import machine, peak_rss_gib, today

from gnn import ApplicationQueries, GraphWrites, LendingGraph, RiskFeatures
from graph import Pseudonymiser
from serving.graph_scorer import COMPACT_EVERY
from serving.graph_writes import application_ops, to_facts
from serving.live_graph import graph_writes
from serving.schemas.application import ApplicationCreate
from serving.scoring import ApplicationFacts

DEFAULT_WORLD = Path("/data/w100k")
SECRET = b"bench-live-graph-secret-0123456789"
RTOL = ATOL = 1e-6
KINDS = ("existing user", "new device", "repeat within a minute", "ring member")
"""Kinds of application in the stream, in the order of :func:`draw_stream`'s ``kind`` codes."""


# -- the world -----------------------------------------------------------------------------------
def world_directory(args: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    """The world to build: its directory and a line saying which it is."""
    if args.world is not None:
        return Path(args.world), f"world directory {args.world}"
    if args.users is None and DEFAULT_WORLD.is_dir():
        return DEFAULT_WORLD, f"world directory {DEFAULT_WORLD}"
    from simulator import WorldConfig, simulate_world, write_world

    users = args.users or 100_000
    t0 = time.perf_counter()
    write_world(simulate_world(WorldConfig(users=users, seed=1)), tmp)
    return tmp, (f"the simulator's world of {users:,} users, seed 1 (simulated and written in "
                 f"{time.perf_counter() - t0:.1f} s, not timed)")


# -- the stream ----------------------------------------------------------------------------------
def draw_stream(world: Path, n: int, start: int, seed: int) -> tuple[list[ApplicationCreate],
                                                                     np.ndarray]:
    """``n`` application requests from ``start`` on, in time order, and the kind of each
    (an index into :data:`KINDS`)."""
    rng = np.random.default_rng(seed)
    rows = pq.read_table(world / "applications.parquet",
                         columns=["user_id", "product", "amount", "device_serial", "ip", "lat",
                                  "lon", "merchant_id"]).to_pylist()
    apps: list[ApplicationCreate] = []
    kinds: list[int] = []
    ts = start
    burst = 0

    def add(kind: int, body: dict[str, Any]) -> None:
        i = len(apps)
        body = {"application_id": f"bench-live-{i:06d}", "currency": "CNY",
                "applied_at": datetime.fromtimestamp(ts, UTC).isoformat(), **body}
        apps.append(ApplicationCreate.model_validate(body))
        kinds.append(kind)

    while len(apps) < n:
        ts += int(rng.integers(5, 60))
        r = rng.random()
        if r < 0.03 and n - len(apps) >= 4:
            # a ring: new accounts, one new device, phone and address, minutes apart
            members = int(min(rng.integers(4, 9), n - len(apps)))
            where = rows[int(rng.integers(len(rows)))]
            for m in range(members):
                if m:
                    ts += int(rng.integers(30, 300))
                add(3, {"product": "cash_loan", "amount": float(rng.integers(20, 80) * 500),
                        "user_id": f"ring-{burst}-{m}", "device_id": f"ring-device-{burst}",
                        "ip": where["ip"], "geo": {"lat": where["lat"], "lon": where["lon"]},
                        "phone": f"+86 170 {burst:04d} 0000",
                        "address": f"bench ring flat {burst}, 1 Example Road"})
            burst += 1
            continue
        row = rows[int(rng.integers(len(rows)))]
        new_device = r < 0.18
        body = {"product": row["product"], "amount": float(row["amount"]),
                "user_id": row["user_id"],
                "device_id": f"bench-new-device-{len(apps)}" if new_device
                else row["device_serial"],
                "ip": row["ip"], "geo": {"lat": row["lat"], "lon": row["lon"]}}
        if row["merchant_id"]:
            body["merchant_id"] = row["merchant_id"]
        add(1 if new_device else 0, body)
        if r > 0.9 and len(apps) < n:
            ts += int(rng.integers(5, 60))
            add(2, {**body, "amount": float(np.round(body["amount"] * rng.uniform(0.5, 1.5),
                                                     2))})
    return apps, np.asarray(kinds, dtype=np.int64)


def queries(graph: LendingGraph, facts: ApplicationFacts) -> ApplicationQueries:
    """The application as the scorer states it (``serving.graph_scorer.score_applications``)."""
    return ApplicationQueries.from_facts(
        graph, application_id=facts.application_id, user_id=facts.user_id,
        product=facts.product, amount=facts.amount, ts=facts.ts, lat=facts.lat, lon=facts.lon,
        device_id=facts.device_id, ip=facts.ip, merchant_id=facts.merchant_id,
        phone_id=facts.phone_id, address_id=facts.address_id)


def accepted_write(facts: ApplicationFacts, app: ApplicationCreate,
                   pseudonymiser: Pseudonymiser) -> GraphWrites:
    """The graph rows the service writes once the application's verdict is claimed."""
    verdict = {"id": facts.application_id, "decision": "approve"}
    return graph_writes(application_ops(facts, verdict, pseudonymiser, app))


# -- figures -------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def ms(seconds: np.ndarray | list[float], q: float) -> str:
    a = np.asarray(seconds, dtype=np.float64)
    return "–" if a.size == 0 else f"{np.percentile(a, q) * 1e3:.2f}"


def rss_gib() -> float:
    return float(psutil.Process(os.getpid()).memory_info().rss) / 2**30


def compare(online: np.ndarray, batch: np.ndarray, names: list[str],
            kinds: np.ndarray) -> list[str]:
    """One line per root feature that differs beyond the tolerance, with where it differs."""
    bad = ~np.isclose(online, batch, rtol=RTOL, atol=ATOL)
    lines = []
    for j in np.flatnonzero(bad.any(axis=0)).tolist():
        rows = np.flatnonzero(bad[:, j])
        by_kind = ", ".join(f"{KINDS[k]}: {int((kinds[rows] == k).sum())}"
                            for k in range(len(KINDS)) if (kinds[rows] == k).any())
        worst = float(np.abs(online[rows, j] - batch[rows, j]).max())
        lines.append(f"  - `{names[j]}`: {rows.size} applications ({by_kind}); "
                     f"largest difference {worst:.4g}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world", help="a world directory from `riskgraph simulate`")
    ap.add_argument("--users", type=int, default=None,
                    help="simulate a world of this many users instead of /data/w100k")
    ap.add_argument("--apps", type=int, default=2000, help="applications in the stream")
    ap.add_argument("--seed", type=int, default=1, help="seed of the stream")
    ap.add_argument("--out", help="also write the Markdown section to this file")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="rg-live-bench-") as tmp:
        world, source = world_directory(args, Path(tmp))
        pseudonymiser = Pseudonymiser(SECRET)
        rss0 = rss_gib()
        graph, build_s = timed(lambda: LendingGraph.from_world(world,
                                                               pseudonymiser=pseudonymiser))
        stream, kinds = draw_stream(world, args.apps, graph.as_of + 3600, args.seed)
    # NOTE: as the server does once its state is loaded (serving.heap.settle_heap):
    # the arrays' objects need no collecting.
    gc.collect()
    gc.freeze()
    rss_built = rss_gib()
    counts = {t: graph.num_nodes(t) for t in ("User", "Application", "Device")}
    logins = len(graph.events["logins"]["ts"])

    features = RiskFeatures(graph)
    online: list[np.ndarray] = []
    feature_s: list[float] = []
    apply_s: list[float] = []
    compactions: list[tuple[float, int]] = []
    names: list[str] = []
    for app in stream:
        facts = to_facts(app, pseudonymiser)
        t0 = time.perf_counter()
        x, names, _ = features.application_features(queries(graph, facts))
        feature_s.append(time.perf_counter() - t0)
        online.append(x[0])
        write = accepted_write(facts, app, pseudonymiser)
        t0 = time.perf_counter()
        graph.apply_writes(write)
        apply_s.append(time.perf_counter() - t0)
        if graph.writes_applied % COMPACT_EVERY == 0:
            done, s = timed(graph.maybe_compact)
            compactions.append((s, done))
    garbage = graph.garbage
    edges = sum(a.num_edges for a in graph.relations.values())
    done_final, maybe_s = timed(graph.maybe_compact)
    _, compact_s = timed(graph.compact)

    ids = [a.application_id for a in stream]
    batch_apps = ApplicationQueries.from_graph(graph, graph.positions("Application", ids))
    (xb, names_b, _), batch_s = timed(lambda: RiskFeatures(graph).application_features(
        batch_apps))
    xo = np.stack(online)
    assert names_b == names, "batch and online feature names differ"
    differing = compare(xo, xb, names, kinds)
    same_rows = np.isclose(xo, xb, rtol=RTOL, atol=ATOL).all(axis=1)
    peak = peak_rss_gib()

    feat, app_s = np.asarray(feature_s), np.asarray(apply_s)
    per_kind = " / ".join(f"{KINDS[k]} {int((kinds == k).sum())}" for k in range(len(KINDS)))
    compact_times = [s for s, _ in compactions]
    lines = [
        f"### Live graph state, {today()}",
        "",
        f"`{' '.join(['python bench/bench_live_graph.py', *sys.argv[1:]])}`",
        "",
        f"- machine: {machine()}; one thread",
        f"- world: {source}; {counts['User']:,} users, {counts['Application']:,} applications, "
        f"{counts['Device']:,} devices, {logins:,} logins before the stream",
        f"- stream: {len(stream):,} applications ({per_kind}); each application's root "
        "features, then its write",
        "",
        "| step | n | median ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
        f"| one-pass build (`LendingGraph.from_world`) | 1 | {build_s * 1e3:.0f} | – | – |",
        f"| root features of the next application (`from_facts` + `application_features`) | "
        f"{feat.size:,} | {ms(feat, 50)} | {ms(feat, 99)} | {ms(feat, 100)} |",
        f"| apply its accepted write (`LendingGraph.apply_writes`) | {app_s.size:,} | "
        f"{ms(app_s, 50)} | {ms(app_s, 99)} | {ms(app_s, 100)} |",
        f"| `maybe_compact` every {COMPACT_EVERY} writes (adjacencies laid out: "
        f"{sum(d for _, d in compactions)}) | {len(compactions)} | {ms(compact_times, 50)} | "
        f"{ms(compact_times, 99)} | {ms(compact_times, 100)} |",
        f"| `maybe_compact` after the stream ({done_final} laid out) | 1 | {maybe_s * 1e3:.1f} "
        "| – | – |",
        f"| `compact` (every adjacency) after the stream | 1 | {compact_s * 1e3:.0f} | – | – |",
        f"| the stream's root features in one batch (`from_graph`) | {len(stream):,} | "
        f"{batch_s * 1e3:.0f} (all) | – | – |",
        "",
        "| application kind | n | features median / p99 ms | write median / p99 ms |",
        "|---|---:|---:|---:|",
        *(f"| {KINDS[k]} | {int((kinds == k).sum())} | {ms(feat[kinds == k], 50)} / "
          f"{ms(feat[kinds == k], 99)} | {ms(app_s[kinds == k], 50)} / "
          f"{ms(app_s[kinds == k], 99)} |" for k in range(len(KINDS))),
        "",
        f"- garbage after the stream: {garbage:,} buffer entries (relations hold {edges:,} "
        "edges)",
        f"- RSS: {rss0:.2f} GiB before the build, {rss_built:.2f} GiB after it, "
        f"{rss_gib():.2f} GiB at the end; peak {peak:.2f} GiB",
        f"- batch = online (rtol {RTOL:g}, atol {ATOL:g}, {xo.shape[1]} root features): "
        + ("**yes**" if not differing else
           f"**no**: {int(same_rows.sum())} of {len(stream)} applications equal in every "
           f"feature; {len(differing)} features differ:"),
        *differing,
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
