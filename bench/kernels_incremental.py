"""Incremental (online) feature update latency per event on CPU: p50 and p99.

    python bench/kernels_incremental.py --users 200000

The states are warmed with the world's events up to 10 days before its end (the simulator's
world by default, see ``kernel_world.py``), then every event of the last 10 days is applied one by one and timed: a login updates four velocity states, the
new-device tracker, the location history and the shared-entity graph (device and IP); an order
updates the amount history and the order statistics; an application updates its velocity and
reads location, amount and shared-entity features. Prints a Markdown report.
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np

import kernel_world as kw
import kernels as K


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    kw.add_world_arguments(ap, 200_000)
    ap.add_argument("--no-gc-freeze", action="store_true",
                    help="leave the warmed state to the cyclic GC (its full passes cost ms)")
    args = ap.parse_args()
    w, source = kw.world_from_arguments(args)
    kinds = np.concatenate([np.zeros(len(w.login_ts), np.int8), np.ones(len(w.order_ts), np.int8),
                            np.full(len(w.app_ts), 2, np.int8)])
    rows = np.concatenate([np.arange(len(w.login_ts)), np.arange(len(w.order_ts)),
                           np.arange(len(w.app_ts))])
    ts = np.concatenate([w.login_ts, w.order_ts, w.app_ts])
    stream = np.argsort(ts, kind="stable")
    kinds, rows, ts = kinds[stream].tolist(), rows[stream].tolist(), ts[stream].tolist()
    lu, ld, li = w.login_user.tolist(), w.login_device.tolist(), w.login_ip.tolist()
    lla, llo = w.login_lat.tolist(), w.login_lon.tolist()
    ou, oa, om = w.order_user.tolist(), w.order_amount.tolist(), w.order_merchant.tolist()
    au, aa = w.app_user.tolist(), w.app_amount.tolist()
    ala, alo = w.app_lat.tolist(), w.app_lon.tolist()

    v_user, v_ip, v_new, v_app = (K.VelocityState() for _ in range(4))
    first, loc, amo = K.FirstSeenState(), K.LocationState(), K.AmountState()
    graph, orders = K.SharedEntityState(), K.SegmentAccumulator()
    for u in range(w.n_users):
        loc.set_home(u, float(w.home_lat[u]), float(w.home_lon[u]))
    for u in np.flatnonzero(w.fraud_from != K.NEVER).tolist():
        graph.set_label(u, fraud_visible_from=int(w.fraud_from[u]))
    nd = w.n_devices

    def apply(kind: int, r: int, t: int) -> None:
        if kind == 0:
            u = lu[r]
            new = first.update(u, ld[r])
            v_user.update(u, t)
            v_ip.update(li[r], t)
            v_new.update(u, t, new)
            loc.add_login(u, t, lla[r], llo[r])
            graph.add_edge(u, ld[r])
            graph.add_edge(u, nd + li[r])
        elif kind == 1:
            u = ou[r]
            amo.add(u, t, oa[r])
            orders.add(u, oa[r], om[r])
        else:
            u = au[r]
            v_app.update(u, t)
            loc.score(u, t, ala[r], alo[r])
            amo.score(u, t, aa[r])
            graph.query(u, t)
            amo.add(u, t, aa[r])

    cut = w.t_end - 10 * kw.DAY
    n_warm = int(np.searchsorted(np.asarray(ts), cut))
    t0 = time.perf_counter()
    for i in range(n_warm):
        apply(kinds[i], rows[i], ts[i])
    warm_s = time.perf_counter() - t0
    if not args.no_gc_freeze:
        # NOTE: millions of long-lived state objects make each full GC pass take milliseconds;
        # a server freezes its warmed state the same way (gc.freeze) before taking traffic.
        gc.collect()
        gc.freeze()
    lat: dict[int, list[int]] = {0: [], 1: [], 2: []}
    clock = time.perf_counter_ns
    for i in range(n_warm, len(ts)):
        s = clock()
        apply(kinds[i], rows[i], ts[i])
        lat[kinds[i]].append(clock() - s)

    def pct(xs: list[int]) -> str:
        a = np.asarray(xs) / 1000.0
        return f"{np.percentile(a, 50):.1f} µs | {np.percentile(a, 99):.1f} µs | {a.max():.0f} µs"

    every = lat[0] + lat[1] + lat[2]
    print("\n".join([
        f"- machine: {kw.machine()}; shared and noisy (other engineers' tests ran alongside)",
        f"- world: {w.n_users:,} users ({source}); states warmed with "
        f"{n_warm:,} events (all but the last 10 days) in {warm_s:.1f} s, then {len(every):,} "
        "events timed one by one (the last 10 days), pure Python states, one thread, "
        f"gc.freeze() after warm-up: {'no' if args.no_gc_freeze else 'yes'}",
        "",
        "| event | n | p50 | p99 | max |",
        "|---|---|---|---|---|",
        f"| login (7 state updates) | {len(lat[0]):,} | {pct(lat[0])} |",
        f"| order (2 state updates) | {len(lat[1]):,} | {pct(lat[1])} |",
        f"| application (update + all its features) | {len(lat[2]):,} | {pct(lat[2])} |",
        f"| every event | {len(every):,} | {pct(every)} |",
    ]))


if __name__ == "__main__":
    main()
