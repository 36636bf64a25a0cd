"""Device farms and SIM pools: dozens of accounts on a few devices (often emulators) and a pool
of SIM cards, all joining through one network within days, each asking for a small amount.

What hides it: a quarter of the accounts were registered months earlier and left dormant,
amounts are small and unremarkable, applications spread over weeks, the network
is a datacenter exit that honest VPN users share, honest developers run emulators too. What
betrays it: many accounts per device and per number, emulators, a sign-up burst from one IP.
"""

from __future__ import annotations

import numpy as np

from simulator._actors import (
    add_accounts,
    available_users,
    borrowed_history,
    groups_needed,
    log_uniform_mean,
    new_devices,
    new_homes,
    pool_member,
    pools,
    sizes_for_target,
    warmup_logins,
)
from simulator._builder import (
    BNPL,
    CASH_LOAN,
    DATACENTER,
    DAY,
    EMULATOR,
    FRAUDSTER,
    HOUR,
    PATTERN_CODE,
    WorldBuilder,
)
from simulator._geo import CITY_LAT, CITY_LON, CITY_WEIGHTS, N_CITIES
from simulator._sampling import log_uniform_int
from simulator.behaviour import pick_merchants, record_applications

PATTERN = PATTERN_CODE["device_farm"]


def plant_device_farms(b: WorldBuilder, rng: np.random.Generator, n_apps: int) -> None:
    """Plant farms whose accounts file about ``n_apps`` applications.

    Args:
        b (WorldBuilder): the world, honest population and behaviour already built.
        rng (np.random.Generator): random source of this pattern.
        n_apps (int): target number of fraud applications.
    """
    cfg = b.config.device_farm
    per_member = (cfg.apps_min + cfg.apps_max) / 2
    g = groups_needed(n_apps, log_uniform_mean(cfg.accounts_min, cfg.accounts_max) * per_member)
    drawn = log_uniform_int(rng, cfg.accounts_min, cfg.accounts_max, 2 * g + 4)
    sizes = sizes_for_target(n_apps, per_member, drawn, min_size=cfg.accounts_min)
    g = len(sizes)
    groups = b.new_groups(g)
    farm = np.repeat(np.arange(g), sizes)
    s = len(farm)
    city = rng.choice(N_CITIES, size=g, p=CITY_WEIGHTS)
    f_lat = CITY_LAT[city] + 0.05 * rng.standard_normal(g)
    f_lon = CITY_LON[city] + 0.05 * rng.standard_normal(g)
    span = cfg.signup_days * DAY + cfg.apply_days * DAY
    farm_start = b.start + (rng.random(g) * max(b.end - b.start - span - DAY, DAY)).astype(np.int64)
    created = farm_start[farm] + (rng.random(s) * cfg.signup_days * DAY).astype(np.int64)
    dormant = rng.random(s) < cfg.dormant_prob
    created = np.where(dormant, farm_start[farm] - rng.integers(60, 300, size=s) * DAY, created)
    users = add_accounts(b, rng, city=city[farm], created_at=created, role=FRAUDSTER,
                         pattern=PATTERN, group=groups[farm],
                         lat=f_lat[farm] + 0.02 * rng.standard_normal(s),
                         lon=f_lon[farm] + 0.02 * rng.standard_normal(s))
    u = b.users.frame()
    new_homes(b, rng, users, city[farm], u["lat"][users], u["lon"][users], created)

    n_dev = rng.integers(cfg.devices_min, cfg.devices_max + 1, size=g)
    os = np.where(rng.random(int(n_dev.sum())) < cfg.emulator_prob, EMULATOR, 0)
    d_start, d_size = pools(b, "devices", n_dev, os=os)
    n_sim = np.maximum(np.ceil(sizes / cfg.accounts_per_sim), 1).astype(np.int64)
    p_start, p_size = pools(b, "phones", n_sim, pool=True)
    b.user_phones.append(user=users, phone=pool_member(rng, p_start, p_size, farm), since=created)
    n_ip = rng.integers(1, cfg.ips_max + 1, size=g)
    ip_start, ip_size = pools(b, "ips", n_ip, kind=DATACENTER, city=np.repeat(city, n_ip),
                              lat=np.repeat(CITY_LAT[city], n_ip),
                              lon=np.repeat(CITY_LON[city], n_ip))

    # Recycled contacts: a short list of honest people per farm.
    free = available_users(b)
    lists = free[rng.integers(0, len(free), size=(g, 3))]
    contact = lists[farm, rng.integers(0, 3, size=s)]
    b.contacts.append(user=users, contact=contact, since=created)

    device = pool_member(rng, d_start, d_size, farm)
    ip = pool_member(rng, ip_start, ip_size, farm)
    active = np.maximum(created, farm_start[farm])
    b.logins.append(user=users, ts=active, device=device, ip=ip,
                    lat=u["lat"][users], lon=u["lon"][users])
    warmup_logins(b, rng, users, active, active + int(cfg.apply_days * DAY), 2.0, device, ip,
                  u["lat"][users], u["lon"][users])
    if cfg.history_prob > 0:
        # NOTE: the history is lived on a phone of its own, before the account joins the farm.
        shops = np.flatnonzero(rng.random(s) < cfg.history_prob)
        who, where = users[shops], city[farm[shops]]
        mobile = np.array([p[0] for p in b.mobile_ips_by_city])
        borrowed_history(b, rng, who, created[shops], active[shops], where,
                         new_devices(b, rng, len(shops)), mobile[where], u["lat"][who],
                         u["lon"][who])

    k = rng.integers(cfg.apps_min, cfg.apps_max + 1, size=s)
    who = np.repeat(np.arange(s), k)
    f = farm[who]
    ts = np.minimum(active[who] + HOUR + (rng.random(len(who)) * cfg.apply_days * DAY
                                           ).astype(np.int64), b.end - 1)
    dev = pool_member(rng, d_start, d_size, f)
    product = np.where(rng.random(len(who)) < cfg.bnpl_share, BNPL, CASH_LOAN)
    merchant = np.where(product == BNPL, pick_merchants(b, rng, city[f], 1.0), -1)
    amount = np.where(product == BNPL, np.round(rng.uniform(200, 2000, size=len(who)), 2),
                      np.round(rng.uniform(500, 3000, size=len(who)), -2))
    spoof = (b.devices.col("os")[dev] == EMULATOR) & (rng.random(len(who)) < cfg.gps_spoof_prob)
    fake = rng.choice(N_CITIES, size=len(who), p=CITY_WEIGHTS)
    lat = np.where(spoof, CITY_LAT[fake], f_lat[f]) + 0.01 * rng.standard_normal(len(who))
    lon = np.where(spoof, CITY_LON[fake], f_lon[f]) + 0.01 * rng.standard_normal(len(who))
    record_applications(b, rng, user=users[who], product=product, amount=amount, ts=ts,
                        device=dev, ip=pool_member(rng, ip_start, ip_size, f), lat=lat, lon=lon,
                        merchant=merchant, pattern=PATTERN, group=groups[f],
                        default_prob=cfg.default_prob, returned=np.zeros(len(who), dtype=bool))
