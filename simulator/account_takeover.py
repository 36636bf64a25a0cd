"""Account takeover: a long-standing good user suddenly on a new device in a far city, applying
for a large amount within hours.

What hides it: the account itself is old and clean, a fifth of the takeovers come from the
victim's own city, some attackers wait days on the new device before applying, some ask for
only a few times the usual amount, and honest users also change phones, travel and make big
purchases. What betrays
it: the new device and place together with the jump in amount, and a crew reusing its few
devices across victims.
"""

from __future__ import annotations

import numpy as np

from simulator._actors import (
    available_users,
    groups_needed,
    mark_users,
    pool_member,
    pools,
    sizes_for_target,
    warmup_logins,
)
from simulator._builder import (
    CASH_LOAN,
    DAY,
    HOUR,
    PATTERN_CODE,
    VICTIM,
    WorldBuilder,
)
from simulator._geo import (
    CITY_DISTANCE_KM,
    CITY_LAT,
    CITY_LON,
    CITY_WEIGHTS,
    N_CITIES,
    far_city,
)
from simulator.behaviour import record_applications

PATTERN = PATTERN_CODE["account_takeover"]
FAR_KM = 500.0


def plant_account_takeovers(b: WorldBuilder, rng: np.random.Generator, n_apps: int) -> None:
    """Plant crews whose takeovers produce about ``n_apps`` applications.

    Args:
        b (WorldBuilder): the world, honest population and behaviour already built.
        rng (np.random.Generator): random source of this pattern.
        n_apps (int): target number of fraud applications.
    """
    cfg = b.config.account_takeover
    per_member = (cfg.apps_min + cfg.apps_max) / 2
    g = groups_needed(n_apps, (cfg.victims_min + cfg.victims_max) / 2 * per_member)
    drawn = rng.integers(cfg.victims_min, cfg.victims_max + 1, size=2 * g + 4)
    sizes = sizes_for_target(n_apps, per_member, drawn, min_size=1)
    g = len(sizes)

    users = b.users.frame()
    orders = b.orders.frame()
    o_order = np.lexsort((orders["ts"], orders["user"]))
    o_user, o_ts, o_amount = (orders["user"][o_order], orders["ts"][o_order],
                              orders["amount"][o_order])
    n_orders = np.bincount(o_user, minlength=len(b.users))
    o_start = np.concatenate([[0], np.cumsum(n_orders)[:-1]])
    # A victim has a history before the takeover: it comes after the min_orders-th order.
    nth = o_start + cfg.min_orders - 1
    ready = np.where(n_orders >= cfg.min_orders, o_ts[np.minimum(nth, len(o_ts) - 1)], b.end)
    earliest = np.maximum(ready + DAY, b.start + 14 * DAY)
    free = available_users(b)
    ok = free[(users["created_at"][free] <= b.start - cfg.min_tenure_days * DAY)
              & (earliest[free] < b.end - 2 * DAY)]
    victims = ok[rng.permutation(len(ok))[: int(sizes.sum())]]
    if len(victims) < sizes.sum():
        sizes = _shrink(sizes, len(victims))
        g = len(sizes)
    groups = b.new_groups(g)
    crew = np.repeat(np.arange(g), sizes)
    v = len(victims)
    mark_users(b, victims, role=VICTIM, pattern=PATTERN, group=groups[crew])

    crew_city = rng.choice(N_CITIES, size=g, p=CITY_WEIGHTS)
    d_start, d_size = pools(b, "devices", rng.integers(1, cfg.crew_devices_max + 1, size=g), os=0)
    device = pool_member(rng, d_start, d_size, crew)
    home = users["city"][victims].astype(np.int64)
    far = rng.random(v) < cfg.far_prob
    crew_far = CITY_DISTANCE_KM[crew_city[crew], home] >= FAR_KM
    place = np.where(far, np.where(crew_far, crew_city[crew], far_city(rng, home, FAR_KM)), home)
    mobile_start = np.array([p[0] for p in b.mobile_ips_by_city])
    mobile_size = np.array([len(p) for p in b.mobile_ips_by_city])
    mobile = pool_member(rng, mobile_start, mobile_size, place)
    dc = b.datacenter_ips[rng.integers(0, len(b.datacenter_ips), size=g)]
    ip = np.where((place == crew_city[crew]) & (rng.random(v) < 0.5), dc[crew], mobile)
    lat = CITY_LAT[place] + 0.04 * rng.standard_normal(v)
    lon = CITY_LON[place] + 0.04 * rng.standard_normal(v)

    lo = earliest[victims]
    takeover = lo + (rng.random(v) * (b.end - DAY - lo)).astype(np.int64)
    median = _median_before(o_start, n_orders, o_ts, o_amount, victims, takeover)
    b.logins.append(user=victims, ts=takeover, device=device, ip=ip, lat=lat, lon=lon)
    swap = rng.random(v) < cfg.phone_swap_prob
    b.user_phones.append(user=victims[swap], phone=b.new_entities("phones", int(swap.sum())),
                         since=takeover[swap] + rng.integers(60, 1800, size=int(swap.sum())))

    # Some attackers apply within hours, others wait days on the new device first.
    dwell = np.where(rng.random(v) < cfg.dwell_prob,
                     rng.integers(DAY, cfg.dwell_days_max * DAY + 1, size=v), 0)
    apply_at = np.minimum(takeover + dwell, b.end - 6 * HOUR)
    waited = dwell > 0
    warmup_logins(b, rng, victims[waited], takeover[waited], apply_at[waited], 3.0,
                  device[waited], ip[waited], lat[waited], lon[waited])
    k = rng.integers(cfg.apps_min, cfg.apps_max + 1, size=v)
    who = np.repeat(np.arange(v), k)
    ts = np.minimum(apply_at[who] + rng.integers(10 * 60, 6 * HOUR, size=len(who)), b.end - 1)
    multiple = rng.uniform(cfg.amount_multiple_min, cfg.amount_multiple_max, size=len(who))
    amount = np.maximum(np.round(multiple * median[who], -2), cfg.amount_floor)
    record_applications(b, rng, user=victims[who], product=np.full(len(who), CASH_LOAN),
                        amount=amount, ts=ts, device=device[who], ip=ip[who], lat=lat[who],
                        lon=lon[who], merchant=np.full(len(who), -1), pattern=PATTERN,
                        group=groups[crew[who]], default_prob=cfg.default_prob)


def _median_before(start: np.ndarray, count: np.ndarray, ts: np.ndarray, amount: np.ndarray,
                   users: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Median order amount of each user before a time (orders sorted by user, then time)."""
    out = np.empty(len(users))
    # NOTE: a loop over victims only (about 0.1 % of users); each has >= min_orders orders.
    for i, (u, t) in enumerate(zip(users, before, strict=True)):
        lo = start[u]
        hi = lo + int(np.searchsorted(ts[lo: lo + count[u]], t))
        out[i] = np.median(amount[lo:hi])
    return out


def _shrink(sizes: np.ndarray, total: int) -> np.ndarray:
    """Cut group sizes so that they sum to ``total`` (small worlds run out of victims)."""
    cum = np.cumsum(sizes)
    keep = cum <= total
    out = sizes[keep]
    rest = total - int(out.sum())
    return np.append(out, rest) if rest > 0 else out
