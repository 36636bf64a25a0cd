"""Fraud rings: accounts sharing small pools of devices, phones and addresses, applying for
cash in a burst and never repaying.

What hides them: a quarter of the accounts apply from their own clean device, some accounts are
old (bought) with decoy orders, proxies are mixed with carrier NAT hubs, and some rings spoof
GPS. What betrays them: the shared pools, the burst, the closed emergency-contact network.
"""

from __future__ import annotations

import numpy as np

from simulator._actors import (
    add_accounts,
    available_users,
    borrowed_history,
    groups_needed,
    link_homes,
    log_uniform_mean,
    mark_users,
    new_devices,
    other_members,
    pick_in_city,
    pool_member,
    pools,
    sizes_for_target,
    warmup_logins,
)
from simulator._builder import (
    BNPL,
    CASH_LOAN,
    DAY,
    FRAUDSTER,
    HOUR,
    PATTERN_CODE,
    RESIDENTIAL,
    WorldBuilder,
)
from simulator._catalogue import TICKET_MEDIAN
from simulator._geo import CITY_LAT, CITY_LON, CITY_WEIGHTS, N_CITIES
from simulator._sampling import event_times, log_uniform_int
from simulator.behaviour import pick_merchants, record_applications

PATTERN = PATTERN_CODE["fraud_ring"]


def plant_fraud_rings(b: WorldBuilder, rng: np.random.Generator, n_apps: int) -> None:
    """Plant rings producing about ``n_apps`` applications.

    Args:
        b (WorldBuilder): the world, honest population and behaviour already built.
        rng (np.random.Generator): random source of this pattern.
        n_apps (int): target number of fraud applications.
    """
    cfg = b.config.fraud_ring
    per_member = (cfg.apps_min + cfg.apps_max) / 2
    g = groups_needed(n_apps, log_uniform_mean(cfg.size_min, cfg.size_max) * per_member)
    drawn = log_uniform_int(rng, cfg.size_min, cfg.size_max, 2 * g + 4)
    sizes = sizes_for_target(n_apps, per_member, drawn, min_size=cfg.size_min)
    g = len(sizes)
    groups = b.new_groups(g)
    ring = np.repeat(np.arange(g), sizes)
    s = len(ring)
    city = rng.choice(N_CITIES, size=g, p=CITY_WEIGHTS)
    den_lat = CITY_LAT[city] + 0.05 * rng.standard_normal(g)
    den_lon = CITY_LON[city] + 0.05 * rng.standard_normal(g)
    burst_len = int(cfg.burst_hours * HOUR)
    burst = b.start + 20 * DAY + (rng.random(g) * max(b.end - b.start - 20 * DAY
                                                      - max(3 * DAY, burst_len), DAY)
                                  ).astype(np.int64)
    aged = rng.random(s) < cfg.aged_account_prob
    created = np.where(aged, b.start - rng.integers(60, 700, size=s) * DAY,
                       burst[ring] - rng.integers(3, cfg.new_account_days_max, size=s) * DAY
                       - rng.integers(0, DAY, size=s))
    bought = np.zeros(s, dtype=bool)
    users = np.empty(s, dtype=np.int64)
    joined = created.copy()
    if cfg.bought_account_prob > 0:
        bought, users[:] = _buy_accounts(b, rng, city[ring], cfg.bought_account_prob)
        joined[bought] = burst[ring[bought]] - rng.integers(3, cfg.new_account_days_max,
                                                            size=int(bought.sum())) * DAY
        mark_users(b, users[bought], role=FRAUDSTER, pattern=PATTERN,
                   group=groups[ring[bought]])
    new = ~bought
    users[new] = add_accounts(b, rng, city=city[ring[new]], created_at=created[new],
                              role=FRAUDSTER, pattern=PATTERN, group=groups[ring[new]])

    # Shared pools: devices, phones, home addresses, proxy IPs.
    n_dev = rng.integers(cfg.devices_min, cfg.devices_max + 1, g)
    if cfg.devices_per_account > 0:
        n_dev = np.maximum(np.ceil(sizes * cfg.devices_per_account), 1).astype(np.int64)
    d_start, d_size = pools(b, "devices", n_dev, os=0)
    device = pool_member(rng, d_start, d_size, ring)
    clean = rng.random(s) < cfg.clean_device_prob
    device[clean] = new_devices(b, rng, int(clean.sum()))
    p_start, p_size = pools(b, "phones", np.maximum(np.ceil(sizes * cfg.phones_per_account),
                                                   1).astype(np.int64))
    # NOTE: a bought account keeps its own phone and home; the ring adds neither.
    phone = pool_member(rng, p_start, p_size, ring)
    b.user_phones.append(user=users[new], phone=phone[new], since=created[new])
    n_addr = rng.integers(1, cfg.addresses_max + 1, g)
    a_city = np.repeat(city, n_addr)
    a_lat = np.repeat(den_lat, n_addr) + 0.01 * rng.standard_normal(len(a_city))
    a_lon = np.repeat(den_lon, n_addr) + 0.01 * rng.standard_normal(len(a_city))
    a_start, a_size = pools(b, "addresses", n_addr, city=a_city, lat=a_lat, lon=a_lon)
    home = pool_member(rng, a_start, a_size, ring)
    link_homes(b, users[new], home[new], created[new])
    n_ip = rng.integers(1, 3, g)
    ip_city = np.repeat(city, n_ip)
    ip_start, ip_size = pools(b, "ips", n_ip, kind=RESIDENTIAL, city=ip_city,
                              lat=CITY_LAT[ip_city], lon=CITY_LON[ip_city])
    # NOTE: half the proxies are shared datacenter exits that honest VPN users also use.
    use_dc = rng.random(g) < 0.5
    dc = b.datacenter_ips[rng.integers(0, len(b.datacenter_ips), size=g)]

    def ip_for(owner_ring: np.ndarray) -> np.ndarray:
        own = pool_member(rng, ip_start, ip_size, owner_ring)
        proxy = np.where(use_dc[owner_ring], dc[owner_ring], own)
        mobile = np.array([pool[rng.integers(len(pool))] for pool in b.mobile_ips_by_city])
        return np.where(rng.random(len(owner_ring)) < cfg.proxy_prob, proxy,
                        mobile[city[owner_ring]])

    spoof = rng.random(g) < cfg.gps_spoof_prob

    def gps(owner_ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = len(owner_ring)
        fake = rng.choice(N_CITIES, size=k, p=CITY_WEIGHTS)
        sp = spoof[owner_ring]
        lat = np.where(sp, CITY_LAT[fake], den_lat[owner_ring]) + 0.003 * rng.standard_normal(k)
        lon = np.where(sp, CITY_LON[fake], den_lon[owner_ring]) + 0.003 * rng.standard_normal(k)
        return lat, lon

    # Warm-up logins and, for aged accounts, decoy orders.
    lat, lon = gps(ring)
    warmup_logins(b, rng, users, np.maximum(joined, b.start), burst[ring], 3.0, device,
                  ip_for(ring), lat, lon)
    decoy = np.repeat(np.flatnonzero(aged & new), rng.poisson(3.0, size=int((aged & new).sum())))
    if len(decoy):
        ts = event_times(rng, np.full(len(decoy), b.start), burst[ring[decoy]])
        merchant = pick_merchants(b, rng, city[ring[decoy]], 0.5)
        amount = TICKET_MEDIAN[b.merchants.col("category")[merchant]] * np.exp(
            0.5 * rng.standard_normal(len(decoy)))
        b.orders.append(user=users[decoy], merchant=merchant, ts=ts, amount=np.round(amount, 2),
                        bnpl=False, returned=False, application=-1)
    if cfg.history_prob > 0:
        shops = np.flatnonzero(new & (rng.random(s) < cfg.history_prob))
        r = ring[shops]
        lat, lon = gps(r)
        borrowed_history(b, rng, users[shops], created[shops], burst[r], city[r], device[shops],
                         ip_for(r), lat, lon)

    # The burst.
    k = rng.integers(cfg.apps_min, cfg.apps_max + 1, size=s)
    who = np.repeat(np.arange(s), k)
    r = ring[who]
    ts = np.minimum(burst[r] + (rng.random(len(who)) * cfg.burst_hours * HOUR).astype(np.int64),
                    b.end - 1)
    product = np.where(rng.random(len(who)) < cfg.cash_share, CASH_LOAN, BNPL)
    merchant = np.where(product == BNPL, pick_merchants(b, rng, city[r], 0.5), -1)
    amount = np.round(cfg.amount_median * np.exp(0.5 * rng.standard_normal(len(who))), -2)
    lat, lon = gps(r)
    record_applications(b, rng, user=users[who], product=product, amount=amount, ts=ts,
                        device=device[who], ip=ip_for(r), lat=lat, lon=lon, merchant=merchant,
                        pattern=PATTERN, group=groups[r], default_prob=cfg.default_prob,
                        returned=np.zeros(len(who), dtype=bool))

    # A closed network: members list each other as emergency contacts.
    u, c = other_members(rng, users, ring, 2)
    join_at = np.zeros(len(b.users), dtype=np.int64)
    join_at[users] = np.maximum(joined, b.users.col("created_at")[users])
    b.contacts.append(user=u, contact=c, since=np.maximum(join_at[u], join_at[c]))


def _buy_accounts(b: WorldBuilder, rng: np.random.Generator, city: np.ndarray, prob: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Which ring places go to a bought honest account (``prob`` each), and which account.

    Accounts for sale are honest users of the ring's city, at least 180 days old at the start
    of the window; a place whose city has none left, or whose pick another place took, gets a
    new account instead.

    Returns:
        tuple[np.ndarray, np.ndarray]: per place, whether it is bought and the account
        (``-1`` where not).
    """
    free = available_users(b)
    free = free[b.users.col("created_at")[free] <= b.start - 180 * DAY]
    want = rng.random(len(city)) < prob
    account = np.full(len(city), -1, dtype=np.int64)
    account[want] = pick_in_city(rng, free, b.users.col("city")[free].astype(np.int64),
                                 city[want])
    # NOTE: an account picked twice is sold once; the later places get new accounts.
    taken = account >= 0
    _, first = np.unique(account[taken], return_index=True)
    keep = np.zeros(int(taken.sum()), dtype=bool)
    keep[first] = True
    account[np.flatnonzero(taken)[~keep]] = -1
    return account >= 0, account
