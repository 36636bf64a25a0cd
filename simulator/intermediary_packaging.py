"""Intermediary packaging (中介包装): an agent coaches many applicants to declare the same work
place (and often the same home address) to pass income checks, while the applicants' phones,
devices, home towns and GPS are scattered and contradict the declared place.

What hides it: company names are written in variants ("X有限公司", "X公司", ...) so that only
normalisation joins them; a third of the agencies declare a real company that already has many
honest employees; applicants are real people on their own devices. What betrays it: many
applicants of one declared company in a short time, far from it, asking for large amounts.
"""

from __future__ import annotations

import numpy as np

from simulator._actors import (
    add_accounts,
    available_users,
    groups_needed,
    mark_users,
    new_devices,
    new_homes,
    new_phones,
    sizes_for_target,
    warmup_logins,
)
from simulator._builder import (
    ACCOMPLICE,
    CASH_LOAN,
    DAY,
    OFFICE,
    PATTERN_CODE,
    SME_OWNER_LOAN,
    WORK,
    WorldBuilder,
)
from simulator._geo import CITY_LAT, CITY_LON, CITY_WEIGHTS, N_CITIES
from simulator.behaviour import record_applications, session_context

PATTERN = PATTERN_CODE["intermediary_packaging"]


def plant_intermediary_packaging(b: WorldBuilder, rng: np.random.Generator, n_apps: int) -> None:
    """Plant agencies whose applicants file about ``n_apps`` applications.

    Args:
        b (WorldBuilder): the world, honest population and behaviour already built.
        rng (np.random.Generator): random source of this pattern.
        n_apps (int): target number of fraud applications.
    """
    cfg = b.config.intermediary_packaging
    per_member = (cfg.apps_min + cfg.apps_max) / 2
    g = groups_needed(n_apps, (cfg.applicants_min + cfg.applicants_max) / 2 * per_member)
    drawn = rng.integers(cfg.applicants_min, cfg.applicants_max + 1, size=2 * g + 4)
    sizes = sizes_for_target(n_apps, per_member, drawn, min_size=cfg.applicants_min)
    g = len(sizes)
    groups = b.new_groups(g)
    agency_city = rng.choice(N_CITIES, size=g, p=CITY_WEIGHTS)

    # The declared company: a real honest company (a hub) or one invented by the agency.
    comp = b.companies.frame()
    users = b.users.frame()
    headcount = np.bincount(np.maximum(users["company"], 0)[users["company"] >= 0],
                            minlength=len(b.companies))
    big = np.flatnonzero(headcount >= 50)
    real = (rng.random(g) < cfg.real_company_prob) & (len(big) > 0)
    company = np.empty(g, dtype=np.int64)
    if len(big):
        company[real] = big[rng.integers(0, len(big), size=int(real.sum()))]
        agency_city[real] = comp["city"][company[real]]
    c_lat = CITY_LAT[agency_city] + 0.05 * rng.standard_normal(g)
    c_lon = CITY_LON[agency_city] + 0.05 * rng.standard_normal(g)
    ip = b.new_entities("ips", int((~real).sum()), kind=OFFICE, city=agency_city[~real],
                        lat=c_lat[~real], lon=c_lon[~real])
    company[~real] = b.new_entities("companies", int((~real).sum()), city=agency_city[~real],
                                    lat=c_lat[~real], lon=c_lon[~real], ip=ip)
    agency_home = b.new_entities("addresses", g, city=agency_city,
                                 lat=c_lat + 0.01 * rng.standard_normal(g),
                                 lon=c_lon + 0.01 * rng.standard_normal(g))
    agency_ip = b.new_entities("ips", g, kind=OFFICE, city=agency_city, lat=c_lat, lon=c_lon)

    win_len = rng.integers(cfg.window_days_min, cfg.window_days_max + 1, size=g) * DAY
    win_start = b.start + (rng.random(g) * np.maximum(b.end - b.start - win_len - DAY, DAY)
                           ).astype(np.int64)

    # Applicants: real people anywhere, existing users or new accounts.
    agency = np.repeat(np.arange(g), sizes)
    s = len(agency)
    free = available_users(b)
    recruited = rng.random(s) < cfg.recruited_prob
    n_rec = min(int(recruited.sum()), len(free))
    rec_idx = np.flatnonzero(recruited)[:n_rec]
    recruited[:] = False
    recruited[rec_idx] = True
    applicant = np.empty(s, dtype=np.int64)
    applicant[recruited] = free[rng.permutation(len(free))[:n_rec]]
    mark_users(b, applicant[recruited], role=ACCOMPLICE, pattern=PATTERN,
               group=groups[agency[recruited]])
    fresh = ~recruited
    nf = int(fresh.sum())
    home_city = rng.choice(N_CITIES, size=nf, p=CITY_WEIGHTS)
    created = win_start[agency[fresh]] - rng.integers(0, 10 * DAY, size=nf)
    applicant[fresh] = add_accounts(b, rng, city=home_city, created_at=created, role=ACCOMPLICE,
                                    pattern=PATTERN, group=groups[agency[fresh]])
    u = b.users.frame()
    shared_home = rng.random(nf) < cfg.shared_home_prob
    fa = applicant[fresh]
    new_homes(b, rng, fa[~shared_home], home_city[~shared_home], u["lat"][fa[~shared_home]],
              u["lon"][fa[~shared_home]], created[~shared_home])
    b.user_addresses.append(user=fa[shared_home], kind=0,
                            ref=agency_home[agency[fresh][shared_home]],
                            since=created[shared_home])
    new_phones(b, fa, created)
    fresh_device = new_devices(b, rng, nf)
    mobile = np.array([p[0] for p in b.mobile_ips_by_city])
    warmup_logins(b, rng, fa, np.maximum(created, b.start), win_start[agency[fresh]] + win_len[
        agency[fresh]], 2.0, fresh_device, mobile[home_city], u["lat"][fa], u["lon"][fa])
    # Real people have real contacts near where they really live.
    free_city = u["city"][free].astype(np.int64)
    order = np.argsort(free_city, kind="stable")
    lo = np.searchsorted(free_city[order], home_city, side="left")
    hi = np.searchsorted(free_city[order], home_city, side="right")
    has = hi > lo
    friend = free[order][np.minimum(lo + (rng.random(nf) * np.maximum(hi - lo, 1)).astype(
        np.int64), len(order) - 1)]
    b.contacts.append(user=fa[has], contact=friend[has], since=created[has])

    # Everyone declares the agency's company, spelled as the agent dictated or as they recall.
    declared_at = np.maximum(np.where(recruited, win_start[agency], 0), u["created_at"][applicant])
    b.user_addresses.append(user=applicant, kind=WORK, ref=company[agency],
                            variant=rng.integers(0, 6, size=s), since=declared_at)

    k = rng.integers(cfg.apps_min, cfg.apps_max + 1, size=s)
    who = np.repeat(np.arange(s), k)
    a = agency[who]
    lo_ts = np.maximum(win_start[a], u["created_at"][applicant[who]] + DAY)
    ts = np.minimum(lo_ts + (rng.random(len(who)) * np.maximum(win_start[a] + win_len[a] - lo_ts,
                                                                 1)).astype(np.int64), b.end - 1)
    product = np.where(rng.random(len(who)) < cfg.sme_share, SME_OWNER_LOAN, CASH_LOAN)
    median = np.where(product == SME_OWNER_LOAN, 50_000.0, 5_000.0) * cfg.amount_multiple
    amount = np.round(median * np.exp(0.5 * rng.standard_normal(len(who))), -2)
    rec = recruited[who]
    dev_r, ip_r, lat_r, lon_r = session_context(b, rng, np.where(rec, applicant[who], 0), ts)
    fi = np.cumsum(fresh) - 1
    hc = home_city[np.maximum(fi[who], 0)]
    device = np.where(rec, dev_r, fresh_device[np.maximum(fi[who], 0)])
    ip = np.where(rec, ip_r, mobile[hc])
    lat = np.where(rec, lat_r, u["lat"][applicant[who]] + 0.01 * rng.standard_normal(len(who)))
    lon = np.where(rec, lon_r, u["lon"][applicant[who]] + 0.01 * rng.standard_normal(len(who)))
    # NOTE: some applications are filled in at the agent's office, on its network.
    coached = rng.random(len(who)) < 0.15
    ip = np.where(coached, agency_ip[a], ip)
    lat = np.where(coached, c_lat[a], lat)
    lon = np.where(coached, c_lon[a], lon)
    record_applications(b, rng, user=applicant[who], product=product, amount=amount, ts=ts,
                        device=device, ip=ip, lat=lat, lon=lon, merchant=np.full(len(who), -1),
                        pattern=PATTERN, group=groups[a], default_prob=cfg.default_prob)
