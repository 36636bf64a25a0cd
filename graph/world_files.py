"""World files: the raw tables a simulated (or exported upstream) world is written as, and a
world directory read as the :class:`GraphSnapshot` a store loaded from it would export.

The tables are what an upstream system would hand over: people's identifiers (phone numbers,
national ids, names, addresses, company names, device serials) are **in clear**; hashing
happens at the load boundary (:mod:`graph.ingest`). All times are int64 epoch seconds (UTC),
amounts CNY. ``truth_*`` tables are the ground truth, never loaded into a store. The simulator
(:mod:`simulator`) writes them; the loader (:mod:`graph.loader`) and
:func:`world_snapshot` read them.

:func:`world_snapshot` runs the loader's own plan (:data:`graph.ingest.PLAN`: the same pure row
builders, the same identifier hashing, the same ``as_of`` visibility) into in-memory Arrow
tables instead of a store, so a model trained on a world and a model scoring a store see one
representation.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from graph.errors import LoadError
from graph.ingest import PLAN, columns_table, device_usage, label_writes, visible_as_of
from graph.privacy import Pseudonymiser
from graph.schema import SCHEMA
from graph.snapshot import GraphSnapshot
from graph.store import edge_arrow_schema, fold_rows, node_arrow_schema

def _f(name: str, type_: pa.DataType, doc: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


_S, _I, _D, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()

TABLES: Final[dict[str, pa.Schema]] = {
    "users": pa.schema([
        _f("user_id", _S, "account id (not personal data)"),
        _f("created_at", _I, "sign-up time"),
        _f("name", _S, "full name, in clear"),
        _f("national_id", _S, "18-character resident identity number, in clear"),
        _f("home_city", _S, "declared home city"),
        _f("home_lat", _D, "declared home latitude"),
        _f("home_lon", _D, "declared home longitude"),
    ]),
    "phones": pa.schema([
        _f("user_id", _S, "account"),
        _f("phone", _S, "11-digit mobile number, in clear; shared numbers link accounts"),
        _f("since", _I, "when the account registered the number"),
    ]),
    "addresses": pa.schema([
        _f("user_id", _S, "account"),
        _f("kind", _S, "home (street address) or work (company name as the user wrote it)"),
        _f("value", _S, "the address or company name, in clear, spelling as declared"),
        _f("city", _S, "city of the address or company"),
        _f("lat", _D, "latitude of the place"),
        _f("lon", _D, "longitude of the place"),
        _f("since", _I, "when the account declared it"),
    ]),
    "devices": pa.schema([
        _f("device_serial", _S, "IMEI / vendor id / emulator id, in clear"),
        _f("os", _S, "android, ios or emulator"),
        _f("first_seen", _I, "first login or application from the device"),
    ]),
    "ips": pa.schema([
        _f("ip", _S, "IPv4 address"),
        _f("kind", _S, "residential, mobile, office, public_wifi or datacenter"),
        _f("city", _S, "IP geolocation city"),
        _f("lat", _D, "IP geolocation latitude (coarse)"),
        _f("lon", _D, "IP geolocation longitude (coarse)"),
    ]),
    "merchants": pa.schema([
        _f("merchant_id", _S, "merchant id"),
        _f("name", _S, "shop name"),
        _f("category", _S, "main category"),
        _f("size", _S, "micro, small, medium or large"),
        _f("city", _S, "city"),
        _f("lat", _D, "shop latitude"),
        _f("lon", _D, "shop longitude"),
        _f("created_at", _I, "when the merchant joined the platform"),
    ]),
    "ownership": pa.schema([
        _f("user_id", _S, "owner account"),
        _f("merchant_id", _S, "owned merchant"),
        _f("since", _I, "since when"),
    ]),
    "contacts": pa.schema([
        _f("user_id", _S, "account"),
        _f("contact_user_id", _S, "account listed as emergency contact"),
        _f("since", _I, "when it was listed"),
    ]),
    "logins": pa.schema([
        _f("event_id", _S, "login id"),
        _f("user_id", _S, "account"),
        _f("ts", _I, "login time"),
        _f("device_serial", _S, "device, in clear"),
        _f("ip", _S, "IP address"),
        _f("lat", _D, "GPS latitude reported by the app"),
        _f("lon", _D, "GPS longitude reported by the app"),
    ]),
    "orders": pa.schema([
        _f("event_id", _S, "order id"),
        _f("user_id", _S, "buyer"),
        _f("merchant_id", _S, "seller"),
        _f("ts", _I, "order time"),
        _f("amount", _D, "order value"),
        _f("category", _S, "merchant category"),
        _f("bnpl", _B, "paid with BNPL credit"),
        _f("returned", _B, "returned / refunded"),
        _f("application_id", _S, "the BNPL application financing it", nullable=True),
    ]),
    "applications": pa.schema([
        _f("application_id", _S, "application id"),
        _f("user_id", _S, "applicant"),
        _f("product", _S, "bnpl, cash_loan, merchant_loan or sme_owner_loan"),
        _f("amount", _D, "amount asked"),
        _f("currency", _S, "always CNY"),
        _f("term_months", _I, "loan term in monthly instalments, one of the product's "
           "(graph.typing.PRODUCT_TERMS); null when not stated (worlds written before it)",
           nullable=True),
        _f("ts", _I, "application time"),
        _f("device_serial", _S, "device used, in clear"),
        _f("ip", _S, "IP used"),
        _f("lat", _D, "GPS latitude at application"),
        _f("lon", _D, "GPS longitude at application"),
        _f("merchant_id", _S, "checkout merchant (bnpl) or borrowing merchant (merchant_loan)",
           nullable=True),
    ]),
    "repayments": pa.schema([
        _f("event_id", _S, "repayment event id"),
        _f("user_id", _S, "borrower"),
        _f("application_id", _S, "the funded application"),
        _f("due_ts", _I, "instalment due time"),
        _f("ts", _I, "payment time, or when the instalment was recorded missed"),
        _f("amount", _D, "instalment amount"),
        _f("status", _S, "on_time, late or missed"),
    ]),
    "merchant_sales": pa.schema([
        _f("merchant_id", _S, "merchant"),
        _f("day", _I, "start of the day (UTC)"),
        _f("gmv", _D, "gross merchandise value sold that day"),
        _f("orders", _I, "orders that day"),
        _f("refunds", _D, "value refunded that day"),
        _f("inventory", _D, "inventory value at cost, end of day"),
    ]),
    "label_events": pa.schema([
        _f("entity_type", _S, "User, Application or Merchant"),
        _f("entity_id", _S, "user_id, application_id or merchant_id"),
        _f("kind", _S, "fraud, cleared or default"),
        _f("visible_at", _I, "when the label became known (may lie after the window)"),
        _f("source", _S, "investigator, customer_report or ledger"),
    ]),
    "truth_applications": pa.schema([
        _f("application_id", _S, "application"),
        _f("user_id", _S, "applicant"),
        _f("product", _S, "product"),
        _f("ts", _I, "application time"),
        _f("fraud", _B, "the application is fraud"),
        _f("pattern", _S, "planted pattern, null for honest", nullable=True),
        _f("group_id", _I, "ring / crew / agency / farm / merchant scheme, null for none",
           nullable=True),
        _f("fraud_label_at", _I, "when a fraud label becomes visible, null if never",
           nullable=True),
        _f("cleared_at", _I, "when a 'cleared' label becomes visible, null if never",
           nullable=True),
        _f("funded", _B, "the incumbent policy funded it"),
        _f("default", _B, "the funded loan defaults (false when not funded)"),
        _f("default_label_at", _I, "when the ledger marks the default, null if never",
           nullable=True),
    ]),
    "truth_users": pa.schema([
        _f("user_id", _S, "account"),
        _f("role", _S, "honest, fraudster, accomplice or victim (account taken over)"),
        _f("fraud", _B, "the account is run by or for a fraud operation"),
        _f("pattern", _S, "pattern the account takes part in, null for none", nullable=True),
        _f("group_id", _I, "its ring / crew / agency / farm / scheme, null for none",
           nullable=True),
        _f("fraud_label_at", _I, "when a fraud label becomes visible, null if never",
           nullable=True),
        _f("default", _B, "some funded loan of the account defaults"),
        _f("default_label_at", _I, "first default label, null if never", nullable=True),
        _f("income_band", _I, "hidden income band 0 (lowest) to 4"),
        _f("household_id", _I, "household (shared home), null for fraud-made accounts",
           nullable=True),
    ]),
    "truth_merchants": pa.schema([
        _f("merchant_id", _S, "merchant"),
        _f("fraud", _B, "colluding or inflating merchant"),
        _f("pattern", _S, "merchant_collusion or sales_inflation, null otherwise",
           nullable=True),
        _f("group_id", _I, "scheme id, null for none", nullable=True),
        _f("fraud_label_at", _I, "when a fraud label becomes visible, null if never",
           nullable=True),
    ]),
}
"""Every table of a world directory, in writing order."""

RAW_TABLES: Final[tuple[str, ...]] = tuple(t for t in TABLES if not t.startswith("truth_"))
TRUTH_TABLES: Final[tuple[str, ...]] = tuple(t for t in TABLES if t.startswith("truth_"))

METADATA_FILE: Final = "world.json"
"""The world's description (its configuration, clock and sizes) in a world directory."""


def read_metadata(directory: Path) -> dict[str, object]:
    """The ``world.json`` of a world directory.

    Raises:
        FileNotFoundError: when ``directory`` holds no world.
    """
    path = directory / METADATA_FILE
    if not path.exists():
        raise FileNotFoundError(f"{directory} holds no simulated world ({METADATA_FILE} missing)")
    data: dict[str, object] = json.loads(path.read_text())
    return data


def read_table(directory: Path, name: str, columns: list[str] | None = None) -> pa.Table:
    """One table of a world directory.

    Raises:
        ValueError: if ``name`` is not a world table.
    """
    if name not in TABLES:
        raise ValueError(f"name must be one of {tuple(TABLES)}, got {name!r}")
    return pq.read_table(directory / f"{name}.parquet", columns=columns)


OFFLINE_KEY: Final = b"riskgraph-offline-world-key"
"""Hash key used when no pseudonymiser is given: ids only link rows in memory."""


def read_world_table(world_dir: str | os.PathLike[str], name: str,
                     columns: list[str] | None = None) -> pa.Table:
    """One table of a world directory (``<name>.parquet``).

    Raises:
        LoadError: if the table is missing.
    """
    path = Path(world_dir) / f"{name}.parquet"
    if not path.exists():
        raise LoadError(f"world table {path} does not exist")
    return pq.read_table(path, columns=columns)


def world_snapshot(
    world_dir: str | os.PathLike[str],
    *,
    pseudonymiser: Pseudonymiser | None = None,
    as_of: int | None = None,
) -> GraphSnapshot:
    """The snapshot of ``world_dir`` as known at ``as_of`` (every row when ``None``).

    Args:
        world_dir (str or os.PathLike): a directory written by ``riskgraph simulate``.
        pseudonymiser (Pseudonymiser, optional): the identifier hasher; pass the service's to
            get the ids a store loaded with ``riskgraph load`` holds. (default: an offline key)
        as_of (int, optional): leave out later events, entities and labels. (default: none)

    Raises:
        LoadError: if a table is missing.
    """
    # NOTE: one device, IP, phone or place is named by several tables: hashed once.
    p = (pseudonymiser or Pseudonymiser(OFFLINE_KEY)).remembering()
    cache: dict[str, pa.Table] = {}

    def table(name: str) -> pa.Table:
        if name not in cache:
            if name == "device_usage":
                cache[name] = device_usage(table("logins"), table("applications"))
            else:
                cache[name] = visible_as_of(name, read_world_table(world_dir, name), as_of)
        return cache[name]

    # NOTE: the row builders' own columns laid out as tables, folded by id as the upserts
    # leave them: the rows the loader writes, without a dict per row.
    node_parts: dict[str, list[pa.Table]] = defaultdict(list)
    edge_tables: dict[str, pa.Table] = {}
    for step in PLAN:
        if step.kind == "node":
            node_parts[step.target].append(columns_table(
                step.target, step.columns(table(step.table), p),
                node_arrow_schema(SCHEMA.node(step.target))))
        else:
            edge_tables[step.target] = columns_table(
                step.target, step.columns(table(step.table), p),
                edge_arrow_schema(SCHEMA.rel(step.target)))
    # labels, applied in order as a store applies them (a later label overwrites): one more
    # row per label of a node the rows hold, after its own rows
    labelled: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for lab in label_writes(table("label_events")):
        labelled[lab.label].append({"id": lab.id, **lab.properties()})
    node_tables: dict[str, pa.Table] = {}
    for label, parts in node_parts.items():
        schema = node_arrow_schema(SCHEMA.node(label))
        rows = pa.concat_tables(parts)
        if labelled.get(label):
            labels = pa.Table.from_pylist(labelled[label], schema=schema)
            labels = labels.filter(pc.is_in(labels.column("id"), rows.column("id")))
            rows = pa.concat_tables([rows, labels])
        node_tables[label] = fold_rows(rows, ("id",))
    return GraphSnapshot.from_tables(node_tables, edge_tables)
