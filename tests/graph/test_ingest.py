"""The load boundary: rows fit the schema, identifiers are hashed, spellings meet."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from graph import SCHEMA, Pseudonymiser
from graph.ingest import (
    PLAN,
    address_nodes,
    applied_from_edges,
    applied_on_edges,
    device_nodes,
    device_usage,
    label_writes,
    logged_in_edges,
    visible_as_of,
    works_at_edges,
)
from simulator import TABLES, World, WorldConfig, simulate_world

P = Pseudonymiser(b"test-secret-0123456789")
CLEAR: dict[str, list[tuple[str, str]]] = {
    "users": [("name", "name"), ("national_id", "national_id")],
    "phones": [("phone", "phone")],
    "addresses": [("value", "address")],
    "devices": [("device_serial", "device")],
    "logins": [("device_serial", "device")],
    "applications": [("device_serial", "device")],
}


@pytest.fixture(scope="module")
def world() -> World:
    return simulate_world(WorldConfig(users=600, seed=4))


def _source(world: World, table: str) -> pa.Table:
    if table == "device_usage":
        return device_usage(world.table("logins"), world.table("applications"))
    return world.table(table)


def _strings(rows: list[dict[str, object]]) -> Iterator[str]:
    for row in rows:
        for value in row.values():
            if isinstance(value, str):
                yield value


def test_every_step_gives_valid_schema_rows(world: World) -> None:
    for step in PLAN:
        rows = step.build(_source(world, step.table), P)
        assert rows, step.target
        for row in rows:
            if step.kind == "node":
                SCHEMA.check_node_row(step.target, row)
            else:
                SCHEMA.check_rel_row(step.target, row)


def test_no_clear_identifier_reaches_a_row(world: World) -> None:
    clear: set[str] = set()
    for table, cols in CLEAR.items():
        t = world.table(table)
        for col, _ in cols:
            clear.update(v for v in t.column(col).to_pylist() if v)
    assert len(clear) > 1000
    out: set[str] = set()
    for step in PLAN:
        out.update(_strings(step.build(_source(world, step.table), P)))
    assert not out & clear
    # NOTE: long identifiers must not appear even inside another value (a mask, a hash).
    haystack = "\x00".join(out)
    leaked = [v for v in clear if len(v) >= 8 and v in haystack]
    assert not leaked


def test_no_clear_ip_reaches_a_row_and_ips_link(world: World) -> None:
    clear = set(world.table("ips").column("ip").to_pylist())
    clear |= set(world.table("logins").column("ip").to_pylist())
    clear |= set(world.table("applications").column("ip").to_pylist())
    out: set[str] = set()
    for step in PLAN:
        out.update(_strings(step.build(_source(world, step.table), P)))
    assert len(clear) > 100 and not out & clear
    ips = {r["id"]: r for r in PLAN[4].build(world.table("ips"), P)}
    assert all(i.startswith("ip_") and r["masked"].endswith("/24") for i, r in ips.items())
    # NOTE: logins and applications name the hashed IP nodes the ips table makes.
    assert {r["dst"] for r in logged_in_edges(world.table("logins"), P)} <= set(ips)
    assert {r["dst"] for r in applied_from_edges(world.table("applications"), P)} <= set(ips)


def test_every_stored_coordinate_is_coarse(world: World) -> None:
    seen = 0
    for step in PLAN:
        for row in step.build(_source(world, step.table), P):
            for name in ("lat", "lon", "home_lat", "home_lon"):
                if name in row:
                    seen += 1
                    assert row[name] == round(row[name], 2), (step.target, row)
    assert seen > 1000


def test_node_ids_and_edge_ends_agree(world: World) -> None:
    devices = {r["id"] for r in device_nodes(world.table("devices"), P)}
    on = applied_on_edges(world.table("applications"), P)
    assert {r["dst"] for r in on} <= devices
    logins = logged_in_edges(world.table("logins"), P)
    assert {r["device_id"] for r in logins} <= devices
    users = {r["id"] for r in PLAN[0].build(world.table("users"), P)}
    assert {r["src"] for r in logins} <= users


def test_company_spellings_land_on_one_node() -> None:
    t = pa.Table.from_pylist([
        {"user_id": "U1", "kind": "work", "value": "深圳市星河贸易有限公司", "city": "深圳市",
         "lat": 22.5, "lon": 114.0, "since": 1},
        {"user_id": "U2", "kind": "work", "value": "深圳市星河贸易公司", "city": "深圳市",
         "lat": 22.5, "lon": 114.0, "since": 2},
        {"user_id": "U3", "kind": "work", "value": "深圳市星河贸易 股份有限公司",
         "city": "深圳市", "lat": 22.5, "lon": 114.0, "since": 3},
        {"user_id": "U4", "kind": "home", "value": "深圳市星河贸易有限公司", "city": "深圳市",
         "lat": 22.5, "lon": 114.0, "since": 3},
    ], schema=TABLES["addresses"])
    edges = works_at_edges(t, P)
    assert len(edges) == 3 and len({e["dst"] for e in edges}) == 1
    nodes = address_nodes(t, P)
    assert len(nodes) == 2  # the company and, separately, a street address with that text
    assert all(n["id"].startswith(("co_", "ad_")) for n in nodes)


def test_world_spelling_variants_collapse(world: World) -> None:
    addresses = world.table("addresses")
    work = addresses.filter(pa.compute.equal(addresses.column("kind"), "work"))
    spellings = len(set(work.column("value").to_pylist()))
    nodes = {e["dst"] for e in works_at_edges(work, P)}
    assert len(nodes) < spellings


def test_hashes_depend_on_the_secret(world: World) -> None:
    other = Pseudonymiser(b"another-secret-987654321")
    a = {r["id"] for r in device_nodes(world.table("devices"), P)}
    b = {r["id"] for r in device_nodes(world.table("devices"), other)}
    assert not a & b


def test_device_usage_spans_first_to_last_use() -> None:
    logins = pa.Table.from_pylist([
        {"user_id": "U1", "device_serial": "D1", "ts": 30},
        {"user_id": "U1", "device_serial": "D1", "ts": 10},
        {"user_id": "U2", "device_serial": "D1", "ts": 20},
    ])
    apps = pa.Table.from_pylist([{"user_id": "U1", "device_serial": "D1", "ts": 50}])
    usage = device_usage(logins, apps).to_pylist()
    assert usage == [
        {"user_id": "U1", "device_serial": "D1", "first_seen": 10, "last_seen": 50},
        {"user_id": "U2", "device_serial": "D1", "first_seen": 20, "last_seen": 20},
    ]


def test_as_of_drops_later_events_and_unseen_labels(world: World) -> None:
    cut = world.config.start_ts + 60 * 86_400
    logins = visible_as_of("logins", world.table("logins"), cut)
    assert 0 < logins.num_rows < world.table("logins").num_rows
    assert max(logins.column("ts").to_pylist()) <= cut
    labels = visible_as_of("label_events", world.table("label_events"), cut)
    assert all(lw.at <= cut for lw in label_writes(labels))
    sales = visible_as_of("merchant_sales", world.table("merchant_sales"), cut)
    assert max(sales.column("day").to_pylist()) + 86_400 <= cut
    assert visible_as_of("ips", world.table("ips"), cut).num_rows == world.table("ips").num_rows


def test_label_writes_carry_kind_time_and_source(world: World) -> None:
    writes = label_writes(world.table("label_events"))
    assert {w.kind for w in writes} == {"fraud", "cleared", "default"}
    assert {w.label for w in writes} <= {"User", "Application", "Merchant"}
    assert all(w.source in ("investigator", "customer_report", "ledger") for w in writes)
