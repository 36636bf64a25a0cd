"""Sales inflation before a merchant loan: for weeks before applying, a merchant's GMV jumps
(brushed orders from a few fake buyers on one or two devices) while its inventory does not move;
then the owner borrows against the inflated sales.

What hides it: honest merchants grow and have seasons; the loan application itself comes from
the owner's usual phone and home. What betrays it: the GMV jump without inventory turnover, the
repetitive orders of a handful of new buyer accounts.
"""

from __future__ import annotations

import numpy as np

from simulator._actors import (
    add_accounts,
    mark_users,
    new_devices,
    new_homes,
    new_phones,
    pool_member,
    warmup_logins,
)
from simulator._builder import (
    DAY,
    FRAUDSTER,
    MERCHANT_LOAN,
    PATTERN_CODE,
    SME_OWNER_LOAN,
    WorldBuilder,
)
from simulator._catalogue import LARGE, TICKET_MEDIAN
from simulator.behaviour import record_applications, session_context

PATTERN = PATTERN_CODE["sales_inflation"]


def plant_sales_inflation(b: WorldBuilder, rng: np.random.Generator, n_apps: int) -> None:
    """Plant inflating merchants whose owners file about ``n_apps`` loan applications.

    Args:
        b (WorldBuilder): the world, honest population and behaviour already built.
        rng (np.random.Generator): random source of this pattern.
        n_apps (int): target number of fraud applications.
    """
    cfg = b.config.sales_inflation
    m = b.merchants.frame()
    candidates = np.flatnonzero((m["pattern"] == 0) & (m["size"] >= 1) & (m["size"] < LARGE))
    g = min(max(1, int(round(n_apps / (1 + cfg.sme_loan_prob)))), len(candidates))
    merchants = candidates[rng.permutation(len(candidates))[:g]]
    groups = b.new_groups(g)
    b.merchants.update("pattern", merchants, PATTERN)
    b.merchants.update("group", merchants, groups)
    owners = m["owner"][merchants]
    mark_users(b, owners, role=FRAUDSTER, pattern=PATTERN, group=groups)

    days = b.config.days
    win = np.minimum(rng.integers(cfg.window_days_min, cfg.window_days_max + 1, size=g),
                     max(days - 12, 1))
    loan_day = (win + 10 + (rng.random(g) * np.maximum(days - win - 11, 1))).astype(np.int64)
    loan_day = np.minimum(loan_day, days - 1)
    start_day = np.maximum(loan_day - win, 0)
    factor = rng.uniform(cfg.factor_min, cfg.factor_max, size=g)
    b.inflation.append(merchant=merchants, start_day=start_day, end_day=loan_day, factor=factor)

    # Fake buyers brushing orders: new accounts, one or two devices per merchant.
    sizes = rng.integers(cfg.buyers_min, cfg.buyers_max + 1, size=g)
    shop = np.repeat(np.arange(g), sizes)
    city = m["city"][merchants].astype(np.int64)
    win_start = b.start + start_day * DAY
    created = win_start[shop] - rng.integers(1, 15 * DAY, size=len(shop))
    buyers = add_accounts(b, rng, city=city[shop], created_at=created, role=FRAUDSTER,
                          pattern=PATTERN, group=groups[shop])
    u = b.users.frame()
    new_homes(b, rng, buyers, city[shop], u["lat"][buyers], u["lon"][buyers], created)
    new_phones(b, buyers, created)
    n_dev = rng.integers(1, 3, size=g)
    dev = new_devices(b, rng, int(n_dev.sum()))
    dev_start = dev[0] + np.concatenate([[0], np.cumsum(n_dev)[:-1]])
    buyer_device = pool_member(rng, dev_start, n_dev, shop)
    buyer_ip = b.datacenter_ips[rng.integers(0, len(b.datacenter_ips), size=g)][shop]
    lat, lon = u["lat"][buyers], u["lon"][buyers]
    warmup_logins(b, rng, buyers, np.maximum(created, b.start),
                  b.start + loan_day[shop] * DAY, 4.0, buyer_device, buyer_ip, lat, lon)
    k = rng.integers(cfg.buyer_orders_min, cfg.buyer_orders_max + 1, size=len(shop))
    who = np.repeat(np.arange(len(shop)), k)
    s = shop[who]
    lo = np.maximum(win_start[s], created[who] + 3600)
    hi = b.start + loan_day[s] * DAY
    ts = lo + (rng.random(len(who)) * np.maximum(hi - lo, 1)).astype(np.int64)
    ticket = TICKET_MEDIAN[m["category"][merchants[s]]]
    b.orders.append(user=buyers[who], merchant=merchants[s], ts=ts,
                    amount=np.round(ticket * rng.uniform(0.9, 1.1, size=len(who)), 0),
                    bnpl=False, returned=rng.random(len(who)) < 0.3, application=-1)
    b.logins.append(user=buyers[who], ts=ts - 120, device=buyer_device[who], ip=buyer_ip[who],
                    lat=lat[who], lon=lon[who])

    # The loan, from the owner's usual phone and place.
    loan_ts = b.start + loan_day * DAY + rng.integers(8 * 3600, 20 * 3600, size=g)
    inflated = m["base_gmv"][merchants] * factor
    amount = np.maximum(np.round(inflated * cfg.loan_days_of_gmv * rng.uniform(0.8, 1.5, g), -3),
                        5000.0)
    sme = rng.random(g) < cfg.sme_loan_prob
    sme_ts = np.minimum(loan_ts + rng.integers(1, 10, size=g) * DAY, b.end - 1)
    user = np.concatenate([owners, owners[sme]])
    ts = np.concatenate([loan_ts, sme_ts[sme]])
    product = np.concatenate([np.full(g, MERCHANT_LOAN), np.full(int(sme.sum()), SME_OWNER_LOAN)])
    amount = np.concatenate([amount, 2 * amount[sme]])
    merchant = np.concatenate([merchants, np.full(int(sme.sum()), -1)])
    grp = np.concatenate([groups, groups[sme]])
    device, ip, glat, glon = session_context(b, rng, user, ts)
    record_applications(b, rng, user=user, product=product, amount=amount, ts=ts, device=device,
                        ip=ip, lat=glat, lon=glon, merchant=merchant, pattern=PATTERN,
                        group=grp, default_prob=cfg.default_prob)
