"""Helpers the pattern modules share: new accounts, their sessions, picks inside groups."""

from __future__ import annotations

import numpy as np

from simulator._builder import ANDROID, DAY, HOME, IOS, WorldBuilder
from simulator._catalogue import TICKET_MEDIAN
from simulator._geo import CITY_LAT, CITY_LON
from simulator._sampling import event_times, mean_one_lognormal
from simulator.behaviour import pick_merchants


def add_accounts(b: WorldBuilder, rng: np.random.Generator, *, city: np.ndarray,
                 created_at: np.ndarray, role: int, pattern: int, group: np.ndarray,
                 lat: np.ndarray | None = None, lon: np.ndarray | None = None) -> np.ndarray:
    """New accounts opened by or for a fraud operation; returns their positions.

    They belong to no household, circle or company; their home address, phones and contacts
    are the pattern's business.
    """
    n = len(city)
    if lat is None or lon is None:
        lat = CITY_LAT[city] + 0.06 * rng.standard_normal(n)
        lon = CITY_LON[city] + 0.06 * rng.standard_normal(n)
    m = b.config.behaviour.return_rate_mean
    return b.new_entities(
        "users", n, created_at=created_at, city=city, lat=lat, lon=lon, household=-1,
        circle=-1, income_band=rng.integers(0, 3, size=n), discipline=0.0, return_prop=m,
        activity=1.0, company=-1, home_address=-1, role=role, pattern=pattern, group=group,
    )


def mark_users(b: WorldBuilder, users: np.ndarray, *, role: int, pattern: int,
               group: np.ndarray) -> None:
    """Record that existing accounts were drawn into a pattern."""
    b.users.update("role", users, role)
    b.users.update("pattern", users, pattern)
    b.users.update("group", users, group)


def available_users(b: WorldBuilder) -> np.ndarray:
    """Honest-population users not yet part of any pattern and owning no merchant."""
    u = b.users.frame()
    n = b.honest_users
    free = (u["pattern"][:n] == 0)
    free[b.merchants.col("owner")] = False
    return np.flatnonzero(free)


def new_homes(b: WorldBuilder, rng: np.random.Generator, users: np.ndarray, city: np.ndarray,
              lat: np.ndarray, lon: np.ndarray, since: np.ndarray) -> np.ndarray:
    """A new home address per user at ``(lat, lon)``; returns the address positions."""
    addr = b.new_entities("addresses", len(users), city=city, lat=lat, lon=lon)
    b.user_addresses.append(user=users, kind=HOME, ref=addr, since=since)
    b.users.update("home_address", users, addr)
    return addr


def link_homes(b: WorldBuilder, users: np.ndarray, addr: np.ndarray, since: np.ndarray) -> None:
    """Users declare existing addresses as home."""
    b.user_addresses.append(user=users, kind=HOME, ref=addr, since=since)
    b.users.update("home_address", users, addr)


def new_phones(b: WorldBuilder, users: np.ndarray, since: np.ndarray) -> np.ndarray:
    """A new number per user; returns the phone positions."""
    phones = b.new_entities("phones", len(users))
    b.user_phones.append(user=users, phone=phones, since=since)
    return phones


def new_devices(b: WorldBuilder, rng: np.random.Generator, n: int,
                emulator_prob: float = 0.0) -> np.ndarray:
    """``n`` new devices: phones (mostly Android), or emulators with ``emulator_prob``."""
    u = rng.random(n)
    os = np.where(u < emulator_prob, 2, np.where(rng.random(n) < 0.25, IOS, ANDROID))
    return b.new_entities("devices", n, os=os)


def pool_member(rng: np.random.Generator, pool_start: np.ndarray, pool_size: np.ndarray,
                owner: np.ndarray) -> np.ndarray:
    """A uniform element of each owner's pool, pools being contiguous position ranges."""
    offset = (rng.random(len(owner)) * pool_size[owner]).astype(np.int64)
    return np.asarray(pool_start[owner] + offset)


def pools(b: WorldBuilder, table: str, sizes: np.ndarray, **cols: object
          ) -> tuple[np.ndarray, np.ndarray]:
    """New entities in ``table``, ``sizes[g]`` of them per group; returns ``(start, size)``."""
    pos = b.new_entities(table, int(sizes.sum()), **cols)
    start = (pos[0] if len(pos) else 0) + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return start.astype(np.int64), sizes.astype(np.int64)


def other_members(rng: np.random.Generator, members: np.ndarray, group_of: np.ndarray,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``k`` other members of the same group per member (members sorted by group).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(member, other)`` pairs without self-pairs.
    """
    n = len(members)
    if n == 0:
        return members, members
    starts = np.r_[True, group_of[1:] != group_of[:-1]]
    idx = np.arange(n)
    first = np.maximum.accumulate(np.where(starts, idx, 0))
    size = np.bincount(np.cumsum(starts) - 1)[np.cumsum(starts) - 1]
    who = np.repeat(idx, k)
    r = (rng.random(len(who)) * np.maximum(size[who] - 1, 1)).astype(np.int64)
    other = first[who] + (who - first[who] + 1 + r) % size[who]
    keep = other != who
    pairs = np.unique(members[who[keep]] * (1 << 32) + members[other[keep]])
    return pairs >> 32, pairs & 0xFFFFFFFF


def warmup_logins(b: WorldBuilder, rng: np.random.Generator, user: np.ndarray,
                  lo: np.ndarray, hi: np.ndarray, mean: float, device: np.ndarray,
                  ip: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> None:
    """Poisson(``mean``) logins per user between ``lo`` and ``hi`` from the given context."""
    k = rng.poisson(mean, size=len(user))
    who = np.repeat(np.arange(len(user)), k)
    ts = event_times(rng, lo[who], np.minimum(hi[who], b.end))
    b.logins.append(user=user[who], ts=ts, device=device[who], ip=ip[who],
                    lat=lat[who] + 0.002 * rng.standard_normal(len(who)),
                    lon=lon[who] + 0.002 * rng.standard_normal(len(who)))


def borrowed_history(b: WorldBuilder, rng: np.random.Generator, user: np.ndarray,
                     lo: np.ndarray, hi: np.ndarray, city: np.ndarray, device: np.ndarray,
                     ip: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> None:
    """An honest-looking history for fraud accounts: orders and logins between ``lo`` and ``hi``.

    Orders come at the honest rate (``behaviour.orders_per_180d``, a log-normal activity per
    account), at local or national merchants with the honest tickets of their category, and are
    returned at the honest mean return rate; logins at the honest rate from the account's usual
    context. Nothing here is financed: the history holds no application.

    Args:
        b (WorldBuilder): the world.
        rng (np.random.Generator): random source of the calling pattern.
        user (np.ndarray): the accounts.
        lo, hi (np.ndarray): per account, the span of the history (clipped to the window).
        city (np.ndarray): per account, where it shops.
        device, ip, lat, lon (np.ndarray): per account, the context of its logins.
    """
    bc = b.config.behaviour
    lo = np.maximum(lo, b.start)
    hi = np.minimum(hi, b.end)
    days = np.maximum(hi - lo, 0) / DAY
    activity = mean_one_lognormal(rng, bc.activity_sigma, len(user))
    k = rng.poisson(bc.orders_per_180d * days / 180 * activity)
    who = np.repeat(np.arange(len(user)), k)
    if len(who):
        merchant = pick_merchants(b, rng, city[who], bc.national_order_share)
        category = b.merchants.col("category")[merchant]
        amount = TICKET_MEDIAN[category] * np.exp(0.7 * rng.standard_normal(len(who)))
        b.orders.append(user=user[who], merchant=merchant, ts=event_times(rng, lo[who], hi[who]),
                        amount=np.round(amount, 2), bnpl=False,
                        returned=rng.random(len(who)) < bc.return_rate_mean, application=-1)
    k = rng.poisson(bc.logins_per_day * days * activity)
    who = np.repeat(np.arange(len(user)), k)
    b.logins.append(user=user[who], ts=event_times(rng, lo[who], hi[who]), device=device[who],
                    ip=ip[who], lat=lat[who] + 0.002 * rng.standard_normal(len(who)),
                    lon=lon[who] + 0.002 * rng.standard_normal(len(who)))


def pick_in_city(rng: np.random.Generator, users: np.ndarray, user_city: np.ndarray,
                  want_city: np.ndarray) -> np.ndarray:
    """A random user of each wanted city (``-1`` when the city has none)."""
    order = np.argsort(user_city, kind="stable")
    sc = user_city[order]
    lo = np.searchsorted(sc, want_city, side="left")
    hi = np.searchsorted(sc, want_city, side="right")
    pos = lo + (rng.random(len(want_city)) * np.maximum(hi - lo, 1)).astype(np.int64)
    out = users[order][np.minimum(pos, len(order) - 1)] if len(order) else np.zeros_like(lo)
    return np.where(hi > lo, out, -1)


def groups_needed(n_apps: int, mean_apps_per_group: float) -> int:
    """How many groups produce about ``n_apps`` applications (at least one)."""
    return max(1, int(round(n_apps / max(mean_apps_per_group, 1e-9))))


def log_uniform_mean(lo: int, hi: int) -> float:
    """Mean of :func:`simulator._sampling.log_uniform_int` (numerically)."""
    grid = np.exp(np.linspace(np.log(lo), np.log(hi + 1), 4001))
    return float(np.clip(np.floor(grid), lo, hi).mean())


def sizes_for_target(n_apps: int, apps_per_member: float, sizes: np.ndarray,
                     min_size: int = 1) -> np.ndarray:
    """Group sizes whose expected applications add up to about ``n_apps``: a prefix of the
    candidate ``sizes``, the last group cut (to no less than ``min_size``) so that each pattern
    meets its share of the fraud rate even in small worlds."""
    need = max(int(np.ceil(n_apps / apps_per_member)), 1)
    cum = np.cumsum(sizes)
    g = min(int(np.searchsorted(cum, need)) + 1, len(sizes))
    out = sizes[:g].copy()
    out[-1] = max(min_size, min(int(out[-1]), need - int(cum[g - 2] if g > 1 else 0)))
    return out
