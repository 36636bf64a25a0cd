"""The honest population: households, social circles, work places, devices, phones, networks
and merchants.

What makes it hard for naive rules: families share a home address, a residential IP and often
a device; companies put hundreds to thousands of honest employees behind one office IP and one
declared company (spelled in variants); carrier NAT and public Wi-Fi IPs are hubs; people change
phones, travel, and some reuse a recycled phone number.
"""

from __future__ import annotations

import numpy as np

from simulator._builder import (
    ANDROID,
    DATACENTER,
    DAY,
    EMULATOR,
    HONEST,
    HOME,
    IOS,
    MOBILE,
    OFFICE,
    PUBLIC_WIFI,
    RESIDENTIAL,
    WORK,
    WorldBuilder,
)
from simulator._catalogue import CATEGORY_PROBS, SIZE_GMV
from simulator._geo import CITY_LAT, CITY_LON, CITY_WEIGHTS, N_CITIES
from simulator._sampling import (
    group_ranges,
    mean_one_lognormal,
    rank_within,
    weighted_pick_within,
)


def build_population(b: WorldBuilder, rng: np.random.Generator) -> None:
    """Create the honest users and every entity they own or share.

    Args:
        b (WorldBuilder): the world under construction; must be empty.
        rng (np.random.Generator): random source of this stage.
    """
    cfg, pc = b.config, b.config.population
    n = cfg.users
    household, hh_city, hh_sizes = _households(rng, n, pc.household_size_probs)
    n_hh = len(hh_city)
    hh_lat = CITY_LAT[hh_city] + 0.06 * rng.standard_normal(n_hh)
    hh_lon = CITY_LON[hh_city] + 0.06 * rng.standard_normal(n_hh)
    home_address = b.new_entities("addresses", n_hh, city=hh_city, lat=hh_lat, lon=hh_lon)

    city = hh_city[household]
    pre = rng.random(n) < pc.pre_existing_share
    created_at = np.where(
        pre,
        b.start - (rng.random(n) * pc.max_tenure_days * DAY).astype(np.int64) - DAY,
        b.start + (rng.random(n) * (b.end - b.start - DAY)).astype(np.int64),
    )
    hh_band = rng.choice(len(pc.income_band_probs), size=n_hh, p=pc.income_band_probs)
    band = np.clip(hh_band[household] + rng.choice([-1, 0, 1], size=n, p=[0.15, 0.7, 0.15]),
                   0, len(pc.income_band_probs) - 1)
    circle, circle_order = _circles(rng, city, pc.circle_size)
    n_circles = int(circle.max()) + 1
    discipline = (0.6 * rng.standard_normal(n_circles)[circle]
                  + 0.4 * rng.standard_normal(n_hh)[household]
                  + 0.8 * rng.standard_normal(n) + 0.15 * (band - 1.5))
    m = cfg.behaviour.return_rate_mean
    return_prop = rng.beta(1.2, 1.2 * (1 - m) / m, size=n)

    company, n_companies, company_city = _companies(b, rng, city, n)
    users = b.new_entities(
        "users", n, created_at=created_at, city=city,
        lat=hh_lat[household], lon=hh_lon[household], household=household, circle=circle,
        income_band=band, discipline=discipline, return_prop=return_prop,
        activity=mean_one_lognormal(rng, cfg.behaviour.activity_sigma, n),
        bnpl_adopter=rng.random(n) < cfg.behaviour.bnpl_adopter_share,
        cash_borrower=rng.random(n) < cfg.behaviour.cash_borrower_share,
        company=company, home_address=home_address[household], role=HONEST, pattern=0,
    )
    b.honest_users = n
    b.household_size = hh_sizes[household]

    b.user_addresses.append(user=users, kind=HOME, ref=home_address[household], since=created_at)
    employed = company >= 0
    official = rng.integers(0, 4, size=n_companies)
    variant = np.where(rng.random(n) < 0.7, official[np.maximum(company, 0)],
                       rng.integers(0, 6, size=n))
    b.user_addresses.append(user=users[employed], kind=WORK, ref=company[employed],
                            variant=variant[employed], since=created_at[employed])

    _phones(b, rng, household, hh_sizes, created_at, pre)
    _devices(b, rng, household, hh_sizes, created_at)
    _ips(b, rng, hh_city, city, n_companies, company_city)
    _merchants(b, rng, city, created_at)
    _contacts(b, rng, household, hh_sizes, circle, circle_order, created_at)


def _households(rng: np.random.Generator, n: int, probs: tuple[float, ...]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sizes = rng.choice(len(probs), size=n, p=probs) + 1
    cum = np.cumsum(sizes)
    k = int(np.searchsorted(cum, n)) + 1
    sizes = sizes[:k].copy()
    sizes[-1] -= int(cum[k - 1]) - n
    household = np.repeat(np.arange(k, dtype=np.int64), sizes)
    hh_city = rng.choice(N_CITIES, size=k, p=CITY_WEIGHTS)
    return household, hh_city, sizes


def _circles(rng: np.random.Generator, city: np.ndarray, size: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Social circles of about ``size`` people within a city; members are contiguous in
    the returned order."""
    order = np.lexsort((rng.random(len(city)), city))
    cs = city[order]
    rank = rank_within(cs)
    per_city = np.bincount(cs, minlength=N_CITIES)
    n_circ = np.maximum(np.ceil(per_city / size), 1).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(n_circ)[:-1]])
    circle = np.empty(len(city), dtype=np.int64)
    # NOTE: spread a city's people evenly over its circles so no circle is tiny.
    circle[order] = offset[cs] + (rank * n_circ[cs]) // np.maximum(per_city[cs], 1)
    by_circle = np.lexsort((np.arange(len(city)), circle))
    return circle, by_circle


def _companies(b: WorldBuilder, rng: np.random.Generator, city: np.ndarray, n: int
               ) -> tuple[np.ndarray, int, np.ndarray]:
    pc = b.config.population
    employed = rng.random(n) < pc.employed_share
    mean_size = pc.company_size_median * np.exp(pc.company_size_sigma**2 / 2)
    k = max(1, int(np.ceil(employed.sum() / mean_size)))
    c_city = rng.choice(N_CITIES, size=k, p=CITY_WEIGHTS)
    weight = np.clip(pc.company_size_median * np.exp(pc.company_size_sigma
                                                     * rng.standard_normal(k)),
                     1.0, pc.company_size_max)
    c_lat = CITY_LAT[c_city] + 0.05 * rng.standard_normal(k)
    c_lon = CITY_LON[c_city] + 0.05 * rng.standard_normal(k)
    b.new_entities("companies", k, city=c_city, lat=c_lat, lon=c_lon)
    company = np.full(n, -1, dtype=np.int64)
    company[employed] = weighted_pick_within(rng, c_city, weight, city[employed])
    return company, k, c_city


def _phones(b: WorldBuilder, rng: np.random.Generator, household: np.ndarray,
            hh_sizes: np.ndarray, created_at: np.ndarray, pre: np.ndarray) -> None:
    pc = b.config.population
    n = len(household)
    users = np.arange(n, dtype=np.int64)
    own = b.new_entities("phones", n)
    b.user_phones.append(user=users, phone=own, since=created_at)
    second = users[rng.random(n) < pc.second_phone_prob]
    extra = b.new_entities("phones", len(second))
    b.user_phones.append(user=second, phone=extra,
                         since=created_at[second] + rng.integers(0, 200, len(second)) * DAY)
    # A family member's number registered on a second account (parents for children).
    hh_first = np.concatenate([[0], np.cumsum(hh_sizes)[:-1]])
    head = hh_first[household]
    fam = users[(hh_sizes[household] > 1) & (users != head)
                & (rng.random(n) < pc.family_phone_share_prob)]
    b.user_phones.append(user=fam, phone=own[head[fam]], since=created_at[fam])
    # Recycled numbers: a newcomer receives a number an older account still lists.
    newcomers = users[~pre & (rng.random(n) < pc.recycled_phone_prob)]
    old = users[pre]
    if len(old) and len(newcomers):
        donors = old[rng.integers(0, len(old), size=len(newcomers))]
        b.user_phones.append(user=newcomers, phone=own[donors], since=created_at[newcomers])


def _devices(b: WorldBuilder, rng: np.random.Generator, household: np.ndarray,
             hh_sizes: np.ndarray, created_at: np.ndarray) -> None:
    pc = b.config.population
    n = len(household)

    def os_draw(k: int) -> np.ndarray:
        u = rng.random(k)
        return np.where(u < pc.emulator_share, EMULATOR,
                        np.where(u < pc.emulator_share + pc.ios_share, IOS, ANDROID))

    primary = b.new_entities("devices", n, os=os_draw(n))
    switch = rng.random(n) < pc.device_switch_prob
    switched = np.full(n, -1, dtype=np.int64)
    switched[switch] = b.new_entities("devices", int(switch.sum()), os=os_draw(int(switch.sum())))
    lo = np.maximum(created_at, b.start)
    switch_ts = np.where(switch, lo + (rng.random(n) * np.maximum(b.end - lo, 1)).astype(np.int64),
                         -1)
    has_second = rng.random(n) < pc.second_device_prob
    second = np.full(n, -1, dtype=np.int64)
    second[has_second] = b.new_entities("devices", int(has_second.sum()),
                                        os=os_draw(int(has_second.sum())))
    fam_hh = (hh_sizes > 1) & (rng.random(len(hh_sizes)) < pc.family_device_prob)
    fam_dev = np.full(len(hh_sizes), -1, dtype=np.int64)
    fam_dev[fam_hh] = b.new_entities("devices", int(fam_hh.sum()), os=os_draw(int(fam_hh.sum())))
    b.user_devices = {"primary": primary, "switched": switched, "second": second,
                      "family": fam_dev[household]}
    b.device_switch_ts = switch_ts


def _ips(b: WorldBuilder, rng: np.random.Generator, hh_city: np.ndarray, city: np.ndarray,
         n_companies: int, company_city: np.ndarray) -> None:
    pc = b.config.population
    n_hh = len(hh_city)

    def coarse(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # NOTE: IP geolocation is coarse: a point near the city centre.
        return (CITY_LAT[c] + 0.04 * rng.standard_normal(len(c)),
                CITY_LON[c] + 0.04 * rng.standard_normal(len(c)))

    lat, lon = coarse(hh_city)
    b.household_ip = b.new_entities("ips", n_hh, kind=RESIDENTIAL, city=hh_city, lat=lat, lon=lon)
    c = b.companies.frame()
    b.companies.update("ip", np.arange(n_companies),
                       b.new_entities("ips", n_companies, kind=OFFICE, city=company_city,
                                      lat=c["lat"], lon=c["lon"]))
    per_city = np.bincount(city, minlength=N_CITIES)
    b.mobile_ips_by_city, b.wifi_ips_by_city = [], []
    for kind, per_ip, pools in ((MOBILE, pc.users_per_mobile_ip, b.mobile_ips_by_city),
                                (PUBLIC_WIFI, pc.users_per_wifi_ip, b.wifi_ips_by_city)):
        k = np.maximum(np.ceil(per_city / per_ip), 1).astype(np.int64)
        cities = np.repeat(np.arange(N_CITIES), k)
        lat, lon = coarse(cities)
        ips = b.new_entities("ips", len(cities), kind=kind, city=cities, lat=lat, lon=lon)
        start, _ = group_ranges(cities, N_CITIES)
        pools.extend(ips[start[i]: start[i] + k[i]] for i in range(N_CITIES))
    n_dc = max(pc.datacenter_ips, len(city) // 5000)
    dc_city = rng.choice(N_CITIES, size=n_dc, p=CITY_WEIGHTS)
    lat, lon = coarse(dc_city)
    b.datacenter_ips = b.new_entities("ips", n_dc, kind=DATACENTER, city=dc_city, lat=lat, lon=lon)
    b.vpn_user = rng.random(len(city)) < pc.vpn_user_share


def _merchants(b: WorldBuilder, rng: np.random.Generator, city: np.ndarray,
               created_at: np.ndarray) -> None:
    pc = b.config.population
    n = len(city)
    k = max(20, int(round(n * pc.merchants_per_user)))
    eligible = np.flatnonzero(created_at < b.start - 30 * DAY)
    owners = eligible[rng.permutation(len(eligible))[:k]]
    k = len(owners)
    size = rng.choice(4, size=k, p=pc.merchant_size_probs)
    m_city = city[owners]
    m_created = np.maximum(created_at[owners], b.start - (rng.integers(30, 1500, size=k) * DAY))
    m = b.new_entities(
        "merchants", k, owner=owners, category=rng.choice(len(CATEGORY_PROBS), size=k,
                                                          p=CATEGORY_PROBS),
        size=size, city=m_city, lat=CITY_LAT[m_city] + 0.05 * rng.standard_normal(k),
        lon=CITY_LON[m_city] + 0.05 * rng.standard_normal(k), created_at=m_created,
        base_gmv=SIZE_GMV[size] * np.exp(0.5 * rng.standard_normal(k)),
        refund_rate=rng.beta(2.0, 60.0, size=k), pattern=0,
    )
    b.ownership.append(user=owners, merchant=m, since=m_created)


def _contacts(b: WorldBuilder, rng: np.random.Generator, household: np.ndarray,
              hh_sizes: np.ndarray, circle: np.ndarray, by_circle: np.ndarray,
              created_at: np.ndarray) -> None:
    pc = b.config.population
    n = len(household)
    k = rng.integers(pc.contacts_min, pc.contacts_max + 1, size=n)
    user = np.repeat(np.arange(n, dtype=np.int64), k)
    slot = rank_within(user)
    # Family member first (when there is one), friends from the circle otherwise.
    hh_first = np.concatenate([[0], np.cumsum(hh_sizes)[:-1]])
    hh_n = hh_sizes[household[user]]
    family = (slot == 0) & (hh_n > 1) & (rng.random(len(user)) < 0.8)
    own_rank = user - hh_first[household[user]]
    fam_pick = hh_first[household[user]] + (own_rank + 1 + (rng.random(len(user))
                                                             * np.maximum(hh_n - 1, 1)
                                                             ).astype(np.int64)) % hh_n
    c_start, c_size = group_ranges(circle[by_circle], int(circle.max()) + 1)
    pos_in = np.empty(n, dtype=np.int64)
    pos_in[by_circle] = np.arange(n)
    cu, csz = circle[user], c_size[circle[user]]
    r = (rng.random(len(user)) * np.maximum(csz - 1, 1)).astype(np.int64)
    friend = by_circle[c_start[cu] + (pos_in[user] - c_start[cu] + 1 + r) % csz]
    contact = np.where(family, fam_pick, friend)
    keep = contact != user
    pairs = np.unique(user[keep] * n + contact[keep])
    u, c = pairs // n, pairs % n
    b.contacts.append(user=u, contact=c, since=np.maximum(created_at[u], created_at[c]))
