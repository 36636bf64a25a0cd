"""`simulate_world`: build a world from a :class:`WorldConfig`; `write_world`: write it.

Stages run in a fixed order, each with its own generator spawned from the one seeded by
``config.seed``, so a stage's draws do not shift when another stage changes:
population → behaviour → the seven patterns → loans and repayments → merchant sales → labels →
clear identifiers and ids. Tables are kept lazily (integer positions plus dictionaries) and
materialised in row groups while writing, which keeps a 1M-user world within a few GiB.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from simulator import _identifiers as ids
from simulator._builder import (
    DAY,
    DEVICE_OS,
    HOME,
    IP_KINDS,
    MERCHANT_SIZES,
    ROLES,
    WorldBuilder,
)
from simulator._catalogue import CATEGORIES
from simulator._geo import CITY_NAMES
from simulator.account_takeover import plant_account_takeovers
from simulator.behaviour import build_behaviour
from simulator.config import PATTERNS, PRODUCTS, WorldConfig
from simulator.credit_default import STATUSES, settle_loans
from simulator.device_farm import plant_device_farms
from simulator.fraud_ring import plant_fraud_rings
from simulator.intermediary_packaging import plant_intermediary_packaging
from simulator.labels import ENTITY_TYPES, KINDS, SOURCES, assign_labels
from simulator.merchant_collusion import plant_merchant_collusion
from simulator.merchant_sales import build_sales
from simulator.population import build_population
from simulator.sales_inflation import plant_sales_inflation
from simulator.synthetic_identity import plant_synthetic_identities
from graph.world_files import METADATA_FILE, TABLES

FORMAT_VERSION: Final = 1
ROW_GROUP: Final = 1_000_000

Planter = Callable[[WorldBuilder, np.random.Generator, int], None]
PLANTERS: Final[dict[str, Planter]] = {
    "fraud_ring": plant_fraud_rings,
    "synthetic_identity": plant_synthetic_identities,
    "account_takeover": plant_account_takeovers,
    "merchant_collusion": plant_merchant_collusion,
    "sales_inflation": plant_sales_inflation,
    "intermediary_packaging": plant_intermediary_packaging,
    "device_farm": plant_device_farms,
}
assert tuple(PLANTERS) == PATTERNS


@dataclass(frozen=True)
class Ref:
    """A string column as positions into ``values``; a negative position is null."""

    values: pa.Array
    index: np.ndarray


@dataclass(frozen=True)
class Nullable:
    """An int64 column where ``-1`` means null."""

    values: np.ndarray


Column = np.ndarray | Ref | Nullable


@dataclass(frozen=True)
class LazyTable:
    """A table kept as numpy columns, materialised slice by slice in ``order``.

    Args:
        name (str): table name (a key of :data:`graph.world_files.TABLES`).
        columns (dict[str, Column]): one source per schema column.
        order (np.ndarray): row positions in output order.
    """

    name: str
    columns: dict[str, Column]
    order: np.ndarray

    @property
    def num_rows(self) -> int:
        return len(self.order)

    def slice(self, lo: int, hi: int) -> pa.Table:
        """Output rows ``lo`` to ``hi`` as an Arrow table with the documented schema."""
        schema = TABLES[self.name]
        rows = self.order[lo:hi]
        arrays = []
        for f in schema:
            src = self.columns[f.name]
            if isinstance(src, Ref):
                idx = src.index[rows]
                mask = idx < 0
                arrays.append(src.values.take(pa.array(np.where(mask, 0, idx),
                                                       mask=mask if mask.any() else None)))
            elif isinstance(src, Nullable):
                v = src.values[rows]
                arrays.append(pa.array(v, type=f.type, mask=v < 0))
            else:
                v = src[rows]
                if f.type == pa.float64() and f.name in ("lat", "lon", "home_lat", "home_lon"):
                    v = np.round(v, 6)
                arrays.append(pa.array(v, type=f.type))
        return pa.Table.from_arrays(arrays, schema=schema)

    def to_arrow(self) -> pa.Table:
        """The whole table (for small worlds and tests)."""
        return self.slice(0, self.num_rows)


@dataclass
class World:
    """A simulated world: its config and its tables (see :mod:`graph.world_files`)."""

    config: WorldConfig
    tables: dict[str, LazyTable] = field(default_factory=dict)

    def table(self, name: str) -> pa.Table:
        """One table, materialised."""
        return self.tables[name].to_arrow()


def simulate_world(config: WorldConfig, *, log: Callable[[str], None] | None = None) -> World:
    """Simulate the world ``config`` describes.

    Args:
        config (WorldConfig): every parameter, the seed included.
        log (Callable[[str], None], optional): receives one line per finished stage.

    Returns:
        World: the world, ready for :func:`write_world`.
    """
    say = log or (lambda _msg: None)
    stages = np.random.default_rng(config.seed).spawn(6 + len(PATTERNS))
    r_pop, r_beh, r_credit, r_sales, r_labels, r_ids = stages[:6]
    b = WorldBuilder(config)
    build_population(b, r_pop)
    say(f"population: {len(b.users)} users, {len(b.merchants)} merchants")
    build_behaviour(b, r_beh)
    say(f"behaviour: {len(b.logins)} logins, {len(b.orders)} orders, "
        f"{len(b.applications)} applications")
    honest = b.honest_applications
    fraud_total = config.fraud_rate / (1 - config.fraud_rate) * honest
    for (name, plant), rng in zip(PLANTERS.items(), stages[6:], strict=True):
        before = len(b.applications)
        plant(b, rng, max(1, int(round(fraud_total * config.pattern_mix[name]))))
        say(f"{name}: {len(b.applications) - before} applications")
    loans = settle_loans(b, r_credit)
    say(f"loans: {int(loans.funded.sum())} funded, {int(loans.default.sum())} default")
    sales = build_sales(b, r_sales)
    labels = assign_labels(b, r_labels, loans)
    say(f"labels: {len(labels.kind)} label events")
    return _finalise(b, loans, sales, labels, r_ids)


def _finalise(b: WorldBuilder, loans: object, sales: object, labels: object,
              rng: np.random.Generator) -> World:
    from simulator.credit_default import LoanOutcomes
    from simulator.labels import LabelTimeline
    from simulator.merchant_sales import DailySales

    assert isinstance(loans, LoanOutcomes)
    assert isinstance(sales, DailySales)
    assert isinstance(labels, LabelTimeline)
    cfg = b.config
    world = World(cfg)
    t = world.tables
    u = b.users.frame()
    n_u = len(u["role"])
    start_year = int(np.datetime64(cfg.start, "Y").astype(int) + 1970)

    # Ids that carry no information: users and merchants numbered in a random order.
    user_perm = rng.permutation(n_u)
    user_ids = ids.format_ids("U", user_perm, 8)
    user_order = np.argsort(user_perm)
    m = b.merchants.frame()
    n_m = len(m["owner"])
    merch_perm = rng.permutation(n_m)
    merchant_ids = ids.format_ids("M", merch_perm, 7)
    merch_order = np.argsort(merch_perm)

    a = b.applications.frame()
    app_order = np.argsort(a["ts"], kind="stable")
    app_rank = np.empty_like(app_order)
    app_rank[app_order] = np.arange(len(app_order))
    app_ids = ids.format_ids("A", app_rank, 9)

    cities = pa.array(CITY_NAMES)
    t["users"] = LazyTable("users", {
        "user_id": Ref(user_ids, np.arange(n_u)), "created_at": u["created_at"],
        "name": Ref(ids.person_names(rng, n_u), np.arange(n_u)),
        "national_id": Ref(ids.national_ids(rng, u["city"].astype(np.int64), start_year),
                           np.arange(n_u)),
        "home_city": Ref(cities, u["city"].astype(np.int64)),
        "home_lat": u["lat"], "home_lon": u["lon"],
    }, user_order)

    up = b.user_phones.frame()
    phone_numbers = ids.phone_numbers(rng, len(b.phones))
    t["phones"] = LazyTable("phones", {
        "user_id": Ref(user_ids, up["user"]), "phone": Ref(phone_numbers, up["phone"]),
        "since": np.maximum(up["since"], u["created_at"][up["user"]]),
    }, np.lexsort((up["since"], up["phone"], user_perm[up["user"]])))

    ad = b.addresses.frame()
    co = b.companies.frame()
    ua = b.user_addresses.frame()
    home = ua["kind"] == HOME
    home_text = ids.home_addresses(rng, ad["city"].astype(np.int64))
    company_base = ids.company_names(rng, co["city"].astype(np.int64))
    ref = ua["ref"]
    spelled = ids.company_spellings(company_base.take(pa.array(np.where(home, 0, ref))),
                                    np.maximum(ua["variant"], 0))
    value = pc.if_else(pa.array(home), home_text.take(pa.array(np.where(home, ref, 0))), spelled)
    where_city = np.where(home, ad["city"][np.where(home, ref, 0)],
                          co["city"][np.where(home, 0, ref)]).astype(np.int64)
    t["addresses"] = LazyTable("addresses", {
        "user_id": Ref(user_ids, ua["user"]),
        "kind": Ref(pa.array(["home", "work"]), ua["kind"].astype(np.int64)),
        "value": Ref(value, np.arange(len(ref))), "city": Ref(cities, where_city),
        "lat": np.where(home, ad["lat"][np.where(home, ref, 0)], co["lat"][np.where(home, 0, ref)]),
        "lon": np.where(home, ad["lon"][np.where(home, ref, 0)], co["lon"][np.where(home, 0, ref)]),
        "since": np.maximum(ua["since"], u["created_at"][ua["user"]]),
    }, np.lexsort((ua["since"], ua["kind"], user_perm[ua["user"]])))

    lg = b.logins.frame()
    dev = b.devices.frame()
    n_dev = len(dev["os"])
    first_seen = np.full(n_dev, np.iinfo(np.int64).max)
    np.minimum.at(first_seen, lg["device"], lg["ts"])
    np.minimum.at(first_seen, a["device"], a["ts"])
    used = first_seen < np.iinfo(np.int64).max
    serials = ids.device_serials(rng, dev["os"].astype(np.int64))
    used_pos = np.flatnonzero(used)
    by_serial = used_pos[pc.sort_indices(serials.take(pa.array(used_pos))).to_numpy()]
    t["devices"] = LazyTable("devices", {
        "device_serial": Ref(serials, np.arange(n_dev)),
        "os": Ref(pa.array(DEVICE_OS), dev["os"].astype(np.int64)),
        "first_seen": first_seen,
    }, by_serial)

    ip = b.ips.frame()
    n_ip = len(ip["kind"])
    ip_used = np.zeros(n_ip, dtype=bool)
    ip_used[lg["ip"]] = True
    ip_used[a["ip"]] = True
    ip_text = ids.ip_addresses(rng, n_ip)
    ip_pos = np.flatnonzero(ip_used)
    t["ips"] = LazyTable("ips", {
        "ip": Ref(ip_text, np.arange(n_ip)), "kind": Ref(pa.array(IP_KINDS), ip["kind"]
                                                          .astype(np.int64)),
        "city": Ref(cities, ip["city"].astype(np.int64)), "lat": ip["lat"], "lon": ip["lon"],
    }, ip_pos[pc.sort_indices(ip_text.take(pa.array(ip_pos))).to_numpy()])

    from simulator._catalogue import CATEGORY_WORDS

    cat = m["category"].astype(np.int64)
    t["merchants"] = LazyTable("merchants", {
        "merchant_id": Ref(merchant_ids, np.arange(n_m)),
        "name": Ref(ids.merchant_names(rng, CATEGORY_WORDS[cat]), np.arange(n_m)),
        "category": Ref(pa.array(CATEGORIES), cat),
        "size": Ref(pa.array(MERCHANT_SIZES), m["size"].astype(np.int64)),
        "city": Ref(cities, m["city"].astype(np.int64)), "lat": m["lat"], "lon": m["lon"],
        "created_at": m["created_at"],
    }, merch_order)
    ow = b.ownership.frame()
    t["ownership"] = LazyTable("ownership", {
        "user_id": Ref(user_ids, ow["user"]), "merchant_id": Ref(merchant_ids, ow["merchant"]),
        "since": ow["since"],
    }, np.lexsort((merch_perm[ow["merchant"]], user_perm[ow["user"]])))
    ct = b.contacts.frame()
    # NOTE: a contact is listed no earlier than both accounts exist.
    ct_since = np.maximum(ct["since"], np.maximum(u["created_at"][ct["user"]],
                                                  u["created_at"][ct["contact"]]))
    t["contacts"] = LazyTable("contacts", {
        "user_id": Ref(user_ids, ct["user"]), "contact_user_id": Ref(user_ids, ct["contact"]),
        "since": ct_since,
    }, np.lexsort((user_perm[ct["contact"]], user_perm[ct["user"]])))

    login_order = np.argsort(lg["ts"], kind="stable")
    t["logins"] = LazyTable("logins", {
        "event_id": _event_ids("L", login_order), "user_id": Ref(user_ids, lg["user"]),
        "ts": lg["ts"], "device_serial": Ref(serials, lg["device"]),
        "ip": Ref(ip_text, lg["ip"]), "lat": lg["lat"], "lon": lg["lon"],
    }, login_order)

    o = b.orders.frame()
    order_order = np.argsort(o["ts"], kind="stable")
    t["orders"] = LazyTable("orders", {
        "event_id": _event_ids("O", order_order), "user_id": Ref(user_ids, o["user"]),
        "merchant_id": Ref(merchant_ids, o["merchant"]), "ts": o["ts"], "amount": o["amount"],
        "category": Ref(pa.array(CATEGORIES), m["category"][o["merchant"]].astype(np.int64)),
        "bnpl": o["bnpl"], "returned": o["returned"],
        "application_id": Ref(app_ids, o["application"]),
    }, order_order)

    products = pa.array(PRODUCTS)
    t["applications"] = LazyTable("applications", {
        "application_id": Ref(app_ids, np.arange(len(app_order))),
        "user_id": Ref(user_ids, a["user"]), "product": Ref(products, a["product"]
                                                            .astype(np.int64)),
        "amount": a["amount"], "currency": Ref(pa.array(["CNY"]), np.zeros(len(app_order),
                                                                           np.int64)),
        "term_months": a["term"].astype(np.int64),
        "ts": a["ts"], "device_serial": Ref(serials, a["device"]), "ip": Ref(ip_text, a["ip"]),
        "lat": a["lat"], "lon": a["lon"], "merchant_id": Ref(merchant_ids, a["merchant"]),
    }, app_order)

    r = b.repayments.frame()
    rep_order = np.argsort(r["ts"], kind="stable")
    t["repayments"] = LazyTable("repayments", {
        "event_id": _event_ids("R", rep_order), "user_id": Ref(user_ids, r["user"]),
        "application_id": Ref(app_ids, r["application"]), "due_ts": r["due_ts"], "ts": r["ts"],
        "amount": r["amount"], "status": Ref(pa.array(STATUSES), r["status"].astype(np.int64)),
    }, rep_order)

    t["merchant_sales"] = LazyTable("merchant_sales", {
        "merchant_id": Ref(merchant_ids, sales.merchant), "day": b.start + sales.day * DAY,
        "gmv": sales.gmv, "orders": sales.orders, "refunds": sales.refunds,
        "inventory": sales.inventory,
    }, np.lexsort((sales.day, merch_perm[sales.merchant])))

    all_ids = pa.concat_arrays([user_ids, app_ids, merchant_ids])
    offset = np.array([0, n_u, n_u + len(app_order)])
    et = labels.entity_type.astype(np.int64)
    entity_sort = np.where(et == 0, user_perm[np.where(et == 0, labels.entity, 0)],
                           np.where(et == 1, app_rank[np.where(et == 1, labels.entity, 0)],
                                    merch_perm[np.where(et == 2, labels.entity, 0)]))
    t["label_events"] = LazyTable("label_events", {
        "entity_type": Ref(pa.array(ENTITY_TYPES), et),
        "entity_id": Ref(all_ids, offset[et] + labels.entity),
        "kind": Ref(pa.array(KINDS), labels.kind.astype(np.int64)),
        "visible_at": labels.visible_at,
        "source": Ref(pa.array(SOURCES), labels.source.astype(np.int64)),
    }, np.lexsort((entity_sort, labels.kind, et, labels.visible_at)))

    patterns = pa.array(PATTERNS)
    pat = a["pattern"].astype(np.int64) - 1
    t["truth_applications"] = LazyTable("truth_applications", {
        "application_id": Ref(app_ids, np.arange(len(app_order))),
        "user_id": Ref(user_ids, a["user"]), "product": Ref(products, a["product"]
                                                            .astype(np.int64)),
        "ts": a["ts"], "fraud": pat >= 0, "pattern": Ref(patterns, pat),
        "group_id": Nullable(a["group"].astype(np.int64)),
        "fraud_label_at": Nullable(labels.app_fraud_at),
        "cleared_at": Nullable(labels.app_cleared_at), "funded": loans.funded,
        "default": loans.default, "default_label_at": Nullable(loans.default_visible_at),
    }, app_order)
    role = u["role"].astype(np.int64)
    t["truth_users"] = LazyTable("truth_users", {
        "user_id": Ref(user_ids, np.arange(n_u)), "role": Ref(pa.array(ROLES), role),
        "fraud": (role == 1) | (role == 2),
        "pattern": Ref(patterns, u["pattern"].astype(np.int64) - 1),
        "group_id": Nullable(u["group"].astype(np.int64)),
        "fraud_label_at": Nullable(labels.user_fraud_at),
        "default": labels.user_default_at >= 0,
        "default_label_at": Nullable(labels.user_default_at),
        "income_band": u["income_band"].astype(np.int64),
        "household_id": Nullable(u["household"].astype(np.int64)),
    }, user_order)
    t["truth_merchants"] = LazyTable("truth_merchants", {
        "merchant_id": Ref(merchant_ids, np.arange(n_m)), "fraud": m["pattern"] > 0,
        "pattern": Ref(patterns, m["pattern"].astype(np.int64) - 1),
        "group_id": Nullable(m["group"].astype(np.int64)),
        "fraud_label_at": Nullable(labels.merchant_fraud_at),
    }, merch_order)
    return world


def _event_ids(prefix: str, order: np.ndarray) -> Ref:
    """Ids numbered in time order: the row at position ``order[k]`` gets number ``k``."""
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return Ref(ids.format_ids(prefix, np.arange(len(order)), 10), rank)


def write_world(world: World, out: Path) -> dict[str, int]:
    """Write every table as ``<name>.parquet`` and the metadata as ``world.json``.

    The same world always gives the same bytes (zstd, fixed row groups, no timestamps).

    Args:
        world (World): the world to write.
        out (Path): target directory; created if missing; existing tables are replaced.

    Returns:
        dict[str, int]: rows written per table.
    """
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for name, table in world.tables.items():
        path = out / f"{name}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        with pq.ParquetWriter(tmp, TABLES[name], compression="zstd") as writer:
            for lo in range(0, max(table.num_rows, 1), ROW_GROUP):
                writer.write_table(table.slice(lo, min(lo + ROW_GROUP, table.num_rows)),
                                   row_group_size=ROW_GROUP)
        tmp.replace(path)
        rows[name] = table.num_rows
    meta = {
        "format_version": FORMAT_VERSION,
        "start_ts": world.config.start_ts,
        "end_ts": world.config.end_ts,
        "rows": rows,
        "config": world.config.to_dict(),
    }
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True,
                                                ensure_ascii=False) + "\n")
    return rows


