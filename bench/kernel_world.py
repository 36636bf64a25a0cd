"""The lending world as plain arrays, and the batch feature pass over it.

Shared by the kernel benchmarks (``kernels_batch.py``, ``gpu_kernels.py``). By default the
world is the simulator's (:func:`simulated_world`, the same code as ``riskgraph simulate``), or
a world directory it wrote (:func:`load_world`); user, device, IP and merchant identifiers
become dense indices, event tables are sorted by time like an export, and a user's fraud label
becomes visible when its first ``User``/``fraud`` label event does.
:func:`make_world` is the older stand-alone generator (``--world synthetic``), kept for sizes
the simulator does not make and for the earlier figures in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc

import kernels as K

DAY = K.DAY
T0 = 1_700_000_000 - 1_700_000_000 % DAY
SPAN_DAYS = 180


@dataclass
class World:
    n_users: int
    n_devices: int
    n_ips: int
    n_merchants: int
    login_user: np.ndarray
    login_ts: np.ndarray
    login_device: np.ndarray
    login_ip: np.ndarray
    login_lat: np.ndarray
    login_lon: np.ndarray
    order_user: np.ndarray
    order_ts: np.ndarray
    order_amount: np.ndarray
    order_merchant: np.ndarray
    app_user: np.ndarray
    app_ts: np.ndarray
    app_amount: np.ndarray
    app_lat: np.ndarray
    app_lon: np.ndarray
    home_lat: np.ndarray
    home_lon: np.ndarray
    fraud_from: np.ndarray
    report_merchant: np.ndarray
    report_day: np.ndarray
    report_gmv: np.ndarray
    report_refunds: np.ndarray
    report_inventory: np.ndarray
    t0: int = field(default=T0)
    t_end: int = field(default=T0 + SPAN_DAYS * DAY)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, np.ndarray)}

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays().values())


def make_world(n_users: int, seed: int = 0, *, logins_per_user: float = 5.0,
               orders_per_user: float = 2.0, apps_per_user: float = 0.5) -> World:
    """Generate a world; sorted by time within each event table, like an export."""
    rng = np.random.default_rng(seed)
    n_log = int(n_users * logins_per_user)
    n_ord = int(n_users * orders_per_user)
    n_app = int(n_users * apps_per_user)
    n_hub_ips = max(1, n_users // 5000)
    n_households = (n_users + 2) // 3
    n_ips = n_hub_ips + n_households
    n_devices = int(n_users * 1.2)
    n_merchants = max(1, n_users // 50)
    span = SPAN_DAYS * DAY
    home_lat = rng.uniform(22.0, 40.0, n_users)
    home_lon = rng.uniform(105.0, 121.0, n_users)

    def times(n: int) -> np.ndarray:
        return np.sort(T0 + rng.integers(0, span, n, dtype=np.int64))

    lu = rng.integers(0, n_users, n_log)
    household = lu // 3
    ldev = np.where(rng.random(n_log) < 0.9, lu, rng.integers(n_users, n_devices, n_log))
    ring = lu % 997 == 0  # small rings share a pool of four devices
    ldev = np.where(ring, (lu // 997) % max(1, n_users // 997) * 4 % n_devices
                    + rng.integers(0, 4, n_log), ldev) % n_devices
    lip = np.where(rng.random(n_log) < 0.25, rng.integers(0, n_hub_ips, n_log),
                   n_hub_ips + household)
    travel = rng.random(n_log) < 0.05
    llat = home_lat[lu] + rng.normal(0, 0.05, n_log) + travel * rng.normal(0, 6, n_log)
    llon = home_lon[lu] + rng.normal(0, 0.05, n_log)

    ou = rng.integers(0, n_users, n_ord)
    au = rng.integers(0, n_users, n_app)
    alat = home_lat[au] + rng.normal(0, 0.05, n_app) + (rng.random(n_app) < 0.03) * 10
    alon = home_lon[au] + rng.normal(0, 0.05, n_app)
    fraud = rng.random(n_users) < 0.02
    fraud_from = np.where(fraud, T0 + rng.integers(0, span + 30 * DAY, n_users),
                          K.NEVER).astype(np.int64)

    rm = np.repeat(np.arange(n_merchants), SPAN_DAYS)
    rd = np.tile(T0 + np.arange(SPAN_DAYS, dtype=np.int64) * DAY, n_merchants)
    gmv = np.round(rng.lognormal(7, 0.5, rm.shape[0]), 2)
    return World(
        n_users, n_devices, n_ips, n_merchants,
        lu, times(n_log), ldev.astype(np.int64), lip.astype(np.int64), llat, llon,
        ou, times(n_ord), np.round(rng.lognormal(5, 1, n_ord), 2),
        rng.integers(0, n_merchants, n_ord),
        au, times(n_app), np.round(rng.lognormal(6.5, 1, n_app), 2), alat, alon,
        home_lat, home_lon, fraud_from,
        rm, rd, gmv, np.round(gmv * rng.uniform(0, 0.08, rm.shape[0]), 2),
        np.round(rng.lognormal(9, 0.3, rm.shape[0]), 2),
    )


def simulated_world(n_users: int, seed: int = 1) -> World:
    """The simulator's world of ``n_users`` users (default ``WorldConfig`` otherwise), in memory."""
    from simulator import WorldConfig, simulate_world

    sim = simulate_world(WorldConfig(users=n_users, seed=seed))
    return _from_tables(sim.table, sim.config.start_ts, sim.config.end_ts)


def load_world(directory: str | Path) -> World:
    """A world directory written by ``riskgraph simulate`` (or ``write_world``)."""
    from simulator import read_metadata, read_table

    d = Path(directory)
    meta = read_metadata(d)
    return _from_tables(lambda name: read_table(d, name), int(meta["start_ts"]),
                        int(meta["end_ts"]))


def _from_tables(table: Callable[[str], pa.Table], start_ts: int, end_ts: int) -> World:
    """Dense indices and time-ordered event columns from the simulator's tables."""
    users, merchants = table("users"), table("merchants")
    user_ids, merchant_ids = users["user_id"], merchants["merchant_id"]

    def index(values: pa.ChunkedArray, within: pa.ChunkedArray) -> np.ndarray:
        idx = pc.index_in(values, value_set=within)
        if idx.null_count:
            raise ValueError(f"{idx.null_count} identifiers missing from their entity table")
        return idx.to_numpy().astype(np.int64)

    def codes(values: pa.ChunkedArray) -> tuple[np.ndarray, int]:
        enc = pc.dictionary_encode(values).combine_chunks()
        return enc.indices.to_numpy().astype(np.int64), len(enc.dictionary)

    def by_time(t: pa.Table) -> pa.Table:
        order = np.argsort(t["ts"].to_numpy(), kind="stable")
        return t.take(pa.array(order))

    def col(t: pa.Table, name: str) -> np.ndarray:
        return t[name].to_numpy()

    logins = by_time(table("logins"))
    orders = by_time(table("orders"))
    apps = by_time(table("applications"))
    sales = table("merchant_sales")
    labels = table("label_events")
    devices, n_devices = codes(logins["device_serial"])
    ips, n_ips = codes(logins["ip"])

    fraud = labels.filter(pc.and_(pc.equal(labels["entity_type"], "User"),
                                  pc.equal(labels["kind"], "fraud")))
    fraud_from = np.full(len(user_ids), K.NEVER, dtype=np.int64)
    np.minimum.at(fraud_from, index(fraud["entity_id"], user_ids), col(fraud, "visible_at"))
    return World(
        len(user_ids), n_devices, n_ips, len(merchant_ids),
        index(logins["user_id"], user_ids), col(logins, "ts"), devices, ips,
        col(logins, "lat"), col(logins, "lon"),
        index(orders["user_id"], user_ids), col(orders, "ts"), col(orders, "amount"),
        index(orders["merchant_id"], merchant_ids),
        index(apps["user_id"], user_ids), col(apps, "ts"), col(apps, "amount"),
        col(apps, "lat"), col(apps, "lon"),
        col(users, "home_lat"), col(users, "home_lon"), fraud_from,
        index(sales["merchant_id"], merchant_ids), col(sales, "day"), col(sales, "gmv"),
        col(sales, "refunds"), col(sales, "inventory"),
        t0=int(start_ts), t_end=int(end_ts),
    )


def add_world_arguments(ap: Any, default_users: int) -> None:
    """The benchmarks' shared options for choosing the world."""
    ap.add_argument("--world", default="simulated",
                    help="'simulated' (the simulator, in memory), 'synthetic' (make_world), or "
                         "a world directory written by `riskgraph simulate`")
    ap.add_argument("--users", type=int, default=default_users,
                    help="users to simulate or generate (ignored for a directory)")
    ap.add_argument("--seed", type=int, default=1)


def world_from_arguments(args: Any) -> tuple[World, str]:
    """The world the options name and a line describing it."""
    t = time.perf_counter()
    if args.world == "simulated":
        w, what = simulated_world(args.users, args.seed), f"simulator, seed {args.seed}"
    elif args.world == "synthetic":
        w = make_world(args.users, args.seed)
        what = f"stand-alone generator `make_world`, seed {args.seed}"
    else:
        w, what = load_world(args.world), f"world directory {args.world}"
    return w, f"{what}, built in {time.perf_counter() - t:.1f} s"


def user_csr(xp: ModuleType, user: Any, other: Any, n_users: int) -> tuple[Any, Any, Any]:
    """CSR over users of an event table: ``indptr``, the other column and the sort order."""
    order = K._window.stable_argsort(xp, user)  # noqa: SLF001 - benchmark plumbing
    indptr = xp.zeros(n_users + 1, dtype=np.int64)
    xp.cumsum(xp.bincount(user, minlength=n_users), out=indptr[1:])
    return indptr, other[order], order


def batch_features(w: dict[str, Any], sizes: World, xp: ModuleType) -> dict[str, Any]:
    """Every kernel once over the world as of its end: the batch pass the benchmarks time.

    ``w`` holds the world's arrays on the backend of ``xp``.
    """
    n_users = sizes.n_users
    t_end = sizes.t_end
    out: dict[str, Any] = {}
    # velocity: logins per user and per IP, new devices per user, applications per user
    out["vel_user_login"] = K.compute_velocity(w["login_user"], w["login_ts"])
    out["vel_ip_login"] = K.compute_velocity(w["login_ip"], w["login_ts"])
    new_dev = K.mark_first_seen(w["login_user"], w["login_device"], w["login_ts"])
    out["vel_user_newdev"] = K.compute_velocity(w["login_user"], w["login_ts"], counted=new_dev)
    out["vel_user_app"] = K.compute_velocity(w["app_user"], w["app_ts"])
    # location and amount anomaly of every application
    loc = K.location_anomaly(
        w["login_user"], w["login_ts"], w["login_lat"], w["login_lon"],
        w["app_user"], w["app_ts"], w["app_lat"], w["app_lon"],
        home_lat=w["home_lat"], home_lon=w["home_lon"], k=15)
    out["loc_usual_km"], out["loc_home_km"] = loc.dist_usual_km, loc.dist_home_km
    hist_user = xp.concatenate([w["order_user"], w["app_user"]])
    hist_ts = xp.concatenate([w["order_ts"], w["app_ts"]])
    hist_amount = xp.concatenate([w["order_amount"], w["app_amount"]])
    amo = K.amount_anomaly(hist_user, hist_ts, hist_amount, w["app_user"], w["app_ts"],
                           w["app_amount"], k=32)
    out["amt_ratio"], out["amt_z"] = amo.ratio_to_median, amo.robust_z
    # shared devices and IPs (one union relation) as of the end, with fraud labels
    eu = xp.concatenate([w["login_user"], w["login_user"]])
    ee = xp.concatenate([w["login_device"], sizes.n_devices + w["login_ip"]])
    et = xp.concatenate([w["login_ts"], w["login_ts"]])
    indptr, ent, order = user_csr(xp, eu, ee, n_users)
    sh = K.shared_entity_features(indptr, ent, sizes.n_devices + sizes.n_ips, as_of=t_end,
                                  edge_time=et[order], fraud_visible_from=w["fraud_from"])
    for name in ("shared_accounts", "fraud_neighbours", "hub_entities", "max_entity_degree",
                 "shared_capped"):
        out[f"shared_{name}"] = getattr(sh, name)
    # order behaviour per user (segment reductions over the ORDERED_AT relation)
    optr, o_amt, oorder = user_csr(xp, w["order_user"], w["order_amount"], n_users)
    out["orders_sum"] = K.segment_sum(optr, o_amt)
    out["orders_mean"] = K.segment_mean(optr, o_amt)
    out["orders_max"] = K.segment_max(optr, o_amt)
    out["orders_count"] = K.segment_count(optr)
    out["orders_merchants"] = K.segment_count_distinct(optr, w["order_merchant"][oorder])
    # merchant signals of every merchant as of the end
    mq = xp.arange(sizes.n_merchants, dtype=np.int64)
    ms = K.merchant_signals(
        w["report_merchant"], w["report_day"], w["report_gmv"], w["report_refunds"],
        w["report_inventory"], mq, xp.full(sizes.n_merchants, t_end, dtype=np.int64))
    for name in ("gmv_growth", "refund_rate", "inventory_turnover", "sales_spike"):
        out[f"merchant_{name}"] = getattr(ms, name)
    return out


def output_nbytes(out: dict[str, Any]) -> int:
    return int(sum(int(v.nbytes) for v in out.values()))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {psutil.cpu_count(logical=True)} logical cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, {time.strftime('%Y-%m-%d')}")


def copy_bandwidth(xp: ModuleType, nbytes: int = 1 << 30, repeats: int = 7,
                   sync: Any = None) -> float:
    """Memory bandwidth in bytes/s from a large array copy (read + write counted), median."""
    src = xp.ones(nbytes // 8, dtype=np.float64)
    dst = xp.empty_like(src)
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        t = time.perf_counter()
        dst[...] = src
        if sync:
            sync()
        times.append(time.perf_counter() - t)
    return 2 * nbytes / float(np.median(times))
