"""The data card's numbers, computed from a written world: sizes, base rates, labels, hubs.

``riskgraph datacard DIR`` writes them into docs/SIMULATOR.md between its markers, with the
parameter and schema tables generated from the config docstrings and
:data:`simulator.TABLES`. How rules do on a world is not measured here: the one rules
model (:class:`gnn.RiskRules`, over the features the GNN reads) is baseline (a) of
``riskgraph evaluate`` (docs/EVALUATION.md), per pattern, on the test period.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow.parquet as pq

from graph.privacy import normalise
from simulator.config import PATTERNS, WorldConfig
from simulator.difficulty import DIFFICULTIES, hiding_knobs, with_difficulty
from graph.world_files import TABLES, read_metadata

SECTIONS: Final[tuple[str, ...]] = ("parameters", "difficulties", "schemas", "datacard",
                                     "hiding")
"""Generated sections of the data card, each between ``<!-- NAME:begin ... -->`` and
``<!-- NAME:end -->``."""
DAY: Final = 86_400


def _read(directory: Path, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    return pq.read_table(directory / f"{name}.parquet", columns=columns).to_pandas()


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


HIDING_PATTERNS: Final[tuple[str, ...]] = (
    "fraud_ring", "synthetic_identity", "merchant_collusion", "intermediary_packaging",
    "device_farm",
)
"""The patterns whose own accounts :func:`hiding_statistics` describes (an account takeover's
account is its victim's, a sales inflation's is the merchant owner's)."""

HIDING_STATISTICS: Final[dict[str, str]] = {
    "accounts_per_device": "accounts on the device of an application (mean over applications)",
    "accounts_per_phone": "accounts listing the account's most shared phone (mean over accounts)",
    "account_gap_days": "days between consecutive applications of an account (median)",
    "group_gap_days": "days between consecutive applications of a group (median)",
    "group_span_days": "days from a group's first to its last application (median)",
    "age_at_first_application_days": "account age at its first application, days (median)",
    "orders_before_first_application": "orders before its first application (mean)",
    "history_share": "share of accounts with >= 3 orders before their first application",
    "labelled_neighbour_share": "share of applications filed when the account, a contact, a "
                                "device-mate or the merchant already carried a fraud label",
}
"""What :func:`hiding_statistics` measures, and how the data card names it."""


def hiding_statistics(directory: Path) -> dict[str, dict[str, float]]:
    """How well fraud hides in a world: the statistics of :data:`HIDING_STATISTICS` for honest
    accounts and for the accounts of each pattern of :data:`HIDING_PATTERNS`.

    The honest column reads honest applications and the accounts of the honest role; a
    pattern's column reads its fraud applications and the accounts that filed them. Groups
    (rings, operators, shops, agencies, farms) have no honest counterpart (NaN).

    Args:
        directory (Path): a world written by :func:`simulator.write_world`.

    Returns:
        dict[str, dict[str, float]]: ``"honest"`` or pattern -> statistic -> value.
    """
    ta = _read(directory, "truth_applications", ["application_id", "user_id", "ts", "fraud",
                                                 "pattern", "group_id"])
    tu = _read(directory, "truth_users", ["user_id", "role"])
    apps = _read(directory, "applications", ["application_id", "device_serial", "merchant_id"])
    logins = _read(directory, "logins", ["user_id", "device_serial"])
    phones = _read(directory, "phones", ["user_id", "phone"])
    orders = _read(directory, "orders", ["user_id", "ts", "application_id"])
    created = _read(directory, "users", ["user_id", "created_at"]).set_index("user_id").created_at
    ta = ta.merge(apps, on="application_id")
    per_device = logins.groupby("device_serial").user_id.nunique()
    per_phone = phones.groupby("phone").user_id.nunique()
    plain = orders[orders.application_id.isna()]
    honest_users = set(tu.user_id[tu.role == "honest"])
    events = _read(directory, "label_events", ["entity_type", "entity_id", "kind", "visible_at"])
    fraud_labels = events[events.kind == "fraud"]
    labelled = fraud_labels[fraud_labels.entity_type != "Application"
                            ].groupby("entity_id").visible_at.min()
    contacts = _read(directory, "contacts", ["user_id", "contact_user_id"])
    mates = logins.drop_duplicates()
    neighbours = pd.concat([
        contacts.rename(columns={"contact_user_id": "other"}),
        contacts.rename(columns={"user_id": "other", "contact_user_id": "user_id"}),
    ])
    out: dict[str, dict[str, float]] = {}
    for who in ("honest", *HIDING_PATTERNS):
        if who == "honest":
            mine = ta[~ta.fraud & ta.user_id.isin(honest_users)]
        else:
            mine = ta[ta.fraud & (ta.pattern == who)]
        users = mine.user_id.unique()
        first = mine.groupby("user_id").ts.min()
        before = plain.merge(first.rename("first"), left_on="user_id", right_index=True)
        n_before = (before[before.ts < before["first"]].groupby("user_id").size()
                    .reindex(first.index, fill_value=0))
        listed = phones[phones.user_id.isin(users)]
        sharing = per_phone.reindex(listed.phone).to_numpy()
        stats = {
            "accounts_per_device": float(per_device.reindex(mine.device_serial).mean()),
            "accounts_per_phone": float(pd.Series(sharing).groupby(listed.user_id.to_numpy())
                                        .max().mean()),
            "group_gap_days": float("nan"),
            "group_span_days": float("nan"),
            "age_at_first_application_days": float(
                ((first - created.reindex(first.index)) / DAY).median()),
            "orders_before_first_application": float(n_before.mean()),
            "history_share": float((n_before >= 3).mean()),
        }
        stats["labelled_neighbour_share"] = _labelled_neighbour_share(mine, neighbours, mates,
                                                                      labelled)
        by_account = mine.sort_values("ts").groupby("user_id").ts
        stats["account_gap_days"] = float((by_account.diff().dropna() / DAY).median())
        if who != "honest":
            by_group = mine.sort_values("ts").groupby("group_id").ts
            stats["group_gap_days"] = float((by_group.diff().dropna() / DAY).median())
            stats["group_span_days"] = float(((by_group.max() - by_group.min()) / DAY).median())
        out[who] = stats
    return out


def _labelled_neighbour_share(apps: pd.DataFrame, neighbours: pd.DataFrame,
                              mates: pd.DataFrame, labelled: pd.Series) -> float:
    """Share of ``apps`` filed when the account itself, a contact of it, another account on the
    application's device or the application's merchant already carried a visible fraud label
    (``labelled``: first label per account or merchant id). What a spread-out group risks: its
    first members are caught before its last ones apply."""
    own = apps[["application_id", "ts"]].assign(other=apps.user_id)
    shop = apps[["application_id", "ts"]].assign(other=apps.merchant_id)
    contact = apps[["application_id", "user_id", "ts"]].merge(neighbours, on="user_id")
    device = apps[["application_id", "user_id", "ts", "device_serial"]].merge(
        mates.rename(columns={"user_id": "other"}), on="device_serial")
    device = device[device.other != device.user_id]
    seen = pd.concat([own, shop.dropna(subset=["other"]),
                      contact[["application_id", "ts", "other"]],
                      device[["application_id", "ts", "other"]]])
    hit = seen.other.map(labelled) < seen.ts
    caught = set(seen.application_id[hit.to_numpy()])
    return float(apps.application_id.isin(caught).mean())


def render_hiding(worlds: dict[str, Path], *, command: str) -> str:
    """The data card's table of :func:`hiding_statistics`, one column per world and group.

    Args:
        worlds (dict[str, Path]): world name (e.g. ``"default"``, ``"adaptive"``) -> directory;
            the worlds should share their seed and size, so that only the fraud differs.
        command (str): the command that made the table, quoted above it.
    """
    measured = {name: hiding_statistics(path) for name, path in worlds.items()}
    names = list(worlds)
    lines = [f"Generated by `{command}`.", "",
             "| accounts | statistic | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for who in ("honest", *HIDING_PATTERNS):
        for key, label in HIDING_STATISTICS.items():
            values = [measured[n][who][key] for n in names]
            if all(v != v for v in values):
                continue
            cells = " | ".join("—" if v != v else (_pct(v) if key.endswith("_share")
                                                    else f"{v:.2f}") for v in values)
            lines.append(f"| {who} | {label} | {cells} |")
    return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def render_markdown(directory: Path, *, command: str) -> str:
    """The generated section of the data card: the base rates."""
    r = base_rates(directory)
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


def render_difficulties() -> str:
    """One table per difficulty other than the default: each parameter it changes, today's
    value, its value, and what it means (from the docstrings)."""
    lines: list[str] = []
    base = WorldConfig()
    for name in DIFFICULTIES:
        knobs = hiding_knobs(with_difficulty(base, name))
        if not knobs:
            continue
        lines += [f"**`{name}`** (`riskgraph simulate --difficulty {name}`)", "",
                  "| parameter | default | " + name + " | meaning |", "|---|---|---|---|"]
        for key, value in knobs.items():
            section, knob = key.split(".")
            docs = _arg_docs(type(getattr(base, section)))
            lines.append(f"| `{key}` | `{getattr(getattr(base, section), knob)}` | `{value}` | "
                         f"{docs.get(knob, '')} |")
        lines.append("")
    return "\n".join(lines).rstrip()


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
