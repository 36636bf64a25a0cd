"""The data card's numbers, computed from a written world: base rates and how simple rules do.

Every rule sees only what was known at the application's time (earlier events, labels visible
before it), the way a rule engine in the approval flow would. Precision is against all fraud,
recall is given overall and per planted pattern, so the table shows which patterns a rule
catches and what it costs in false alarms. ``riskgraph datacard DIR`` writes the result into
docs/SIMULATOR.md between its markers, with the parameter and schema tables generated from the
config docstrings and :data:`graph.simulator.TABLES`.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from graph.privacy import normalise
from graph.simulator._geo import haversine_km
from graph.simulator.config import PATTERNS, WorldConfig
from graph.simulator.tables import TABLES
from graph.simulator.world import read_metadata

SECTIONS: Final[tuple[str, ...]] = ("parameters", "schemas", "datacard")
"""Generated sections of the data card, each between ``<!-- NAME:begin ... -->`` and
``<!-- NAME:end -->``."""
DAY: Final = 86_400
_FAR_KM: Final = 500.0


@dataclass(frozen=True)
class Rule:
    """A simple rule and what it flags.

    Args:
        name (str): short code.
        description (str): what it checks, in words.
        flags (np.ndarray): bool per application (in ``truth_applications`` order).
    """

    name: str
    description: str
    flags: np.ndarray


def _read(directory: Path, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    return pq.read_table(directory / f"{name}.parquet", columns=columns).to_pandas()


def _codes(*series: pd.Series) -> list[np.ndarray]:
    """Integer codes shared across several string columns."""
    values = pd.concat(series, ignore_index=True)
    codes, _ = pd.factorize(values)
    out, lo = [], 0
    for s in series:
        out.append(codes[lo: lo + len(s)].astype(np.int64))
        lo += len(s)
    return out


def _count_before(key: np.ndarray, ts: np.ndarray, q_key: np.ndarray, q_ts: np.ndarray,
                  window: int | None = None) -> np.ndarray:
    """For each query, how many ``(key, ts)`` events share its key with ``ts <= q_ts`` (and
    ``ts > q_ts - window`` when a window is given)."""
    order = np.lexsort((ts, key))
    k, t = key[order], ts[order]
    lo_key = np.searchsorted(k, q_key, side="left")
    hi_key = np.searchsorted(k, q_key, side="right")
    out = np.zeros(len(q_key), dtype=np.int64)
    # NOTE: searchsorted per key range, vectorised by offsetting times into key blocks.
    big = np.int64(1) << 40
    base = t.min(initial=0)
    enc = k * big + (t - base)
    upto = np.searchsorted(enc, q_key * big + (q_ts - base), side="right")
    out = upto - lo_key
    if window is not None:
        since = np.searchsorted(enc, q_key * big + (q_ts - window - base), side="right")
        out = upto - np.maximum(since, lo_key)
    return np.asarray(np.clip(np.minimum(out, hi_key - lo_key), 0, None))


def evaluate_rules(directory: Path) -> list[Rule]:
    """Evaluate the data card's rules on every application of a world.

    Args:
        directory (Path): a world directory.

    Returns:
        list[Rule]: one entry per rule, the last being "any rule".
    """
    apps = _read(directory, "applications")
    truth = _read(directory, "truth_applications", ["application_id", "fraud", "pattern"])
    apps = apps.merge(truth, on="application_id", how="left", validate="1:1")
    logins = _read(directory, "logins", ["user_id", "ts", "device_serial"])
    users = _read(directory, "users", ["user_id", "created_at", "home_lat", "home_lon"])
    orders = _read(directory, "orders", ["user_id", "ts", "amount", "bnpl"])
    devices = _read(directory, "devices", ["device_serial", "os"])
    phones = _read(directory, "phones")
    places = _read(directory, "addresses", ["user_id", "kind", "value", "since"])
    contacts = _read(directory, "contacts", ["user_id", "contact_user_id"])
    labels = _read(directory, "label_events")
    sales = _read(directory, "merchant_sales", ["merchant_id", "day", "gmv", "refunds"])
    n = len(apps)
    t = apps["ts"].to_numpy()
    amount = apps["amount"].to_numpy()
    rules: list[Rule] = []

    def add(name: str, description: str, flags: np.ndarray) -> None:
        rules.append(Rule(name, description, np.asarray(flags, dtype=bool)))

    # First use of each (user, device) pair, from logins and applications.
    use = pd.concat([logins[["user_id", "device_serial", "ts"]],
                     apps[["user_id", "device_serial", "ts"]]], ignore_index=True)
    first = use.groupby(["user_id", "device_serial"], sort=False).ts.min().reset_index()
    d_key, q_dev = _codes(first.device_serial, apps.device_serial)
    n_dev_users = _count_before(d_key, first.ts.to_numpy(), q_dev, t)
    add("device_shared_3", "the application's device was used by >= 3 accounts so far",
        n_dev_users >= 3)

    p_key, = _codes(phones.phone)
    per_phone = _count_before(p_key, phones.since.to_numpy(), p_key, phones.since.to_numpy())
    phones = phones.assign(n_users=per_phone)
    j = apps[["user_id", "ts"]].reset_index().merge(phones, on="user_id")
    j = j[j.since <= j.ts]
    pmax = j.groupby("index").n_users.max().reindex(range(n), fill_value=0).to_numpy()
    add("phone_shared_3", "a phone of the applicant is registered to >= 3 accounts", pmax >= 3)

    key = apps.user_id + "\x00" + apps.device_serial
    fkey = first.user_id + "\x00" + first.device_serial
    first_use = pd.Series(first.ts.to_numpy(), index=fkey).reindex(key).to_numpy()
    new_device = first_use >= t - 7 * DAY
    prior_median = _prior_median(orders, apps)
    big5 = amount > 5 * np.nan_to_num(prior_median, nan=np.inf)
    add("new_device_5x", "device first seen <= 7 days ago and amount > 5x the user's median "
        "earlier order", new_device & big5)

    u_key, = _codes(apps.user_id)
    add("apps_24h_3", ">= 3 applications by the account within 24 h",
        _count_before(u_key, t, u_key, t, DAY) >= 3)

    ip_key, = _codes(apps.ip)
    add("ip_apps_24h_10", ">= 10 applications from the IP within 24 h",
        _count_before(ip_key, t, ip_key, t, DAY) >= 10)

    work = places[places.kind == "work"].copy()
    work["company"] = [normalise("company", v) for v in work.value]
    jw = apps[["user_id", "ts"]].reset_index().merge(work[["user_id", "company", "since"]],
                                                     on="user_id")
    jw = jw[jw.since <= jw.ts]
    c_key, = _codes(jw.company)
    jt = jw.ts.to_numpy()
    cnt = _count_before(c_key, jt, c_key, jt, 30 * DAY)
    cmax = pd.Series(cnt).groupby(jw["index"].to_numpy()).max().reindex(range(n), fill_value=0)
    add("company_apps_30d_10", ">= 10 applications in 30 days from people declaring the same "
        "(normalised) company", cmax.to_numpy() >= 10)

    home = users.set_index("user_id").loc[apps.user_id]
    dist = haversine_km(home.home_lat.to_numpy(), home.home_lon.to_numpy(),
                      apps.lat.to_numpy(), apps.lon.to_numpy())
    add("far_5x", "GPS > 500 km from the declared home and amount > 5x the user's median "
        "earlier order", (dist > _FAR_KM) & big5)

    age = t - home.created_at.to_numpy()
    o_key, q_key = _codes(orders.user_id, apps.user_id)
    prior_orders = _count_before(o_key, orders.ts.to_numpy(), q_key, t - 1)
    add("thin_new_account", "account younger than 30 days with at most 1 earlier order",
        (age < 30 * DAY) & (prior_orders <= 1))

    emu = set(devices.device_serial[devices.os == "emulator"])
    add("emulator", "applied from an emulator", apps.device_serial.isin(emu).to_numpy())

    add("merchant_refunds_25", "merchant refunds > 25 % of GMV over the 30 days before",
        _merchant_window(sales, apps, "refunds") > 0.25)
    add("merchant_gmv_jump_2x", "merchant loan with GMV of the last 30 days > 2x the 30-day "
        "average of the 60 days before", (apps["product"] == "merchant_loan").to_numpy()
        & (_merchant_window(sales, apps, "jump") > 2.0))

    fraud_users = labels[(labels.entity_type == "User") & (labels.kind == "fraud")]
    lab_at = fraud_users.groupby("entity_id").visible_at.min()
    cj = apps[["user_id", "ts"]].reset_index().merge(contacts, on="user_id")
    cj["at"] = cj.contact_user_id.map(lab_at)
    hit = cj[cj["at"] < cj.ts]["index"].unique()
    flags = np.zeros(n, dtype=bool)
    flags[hit] = True
    add("contact_labelled_fraud", "an emergency contact carries a fraud label visible before",
        flags)

    any_rule = np.zeros(n, dtype=bool)
    for r in rules:
        any_rule |= r.flags
    add("any_rule", "any of the rules above", any_rule)
    return rules


def _prior_median(orders: pd.DataFrame, apps: pd.DataFrame) -> np.ndarray:
    """Median amount of the user's orders strictly before each application (NaN if none)."""
    o = orders.sort_values(["user_id", "ts"], kind="stable")
    uid, ts, amt = o.user_id.to_numpy(), o.ts.to_numpy(), o.amount.to_numpy()
    starts = {u: i for i, u in zip(*np.unique(uid, return_index=True)[::-1], strict=True)}
    ends = dict(zip(*np.unique(uid[::-1], return_index=True), strict=True))
    out = np.full(len(apps), np.nan)
    for i, (u, t) in enumerate(zip(apps.user_id.to_numpy(), apps.ts.to_numpy(), strict=True)):
        lo = starts.get(u)
        if lo is None:
            continue
        hi = len(uid) - ends[u]
        k = lo + int(np.searchsorted(ts[lo:hi], t, side="left"))
        if k > lo:
            out[i] = np.median(amt[lo:k])
    return out


def _merchant_window(sales: pd.DataFrame, apps: pd.DataFrame, what: str) -> np.ndarray:
    """Per application at a merchant: refund share of the prior 30 days, or the GMV jump."""
    out = np.zeros(len(apps))
    has = apps.merchant_id.notna().to_numpy()
    if not has.any():
        return out
    s = sales.sort_values(["merchant_id", "day"], kind="stable")
    mids = s.merchant_id.unique()
    n_days = len(s) // max(len(mids), 1)
    gmv = s.gmv.to_numpy().reshape(len(mids), n_days)
    ref = s.refunds.to_numpy().reshape(len(mids), n_days)
    cg, cr = np.cumsum(gmv, axis=1), np.cumsum(ref, axis=1)
    first_day = int(s.day.min())
    row = pd.Series(np.arange(len(mids)), index=mids).reindex(apps.merchant_id[has]).to_numpy()
    day = (apps.ts[has].to_numpy() - first_day) // DAY  # reports of finished days only

    def total(c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        hi_v = np.where(hi > 0, c[row, np.clip(hi - 1, 0, n_days - 1)], 0.0)
        lo_v = np.where(lo > 0, c[row, np.clip(lo - 1, 0, n_days - 1)], 0.0)
        return hi_v - lo_v

    lo30 = np.maximum(day - 30, 0)
    g30 = total(cg, lo30, day)
    if what == "refunds":
        val = total(cr, lo30, day) / np.maximum(g30, 1e-9)
        val[day < 7] = 0.0
    else:
        prev = total(cg, np.maximum(day - 90, 0), lo30) / 2
        val = np.where(day >= 90, g30 / np.maximum(prev, 1e-9), 0.0)
    out[has] = val
    return out


def rule_table(directory: Path, rules: list[Rule] | None = None) -> pd.DataFrame:
    """Precision and recall of each rule, overall and per pattern."""
    truth = _read(directory, "truth_applications", ["fraud", "pattern"])
    rules = evaluate_rules(directory) if rules is None else rules
    fraud = truth.fraud.to_numpy()
    rows = []
    for r in rules:
        tp = int((r.flags & fraud).sum())
        row: dict[str, object] = {
            "rule": r.name, "checks": r.description, "flagged": int(r.flags.sum()),
            "precision": tp / max(int(r.flags.sum()), 1), "recall": tp / max(int(fraud.sum()), 1),
        }
        for p in PATTERNS:
            sel = (truth.pattern == p).to_numpy()
            row[p] = (r.flags & sel).sum() / max(int(sel.sum()), 1)
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class BaseRates:
    """The headline numbers of a world: sizes, fraud and default rates, labels, hubs."""

    users: int
    applications: int
    fraud_rate: float
    fraud_by_pattern: dict[str, int]
    funded_default_rate: float
    honest_funded_default_rate: float
    unlabelled_fraud_share: float
    label_delay_days_median: float
    label_delay_days_p90: float
    label_after_window_share: float
    products: dict[str, int]
    accounts_by_role: dict[str, int]
    ip_users_median_max: dict[str, tuple[int, int]]
    company_users_max: int
    companies_with_several_spellings: int
    devices_with_3plus_accounts: int


def base_rates(directory: Path) -> BaseRates:
    """Compute :class:`BaseRates` from a world directory."""
    ta = _read(directory, "truth_applications")
    tu = _read(directory, "truth_users", ["role", "fraud"])
    logins = _read(directory, "logins", ["user_id", "ip", "device_serial"])
    ips = _read(directory, "ips", ["ip", "kind"])
    places = _read(directory, "addresses", ["user_id", "kind", "value"])
    fraud = ta[ta.fraud]
    funded = ta[ta.funded]
    per_ip = logins.groupby("ip").user_id.nunique()
    kinds = ips.set_index("ip").kind.reindex(per_ip.index)
    hub = per_ip.groupby(kinds.to_numpy()).agg(["median", "max"])
    work = places[places.kind == "work"]
    companies = pd.Series([normalise("company", v) for v in work.value], index=work.index)
    per_company = work.groupby(companies.to_numpy()).user_id.nunique()
    spellings = work.groupby(companies.to_numpy()).value.nunique()
    per_device = logins.groupby("device_serial").user_id.nunique()
    delay = (fraud.fraud_label_at - fraud.ts) / DAY
    end_ts = read_metadata(directory)["end_ts"]
    assert isinstance(end_ts, int)
    return BaseRates(
        users=len(tu),
        applications=len(ta),
        fraud_rate=float(ta.fraud.mean()),
        fraud_by_pattern={p: int((fraud.pattern == p).sum()) for p in PATTERNS},
        funded_default_rate=float(funded["default"].mean()),
        honest_funded_default_rate=float(funded[~funded.fraud]["default"].mean()),
        unlabelled_fraud_share=float(fraud.fraud_label_at.isna().mean()),
        label_delay_days_median=float(delay.median()),
        label_delay_days_p90=float(delay.quantile(0.9)),
        label_after_window_share=float((fraud.fraud_label_at >= end_ts).mean()),
        products={str(k): int(v) for k, v in ta["product"].value_counts().items()},
        accounts_by_role={str(k): int(v) for k, v in tu.role.value_counts().items()},
        ip_users_median_max={str(k): (int(v["median"]), int(v["max"]))
                             for k, v in hub.iterrows()},
        company_users_max=int(per_company.max()) if len(per_company) else 0,
        companies_with_several_spellings=int((spellings > 1).sum()),
        devices_with_3plus_accounts=int((per_device >= 3).sum()),
    )


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def render_markdown(directory: Path, *, command: str) -> str:
    """The generated section of the data card: base rates, then the rule table."""
    r = base_rates(directory)
    table = rule_table(directory)
    lines = [f"Generated by `{command}`.", "", "**Base rates**", "",
             "| quantity | value |", "|---|---|",
             f"| accounts | {r.users:,} |",
             f"| applications | {r.applications:,} |",
             f"| fraud share of applications | {_pct(r.fraud_rate)} |",
             f"| default share of funded loans (all / honest only) | "
             f"{_pct(r.funded_default_rate)} / {_pct(r.honest_funded_default_rate)} |",
             f"| fraud never labelled | {_pct(r.unlabelled_fraud_share)} |",
             f"| label delay, days (median / p90) | {r.label_delay_days_median:.1f} / "
             f"{r.label_delay_days_p90:.1f} |",
             f"| fraud labelled only after the window ends | "
             f"{_pct(r.label_after_window_share)} |",
             f"| largest company (accounts declaring it) | {r.company_users_max:,} |",
             f"| companies written in several spellings | "
             f"{r.companies_with_several_spellings:,} |",
             f"| devices used by >= 3 accounts | {r.devices_with_3plus_accounts:,} |",
             "| fraud applications per pattern | "
             + ", ".join(f"{k} {v:,}" for k, v in r.fraud_by_pattern.items()) + " |",
             "| applications per product | "
             + ", ".join(f"{k} {v:,}" for k, v in sorted(r.products.items())) + " |",
             "| accounts per role | "
             + ", ".join(f"{k} {v:,}" for k, v in sorted(r.accounts_by_role.items())) + " |",
             "| accounts per IP, median / max, by kind | "
             + ", ".join(f"{k} {a:,}/{b:,}" for k, (a, b) in sorted(r.ip_users_median_max
                                                                      .items())) + " |"]
    short = {"fraud_ring": "ring", "synthetic_identity": "synth", "account_takeover": "ATO",
             "merchant_collusion": "collusion", "sales_inflation": "inflation",
             "intermediary_packaging": "packaging", "device_farm": "farm"}
    lines += ["", "**Simple rules** (precision against all fraud; recall overall and per "
              "pattern)", "",
              "| rule | checks | flagged | precision | recall | "
              + " | ".join(short[p] for p in PATTERNS) + " |",
              "|---|---|---:|---:|---:|" + "---:|" * len(PATTERNS)]
    for _, row in table.iterrows():
        lines.append(f"| `{row['rule']}` | {row['checks']} | {row['flagged']:,} | "
                     f"{_pct(row['precision'])} | {_pct(row['recall'])} | "
                     + " | ".join(_pct(row[p]) for p in PATTERNS) + " |")
    return "\n".join(lines)


def _arg_docs(cls: type) -> dict[str, str]:
    """``name -> description`` from the ``Args:`` block of a Google-style class docstring."""
    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    current: str | None = None
    in_args = False
    for line in doc.splitlines():
        if line.strip() == "Args:":
            in_args = True
            continue
        if in_args and line and not line.startswith(" "):
            break
        m = re.match(r"^ {4}([\w, ]+) \(([^)]*)\):\s*(.*)$", line)
        if in_args and m:
            current = m.group(1)
            out[current] = m.group(3)
        elif in_args and current and line.startswith(" " * 8):
            out[current] += " " + line.strip()
    return out


def render_parameters() -> str:
    """One table per config section: parameter, default, meaning (from the docstrings)."""
    lines: list[str] = []
    world_docs = _arg_docs(WorldConfig)
    lines += ["**`WorldConfig`**", "", "| parameter | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(WorldConfig):
        if f.name in _SUBCONFIG_NAMES:
            continue
        default = (f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else f.default)
        lines.append(f"| `{f.name}` | `{default}` | {world_docs.get(f.name, '')} |")
    for f in dataclasses.fields(WorldConfig):
        if f.name not in _SUBCONFIG_NAMES:
            continue
        section = f.default
        assert dataclasses.is_dataclass(section) and not isinstance(section, type)
        cls = type(section)
        docs = _arg_docs(cls)
        summary = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
        lines += ["", f"**`{f.name}`** (`{cls.__name__}`): {summary}", "",
                  "| parameter | default | meaning |", "|---|---|---|"]
        for sub in dataclasses.fields(section):
            lines.append(f"| `{sub.name}` | `{getattr(section, sub.name)}` | "
                         f"{docs.get(sub.name, '')} |")
    return "\n".join(lines)


def render_schemas() -> str:
    """One table per raw and truth table: column, type, nullable, meaning."""
    lines: list[str] = []
    for name, schema in TABLES.items():
        lines += [f"**`{name}.parquet`**", "", "| column | type | null | meaning |",
                  "|---|---|---|---|"]
        for fld in schema:
            doc = (fld.metadata or {}).get(b"doc", b"").decode()
            lines.append(f"| `{fld.name}` | {fld.type} | {'yes' if fld.nullable else ''} | "
                         f"{doc} |")
        lines.append("")
    return "\n".join(lines).rstrip()


def write_into(doc: Path, body: str, *, section: str = "datacard") -> None:
    """Replace the text of one generated ``section`` of ``doc`` with ``body``.

    Raises:
        ValueError: if ``doc`` lacks the section's markers.
    """
    begin, end = _markers(section)
    text = doc.read_text()
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"{doc} has no {section} markers ({begin!r} ... {end!r})")
    doc.write_text(text[: start + len(begin)] + "\n" + body + "\n" + text[stop:])


def _markers(section: str) -> tuple[str, str]:
    if section not in SECTIONS:
        raise ValueError(f"section must be one of {SECTIONS}, got {section!r}")
    return (f"<!-- {section}:begin (generated by `riskgraph datacard`; do not edit) -->",
            f"<!-- {section}:end -->")


_SUBCONFIG_NAMES: Final = frozenset(
    f.name for f in dataclasses.fields(WorldConfig) if dataclasses.is_dataclass(f.default))
