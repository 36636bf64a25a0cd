"""Two modes, one truth: replay a simulated history event by event through the incremental
states and check every feature against the batch kernels run once over the whole history.

The history is a small world of our own (the simulator's output has the same columns): users
log in from devices and IPs (one public Wi-Fi hub, a ring sharing two devices), order from
merchants, apply for loans; fraud labels become visible late; merchants report daily sales.
Events are sorted by time with many ties, and features are taken in stream order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kernels import (
    DAY,
    DEFAULT_WINDOWS,
    NEVER,
    AmountState,
    FirstSeenState,
    LocationState,
    MerchantState,
    SegmentAccumulator,
    SharedEntityState,
    VelocityState,
    amount_anomaly,
    compute_velocity,
    location_anomaly,
    mark_first_seen,
    merchant_signals,
    segment_count,
    segment_count_distinct,
    segment_max,
    segment_sum,
    shared_entity_features,
    shared_entity_features_at,
    velocity_as_of,
)

T0 = 1_700_000_000 - 1_700_000_000 % DAY
N_USERS, N_MERCHANTS, HUB = 80, 6, 5
N_DEVICES = N_USERS + 40
N_IPS = 2 + N_USERS // 3


def make_history(seed: int, n_events: int = 2500) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    kind = rng.choice(["login", "order", "app", "label"], n_events, p=[0.55, 0.3, 0.12, 0.03])
    user = rng.integers(0, N_USERS, n_events)
    # own phone mostly, now and then a new one; users 0..3 (a ring) share devices 0 and 1
    device = np.where(rng.random(n_events) < 0.9, user,
                      rng.integers(N_USERS, N_DEVICES, n_events))
    device = np.where(user < 4, rng.integers(0, 2, n_events), device)
    # households of three share a home IP; IP 0 is a public Wi-Fi hub
    ip = np.where(rng.random(n_events) < 0.3, 0, 1 + user // 3)
    ts = T0 + np.sort(rng.integers(0, 60 * 24 * 30, n_events)) * 60  # minutes: many ties
    home = rng.uniform([22, 105], [40, 120], size=(N_USERS, 2))
    travel = rng.random(n_events) < 0.1
    lat = home[user, 0] + rng.normal(0, 0.05, n_events) + travel * 8
    lon = home[user, 1] + rng.normal(0, 0.05, n_events)
    amount = np.round(rng.lognormal(5, 1, n_events) * np.where(kind == "app", 5, 1), 2)
    events = pd.DataFrame({
        "kind": kind, "user": user, "device": device, "ip": ip, "ts": ts,
        "lat": lat, "lon": lon, "amount": amount,
        "merchant": rng.integers(0, N_MERCHANTS, n_events),
    })
    days = np.arange(40)
    reports = pd.DataFrame({
        "merchant": np.repeat(np.arange(N_MERCHANTS), 40),
        "day": np.tile(T0 - 10 * DAY + days * DAY, N_MERCHANTS),
        "gmv": np.round(rng.lognormal(7, 0.4, N_MERCHANTS * 40), 2),
        "refunds": np.round(rng.lognormal(3, 0.4, N_MERCHANTS * 40), 2),
        "inventory": np.round(rng.lognormal(9, 0.2, N_MERCHANTS * 40), 2),
    })
    return events, reports, home


@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_equals_batch_for_every_feature(seed: int) -> None:
    ev, reports, home = make_history(seed)
    replay(ev, reports, home, N_USERS, N_DEVICES, N_IPS, N_MERCHANTS)


def test_incremental_equals_batch_on_the_simulator() -> None:
    """The same replay on a small world from ``graph.simulator`` (planted rings, hubs, ATO)."""
    sim = pytest.importorskip("graph.simulator.world")
    from graph.simulator.config import WorldConfig

    world = sim.simulate_world(WorldConfig(users=400, seed=7, days=60))
    users = world.table("users").to_pandas()
    uid = {u: i for i, u in enumerate(users.user_id)}
    logins = world.table("logins").to_pandas()
    apps = world.table("applications").to_pandas()
    orders = world.table("orders").to_pandas()
    labels = world.table("label_events").to_pandas()
    sales = world.table("merchant_sales").to_pandas()
    labels = labels[(labels.entity_type == "User") & (labels.kind == "fraud")]
    dev = {d: i for i, d in enumerate(pd.unique(pd.concat([logins.device_serial])))}
    ips = {d: i for i, d in enumerate(pd.unique(logins.ip))}
    mer = {m: i for i, m in enumerate(world.table("merchants").to_pandas().merchant_id)}
    frames = [
        pd.DataFrame({"kind": "login", "user": logins.user_id.map(uid),
                      "device": logins.device_serial.map(dev), "ip": logins.ip.map(ips),
                      "ts": logins.ts, "lat": logins.lat, "lon": logins.lon, "amount": np.nan,
                      "merchant": 0}),
        pd.DataFrame({"kind": "order", "user": orders.user_id.map(uid), "device": 0, "ip": 0,
                      "ts": orders.ts, "lat": np.nan, "lon": np.nan, "amount": orders.amount,
                      "merchant": orders.merchant_id.map(mer)}),
        pd.DataFrame({"kind": "app", "user": apps.user_id.map(uid), "device": 0, "ip": 0,
                      "ts": apps.ts, "lat": apps.lat, "lon": apps.lon, "amount": apps.amount,
                      "merchant": apps.merchant_id.map(mer).fillna(0)}),
        pd.DataFrame({"kind": "label", "user": labels.entity_id.map(uid), "device": 0, "ip": 0,
                      "ts": labels.visible_at, "lat": np.nan, "lon": np.nan, "amount": np.nan,
                      "merchant": 0}),
    ]
    ev = pd.concat(frames, ignore_index=True)
    ev = ev.dropna(subset=["user"]).sort_values("ts", kind="stable").reset_index(drop=True)
    ev = ev.astype({"user": np.int64, "device": np.int64, "ip": np.int64, "ts": np.int64,
                    "merchant": np.int64})
    reports = pd.DataFrame({"merchant": sales.merchant_id.map(mer).astype(np.int64),
                            "day": sales.day.astype(np.int64), "gmv": sales.gmv,
                            "refunds": sales.refunds, "inventory": sales.inventory})
    home = users[["home_lat", "home_lon"]].to_numpy(dtype=np.float64)
    replay(ev, reports, home, len(users), len(dev), len(ips), len(mer), min_apps=20)


def replay(ev: pd.DataFrame, reports: pd.DataFrame, home: np.ndarray, N_USERS: int,
           N_DEVICES: int, N_IPS: int, N_MERCHANTS: int, min_apps: int = 100) -> None:
    n = len(ev)
    pos = np.arange(n)
    k = ev.kind.to_numpy()
    login, app, order, label = (k == "login"), (k == "app"), (k == "order"), (k == "label")
    u, ts = ev.user.to_numpy(), ev.ts.to_numpy()
    dev, ip = ev.device.to_numpy(), ev.ip.to_numpy()
    lat, lon, amt, mer = (ev[c].to_numpy() for c in ("lat", "lon", "amount", "merchant"))
    # a label event makes the user's fraud label visible at its time
    fraud_from = np.full(N_USERS, NEVER, dtype=np.int64)
    for i in np.flatnonzero(label)[::-1]:
        fraud_from[u[i]] = ts[i]

    # ---- batch: every kernel once over the whole history --------------------------------
    new_dev = np.zeros(n, dtype=bool)
    new_dev[login] = mark_first_seen(u[login], dev[login], ts[login])
    vel_user_login = compute_velocity(u[login], ts[login])
    vel_ip_login = compute_velocity(ip[login], ts[login])
    vel_user_newdev = compute_velocity(u[login], ts[login], counted=new_dev[login])
    vel_user_app = compute_velocity(u[app], ts[app])
    loc = location_anomaly(u[login], ts[login], lat[login], lon[login], u[app], ts[app],
                           lat[app], lon[app], home_lat=home[:, 0], home_lon=home[:, 1])
    hist = order | app
    amo = amount_anomaly(u[hist], ts[hist], amt[hist], u[app], ts[app], amt[app])
    edge_u = np.concatenate([u[login], u[login]])
    edge_e = np.concatenate([dev[login], N_DEVICES + ip[login]])  # devices and IPs, one union
    edge_t = np.concatenate([pos[login], pos[login]])
    order_e = np.argsort(edge_u, kind="stable")
    indptr = np.zeros(N_USERS + 1, dtype=np.int64)
    np.cumsum(np.bincount(edge_u, minlength=N_USERS), out=indptr[1:])
    shared = shared_entity_features_at(
        indptr, edge_e[order_e], N_DEVICES + N_IPS, u[app], pos[app],
        edge_time=edge_t[order_e], label_cutoff=ts[app], fraud_visible_from=fraud_from,
        hub_degree=HUB,
    )
    merch = merchant_signals(reports.merchant, reports.day, reports.gmv, reports.refunds,
                             reports.inventory, mer[app], ts[app])

    # ---- incremental: replay in stream order ------------------------------------------
    v_user, v_ip, v_new, v_app = (VelocityState() for _ in range(4))
    first, locs, amounts = FirstSeenState(), LocationState(), AmountState()
    graph, merchants, orders = SharedEntityState(HUB), MerchantState(), SegmentAccumulator()
    for uu in range(N_USERS):
        locs.set_home(uu, home[uu, 0], home[uu, 1])
    for r in reports.itertuples():
        merchants.add_report(r.merchant, r.day, r.gmv, r.refunds, r.inventory)
    li = ai = 0
    for i in range(n):
        ui, ti = int(u[i]), int(ts[i])
        if login[i]:
            is_new = first.update(ui, int(dev[i]))
            assert is_new == new_dev[i]
            assert v_user.update(ui, ti) == tuple(vel_user_login[li])
            assert v_ip.update(int(ip[i]), ti) == tuple(vel_ip_login[li])
            assert v_new.update(ui, ti, is_new) == tuple(vel_user_newdev[li])
            locs.add_login(ui, ti, float(lat[i]), float(lon[i]))
            graph.add_edge(ui, int(dev[i]))
            graph.add_edge(ui, N_DEVICES + int(ip[i]))
            li += 1
        elif app[i]:
            assert v_app.update(ui, ti) == tuple(vel_user_app[ai])
            got_loc = locs.score(ui, ti, float(lat[i]), float(lon[i]))
            np.testing.assert_allclose(
                got_loc, [loc.dist_usual_km[ai], loc.dist_home_km[ai], loc.n_history[ai]],
                rtol=1e-12)
            got_amt = amounts.score(ui, ti, float(amt[i]))
            np.testing.assert_allclose(
                got_amt, [amo.ratio_to_median[ai], amo.robust_z[ai], amo.median[ai],
                          amo.mad[ai], amo.n_history[ai]], rtol=1e-12)
            np.testing.assert_allclose(
                graph.query(ui, ti), [f[ai] for f in shared], rtol=1e-12)
            np.testing.assert_allclose(
                merchants.signals(int(mer[i]), ti), [f[ai] for f in merch], rtol=1e-12)
            amounts.add(ui, ti, float(amt[i]))
            ai += 1
        elif order[i]:
            amounts.add(ui, ti, float(amt[i]))
            orders.add(ui, float(amt[i]), int(mer[i]))
        else:
            graph.set_label(ui, fraud_visible_from=ti)
    assert ai == int(app.sum()) and ai > min_apps
    assert (shared.shared_accounts > 0).mean() > 0.5 and shared.fraud_neighbours.sum() > 0
    assert shared.hub_entities.max() >= 1

    # ---- as of the end: every entity ----------------------------------------------------
    t_end = int(ts[-1])
    as_of = velocity_as_of(u[login], ts[login], N_USERS, t_end, DEFAULT_WINDOWS)
    everyone = shared_entity_features(indptr, edge_e[order_e], N_DEVICES + N_IPS,
                                      as_of=n, edge_time=edge_t[order_e], label_cutoff=NEVER,
                                      fraud_visible_from=fraud_from, hub_degree=HUB)
    assert everyone.shared_accounts.sum() > 0 and everyone.fraud_neighbours.sum() > 0
    by_user = np.argsort(u[order], kind="stable")
    optr = np.zeros(N_USERS + 1, dtype=np.int64)
    np.cumsum(np.bincount(u[order], minlength=N_USERS), out=optr[1:])
    o_amt, o_mer = amt[order][by_user], mer[order][by_user]
    o_sum, o_max = segment_sum(optr, o_amt), segment_max(optr, o_amt)
    o_cnt, o_dis = segment_count(optr), segment_count_distinct(optr, o_mer)
    for uu in range(N_USERS):
        assert v_user.counts(uu, t_end) == tuple(as_of[uu])
        np.testing.assert_allclose(graph.query(uu, NEVER), [f[uu] for f in everyone],
                                   rtol=1e-12)
        st = orders.get(uu)
        assert (st.count, len(st.distinct), st.maximum()) == (o_cnt[uu], o_dis[uu], o_max[uu])
        assert st.sum == pytest.approx(o_sum[uu], rel=1e-12)
