"""Raw tables → schema rows: the load boundary where people's identifiers get hashed.

Pure functions: each takes an Arrow table shaped like one of :data:`simulator.TABLES`
(a chunk of a simulated world, or single events from the API turned into a table) and an
injected :class:`graph.Pseudonymiser`, and returns rows for one node label or relationship type
of :data:`graph.SCHEMA`. Nothing here touches a store.

Identity rules:

* ``Phone``, ``Device``, ``Address`` and ``IP`` node ids are keyed hashes of the normalised
  value (an IP's mask is its /24 or /48 network); a work
  place is an ``Address`` whose id hashes the normalised *company* name, so "X有限公司" and
  "X公司" land on one node;
* ``User.id_hash`` is the hash of the national id; names, numbers, serials, addresses and
  companies appear only as :func:`graph.mask` forms; clear values never leave this module;
* account, application and merchant ids are not personal identifiers and are kept;
* every coordinate (homes, addresses, IP places, logins, applications) is stored
  :func:`graph.privacy.coarsen`-ed, no finer than the location features need.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from graph.errors import SchemaError
from graph.privacy import IdentifierKind, Pseudonymiser, coarsen_array, mask
from graph.store import LabelWrite
from graph.typing import Row

__all__ = [
    "PLAN",
    "IngestStep",
    "RowBuilder",
    "address_nodes",
    "application_nodes",
    "applied_at_edges",
    "applied_edges",
    "applied_from_edges",
    "applied_on_edges",
    "columns_table",
    "contact_edges",
    "device_nodes",
    "device_usage",
    "hash_column",
    "has_phone_edges",
    "ip_nodes",
    "label_writes",
    "lives_at_edges",
    "logged_in_edges",
    "mask_column",
    "merchant_nodes",
    "ordered_at_edges",
    "owns_edges",
    "phone_nodes",
    "repaid_edges",
    "reported_edges",
    "sales_report_id",
    "sales_report_nodes",
    "user_nodes",
    "uses_edges",
    "visible_as_of",
    "works_at_edges",
]

RowBuilder = Callable[[pa.Table, Pseudonymiser], list[Row]]
Column: TypeAlias = "pa.Array | Sequence[Any]"
"""One property's values, one per row: an Arrow array (nulls for missing values) or a
sequence (``None`` for a null)."""
Columns = dict[str, Column]
"""A row builder's values column by column, before they are zipped into rows or laid out as
a table."""
ColumnBuilder = Callable[[pa.Table, Pseudonymiser], Columns]


def _uniq_map(values: pa.Array, fn: Callable[[list[str]], list[str]]) -> pa.Array:
    """``fn`` applied to the distinct values, its results expanded back to every row (nulls
    stay null)."""
    (mapped,) = _uniq_maps(values, lambda distinct: (fn(distinct),))
    return mapped


def _uniq_maps(values: pa.Array, fn: Callable[[list[str]], tuple[list[str], ...]]
               ) -> tuple[pa.Array, ...]:
    """:func:`_uniq_map` of a function with several results per value."""
    enc = pc.dictionary_encode(values).combine_chunks() if isinstance(
        values, pa.ChunkedArray) else pc.dictionary_encode(values)
    return tuple(pa.array(out, pa.string()).take(enc.indices)
                 for out in fn(enc.dictionary.to_pylist()))


def _hashed_and_masked(p: Pseudonymiser, kind: IdentifierKind, values: pa.Array
                       ) -> tuple[pa.Array, pa.Array]:
    """:func:`hash_column` and :func:`mask_column` of one column, each value normalised once."""
    hashed, masked = _uniq_maps(values, lambda distinct: p.hash_and_mask_many(kind, distinct))
    return hashed, masked


def hash_column(p: Pseudonymiser, kind: IdentifierKind, values: pa.Array) -> pa.Array:
    """Keyed hashes of a column of clear identifiers (each distinct value hashed once)."""
    return _uniq_map(values, lambda distinct: p.hash_many(kind, distinct))


def mask_column(kind: IdentifierKind, values: pa.Array) -> pa.Array:
    """Masked display forms of a column of clear identifiers."""
    return _uniq_map(values, lambda distinct: [mask(kind, v) for v in distinct])


def _values(column: Column) -> Sequence[Any]:
    """A column as Python values (``None`` for a null)."""
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        values: list[Any] = column.to_pylist()
        return values
    return column


def _rows(columns: Columns) -> list[Row]:
    """Zip columns into rows, leaving out null values (a store leaves absent properties)."""
    keys = tuple(columns)
    values = [_values(col) for col in columns.values()]
    rows = [dict(zip(keys, vals, strict=True)) for vals in zip(*values, strict=True)]
    nullable = [k for k, col in zip(keys, values, strict=True) if any(v is None for v in col)]
    if nullable:
        for row in rows:
            for k in nullable:
                if row[k] is None:
                    del row[k]
    return rows  # type: ignore[return-value]


def _col(t: pa.Table, name: str) -> pa.Array:
    return t.column(name).combine_chunks()


def _coarse(t: pa.Table, name: str) -> pa.Array:
    """A coordinate column as stored (:func:`graph.privacy.coarsen_array`; nulls stay null)."""
    column = _col(t, name)
    values = coarsen_array(column.to_numpy(zero_copy_only=False))
    return pa.array(values, pa.float64(),
                    mask=column.is_null().to_numpy(zero_copy_only=False)
                    if column.null_count else None)


def columns_table(owner: str, columns: Columns, schema: pa.Schema) -> pa.Table:
    """A row builder's ``columns`` as a table of ``schema`` (a column it leaves out is null).

    Raises:
        SchemaError: if a column is not a property of ``schema`` or its values do not fit.
    """
    unknown = set(columns) - set(schema.names)
    if unknown:
        raise SchemaError(f"{owner} has no properties {sorted(unknown)}")
    rows = len(next(iter(columns.values()))) if columns else 0
    try:
        return pa.table([_typed_array(columns[f.name], f.type) if f.name in columns
                         else pa.nulls(rows, f.type) for f in schema], schema=schema)
    except (pa.ArrowException, OverflowError) as e:
        raise SchemaError(f"{owner} rows do not fit the schema: {e}") from e


def _typed_array(column: Column, type_: pa.DataType) -> pa.Array:
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        return column if column.type == type_ else column.cast(type_)
    return pa.array(column, type=type_)


def _dedupe(rows: list[Row]) -> list[Row]:
    """Keep the last row per node id (a chunk may name one address or phone many times)."""
    return list({r["id"]: r for r in rows}.values())


def _where(t: pa.Table, column: str, value: str) -> pa.Table:
    return t.filter(pc.equal(t.column(column), value))


# -- nodes --------------------------------------------------------------------------------------
def user_nodes(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``User`` nodes from ``users``: national id hashed, name masked."""
    return _rows(_user_columns(t, p))


def _user_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {
        "id": _col(t, "user_id"), "created_at": _col(t, "created_at"),
        "id_hash": hash_column(p, "national_id", _col(t, "national_id")),
        "name_masked": mask_column("name", _col(t, "name")),
        "home_city": _col(t, "home_city"), "home_lat": _coarse(t, "home_lat"),
        "home_lon": _coarse(t, "home_lon"),
    }


def device_nodes(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``Device`` nodes from ``devices``: id is the hashed serial."""
    return _rows(_device_columns(t, p))


def _device_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    ids, masked = _hashed_and_masked(p, "device", _col(t, "device_serial"))
    return {
        "id": ids, "masked": masked,
        "os": _col(t, "os"), "first_seen": _col(t, "first_seen"),
    }


def phone_nodes(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``Phone`` nodes from ``phones``: id is the hashed number (one row per phone)."""
    return _dedupe(_rows(_phone_columns(t, p)))


def _phone_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    ids, masked = _hashed_and_masked(p, "phone", _col(t, "phone"))
    return {"id": ids, "masked": masked}


def _place_values(t: pa.Table) -> pa.Array:
    """Per ``addresses`` row its identifier kind's initial, a space, and its value: street
    addresses are ``address``-es, work places ``company``-s (normalised, so spellings of one
    company meet)."""
    initial = pc.if_else(pc.equal(_col(t, "kind"), "work"), "c", "a")
    return pc.binary_join_element_wise(initial, _col(t, "value"), " ")


_PLACE_KIND: Final[dict[str, IdentifierKind]] = {"c": "company", "a": "address"}


def _per_place_kind(distinct: list[str],
                    fn: Callable[[IdentifierKind, list[str]], tuple[list[str], ...]]
                    ) -> tuple[list[str], ...]:
    """``fn(kind, values)`` of the :func:`_place_values` of each identifier kind, its results
    put back in ``distinct``'s order."""
    out: list[list[str]] = []
    for initial, kind in _PLACE_KIND.items():
        at = [i for i, v in enumerate(distinct) if v[0] == initial]
        for k, results in enumerate(fn(kind, [distinct[i][2:] for i in at])):
            if k == len(out):
                out.append([""] * len(distinct))
            for i, r in zip(at, results, strict=True):
                out[k][i] = r
    return tuple(out)


def _place_ids(t: pa.Table, p: Pseudonymiser) -> pa.Array:
    """Hashed id per ``addresses`` row (:func:`_place_values`)."""
    return _uniq_map(_place_values(t), lambda distinct: _per_place_kind(
        distinct, lambda kind, values: (p.hash_many(kind, values),))[0])


def _places_hashed_and_masked(t: pa.Table, p: Pseudonymiser) -> tuple[pa.Array, pa.Array]:
    """Hashed id and :func:`graph.privacy.mask` per ``addresses`` row (:func:`_place_values`),
    each value normalised once."""
    hashed, masked = _uniq_maps(_place_values(t), lambda distinct: _per_place_kind(
        distinct, p.hash_and_mask_many))
    return hashed, masked


def address_nodes(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``Address`` nodes (homes and work places) from ``addresses`` (one row per place)."""
    return _dedupe(_rows(_address_columns(t, p)))


def _address_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    ids, masked = _places_hashed_and_masked(t, p)
    return {"id": ids, "masked": masked, "city": _col(t, "city"),
            "lat": _coarse(t, "lat"), "lon": _coarse(t, "lon")}


def ip_nodes(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``IP`` nodes from ``ips``: id is the hashed address, the mask its network."""
    return _rows(_ip_columns(t, p))


def _ip_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    ids, masked = _hashed_and_masked(p, "ip", _col(t, "ip"))
    return {"id": ids, "masked": masked,
                  "city": _col(t, "city"), "lat": _coarse(t, "lat"), "lon": _coarse(t, "lon"),
                  "kind": _col(t, "kind")}


def merchant_nodes(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``Merchant`` nodes from ``merchants``."""
    return _rows(_merchant_columns(t, p))


def _merchant_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {
        "id": _col(t, "merchant_id"), "name_masked": mask_column("company", _col(t, "name")),
        "category": _col(t, "category"), "size": _col(t, "size"), "city": _col(t, "city"),
        "created_at": _col(t, "created_at"),
    }


def application_nodes(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``Application`` nodes from ``applications``."""
    return _rows(_application_columns(t, p))


def _application_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {
        "id": _col(t, "application_id"), "product": _col(t, "product"),
        "amount": _col(t, "amount"), "currency": _col(t, "currency"), "ts": _col(t, "ts"),
        "lat": _coarse(t, "lat"), "lon": _coarse(t, "lon"),
        # NOTE: worlds written before the term leave it out; columns_table writes it null
        **({"term_months": _col(t, "term_months")} if "term_months" in t.column_names
           else {}),
    }


_REPORT_ID_SEPARATOR: Final = ":"


def sales_report_id(merchant_id: str, day: int) -> str:
    """Id of a merchant's daily sales report: ``<merchant id>:<day>``."""
    return f"{merchant_id}{_REPORT_ID_SEPARATOR}{day}"


def sales_report_nodes(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``SalesReport`` nodes from ``merchant_sales``."""
    return _rows(_sales_report_columns(t, p))


def _sales_report_ids(t: pa.Table) -> pa.Array:
    """:func:`sales_report_id` of every ``merchant_sales`` row."""
    return pc.binary_join_element_wise(
        _col(t, "merchant_id"), pc.cast(_col(t, "day"), pa.string()), _REPORT_ID_SEPARATOR)


def _sales_report_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {
        "id": _sales_report_ids(t),
        "day": _col(t, "day"), "gmv": _col(t, "gmv"), "orders": _col(t, "orders"),
        "refunds": _col(t, "refunds"), "inventory": _col(t, "inventory"),
    }


# -- relationships ------------------------------------------------------------------------------
def device_usage(logins: pa.Table, applications: pa.Table) -> pa.Table:
    """Who used which device, first and last: ``user_id, device_serial, first_seen, last_seen``
    aggregated over logins and applications (the source of ``USES``)."""
    cols = ["user_id", "device_serial", "ts"]
    both = pa.concat_tables([logins.select(cols), applications.select(cols)])
    agg = both.group_by(["user_id", "device_serial"], use_threads=False).aggregate(
        [("ts", "min"), ("ts", "max")])
    agg = agg.rename_columns(["user_id", "device_serial", "first_seen", "last_seen"])
    return agg.sort_by([("user_id", "ascending"), ("device_serial", "ascending")])


def uses_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``USES`` from a :func:`device_usage` table."""
    return _rows(_uses_columns(t, p))


def _uses_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {"src": _col(t, "user_id"),
                  "dst": hash_column(p, "device", _col(t, "device_serial")),
                  "first_seen": _col(t, "first_seen"), "last_seen": _col(t, "last_seen")}


def has_phone_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``HAS_PHONE`` from ``phones``."""
    return _rows(_has_phone_columns(t, p))


def _has_phone_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {"src": _col(t, "user_id"), "dst": hash_column(p, "phone", _col(t, "phone")),
                  "since": _col(t, "since")}


def _place_columns(t: pa.Table, p: Pseudonymiser, kind: str) -> Columns:
    sub = _where(t, "kind", kind)
    return {"src": _col(sub, "user_id"), "dst": _place_ids(sub, p), "since": _col(sub, "since")}


def lives_at_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``LIVES_AT`` from the home rows of ``addresses``."""
    return _rows(_lives_at_columns(t, p))


def _lives_at_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return _place_columns(t, p, "home")


def works_at_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``WORKS_AT`` from the work rows of ``addresses`` (company normalised, then hashed)."""
    return _rows(_works_at_columns(t, p))


def _works_at_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return _place_columns(t, p, "work")


def logged_in_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``LOGGED_IN_FROM`` from ``logins``; the IP and the device travel as their hashes."""
    return _rows(_logged_in_columns(t, p))


def _logged_in_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {
        "src": _col(t, "user_id"), "dst": hash_column(p, "ip", _col(t, "ip")),
        "event_id": _col(t, "event_id"),
        "ts": _col(t, "ts"), "lat": _coarse(t, "lat"), "lon": _coarse(t, "lon"),
        "device_id": hash_column(p, "device", _col(t, "device_serial")),
    }


def ordered_at_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``ORDERED_AT`` from ``orders``."""
    return _rows(_ordered_at_columns(t, p))


def _ordered_at_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {
        "src": _col(t, "user_id"), "dst": _col(t, "merchant_id"),
        "event_id": _col(t, "event_id"), "ts": _col(t, "ts"), "amount": _col(t, "amount"),
        "category": _col(t, "category"), "bnpl": _col(t, "bnpl"),
        "returned": _col(t, "returned"),
    }


def applied_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``APPLIED`` (user → application) from ``applications``."""
    return _rows(_applied_columns(t, p))


def _applied_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {"src": _col(t, "user_id"), "dst": _col(t, "application_id"),
                  "ts": _col(t, "ts")}


def applied_on_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``APPLIED_ON`` (application → device) from ``applications``."""
    return _rows(_applied_on_columns(t, p))


def _applied_on_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {"src": _col(t, "application_id"),
                  "dst": hash_column(p, "device", _col(t, "device_serial"))}


def applied_from_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``APPLIED_FROM`` (application → IP) from ``applications``."""
    return _rows(_applied_from_columns(t, p))


def _applied_from_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {"src": _col(t, "application_id"), "dst": hash_column(p, "ip", _col(t, "ip"))}


def applied_at_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``APPLIED_AT`` (application → merchant) for applications that name a merchant."""
    return _rows(_applied_at_columns(t, p))


def _applied_at_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    sub = t.filter(pc.is_valid(t.column("merchant_id")))
    return {"src": _col(sub, "application_id"), "dst": _col(sub, "merchant_id")}


def repaid_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``REPAID`` (user → application) from ``repayments``."""
    return _rows(_repaid_columns(t, p))


def _repaid_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {
        "src": _col(t, "user_id"), "dst": _col(t, "application_id"),
        "event_id": _col(t, "event_id"), "ts": _col(t, "ts"), "due_ts": _col(t, "due_ts"),
        "amount": _col(t, "amount"), "status": _col(t, "status"),
    }


def contact_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``CONTACT`` from ``contacts``."""
    return _rows(_contact_columns(t, p))


def _contact_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {"src": _col(t, "user_id"), "dst": _col(t, "contact_user_id"),
                  "since": _col(t, "since")}


def owns_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``OWNS`` from ``ownership``."""
    return _rows(_owns_columns(t, p))


def _owns_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {"src": _col(t, "user_id"), "dst": _col(t, "merchant_id"),
                  "since": _col(t, "since")}


def reported_edges(t: pa.Table, p: Pseudonymiser) -> list[Row]:
    """``REPORTED`` (merchant → sales report) from ``merchant_sales``."""
    return _rows(_reported_columns(t, p))


def _reported_columns(t: pa.Table, p: Pseudonymiser) -> Columns:
    return {"src": _col(t, "merchant_id"), "dst": _sales_report_ids(t)}


def label_writes(t: pa.Table) -> list[LabelWrite]:
    """:class:`graph.LabelWrite` per ``label_events`` row (ids are not personal data)."""
    return [
        LabelWrite(label=et, id=eid, kind=kind, at=at, source=src)
        for et, eid, kind, at, src in zip(
            *(_col(t, c).to_pylist()
              for c in ("entity_type", "entity_id", "kind", "visible_at", "source")),
            strict=True)
    ]


# -- the plan -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IngestStep:
    """One target of the load: which table feeds which label or relationship type, and how.

    Args:
        target (str): node label or relationship type.
        kind (Literal["node", "edge"]): what ``target`` is.
        table (str): source table; ``"device_usage"`` is derived from logins and applications.
        build (RowBuilder): the pure row builder.
        columns (ColumnBuilder): the same values as ``build`` before they are zipped into
            rows (``build`` is :func:`_rows` of it; for phones and addresses, which a table
            names many times, with the last row per id kept), for a caller that wants a
            table; such a caller folds the rows by id as an upsert would
            (:func:`graph.store.fold_rows`).
        one_row_per_id (bool, optional): ``build`` keeps one row per node id (the last), as
            ``columns`` does not. (default: ``False``)
    """

    target: str
    kind: Literal["node", "edge"]
    table: str
    build: RowBuilder
    columns: ColumnBuilder
    one_row_per_id: bool = False


PLAN: Final[tuple[IngestStep, ...]] = (
    IngestStep("User", "node", "users", user_nodes, _user_columns),
    IngestStep("Device", "node", "devices", device_nodes, _device_columns),
    IngestStep("Phone", "node", "phones", phone_nodes, _phone_columns, one_row_per_id=True),
    IngestStep("Address", "node", "addresses", address_nodes, _address_columns,
               one_row_per_id=True),
    IngestStep("IP", "node", "ips", ip_nodes, _ip_columns),
    IngestStep("Merchant", "node", "merchants", merchant_nodes, _merchant_columns),
    IngestStep("Application", "node", "applications", application_nodes, _application_columns),
    IngestStep("SalesReport", "node", "merchant_sales", sales_report_nodes, _sales_report_columns),
    IngestStep("USES", "edge", "device_usage", uses_edges, _uses_columns),
    IngestStep("HAS_PHONE", "edge", "phones", has_phone_edges, _has_phone_columns),
    IngestStep("LIVES_AT", "edge", "addresses", lives_at_edges, _lives_at_columns),
    IngestStep("WORKS_AT", "edge", "addresses", works_at_edges, _works_at_columns),
    IngestStep("OWNS", "edge", "ownership", owns_edges, _owns_columns),
    IngestStep("CONTACT", "edge", "contacts", contact_edges, _contact_columns),
    IngestStep("APPLIED", "edge", "applications", applied_edges, _applied_columns),
    IngestStep("APPLIED_ON", "edge", "applications", applied_on_edges, _applied_on_columns),
    IngestStep("APPLIED_FROM", "edge", "applications", applied_from_edges, _applied_from_columns),
    IngestStep("APPLIED_AT", "edge", "applications", applied_at_edges, _applied_at_columns),
    IngestStep("LOGGED_IN_FROM", "edge", "logins", logged_in_edges, _logged_in_columns),
    IngestStep("ORDERED_AT", "edge", "orders", ordered_at_edges, _ordered_at_columns),
    IngestStep("REPAID", "edge", "repayments", repaid_edges, _repaid_columns),
    IngestStep("REPORTED", "edge", "merchant_sales", reported_edges, _reported_columns),
)
"""Every node label before any relationship; labels (``label_events``) come last."""

_AS_OF_COLUMN: Final[dict[str, str]] = {
    "users": "created_at", "devices": "first_seen", "phones": "since", "addresses": "since",
    "merchants": "created_at", "ownership": "since", "contacts": "since", "logins": "ts",
    "orders": "ts", "applications": "ts", "repayments": "ts", "label_events": "visible_at",
}
_DAY: Final = 86_400


def visible_as_of(table: str, t: pa.Table, as_of: int | None) -> pa.Table:
    """The rows of ``t`` (a chunk of ``table``) that exist at time ``as_of``.

    Events after ``as_of`` are dropped, entities created after it too; a label is kept only once
    visible; a daily sales report only once its day is over. ``None`` keeps everything.
    """
    if as_of is None:
        return t
    if table == "merchant_sales":
        return t.filter(pc.less_equal(pc.add(t.column("day"), _DAY), as_of))
    column = _AS_OF_COLUMN.get(table)
    if column is None:
        return t
    return t.filter(pc.less_equal(t.column(column), as_of))
