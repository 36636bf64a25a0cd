"""Merchant collusion / BNPL cash-out: mules make high-value BNPL purchases at a colluding
merchant, who pays them out in cash (half of the orders show as returned).

What hides it: half the mules are ordinary existing customers on their own phones; the
merchant is an established small or medium shop whose other sales are genuine, and half the
cash-outs are paid off the books instead of refunded. What betrays it: many large BNPL tickets
at one shop, a refund spike, mules standing in the shop (GPS, the shop's network, sometimes its
device).
"""

from __future__ import annotations

import numpy as np

from simulator._actors import (
    add_accounts,
    available_users,
    borrowed_history,
    groups_needed,
    mark_users,
    new_devices,
    new_homes,
    new_phones,
    other_members,
    pick_in_city,
    sizes_for_target,
    warmup_logins,
)
from simulator._builder import (
    ACCOMPLICE,
    BNPL,
    DAY,
    FRAUDSTER,
    PATTERN_CODE,
    RESIDENTIAL,
    WorldBuilder,
)
from simulator._catalogue import LARGE
from simulator.behaviour import record_applications

PATTERN = PATTERN_CODE["merchant_collusion"]


def plant_merchant_collusion(b: WorldBuilder, rng: np.random.Generator, n_apps: int) -> None:
    """Plant colluding merchants whose mules produce about ``n_apps`` BNPL applications.

    Args:
        b (WorldBuilder): the world, honest population and behaviour already built.
        rng (np.random.Generator): random source of this pattern.
        n_apps (int): target number of fraud applications.
    """
    cfg = b.config.merchant_collusion
    per_member = (cfg.apps_min + cfg.apps_max) / 2
    g = groups_needed(n_apps, (cfg.mules_min + cfg.mules_max) / 2 * per_member)
    drawn = rng.integers(cfg.mules_min, cfg.mules_max + 1, size=2 * g + 4)
    sizes = sizes_for_target(n_apps, per_member, drawn, min_size=cfg.mules_min)
    m = b.merchants.frame()
    candidates = np.flatnonzero((m["pattern"] == 0) & (m["size"] >= 1) & (m["size"] < LARGE))
    g = min(len(sizes), len(candidates))
    sizes = sizes[:g]
    merchants = candidates[rng.permutation(len(candidates))[:g]]
    groups = b.new_groups(g)
    b.merchants.update("pattern", merchants, PATTERN)
    b.merchants.update("group", merchants, groups)
    owners = m["owner"][merchants]
    mark_users(b, owners, role=FRAUDSTER, pattern=PATTERN, group=groups)

    win_len = rng.integers(cfg.window_days_min, cfg.window_days_max + 1, size=g) * DAY
    win_start = b.start + (rng.random(g) * np.maximum(b.end - b.start - win_len, DAY)
                           ).astype(np.int64)
    win_end = np.minimum(win_start + win_len, b.end - 1)
    shop_city = m["city"][merchants].astype(np.int64)
    shop_lat, shop_lon = m["lat"][merchants], m["lon"][merchants]
    shop_ip = b.new_entities("ips", g, kind=RESIDENTIAL, city=shop_city, lat=shop_lat,
                             lon=shop_lon)
    shop_device = new_devices(b, rng, g)

    # Mules: existing customers of the city, or new accounts opened for the scheme.
    shop = np.repeat(np.arange(g), sizes)
    recruited = rng.random(len(shop)) < cfg.recruited_prob
    free = available_users(b)
    u = b.users.frame()
    mule = np.empty(len(shop), dtype=np.int64)
    pick = pick_in_city(rng, free, u["city"][free].astype(np.int64), shop_city[shop[recruited]])
    got = pick >= 0
    idx = np.flatnonzero(recruited)
    mule[idx[got]] = pick[got]
    recruited[idx[~got]] = False
    # NOTE: a user picked twice would join two schemes; keep the first pick only.
    _, first = np.unique(mule[recruited], return_index=True)
    dup = np.ones(int(recruited.sum()), dtype=bool)
    dup[first] = False
    recruited[np.flatnonzero(recruited)[dup]] = False
    mark_users(b, mule[recruited], role=ACCOMPLICE, pattern=PATTERN,
               group=groups[shop[recruited]])
    fresh = ~recruited
    nf = int(fresh.sum())
    created = win_start[shop[fresh]] - rng.integers(0, 20 * DAY, size=nf)
    if cfg.aged_mule_prob > 0:
        aged = rng.random(nf) < cfg.aged_mule_prob
        created[aged] = (win_start[shop[fresh][aged]]
                         - rng.integers(cfg.aged_days_min, cfg.aged_days_max,
                                        size=int(aged.sum())) * DAY
                         - rng.integers(0, DAY, size=int(aged.sum())))
    mule[fresh] = add_accounts(b, rng, city=shop_city[shop[fresh]], created_at=created,
                               role=FRAUDSTER, pattern=PATTERN, group=groups[shop[fresh]])
    uf = b.users.frame()
    new_homes(b, rng, mule[fresh], shop_city[shop[fresh]], uf["lat"][mule[fresh]],
              uf["lon"][mule[fresh]], created)
    new_phones(b, mule[fresh], created)
    mule_device = np.where(recruited, b.user_devices["primary"][np.where(recruited, mule, 0)], -1)
    mule_device[fresh] = new_devices(b, rng, nf)
    warmup_logins(b, rng, mule[fresh], np.maximum(created, b.start), win_end[shop[fresh]], 2.0,
                  mule_device[fresh], shop_ip[shop[fresh]], shop_lat[shop[fresh]],
                  shop_lon[shop[fresh]])
    if cfg.history_prob > 0:
        shops = np.flatnonzero(rng.random(nf) < cfg.history_prob)
        who, city = mule[fresh][shops], shop_city[shop[fresh][shops]]
        mobile = np.array([p[0] for p in b.mobile_ips_by_city])
        borrowed_history(b, rng, who, created[shops], win_start[shop[fresh][shops]], city,
                         mule_device[fresh][shops], mobile[city], uf["lat"][who],
                         uf["lon"][who])
    order = np.argsort(shop[fresh], kind="stable")
    a, c = other_members(rng, mule[fresh][order], shop[fresh][order], 1)
    b.contacts.append(user=a, contact=c, since=np.maximum(uf["created_at"][a],
                                                          uf["created_at"][c]))

    # High-value BNPL purchases in the shop, mostly refunded in cash.
    k = rng.integers(cfg.apps_min, cfg.apps_max + 1, size=len(shop))
    who = np.repeat(np.arange(len(shop)), k)
    s = shop[who]
    lo = np.maximum(win_start[s], uf["created_at"][mule[who]] + DAY)
    ts = lo + (rng.random(len(who)) * np.maximum(win_end[s] - lo, 1)).astype(np.int64)
    device = np.where(rng.random(len(who)) < cfg.shop_device_prob, shop_device[s],
                      mule_device[who])
    amount = np.round(cfg.amount_median * np.exp(0.4 * rng.standard_normal(len(who))), -1)
    record_applications(
        b, rng, user=mule[who], product=np.full(len(who), BNPL), amount=amount, ts=ts,
        device=device, ip=shop_ip[s], lat=shop_lat[s] + 0.001 * rng.standard_normal(len(who)),
        lon=shop_lon[s] + 0.001 * rng.standard_normal(len(who)), merchant=merchants[s],
        pattern=PATTERN, group=groups[s], default_prob=cfg.default_prob,
        returned=rng.random(len(who)) < cfg.returned_prob)
