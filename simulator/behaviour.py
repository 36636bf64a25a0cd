"""Honest behaviour: sessions (device, IP, GPS), logins, orders and applications.

:func:`session_context` decides where and on what an honest user acts at a given time; the
fraud modules reuse :func:`record_applications` so that every application, wherever it comes
from, carries a login and (for BNPL) the order it finances, built the same way.
"""

from __future__ import annotations

import numpy as np

from simulator._builder import (
    BNPL,
    CASH_LOAN,
    DAY,
    MERCHANT_LOAN,
    SME_OWNER_LOAN,
    WorldBuilder,
)
from simulator._catalogue import LARGE, SIZE_WEIGHT, TICKET_MEDIAN
from simulator._geo import CITY_LAT, CITY_LON, N_CITIES, other_city
from simulator._sampling import counts_and_owners, event_times, weighted_pick_within

# Channels of an honest session and their probabilities.
_HOME, _MOBILE, _OFFICE, _WIFI, _TRAVEL = range(5)
_CHANNEL_P = np.array([0.45, 0.30, 0.15, 0.07, 0.03])
_SLICE = 2_000_000


def session_context(b: WorldBuilder, rng: np.random.Generator, user: np.ndarray,
                    ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Device, IP and GPS of honest sessions.

    Args:
        b (WorldBuilder): the world; ``user`` must be honest-population users.
        rng (np.random.Generator): random source.
        user (np.ndarray): user per session.
        ts (np.ndarray): time per session.

    Returns:
        tuple: ``(device, ip, lat, lon)`` arrays, one entry per session.
    """
    n = len(user)
    d = b.user_devices
    switched = d["switched"][user]
    switch_ts = b.device_switch_ts[user]
    device = np.where((switched >= 0) & (ts >= switch_ts) & (rng.random(n) < 0.95),
                      switched, d["primary"][user])
    fam, second = d["family"][user], d["second"][user]
    u = rng.random(n)
    device = np.where((fam >= 0) & (u < 0.2), fam, device)
    device = np.where((second >= 0) & (u >= 0.2) & (u < 0.45), second, device)

    p = b.config.population
    probs = _CHANNEL_P.copy()
    probs[_TRAVEL] = p.travel_prob
    probs /= probs.sum()
    channel = rng.choice(len(probs), size=n, p=probs)
    users = b.users.frame()
    company = users["company"][user]
    channel = np.where((channel == _OFFICE) & (company < 0), _HOME, channel)
    city = users["city"][user].astype(np.int64)
    home_lat, home_lon = users["lat"][user], users["lon"][user]
    ip = b.household_ip[users["household"][user]]
    lat = home_lat + 0.002 * rng.standard_normal(n)
    lon = home_lon + 0.002 * rng.standard_normal(n)

    is_mobile = channel == _MOBILE
    ip = np.where(is_mobile, _pick_city_pool(rng, b.mobile_ips_by_city, city), ip)
    lat = np.where(is_mobile, home_lat + 0.05 * rng.standard_normal(n), lat)
    lon = np.where(is_mobile, home_lon + 0.05 * rng.standard_normal(n), lon)

    comp = b.companies.frame()
    is_office = channel == _OFFICE
    cpos = np.maximum(company, 0)
    ip = np.where(is_office, comp["ip"][cpos], ip)
    lat = np.where(is_office, comp["lat"][cpos] + 0.002 * rng.standard_normal(n), lat)
    lon = np.where(is_office, comp["lon"][cpos] + 0.002 * rng.standard_normal(n), lon)

    is_wifi = channel == _WIFI
    wifi = _pick_city_pool(rng, b.wifi_ips_by_city, city)
    ips = b.ips.frame()
    ip = np.where(is_wifi, wifi, ip)
    lat = np.where(is_wifi, ips["lat"][wifi] + 0.003 * rng.standard_normal(n), lat)
    lon = np.where(is_wifi, ips["lon"][wifi] + 0.003 * rng.standard_normal(n), lon)

    is_travel = channel == _TRAVEL
    away = other_city(rng, city)
    ip = np.where(is_travel, _pick_city_pool(rng, b.mobile_ips_by_city, away), ip)
    lat = np.where(is_travel, CITY_LAT[away] + 0.05 * rng.standard_normal(n), lat)
    lon = np.where(is_travel, CITY_LON[away] + 0.05 * rng.standard_normal(n), lon)

    vpn = b.vpn_user[user] & (rng.random(n) < 0.1)
    dc = b.datacenter_ips[rng.integers(0, len(b.datacenter_ips), size=n)]
    ip = np.where(vpn, dc, ip)
    return device, ip, lat, lon


def _pick_city_pool(rng: np.random.Generator, pools: list[np.ndarray],
                    city: np.ndarray) -> np.ndarray:
    sizes = np.array([len(p) for p in pools])
    starts = np.array([p[0] for p in pools])
    # NOTE: pools are contiguous position ranges (see population._ips).
    return np.asarray(starts[city] + (rng.random(len(city)) * sizes[city]).astype(np.int64))


def pick_merchants(b: WorldBuilder, rng: np.random.Generator, city: np.ndarray,
                   national_share: float) -> np.ndarray:
    """A merchant per purchase: a local one by size, or a large national one."""
    m = b.merchants.frame()
    weight = SIZE_WEIGHT[m["size"]]
    n = len(city)
    local = weighted_pick_within(rng, m["city"].astype(np.int64), weight, city)
    large = m["size"] == LARGE
    national = weighted_pick_within(rng, np.where(large, 0, 1), weight, np.zeros(n, np.int64))
    anywhere = weighted_pick_within(rng, np.zeros(len(weight), np.int64), weight,
                                    np.zeros(n, np.int64))
    national = np.where(national >= 0, national, anywhere)
    use_national = (rng.random(n) < national_share) | (local < 0)
    return np.where(use_national, national, local)


def record_applications(
    b: WorldBuilder,
    rng: np.random.Generator,
    *,
    user: np.ndarray,
    product: np.ndarray,
    amount: np.ndarray,
    ts: np.ndarray,
    device: np.ndarray,
    ip: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    merchant: np.ndarray,
    pattern: int | np.ndarray = 0,
    group: int | np.ndarray = -1,
    default_prob: float | np.ndarray = np.nan,
    returned: np.ndarray | None = None,
) -> np.ndarray:
    """Append applications with the login that precedes each and the order a BNPL one finances.

    Args:
        b (WorldBuilder): the world.
        rng (np.random.Generator): random source.
        user, product, amount, ts, device, ip, lat, lon, merchant (np.ndarray): one per
            application (``merchant`` is ``-1`` for cash and SME loans).
        pattern (int | np.ndarray): planted pattern code, 0 for honest. (default: ``0``)
        group (int | np.ndarray): ring / crew / agency id, -1 for none. (default: ``-1``)
        default_prob (float | np.ndarray): for fraud, P(a funded loan defaults); NaN lets the
            credit model decide. (default: NaN)
        returned (np.ndarray, optional): whether each BNPL order is returned; by default the
            user's return propensity decides.

    Returns:
        np.ndarray: positions of the new applications.
    """
    amount = np.round(np.asarray(amount, dtype=np.float64), 2)
    apps = b.applications.append(
        user=user, product=product, amount=amount, ts=ts, device=device, ip=ip, lat=lat,
        lon=lon, merchant=merchant, pattern=pattern, group=group, default_prob=default_prob)
    before = np.maximum(ts - rng.integers(30, 900, size=len(user)),
                        b.users.col("created_at")[user])
    b.logins.append(user=user, ts=before, device=device, ip=ip, lat=lat, lon=lon)
    is_bnpl = np.asarray(product) == BNPL
    if is_bnpl.any():
        if returned is None:
            returned = rng.random(len(user)) < b.users.col("return_prop")[user]
        b.orders.append(user=user[is_bnpl], merchant=merchant[is_bnpl], ts=ts[is_bnpl],
                        amount=amount[is_bnpl], bnpl=True, returned=returned[is_bnpl],
                        application=apps[is_bnpl])
    return apps


def build_behaviour(b: WorldBuilder, rng: np.random.Generator) -> None:
    """Logins, orders and applications of the honest population over the window."""
    cfg, bc = b.config, b.config.behaviour
    users = b.users.frame()
    n = b.honest_users
    lo = np.maximum(users["created_at"][:n], b.start)
    active_days = (b.end - lo) / DAY
    activity = users["activity"][:n].astype(np.float64)
    band = users["income_band"][:n].astype(np.float64)
    city = users["city"][:n].astype(np.int64)
    scale = active_days / 180.0

    # Logins, in slices: a session's context needs a dozen temporaries per event.
    _, owner = counts_and_owners(rng, bc.logins_per_day * active_days * activity)
    ts = event_times(rng, lo[owner], np.full(len(owner), b.end))
    for s in range(0, len(owner), _SLICE):
        o, t = owner[s: s + _SLICE], ts[s: s + _SLICE]
        device, ip, lat, lon = session_context(b, rng, o, t)
        b.logins.append(user=o, ts=t, device=device, ip=ip, lat=lat, lon=lon)

    # Orders (not financed).
    _, owner = counts_and_owners(rng, bc.orders_per_180d * scale * activity * (0.6 + 0.2 * band))
    ts = event_times(rng, lo[owner], np.full(len(owner), b.end))
    merchant = pick_merchants(b, rng, city[owner], bc.national_order_share)
    category = b.merchants.col("category")[merchant]
    amount = TICKET_MEDIAN[category] * (0.7 + 0.15 * band[owner]) * np.exp(
        0.7 * rng.standard_normal(len(owner)))
    b.orders.append(user=owner, merchant=merchant, ts=ts, amount=np.round(amount, 2),
                    bnpl=False, returned=rng.random(len(owner)) < users["return_prop"][owner],
                    application=-1)

    # BNPL at checkout.
    rate = np.where(users["bnpl_adopter"][:n], bc.bnpl_apps_per_180d * scale * activity, 0.0)
    _, owner = counts_and_owners(rng, rate)
    ts = event_times(rng, lo[owner], np.full(len(owner), b.end))
    merchant = pick_merchants(b, rng, city[owner], 0.5)
    category = b.merchants.col("category")[merchant]
    amount = TICKET_MEDIAN[category] * 1.5 * (0.7 + 0.15 * band[owner]) * np.exp(
        0.7 * rng.standard_normal(len(owner)))
    big = rng.random(len(owner)) < bc.big_purchase_prob
    amount = np.where(big, amount * rng.uniform(5, 15, size=len(owner)), amount)
    _record_honest(b, rng, owner, np.full(len(owner), BNPL), amount, ts, merchant)

    # Cash loans, at least 30 days after sign-up.
    cash_lo = np.maximum(users["created_at"][:n] + 30 * DAY, b.start)
    cash_days = np.maximum(b.end - cash_lo, 0) / DAY
    rate = np.where(users["cash_borrower"][:n], bc.cash_apps_per_180d * cash_days / 180, 0.0)
    _, owner = counts_and_owners(rng, rate)
    ts = event_times(rng, cash_lo[owner], np.full(len(owner), b.end))
    amount = np.clip(np.round(2500 * (1 + band[owner]) * np.exp(
        0.6 * rng.standard_normal(len(owner))), -2), 500, 50_000)
    _record_honest(b, rng, owner, np.full(len(owner), CASH_LOAN), amount, ts,
                   np.full(len(owner), -1))

    # Merchant loans by owners, SME owner loans by owners and the self-employed.
    m = b.merchants.frame()
    _, which = counts_and_owners(rng, np.full(len(b.merchants), bc.merchant_loan_apps_per_180d
                                              * cfg.days / 180))
    owner = m["owner"][which]
    ts = event_times(rng, np.full(len(which), b.start), np.full(len(which), b.end))
    amount = np.maximum(np.round(m["base_gmv"][which] * rng.uniform(15, 45, len(which)), -3),
                        5000.0)
    _record_honest(b, rng, owner, np.full(len(which), MERCHANT_LOAN), amount, ts, which)

    sme = np.zeros(n, dtype=bool)
    sme[m["owner"]] = True
    sme |= rng.random(n) < cfg.population.self_employed_share
    _, owner = counts_and_owners(rng, np.where(sme, bc.sme_apps_per_180d * scale, 0.0))
    ts = event_times(rng, lo[owner], np.full(len(owner), b.end))
    amount = np.clip(np.round(80_000 * np.exp(0.6 * rng.standard_normal(len(owner))), -3),
                     20_000, 500_000)
    _record_honest(b, rng, owner, np.full(len(owner), SME_OWNER_LOAN), amount, ts,
                   np.full(len(owner), -1))
    b.honest_applications = len(b.applications)
    assert N_CITIES == len(b.mobile_ips_by_city)


def _record_honest(b: WorldBuilder, rng: np.random.Generator, user: np.ndarray,
                   product: np.ndarray, amount: np.ndarray, ts: np.ndarray,
                   merchant: np.ndarray) -> None:
    device, ip, lat, lon = session_context(b, rng, user, ts)
    record_applications(b, rng, user=user, product=product, amount=amount, ts=ts, device=device,
                        ip=ip, lat=lat, lon=lon, merchant=merchant)
