"""Batch feature pass on CPU: the kernels vs a straightforward pandas implementation of the
same features, the same numbers checked, time and peak memory of each, and the memory floor.

    python bench/kernels_batch.py --users 1000000            # the simulator's world
    python bench/kernels_batch.py --world data/worlds/1m       # a world `riskgraph simulate` wrote

Prints a Markdown report (append it to docs/BENCHMARKS.md under "Feature kernels").
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import psutil

import kernel_world as kw

H = 20  # kernels.DEFAULT_HUB_DEGREE
R_EARTH = 6371.0088


class PeakRSS:
    """Peak resident memory above the starting point while the block runs (10 ms sampling)."""

    def __enter__(self) -> PeakRSS:
        self._proc = psutil.Process()
        self.start = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def extra_gib(self) -> float:
        return (self.peak - self.start) / 2**30


def haversine(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * R_EARTH * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def pandas_features(w: kw.World) -> dict[str, np.ndarray]:
    """The same features written the way one would in pandas: groupby, rolling, merge_asof."""
    out: dict[str, np.ndarray] = {}
    t_end = w.t_end
    logins = pd.DataFrame({"user": w.login_user, "ip": w.login_ip, "device": w.login_device,
                           "ts": w.login_ts, "lat": w.login_lat, "lon": w.login_lon})
    logins["dt"] = pd.to_datetime(logins.ts, unit="s")
    logins["one"] = 1.0
    logins["new_dev"] = (~logins.duplicated(["user", "device"])).astype(float)

    def velocity(df: pd.DataFrame, key: str, col: str) -> np.ndarray:
        # groupby-rolling returns rows group by group, each group in its input order
        order = np.argsort(df[key].to_numpy(), kind="stable")
        cols = []
        for win in (3600, 86400, 604800):
            r = df.groupby(key).rolling(f"{win}s", on="dt", closed="right")[col].sum()
            back = np.empty(len(df))
            back[order] = r.to_numpy()
            cols.append(back)
        return np.stack(cols, axis=1).astype(np.int64)

    out["vel_user_login"] = velocity(logins, "user", "one")
    out["vel_ip_login"] = velocity(logins, "ip", "one")
    out["vel_user_newdev"] = velocity(logins, "user", "new_dev")
    apps = pd.DataFrame({"user": w.app_user, "ts": w.app_ts, "amount": w.app_amount,
                         "lat": w.app_lat, "lon": w.app_lon})
    apps["dt"] = pd.to_datetime(apps.ts, unit="s")
    apps["one"] = 1.0
    out["vel_user_app"] = velocity(apps, "user", "one")
    apps["row"] = np.arange(len(apps))

    hist = logins.sort_values(["user", "ts"], kind="stable")
    g = hist.groupby("user")
    hist["med_lat"] = g.lat.rolling(15, min_periods=1).median().to_numpy()
    hist["med_lon"] = g.lon.rolling(15, min_periods=1).median().to_numpy()
    m = pd.merge_asof(apps.sort_values("ts", kind="stable"),
                      hist.sort_values("ts", kind="stable")[["ts", "user", "med_lat", "med_lon"]],
                      on="ts", by="user", allow_exact_matches=False).sort_values("row")
    out["loc_usual_km"] = haversine(m.lat, m.lon, m.med_lat, m.med_lon).to_numpy()
    out["loc_home_km"] = haversine(apps.lat, apps.lon, w.home_lat[w.app_user],
                                   w.home_lon[w.app_user]).to_numpy()

    amounts = pd.concat([
        pd.DataFrame({"user": w.order_user, "ts": w.order_ts, "amount": w.order_amount}),
        apps[["user", "ts", "amount"]],
    ], ignore_index=True).sort_values(["user", "ts"], kind="stable")
    ga = amounts.groupby("user").amount
    amounts["med"] = ga.rolling(32, min_periods=1).median().to_numpy()
    amounts["mad"] = ga.rolling(32, min_periods=1).apply(
        lambda x: np.median(np.abs(x - np.median(x))), raw=True).to_numpy()
    m = pd.merge_asof(apps.sort_values("ts", kind="stable"),
                      amounts.sort_values("ts", kind="stable")[["ts", "user", "med", "mad"]],
                      on="ts", by="user", allow_exact_matches=False).sort_values("row")
    out["amt_ratio"] = np.where(m.med != 0, m.amount / m.med, np.nan)
    out["amt_z"] = ((m.amount - m.med) / np.maximum(1.4826 * m.mad, 1.0)).to_numpy()

    edges = pd.DataFrame({
        "user": np.concatenate([w.login_user, w.login_user]),
        "entity": np.concatenate([w.login_device, w.n_devices + w.login_ip]),
    }).drop_duplicates()
    edges["deg"] = edges.groupby("entity").user.transform("size")
    small = edges[edges.deg <= H]
    pairs = small.merge(small[["entity", "user"]], on="entity", suffixes=("", "_v"))
    pairs = pairs[pairs.user != pairs.user_v].drop_duplicates(["user", "user_v"])
    pairs["fraud"] = w.fraud_from[pairs.user_v.to_numpy()] < t_end
    users = pd.RangeIndex(w.n_users)
    per_user = pairs.groupby("user").agg(shared=("user_v", "size"), fraud=("fraud", "sum"))
    per_user = per_user.reindex(users, fill_value=0)
    out["shared_shared_accounts"] = per_user.shared.to_numpy()
    out["shared_fraud_neighbours"] = per_user.fraud.to_numpy()
    edges["hub"] = edges.deg > H
    edges["capped"] = np.minimum(edges.deg - 1, H)
    e_user = edges.groupby("user").agg(hub=("hub", "sum"), maxdeg=("deg", "max"),
                                       capped=("capped", "sum")).reindex(users, fill_value=0)
    out["shared_hub_entities"] = e_user.hub.to_numpy()
    out["shared_max_entity_degree"] = e_user.maxdeg.to_numpy()
    out["shared_shared_capped"] = e_user.capped.to_numpy()

    orders = pd.DataFrame({"user": w.order_user, "amount": w.order_amount,
                           "merchant": w.order_merchant})
    agg = orders.groupby("user").agg(s=("amount", "sum"), mean=("amount", "mean"),
                                     mx=("amount", "max"), n=("amount", "size"),
                                     d=("merchant", "nunique"))
    agg = agg.reindex(users)
    out["orders_sum"] = agg.s.fillna(0.0).to_numpy()
    out["orders_mean"] = agg["mean"].fillna(0.0).to_numpy()
    out["orders_max"] = agg.mx.fillna(0.0).to_numpy()
    out["orders_count"] = agg.n.fillna(0).to_numpy()
    out["orders_merchants"] = agg.d.fillna(0).to_numpy()

    rep = pd.DataFrame({"m": w.report_merchant, "known": w.report_day + kw.DAY,
                        "gmv": w.report_gmv, "ref": w.report_refunds, "inv": w.report_inventory})
    merchants = pd.RangeIndex(w.n_merchants)

    def win(lo: int, hi: int) -> pd.DataFrame:
        sel = rep[(rep.known > t_end - lo * kw.DAY) & (rep.known <= t_end - hi * kw.DAY)]
        return sel.groupby("m").agg(gmv=("gmv", "sum"), ref=("ref", "sum"), inv=("inv", "mean")
                                    ).reindex(merchants)

    rec, pri, spk, base = win(30, 0), win(60, 30), win(14, 0), win(90, 14)
    out["merchant_gmv_growth"] = (rec.gmv / pri.gmv - 1).to_numpy()
    out["merchant_refund_rate"] = (rec.ref / rec.gmv).to_numpy()
    out["merchant_inventory_turnover"] = (rec.gmv / rec.inv).to_numpy()
    out["merchant_sales_spike"] = ((spk.gmv / 14) / (base.gmv / 76)).to_numpy()
    return out


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    bad = []
    for k in a:
        x, y = np.asarray(a[k], dtype=np.float64), np.asarray(b[k], dtype=np.float64)
        if x.shape != y.shape or not np.allclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True):
            bad.append(k)
    return bad


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, list[float], float]:
    times, peak, result = [], 0.0, None
    for _ in range(repeats):
        result = None
        with PeakRSS() as mem:
            t = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t)
        peak = max(peak, mem.extra_gib)
    return result, times, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    kw.add_world_arguments(ap, 1_000_000)
    ap.add_argument("--repeats", type=int, default=3, help="kernel runs (pandas runs once)")
    args = ap.parse_args()
    w, source = kw.world_from_arguments(args)
    arrays = w.arrays()
    bw = kw.copy_bandwidth(np)
    ours, k_times, k_peak = timed(lambda: kw.batch_features(arrays, w, np), args.repeats)
    ref, p_times, p_peak = timed(lambda: pandas_features(w), 1)
    bad = compare(ours, ref)
    k_med, p_med = float(np.median(k_times)), float(np.median(p_times))
    moved = w.nbytes() + kw.output_nbytes(ours)
    floor = moved / bw
    rows = [
        f"- machine: {kw.machine()}; shared and noisy (other engineers' tests ran alongside)",
        f"- world: {w.n_users:,} users, {len(w.login_user):,} logins, {len(w.order_user):,} "
        f"orders, {len(w.app_user):,} applications, {len(w.report_day):,} merchant-day reports, "
        f"{w.n_devices:,} devices, {w.n_ips:,} IPs ({source})",
        f"- same numbers: {'yes, all ' + str(len(ours)) + ' features' if not bad else 'NO: ' + ', '.join(bad)}"
        " (rtol 1e-9, NaN = NaN)",
        "",
        "| implementation | median time | runs | peak extra RSS |",
        "|---|---|---|---|",
        f"| kernels (NumPy) | {k_med:.2f} s | {len(k_times)} | {k_peak:.2f} GiB |",
        f"| pandas groupby / rolling / merge_asof | {p_med:.2f} s | {len(p_times)} | {p_peak:.2f} GiB |",
        "",
        f"- speed-up: **{p_med / k_med:.1f}x**",
        f"- floor: the pass reads {w.nbytes() / 2**30:.2f} GiB of event columns and writes "
        f"{kw.output_nbytes(ours) / 2**30:.2f} GiB of features; at the measured copy bandwidth "
        f"{bw / 1e9:.1f} GB/s (1 GiB numpy copy, read + write, median of 7) that is "
        f"{floor:.3f} s; measured / floor = **{k_med / floor:.0f}x**",
    ]
    print("\n".join(rows))


if __name__ == "__main__":
    main()
