"""LadybugDB-only behaviour of `LadybugStore`: the file lock, read-only opens, the one writer
thread, schema growth, and the pure row builders."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from graph import GraphError, SchemaError, StoreError
from graph import _ladybug_queries as queries
from graph.ladybug_store import LadybugStore, _rows, edge_batch, merge_rows, node_batch
from graph.schema import SCHEMA, NodeSpec, Property, Schema


def _in_other_process(path: Path, body: str) -> dict[str, object]:
    """Run ``body`` (which sets ``out``) in a fresh interpreter against ``path``."""
    script = textwrap.dedent(
        """
        import json, sys
        from graph.ladybug_store import LadybugStore
        path = sys.argv[1]
        out = {}
        try:
        {body}
        except Exception as e:
            out["error"] = type(e).__name__
            out["message"] = str(e)
        print(json.dumps(out))
        """
    ).replace("{body}", textwrap.indent(textwrap.dedent(body).strip(), "    "))
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_identity_stays_with_the_file(ladybug_path: Path, tmp_path: Path) -> None:
    with LadybugStore(ladybug_path) as store:
        store.apply_schema()
        drawn = store.identity()
    with LadybugStore(ladybug_path, read_only=True) as reader:
        assert reader.identity() == drawn
    with LadybugStore(ladybug_path) as store:
        assert store.identity() == drawn
    for path in ladybug_path.parent.glob(f"{ladybug_path.name}*"):
        path.unlink()
    with LadybugStore(ladybug_path) as store:
        store.apply_schema()
        assert store.identity().instance_id != drawn.instance_id
    with LadybugStore(tmp_path / "other.lbug") as store:
        store.apply_schema()
        assert store.identity().instance_id != drawn.instance_id
    # A store without one cannot draw it read-only.
    with LadybugStore(tmp_path / "third.lbug") as store:
        store.apply_schema()
    with LadybugStore(tmp_path / "third.lbug", read_only=True) as reader:
        with pytest.raises(StoreError, match="read-only"):
            reader.identity()


def test_read_only_store_reads_while_the_writer_is_idle(
    ladybug_store: LadybugStore, ladybug_path: Path
) -> None:
    ladybug_store.upsert_edges("USES", [{"src": "u1", "dst": "d1", "first_seen": 3}])
    with LadybugStore(ladybug_path, read_only=True) as reader:
        assert reader.counts() == ladybug_store.counts()
        node = reader.get_node("User", "u1")
        assert node is not None and node.id == "u1"
        with pytest.raises(StoreError, match="read-only"):
            reader.upsert_nodes("User", [{"id": "u2"}])
        with pytest.raises(StoreError, match="read-only"):
            reader.apply_schema()
    assert ladybug_store.counts()["USES"] == 1


def test_other_process_reads_read_only_but_cannot_write(
    ladybug_store: LadybugStore, ladybug_path: Path
) -> None:
    ladybug_store.upsert_edges("USES", [{"src": "u1", "dst": "d1"}])
    read = _in_other_process(
        ladybug_path,
        """
        with LadybugStore(path, read_only=True) as store:
            out["counts"] = store.counts()
        """,
    )
    assert read.get("error") is None, read
    assert read["counts"] == ladybug_store.counts()

    write = _in_other_process(ladybug_path, "LadybugStore(path)\n")
    assert write["error"] == "StoreUnavailableError", write
    assert "lock" in str(write["message"])


def test_read_only_open_of_a_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises(GraphError):
        LadybugStore(tmp_path / "missing.lbug", read_only=True)


def test_data_survives_close_and_reopen(ladybug_path: Path) -> None:
    with LadybugStore(ladybug_path) as store:
        store.apply_schema()
        store.upsert_nodes("User", [{"id": "u1", "home_lat": 1.5}])
        store.upsert_edges("LOGGED_IN_FROM", [{"src": "u1", "dst": "ip", "event_id": "e"}])
        counts = store.counts()
    with LadybugStore(ladybug_path) as store:
        store.apply_schema()
        assert store.counts() == counts
        node = store.get_node("User", "u1")
        assert node is not None and node.properties == {"home_lat": 1.5}


def test_close_is_idempotent_and_later_calls_fail(ladybug_store: LadybugStore) -> None:
    ladybug_store.close()
    ladybug_store.close()
    with pytest.raises(StoreError, match="closed"):
        ladybug_store.upsert_nodes("User", [{"id": "u1"}])
    with pytest.raises(StoreError, match="closed"):
        ladybug_store.get_node("User", "u1")


def test_every_write_runs_on_the_one_writer_thread(ladybug_store: LadybugStore) -> None:
    names: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        name = ladybug_store._write(lambda conn: threading.current_thread().name)
        with lock:
            names.append(name)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(names) == 8 and len(set(names)) == 1
    assert names[0].startswith("ladybug-writer")


def test_a_failed_write_does_not_stop_the_writer(ladybug_store: LadybugStore) -> None:
    with pytest.raises(StoreError):
        ladybug_store._write(lambda conn: conn.execute("THIS IS NOT CYPHER"))
    ladybug_store.upsert_nodes("User", [{"id": "u1"}])
    assert ladybug_store.counts()["User"] == 1


def test_apply_schema_adds_new_properties_to_an_existing_file(ladybug_path: Path) -> None:
    small = Schema((NodeSpec("User", (Property("created_at", "INT64"),)),), ())
    with LadybugStore(ladybug_path, schema=small) as store:
        store.apply_schema()
        store.upsert_nodes("User", [{"id": "u1", "created_at": 1}])
    with LadybugStore(ladybug_path) as store:
        store.apply_schema()
        store.upsert_nodes("User", [{"id": "u1", "home_city": "Chengdu"}])
        node = store.get_node("User", "u1")
        assert node is not None
        assert node.properties == {"created_at": 1, "home_city": "Chengdu"}


def test_a_store_from_an_older_schema_is_counted_read_only(ladybug_path: Path) -> None:
    """A store written before a label existed (here: before the store's identity record) has
    no table for it; read-only, nothing can create one, and `riskgraph counts` on such a store
    failed with "Table StoreIdentity does not exist". The missing label counts 0, as on Neo4j."""
    older = Schema(tuple(n for n in SCHEMA.nodes if n.label != "StoreIdentity"), SCHEMA.rels)
    with LadybugStore(ladybug_path, schema=older) as store:
        store.apply_schema()
        store.upsert_nodes("User", [{"id": "u1"}])
    with LadybugStore(ladybug_path, read_only=True) as store:
        counts = store.counts()
    assert counts["User"] == 1 and counts["StoreIdentity"] == 0
    assert set(counts) == set(SCHEMA.labels) | set(SCHEMA.rel_types)


# -- pure row building -------------------------------------------------------------------------
def test_merge_rows_folds_by_key_later_non_null_wins() -> None:
    rows = [
        {"id": "a", "x": 1, "y": None},
        {"id": "b", "x": 2},
        {"id": "a", "x": None, "y": 3},
        {"id": "a", "x": 4},
    ]
    assert merge_rows(rows, lambda r: r["id"]) == [
        {"id": "a", "x": 4, "y": 3},
        {"id": "b", "x": 2},
    ]


def test_node_batch_is_typed_and_carries_only_given_columns() -> None:
    spec = SCHEMA.node("User")
    batch = node_batch(spec, [{"id": "u1", "home_lat": 30}, {"id": "u2", "created_at": 5}])
    assert batch.schema == pa.schema(
        [("id", pa.string()), ("created_at", pa.int64()), ("home_lat", pa.float64())]
    )
    assert batch.to_pylist() == [
        {"id": "u1", "created_at": None, "home_lat": 30.0},
        {"id": "u2", "created_at": 5, "home_lat": None},
    ]


def test_edge_batch_folds_one_event_and_keeps_two() -> None:
    spec = SCHEMA.rel("LOGGED_IN_FROM")
    batch = edge_batch(
        spec,
        [
            {"src": "u", "dst": "ip", "event_id": "e1", "ts": 1},
            {"src": "u", "dst": "ip", "event_id": "e1", "lat": 2.5},
            {"src": "u", "dst": "ip", "event_id": "e2"},
        ],
    )
    assert batch.column_names == ["src", "dst", "event_id", "ts", "lat"]
    assert batch.num_rows == 2
    assert batch.to_pylist()[0] == {"src": "u", "dst": "ip", "event_id": "e1", "ts": 1, "lat": 2.5}


def test_edge_batch_folds_a_structural_pair() -> None:
    batch = edge_batch(
        SCHEMA.rel("USES"),
        [{"src": "u", "dst": "d", "first_seen": 1}, {"src": "u", "dst": "d", "last_seen": 2}],
    )
    assert batch.to_pylist() == [{"src": "u", "dst": "d", "first_seen": 1, "last_seen": 2}]


def test_an_int64_overflow_is_a_schema_error() -> None:
    with pytest.raises(SchemaError):
        node_batch(SCHEMA.node("User"), [{"id": "u", "created_at": 2**63}])


# -- query builders ----------------------------------------------------------------------------
def test_builders_refuse_names_that_are_not_identifiers() -> None:
    bad = NodeSpec("User`) DETACH DELETE n //", ())
    with pytest.raises(SchemaError):
        queries.create_node_table(bad)
    with pytest.raises(SchemaError):
        queries.get_nodes(NodeSpec("User", (Property("a b", "STRING"),)))


def test_builders_refuse_properties_that_shadow_query_variables() -> None:
    with pytest.raises(SchemaError, match="clash"):
        queries.upsert_nodes(NodeSpec("Thing", (Property("n", "STRING"),)), ("n",))


def test_upsert_query_sets_only_the_given_columns() -> None:
    query = queries.upsert_nodes(SCHEMA.node("Device"), ("os",))
    assert query == (
        "LOAD FROM $rows MERGE (n:`Device` {`id`: `id`}) "
        "SET n.`os` = coalesce(`os`, n.`os`)"
    )


def test_write_connection_renewed_after_many_rows(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The client keeps memory for every row a connection wrote: the store renews it."""
    import graph.ladybug_store as module

    monkeypatch.setattr(module, "_RECYCLE_ROWS", 10)
    store = LadybugStore(tmp_path / "g.lbug")
    try:
        store.apply_schema()
        seen = []
        for batch in range(4):
            store.upsert_nodes("User", [{"id": f"u{batch}-{i}"} for i in range(6)])
            seen.append(store._rows_written)
        # The schema write counts one row: 7, then 13 >= 10 renews (back to 0), 6, renewed.
        assert seen == [7, 0, 6, 0]
        assert store.counts()["User"] == 24
    finally:
        store.close()


def test_row_by_row_and_joined_writes_leave_the_same_graph(tmp_path: Path) -> None:
    # Online writes (<= SMALL_BATCH_ROWS rows) go one indexed statement per row, bulk writes
    # as one LOAD FROM join: the same rows, in the same order, must give the same graph,
    # including "a missing property keeps the stored value" and keyed event edges.
    from graph.ladybug_store import SMALL_BATCH_ROWS

    users = [{"id": f"u{i}", "created_at": 1_000 + i, "home_city": "Hangzhou" if i % 3 else None}
             for i in range(3 * SMALL_BATCH_ROWS)]
    again = [{"id": f"u{i}", "home_city": None, "created_at": 5_000 + i}
             for i in range(0, 3 * SMALL_BATCH_ROWS, 2)]
    logins = [{"src": f"u{i % 50}", "dst": f"ip{i % 150 % 7}", "event_id": f"e{i % 150}",
               "ts": 2_000 + i, "lat": 30.0, "lon": None if i % 4 else 120.0}
              for i in range(3 * SMALL_BATCH_ROWS)]
    contents = []
    for size in (SMALL_BATCH_ROWS // 4, 10 * SMALL_BATCH_ROWS):
        store = LadybugStore(tmp_path / f"g{size}.lbug")
        try:
            store.apply_schema()
            for rows, write in ((users, store.upsert_nodes), (again, store.upsert_nodes)):
                for lo in range(0, len(rows), size):
                    write("User", rows[lo:lo + size])
            for lo in range(0, len(logins), size):
                store.upsert_edges("LOGGED_IN_FROM", logins[lo:lo + size])
            made = store.create_nodes("Verdict", [
                {"id": f"v{i}", "request_hash": "h", "verdict_json": "{}"} for i in range(5)])
            assert made == [None] * 5
            contents.append((
                {n.id: n.properties for n in (store.get_node("User", f"u{i}")
                                              for i in range(len(users))) if n is not None},
                sorted((e.src, e.dst, sorted(e.properties.items()))
                       for i in range(50) for e in store.neighbourhood(
                           "User", f"u{i}", hops=1, fanout=1000).edges
                       if e.type == "LOGGED_IN_FROM"),
                store.get_node("Verdict", "v3")))
        finally:
            store.close()
    assert contents[0] == contents[1]
    assert len(contents[0][1]) == 150 and contents[0][2] is not None
    assert contents[0][0]["u2"]["home_city"] == "Hangzhou"  # kept: the later row gave none
    assert contents[0][0]["u2"]["created_at"] == 5_002


def test_checkpoint_threshold_is_set_on_the_database(tmp_path: Path) -> None:
    store = LadybugStore(tmp_path / "g.lbug", checkpoint_wal_bytes=64 * 2**20)
    try:
        got = store._read(lambda conn: _rows(  # noqa: SLF001 - the database's own setting
            conn, "CALL current_setting('checkpoint_threshold') RETURN *"))
        assert got == [[str(64 * 2**20)]]
    finally:
        store.close()


def _verdict(i: str, features: str | None) -> dict[str, object]:
    return {"id": i, "request_hash": "h", "decision": "approve", "features_json": features,
            "verdict_json": None if features is None else f'{{"v": "{i}"}}'}


def test_document_properties_live_beside_the_node_table(tmp_path: Path) -> None:
    """A verdict's JSON is kept in the side file (LadybugDB rewrites a table's strings at every
    checkpoint), reads as part of the node, survives a reopen, and a row written into the table
    itself before documents moved out still reads back."""
    path = tmp_path / "g.lbug"
    store = LadybugStore(path)
    try:
        store.apply_schema()
        assert store.create_nodes("Verdict", [_verdict("a", '{"x": 1}')]) == [None]
        store.upsert_nodes("Verdict", [_verdict("b", '{"x": 2}')])
        # first writer wins for the node and its documents
        (existing,) = store.create_nodes("Verdict", [_verdict("a", '{"x": 9}')])
        assert existing is not None and existing.properties["features_json"] == '{"x": 1}'
        # an upsert that does not give a document keeps the stored one
        store.upsert_nodes("Verdict", [{"id": "b", "decision": "review"}])
        in_table = store._read(lambda conn: _rows(  # noqa: SLF001 - the table itself
            conn, "MATCH (v:Verdict) RETURN v.id, v.features_json ORDER BY v.id"))
        assert in_table == [["a", None], ["b", None]]
        # a legacy row: JSON in the table, nothing in the side file
        store._write(lambda conn: _rows(  # noqa: SLF001
            conn, "CREATE (v:Verdict {id: 'c', features_json: '{\"x\": 3}'}) RETURN v.id"))
    finally:
        store.close()
    assert (tmp_path / "g.lbug.documents.sqlite").exists()
    store = LadybugStore(path)
    try:
        store.apply_schema()  # moves the legacy row's document beside the table
        in_table = store._read(lambda conn: _rows(  # noqa: SLF001
            conn, "MATCH (v:Verdict) RETURN v.id, v.features_json ORDER BY v.id"))
        assert in_table == [["a", None], ["b", None], ["c", None]]
    finally:
        store.close()
    for read_only in (False, True):
        store = LadybugStore(path, read_only=read_only)
        try:
            got = {i: store.get_node("Verdict", i) for i in ("a", "b", "c")}
            assert {i: n.properties["features_json"] for i, n in got.items() if n} == {
                "a": '{"x": 1}', "b": '{"x": 2}', "c": '{"x": 3}'}
            assert got["b"] is not None and got["b"].properties["decision"] == "review"
            assert got["a"] is not None and got["a"].properties["verdict_json"] == '{"v": "a"}'
            exported = store.export_nodes("Verdict").to_pylist()
            assert {r["id"]: r["features_json"] for r in exported} == {
                "a": '{"x": 1}', "b": '{"x": 2}', "c": '{"x": 3}'}
        finally:
            store.close()


def test_write_batch_is_one_transaction(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every label's and type's rows commit together: a failure in the last part leaves none
    of the earlier parts behind, and a good batch is one BEGIN ... COMMIT."""
    import graph.ladybug_store as module

    store = LadybugStore(tmp_path / "g.lbug")
    try:
        store.apply_schema()
        nodes = [("User", [{"id": "u1"}, {"id": "u2"}]), ("Device", [{"id": "d1"}])]
        edges = [("USES", [{"src": "u1", "dst": "d1", "last_seen": 5}])]
        real = module._row_by_row
        parts: list[int] = []

        def failing_on_edges(conn: object, batch: pa.Table, queries_for: object, *,
                             fixed: int) -> None:
            parts.append(fixed)
            if fixed == 2:
                raise RuntimeError("injected failure in the edge rows")
            real(conn, batch, queries_for, fixed=fixed)  # type: ignore[arg-type]

        monkeypatch.setattr(module, "_row_by_row", failing_on_edges)
        with pytest.raises(StoreError, match="injected"):
            store.write_batch(nodes, edges)
        assert parts == [1, 1, 2]
        assert store.counts()["User"] == 0 and store.counts()["Device"] == 0

        statements: list[str] = []
        real_execute = module._execute

        def counting(conn: object, query: str, params: object = None) -> object:
            statements.append(query)
            return real_execute(conn, query, params)  # type: ignore[arg-type]

        monkeypatch.setattr(module, "_row_by_row", real)
        monkeypatch.setattr(module, "_execute", counting)
        assert store.write_batch(nodes, edges) == 4
        assert statements.count("BEGIN TRANSACTION") == 1 and statements.count("COMMIT") == 1
        monkeypatch.setattr(module, "_execute", real_execute)
        assert store.counts()["User"] == 2
        (edge,) = [e for e in store.neighbourhood("User", "u1", hops=1, fanout=10).edges
                   if e.type == "USES"]
        assert edge.properties["last_seen"] == 5
    finally:
        store.close()
