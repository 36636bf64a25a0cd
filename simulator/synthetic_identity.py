"""Synthetic / thin identities: new accounts without real purchase history, whose contact data
is recycled: numbers that belonged to honest people, an operator's small pool of numbers, and
one recycled list of emergency contacts reused across the operator's identities.

What hides them: most have their own clean device and a new address, and an honest newcomer with
a recycled number looks the same. What betrays them: thin history, quick bust-out, contacts and
numbers shared with unrelated accounts.
"""

from __future__ import annotations

import numpy as np

from simulator._actors import (
    add_accounts,
    available_users,
    borrowed_history,
    groups_needed,
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
    DAY,
    FRAUDSTER,
    HOUR,
    PATTERN_CODE,
    WorldBuilder,
)
from simulator._geo import CITY_LAT, CITY_LON, CITY_WEIGHTS, N_CITIES
from simulator._sampling import event_times
from simulator.behaviour import pick_merchants, record_applications

PATTERN = PATTERN_CODE["synthetic_identity"]


def plant_synthetic_identities(b: WorldBuilder, rng: np.random.Generator, n_apps: int) -> None:
    """Plant operators whose identities produce about ``n_apps`` applications.

    Args:
        b (WorldBuilder): the world, honest population and behaviour already built.
        rng (np.random.Generator): random source of this pattern.
        n_apps (int): target number of fraud applications.
    """
    cfg = b.config.synthetic_identity
    per_member = (cfg.apps_min + cfg.apps_max) / 2
    g = groups_needed(n_apps, (cfg.identities_min + cfg.identities_max) / 2 * per_member)
    drawn = rng.integers(cfg.identities_min, cfg.identities_max + 1, size=2 * g + 4)
    sizes = sizes_for_target(n_apps, per_member, drawn, min_size=cfg.identities_min)
    g = len(sizes)
    groups = b.new_groups(g)
    op = np.repeat(np.arange(g), sizes)
    s = len(op)
    city = rng.choice(N_CITIES, size=g, p=CITY_WEIGHTS)
    den_lat = CITY_LAT[city] + 0.05 * rng.standard_normal(g)
    den_lon = CITY_LON[city] + 0.05 * rng.standard_normal(g)
    latest = b.end - (cfg.nurture_days_max + 3) * DAY
    created = b.start - 30 * DAY + (rng.random(s) * max(latest - b.start + 30 * DAY, DAY)
                                    ).astype(np.int64)
    first_app = np.minimum(created + rng.integers(cfg.nurture_days_min, cfg.nurture_days_max + 1,
                                                  size=s) * DAY, b.end - 2 * DAY)
    first_app = np.maximum(first_app, b.start)
    # Each identity claims to live somewhere in the operator's city.
    users = add_accounts(b, rng, city=city[op], created_at=created, role=FRAUDSTER,
                         pattern=PATTERN, group=groups[op])
    u = b.users.frame()
    new_homes(b, rng, users, city[op], u["lat"][users], u["lon"][users], created)

    # Numbers: recycled from honest users, from the operator's pool, or new.
    honest_links = b.user_phones.frame()
    honest_phone = honest_links["phone"][honest_links["user"] < b.honest_users]
    o_start, o_size = pools(b, "phones", np.full(g, 2), pool=True)
    kind = rng.random(s)
    phone = np.where(kind < cfg.recycled_phone_prob,
                     honest_phone[rng.integers(0, len(honest_phone), size=s)],
                     pool_member(rng, o_start, o_size, op))
    fresh = kind >= cfg.recycled_phone_prob + cfg.operator_phone_prob
    phone[fresh] = b.new_entities("phones", int(fresh.sum()))
    b.user_phones.append(user=users, phone=phone, since=created)

    # Devices: mostly clean, else the operator's.
    dv_start, dv_size = pools(b, "devices", rng.integers(1, 3, size=g), os=0)
    device = pool_member(rng, dv_start, dv_size, op)
    own = rng.random(s) < cfg.own_device_prob
    device[own] = new_devices(b, rng, int(own.sum()))

    # Recycled emergency contacts: one list of honest users per operator.
    free = available_users(b)
    lists = free[rng.integers(0, len(free), size=(g, cfg.contact_list_size))]
    who = np.repeat(np.arange(s), 2)
    contact = lists[op[who], rng.integers(0, cfg.contact_list_size, size=len(who))]
    pairs = np.unique(users[who] * (1 << 32) + contact)
    b.contacts.append(user=pairs >> 32, contact=pairs & 0xFFFFFFFF,
                      since=b.users.col("created_at")[pairs >> 32])

    mobile = np.array([p[0] for p in b.mobile_ips_by_city])
    dc = b.datacenter_ips[rng.integers(0, len(b.datacenter_ips), size=s)]
    ip = np.where(rng.random(s) < 0.6, mobile[city[op]], dc)
    lat = den_lat[op] + 0.01 * rng.standard_normal(s)
    lon = den_lon[op] + 0.01 * rng.standard_normal(s)
    warmup_logins(b, rng, users, np.maximum(created, b.start), first_app, 2.0, device, ip,
                  lat, lon)

    # At most a couple of tiny warm-up orders: no real purchase history.
    k = rng.integers(0, cfg.warmup_orders_max + 1, size=s)
    w = np.repeat(np.arange(s), k)
    if len(w):
        b.orders.append(user=users[w], merchant=pick_merchants(b, rng, city[op[w]], 1.0),
                        ts=event_times(rng, np.maximum(created[w], b.start), first_app[w]),
                        amount=np.round(rng.uniform(15, 80, size=len(w)), 2), bnpl=False,
                        returned=False, application=-1)
    if cfg.history_prob > 0:
        shops = np.flatnonzero(rng.random(s) < cfg.history_prob)
        borrowed_history(b, rng, users[shops], created[shops], first_app[shops],
                         city[op[shops]], device[shops], ip[shops], lat[shops], lon[shops])

    # Bust-out: maybe a small BNPL purchase first, then cash within days.
    k = rng.integers(cfg.apps_min, cfg.apps_max + 1, size=s)
    who = np.repeat(np.arange(s), k)
    nth = np.arange(len(who)) - np.repeat(np.cumsum(k) - k, k)
    ts = np.minimum(first_app[who] + nth * rng.integers(1, cfg.app_gap_days_max + 1,
                                                        size=len(who)) * DAY
                    + rng.integers(0, 12 * HOUR, size=len(who)), b.end - 1)
    product = np.where((nth == 0) & (rng.random(len(who)) < 0.5), BNPL, CASH_LOAN)
    merchant = np.where(product == BNPL, pick_merchants(b, rng, city[op[who]], 1.0), -1)
    amount = np.where(product == BNPL, np.round(rng.uniform(300, 1500, size=len(who)), 2),
                      np.round(cfg.amount_median * np.exp(0.5 * rng.standard_normal(len(who))),
                               -2))
    record_applications(b, rng, user=users[who], product=product, amount=amount, ts=ts,
                        device=device[who], ip=ip[who], lat=lat[who], lon=lon[who],
                        merchant=merchant, pattern=PATTERN, group=groups[op[who]],
                        default_prob=cfg.default_prob,
                        returned=np.zeros(len(who), dtype=bool))
