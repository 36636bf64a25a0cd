"""Neo4j-only behaviour of `Neo4jStore`: URIs, schema objects, index use, error mapping, and the
pure row builders. Tests marked ``neo4j`` need the server of ``scripts/neo4j.sh``."""

from __future__ import annotations

import neo4j
import pytest
from tests.utils.neo4j import NEO4J_DATABASE, neo4j_auth, neo4j_uri

from graph import SchemaError, StoreError, StoreUnavailableError
from graph import _neo4j_queries as queries
from graph.neo4j_store import Neo4jStore, edge_rows, node_rows
from graph.schema import SCHEMA, NodeSpec, Property


# -- without a server --------------------------------------------------------------------------
def test_node_rows_drop_nulls_and_make_doubles_floats() -> None:
    rows = node_rows(
        SCHEMA.node("User"),
        [{"id": "u1", "home_lat": 30, "created_at": 7, "home_city": None}],
    )
    assert rows == [{"id": "u1", "props": {"home_lat": 30.0, "created_at": 7}}]
    assert isinstance(rows[0]["props"]["home_lat"], float)
    assert isinstance(rows[0]["props"]["created_at"], int)


def test_edge_rows_carry_the_event_key_apart() -> None:
    assert edge_rows(
        SCHEMA.rel("ORDERED_AT"),
        [{"src": "u", "dst": "m", "event_id": "o1", "amount": 5, "bnpl": True}],
    ) == [{"src": "u", "dst": "m", "key": "o1", "props": {"amount": 5.0, "bnpl": True}}]
    assert edge_rows(SCHEMA.rel("USES"), [{"src": "u", "dst": "d", "last_seen": 2}]) == [
        {"src": "u", "dst": "d", "props": {"last_seen": 2}}
    ]


def test_builders_quote_schema_names_and_refuse_others() -> None:
    assert queries.upsert_nodes(SCHEMA.node("Device")) == (
        "UNWIND $rows AS row MERGE (n:`Device` {`id`: row.id}) "
        "SET n.`masked` = coalesce(row.props.`masked`, n.`masked`), "
        "n.`os` = coalesce(row.props.`os`, n.`os`), "
        "n.`first_seen` = coalesce(row.props.`first_seen`, n.`first_seen`)"
    )
    with pytest.raises(SchemaError):
        queries.upsert_nodes(NodeSpec("Device`) DETACH DELETE n //", ()))
    with pytest.raises(SchemaError):
        queries.upsert_nodes(NodeSpec("Device", (Property("os`) DETACH DELETE n //", "STRING"),)))


def test_only_bolt_uris_are_accepted() -> None:
    with pytest.raises(ValueError, match="uri"):
        Neo4jStore.from_uri("http://127.0.0.1:7474", auth=("neo4j", "x"))


def test_no_server_is_unavailable() -> None:
    store = Neo4jStore.from_uri(
        "bolt://127.0.0.1:1",
        auth=("neo4j", "x"),
        connection_timeout=1.0,
        max_transaction_retry_time=0.5,
    )
    with store:
        with pytest.raises(StoreUnavailableError):
            store.ping()
        with pytest.raises(StoreUnavailableError):
            store.upsert_nodes("User", [{"id": "u1"}])


def test_bad_constructor_arguments() -> None:
    driver = neo4j.GraphDatabase.driver("bolt://127.0.0.1:1", auth=("neo4j", "x"))
    with driver:
        with pytest.raises(ValueError, match="database"):
            Neo4jStore(driver, database="")
        with pytest.raises(ValueError, match="query_timeout"):
            Neo4jStore(driver, query_timeout=0)


# -- with the server ---------------------------------------------------------------------------
@pytest.mark.neo4j
def test_a_routing_uri_works_unchanged(neo4j_store: Neo4jStore) -> None:
    with Neo4jStore.from_uri(
        neo4j_uri("neo4j"), auth=neo4j_auth(), database=NEO4J_DATABASE
    ) as store:
        store.ping()
        store.upsert_edges("USES", [{"src": "u1", "dst": "d1"}])
        assert store.shared_accounts("u1") == []
        assert store.counts()["USES"] == 1


@pytest.mark.neo4j
def test_a_wrong_password_is_a_store_error(neo4j_driver: neo4j.Driver) -> None:
    with Neo4jStore.from_uri(neo4j_uri(), auth=("neo4j", "not-the-password")) as store:
        with pytest.raises(StoreError) as info:
            store.get_node("User", "u1")
        assert not isinstance(info.value, StoreUnavailableError)


@pytest.mark.neo4j
def test_apply_schema_creates_constraints_and_indexes(
    neo4j_store: Neo4jStore, neo4j_driver: neo4j.Driver
) -> None:
    neo4j_store.apply_schema()
    records, _, _ = neo4j_driver.execute_query(
        "SHOW CONSTRAINTS YIELD name, labelsOrTypes, properties, type",
        database_=NEO4J_DATABASE,
        routing_=neo4j.RoutingControl.READ,
    )
    unique = {(r["labelsOrTypes"][0], r["properties"][0]) for r in records if "UNIQUE" in r["type"]}
    assert {(label, "id") for label in SCHEMA.labels} <= unique

    records, _, _ = neo4j_driver.execute_query(
        "SHOW INDEXES YIELD labelsOrTypes, properties, entityType, state",
        database_=NEO4J_DATABASE,
        routing_=neo4j.RoutingControl.READ,
    )
    online = {
        (r["entityType"], r["labelsOrTypes"][0], r["properties"][0])
        for r in records
        if r["labelsOrTypes"] and r["state"] == "ONLINE"
    }
    for node in SCHEMA.nodes:
        for prop in node.indexes:
            assert ("NODE", node.label, prop) in online
    for rel in SCHEMA.rels:
        if rel.key is not None:
            assert ("RELATIONSHIP", rel.type, rel.key) in online


@pytest.mark.neo4j
@pytest.mark.parametrize("rel_type", ["USES", "LOGGED_IN_FROM"])
def test_edge_merges_seek_the_unique_index_on_both_ends(
    neo4j_store: Neo4jStore, neo4j_driver: neo4j.Driver, rel_type: str
) -> None:
    query = queries.upsert_edges(SCHEMA.rel(rel_type))
    with neo4j_driver.session(database=NEO4J_DATABASE) as session:
        plan = session.run("EXPLAIN " + query, rows=[]).consume().plan
    assert plan is not None
    operators: list[str] = []
    stack = [plan]
    while stack:
        op = stack.pop()
        operators.append(op["operatorType"])
        stack.extend(op.get("children", []))
    seeks = [op for op in operators if op.startswith("NodeUniqueIndexSeek")]
    assert len(seeks) == 2, operators
    assert not any(op.startswith(("NodeByLabelScan", "AllNodesScan")) for op in operators)


@pytest.mark.neo4j
def test_the_store_leaves_an_injected_driver_open(neo4j_driver: neo4j.Driver) -> None:
    store = Neo4jStore(neo4j_driver, database=NEO4J_DATABASE)
    store.close()
    neo4j_driver.verify_connectivity()


@pytest.mark.neo4j
def test_a_wiped_database_draws_a_new_identity(neo4j_store: Neo4jStore,
                                               neo4j_driver: neo4j.Driver) -> None:
    drawn = neo4j_store.identity()
    assert Neo4jStore(neo4j_driver, database=NEO4J_DATABASE).identity() == drawn
    neo4j_store.clear()
    assert neo4j_store.identity().instance_id != drawn.instance_id


@pytest.mark.neo4j
def test_clear_deletes_in_batches(neo4j_store: Neo4jStore) -> None:
    neo4j_store.upsert_edges("USES", [{"src": f"u{i}", "dst": "d"} for i in range(25)])
    assert neo4j_store.clear(batch_size=10) == 26
    assert sum(neo4j_store.counts().values()) == 0


@pytest.mark.neo4j
@pytest.mark.slow
def test_an_export_outlasts_the_stores_transaction_timeout(
        neo4j_store: Neo4jStore, neo4j_driver: neo4j.Driver) -> None:
    """Issue 18: a served Neo4j ended the start-up export of 1.4M logins at its 30 s
    transaction timeout on a busy host, and the service started without its graph. An export
    reads a whole type whatever the timeout meant for the service's short transactions."""
    n = 120_000
    neo4j_store.upsert_edges("LOGGED_IN_FROM", [
        {"src": f"u{i % 4000}", "dst": f"ip{i}", "event_id": f"e{i}", "ts": i} for i in range(n)])
    short = Neo4jStore(neo4j_driver, database=NEO4J_DATABASE, query_timeout=0.05)
    assert short.export_edges("LOGGED_IN_FROM").num_rows == n
    assert short.export_nodes("IP").num_rows == n
