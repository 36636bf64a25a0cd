"""Merchant daily sales and inventory.

Each merchant has a baseline GMV by size, a growth trend, weekly seasonality and daily noise;
the orders simulated in this world are added on top (they are a sample of its customers), and
their returns show as refunds a few days later. Inventory is restocked against real sales only,
so brushed sales (sales inflation) raise GMV without turning inventory over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator._builder import DAY, WorldBuilder
from simulator._catalogue import TICKET_MEDIAN


@dataclass(frozen=True)
class DailySales:
    """Flat ``merchant x day`` arrays, merchant-major.

    Args:
        merchant (np.ndarray): merchant position per row.
        day (np.ndarray): day index from the window start.
        gmv, orders, refunds, inventory (np.ndarray): the day's figures.
    """

    merchant: np.ndarray
    day: np.ndarray
    gmv: np.ndarray
    orders: np.ndarray
    refunds: np.ndarray
    inventory: np.ndarray


def build_sales(b: WorldBuilder, rng: np.random.Generator) -> DailySales:
    """Daily GMV, order count, refunds and end-of-day inventory for every merchant and day."""
    m = b.merchants.frame()
    n_m, n_d = len(m["owner"]), b.config.days
    base = m["base_gmv"]
    t = np.arange(n_d) / 180.0
    trend = np.exp(0.25 * rng.standard_normal(n_m)[:, None] * t[None, :])
    weekday = (b.start // DAY + 3 + np.arange(n_d)) % 7  # 1970-01-01 was a Thursday
    weekly = np.where(weekday >= 5, 1.2, 1.0)
    organic = base[:, None] * trend * weekly[None, :] * rng.gamma(20.0, 1 / 20.0, (n_m, n_d))

    fake = np.zeros((n_m, n_d))
    inf = b.inflation.frame()
    for merchant, lo, hi, factor in zip(inf["merchant"], inf["start_day"], inf["end_day"],
                                        inf["factor"], strict=True):
        fake[merchant, lo:hi] = organic[merchant, lo:hi] * (factor - 1.0)

    o = b.orders.frame()
    day = np.clip((o["ts"] - b.start) // DAY, 0, n_d - 1)
    key = o["merchant"].astype(np.int64) * n_d + day
    world_gmv = np.bincount(key, weights=o["amount"], minlength=n_m * n_d).reshape(n_m, n_d)
    world_cnt = np.bincount(key, minlength=n_m * n_d).reshape(n_m, n_d)
    ret = o["returned"]
    refund_day = np.clip(day[ret] + 3, 0, n_d - 1)
    world_ref = np.bincount(o["merchant"][ret].astype(np.int64) * n_d + refund_day,
                            weights=o["amount"][ret], minlength=n_m * n_d).reshape(n_m, n_d)

    ticket = TICKET_MEDIAN[m["category"]][:, None]
    gmv = organic + fake + world_gmv
    orders = np.round((organic + fake) / ticket * rng.uniform(0.8, 1.2, (n_m, n_d))) + world_cnt
    refunds = (organic * m["refund_rate"][:, None] * rng.gamma(5.0, 0.2, (n_m, n_d))
               + fake * 0.05 + world_ref)

    # Inventory at cost: sold goods leave, restocks refill to a target cover when low.
    cover = rng.uniform(15, 60, n_m)
    cogs = 0.7 * (organic + world_gmv)
    inventory = np.empty((n_m, n_d))
    level = 0.7 * base * cover
    for d in range(n_d):
        target = 0.7 * base * trend[:, d] * cover
        level = level - cogs[:, d]
        low = level < 0.5 * target
        level = np.where(low, target * rng.uniform(0.9, 1.1, n_m), level)
        level = np.maximum(level, 0.0)
        inventory[:, d] = level

    merchant = np.repeat(np.arange(n_m, dtype=np.int64), n_d)
    return DailySales(
        merchant=merchant, day=np.tile(np.arange(n_d, dtype=np.int64), n_m),
        gmv=np.round(gmv.ravel(), 2), orders=orders.ravel().astype(np.int64),
        refunds=np.round(refunds.ravel(), 2), inventory=np.round(inventory.ravel(), 2))
