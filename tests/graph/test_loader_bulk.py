"""The bulk path of the loader (an empty LadybugDB store filled with ``COPY FROM``): the same
graph as the chunk-by-chunk upserts, nothing added by a second load, all or nothing."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graph import BufferPoolFullError, GraphStore, Pseudonymiser, SchemaError, StoreError
from graph.ladybug_store import LadybugStore
from graph.loader import LoadError, checkpoint_path, clear_checkpoints, fold_rows, load_world
from graph.schema import SCHEMA
from simulator import WorldConfig, read_table
from tests.utils.graphs import DroppedMerchant, assert_same_graph, snapshot

P_SECRET = b"loader-bulk-test-secret-0123"
P = Pseudonymiser(P_SECRET)
ROOT = Path(__file__).resolve().parents[2]
CHUNK = 100
"""Small chunks, so that a phone or an address named in many chunks is folded across them."""


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Any]:
    """Opens LadybugDB stores under ``tmp_path`` by name and closes them after the test."""
    opened: list[LadybugStore] = []

    def open_(name: str, **kwargs: Any) -> LadybugStore:
        store = LadybugStore(tmp_path / f"{name}.lbug", **kwargs)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.mark.parametrize("days", [None, 90])
def test_a_bulk_load_is_the_upsert_load(open_store: Any, fresh_dir: Path,
                                        days: int | None) -> None:
    _check_same_load(open_store, fresh_dir,
                     None if days is None else WorldConfig().start_ts + days * 86_400)


def test_a_bulk_load_of_a_ragged_world_is_the_upsert_load(open_store: Any,
                                                          ragged_world: Path) -> None:
    bulked = _check_same_load(open_store, ragged_world, None)
    ghosts = {(label, i): bulked.get_node(label, i) for label, i in (
        ("User", "U-ghost"), ("User", "U-ghost-2"), ("Merchant", "M-ghost"))}
    assert all(node is not None and not node.properties for node in ghosts.values()), ghosts
    app = bulked.get_node("Application", "A-ghost")
    assert app is not None and app.properties == {
        "fraud_label": "cleared", "fraud_label_at": WorldConfig().start_ts + 2 * 86_400,
        "fraud_label_source": "investigator:cleared"}
    first = read_table(ragged_world, "contacts").slice(0, 1).to_pylist()[0]
    (contact,) = [e for e in bulked.export_edges("CONTACT").to_pylist()
                  if (e["src"], e["dst"]) == (first["user_id"], first["contact_user_id"])]
    assert contact["since"] == first["since"]


def _check_same_load(open_store: Any, directory: Path, as_of: int | None) -> LadybugStore:
    upserted = open_store("upserted")
    slow = load_world(upserted, directory, P, as_of=as_of, chunk_rows=CHUNK, target="up",
                      progress=False, bulk=False)
    bulked = open_store("bulked")
    fast = load_world(bulked, directory, P, as_of=as_of, chunk_rows=CHUNK, target="bulk",
                      progress=False)
    assert fast.bulk and not slow.bulk
    assert_same_graph(bulked, upserted)
    counts = bulked.counts()
    assert counts == {**upserted.counts(), "StoreIdentity": 1}
    assert fast.written == slow.written and fast.chunks_done == slow.chunks_done
    # The fold across chunks mattered: rows for one phone and one address came in several.
    assert fast.written["Phone"] > counts["Phone"] and fast.written["Address"] > counts["Address"]
    return bulked


def test_a_second_load_after_a_bulk_load_adds_nothing(open_store: Any,
                                                      fresh_dir: Path) -> None:
    store = open_store("graph")
    first = load_world(store, fresh_dir, P, chunk_rows=CHUNK, target="t", progress=False)
    assert first.bulk and first.chunks_done > 0
    before, counts = snapshot(store), store.counts()

    again = load_world(store, fresh_dir, P, chunk_rows=CHUNK, target="t", progress=False)
    assert not again.bulk
    assert (again.chunks_done, again.chunks_skipped) == (0, first.chunks_done)
    assert store.counts() == counts

    # Without the checkpoint every chunk is upserted again over the bulk-loaded tables.
    clear_checkpoints(fresh_dir)
    redo = load_world(store, fresh_dir, P, chunk_rows=CHUNK, target="t", progress=False)
    assert not redo.bulk and redo.chunks_done == first.chunks_done
    assert store.counts() == counts and snapshot(store) == before

    with pytest.raises(LoadError, match="not empty"):
        load_world(store, fresh_dir, P, chunk_rows=CHUNK, target="t", progress=False,
                   bulk=True)


def _assert_nothing_loaded(store: GraphStore, world: Path) -> None:
    """A failed bulk load left no row (but the store's identity) and recorded no chunk."""
    assert not any(n for name, n in store.counts().items() if name != "StoreIdentity")
    ckpt = checkpoint_path(world, target="t", as_of=WorldConfig().end_ts,
                           chunk_rows=CHUNK, pseudonymiser=P)
    assert not ckpt.exists() or '"chunk"' not in ckpt.read_text()


def _assert_loads_whole_in_bulk(store: GraphStore, world: Path, open_store: Any) -> None:
    """The same load run again goes in bulk, skips no chunk, and gives the upsert load's graph."""
    again = load_world(store, world, P, chunk_rows=CHUNK, target="t", progress=False)
    assert again.bulk and again.chunks_skipped == 0
    upserted = open_store("upserted")
    load_world(upserted, world, P, chunk_rows=CHUNK, target="up", progress=False, bulk=False)
    assert_same_graph(store, upserted)


def test_a_bulk_load_that_fails_midway_leaves_the_store_empty(
        open_store: Any, fresh_dir: Path) -> None:
    """All or nothing: the first relationship ``COPY`` that names the missing merchant
    (``ORDERED_AT``) fails after every node table and the relationship tables before it
    (``USES`` ... ``LOGGED_IN_FROM``) were copied; the store is as empty as before, the
    checkpoint records no chunk, and the same command run again loads everything in bulk."""
    store = open_store("graph")
    with pytest.raises(StoreError, match="Unable to find primary key"):
        load_world(DroppedMerchant(store), fresh_dir, P,  # type: ignore[arg-type]
                   chunk_rows=CHUNK, target="t", progress=False)
    _assert_nothing_loaded(store, fresh_dir)
    _assert_loads_whole_in_bulk(store, fresh_dir, open_store)


_KILLED_AFTER_TWO_COPIES = """
import os, signal, sys
from pathlib import Path
import graph.ladybug_store as ladybug_store
from graph import Pseudonymiser
from graph.loader import load_world

real = ladybug_store._execute
copies = []

def execute(conn, query, params=None):
    result = real(conn, query, params)
    if query.startswith("COPY"):
        copies.append(query)
        if len(copies) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    return result

ladybug_store._execute = execute
store = ladybug_store.LadybugStore(Path(sys.argv[1]))
load_world(store, Path(sys.argv[2]), Pseudonymiser(sys.argv[3].encode()),
           chunk_rows=int(sys.argv[4]), target="t", progress=False)
"""


def test_a_bulk_load_killed_midway_leaves_the_store_empty(
        open_store: Any, fresh_dir: Path, tmp_path: Path) -> None:
    """kill -9 between two ``COPY`` statements of the bulk transaction: LadybugDB discards the
    uncommitted tables when the file is opened again, the checkpoint records no chunk, the
    Parquet files left beside the database go with the next bulk load, which loads it whole."""
    path = tmp_path / "graph.lbug"
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_TWO_COPIES, str(path), str(fresh_dir),
         P_SECRET.decode(), str(CHUNK)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert list(tmp_path.glob(".graph.lbug.bulk-*"))
    store = open_store("graph")
    _assert_nothing_loaded(store, fresh_dir)
    _assert_loads_whole_in_bulk(store, fresh_dir, open_store)
    assert not list(tmp_path.glob(".graph.lbug.bulk-*"))


def test_a_full_buffer_pool_stops_a_bulk_load_and_leaves_nothing(
        open_store: Any, fresh_dir: Path, tmp_path: Path) -> None:
    """A real failure inside LadybugDB (its page cache too small for the ``COPY``): the load
    stops with the store's error naming the pool and leaves the store empty; reopened with a
    larger pool, the same load runs whole, in bulk."""
    with LadybugStore(tmp_path / "graph.lbug", buffer_pool_bytes=20 * 2**20) as small:
        with pytest.raises(BufferPoolFullError, match=r"buffer pool \(20 MiB\) is full"):
            load_world(small, fresh_dir, P, chunk_rows=CHUNK, target="t", progress=False)
        assert not any(n for name, n in small.counts().items() if name != "StoreIdentity")
    with LadybugStore(tmp_path / "graph.lbug", buffer_pool_bytes=256 * 2**20) as store:
        _assert_loads_whole_in_bulk(store, fresh_dir, open_store)


def test_documents_go_beside_the_table_as_upserts_put_them(open_store: Any) -> None:
    rows = [{"id": f"v{i}", "decision": "approve", "decided_at": i,
             "verdict_json": f'{{"n": {i}}}', "features_json": None if i % 2 else "{}"}
            for i in range(5)]
    upserted = open_store("upserted")
    upserted.apply_schema()
    upserted.upsert_nodes("Verdict", rows)
    bulked = open_store("bulked")
    bulked.apply_schema()
    bulked.bulk_load([("Verdict", pa.Table.from_pylist(rows))], [])
    assert_same_graph(bulked, upserted)
    node = bulked.get_node("Verdict", "v3")
    assert node is not None and node.properties["verdict_json"] == '{"n": 3}'
    stored = bulked._read(lambda conn: conn.execute(
        "MATCH (n:Verdict) WHERE n.verdict_json IS NOT NULL RETURN count(n)").get_all())
    assert stored == [[0]]  # in the document file, not in the node table


def test_bulk_load_checks_its_tables_and_writes_nothing_on_a_bad_one(open_store: Any) -> None:
    store = open_store("graph")
    store.apply_schema()
    users = pa.table({"id": ["u1", "u2"], "created_at": [1, 2]})
    contact = pa.table({"src": ["u1"], "dst": ["u3"], "since": [5]})
    with pytest.raises(SchemaError, match="CONTACT rows name a User"):
        store.bulk_load([("User", users)], [("CONTACT", contact)])
    with pytest.raises(SchemaError, match="repeat"):
        store.bulk_load([("User", pa.table({"id": ["u1", "u1"]}))], [])
    with pytest.raises(SchemaError, match="non-empty string 'id'"):
        store.bulk_load([("User", pa.table({"id": ["u1", ""]}))], [])
    with pytest.raises(SchemaError, match="no properties"):
        store.bulk_load([("User", pa.table({"id": ["u1"], "shoe_size": [42]}))], [])
    with pytest.raises(SchemaError, match="created_at"):
        store.bulk_load([("User", pa.table({"id": ["u1"], "created_at": ["monday"]}))], [])
    assert not any(store.counts().values())

    store.bulk_load([("User", users)], [])
    with pytest.raises(StoreError, match="empty tables; User has rows"):
        store.bulk_load([("User", pa.table({"id": ["u9"]}))], [])
    assert store.counts()["User"] == 2
    store.close()

    reader = open_store("graph", read_only=True)
    with pytest.raises(StoreError, match="read-only"):
        reader.bulk_load([("Merchant", pa.table({"id": ["m1"]}))], [])


def test_fold_rows_keeps_the_last_value_given_and_the_earliest_time() -> None:
    rows = pa.table({
        "src": ["a", "b", "a", "a"], "dst": ["x", "x", "x", "x"],
        "since": [30, 5, None, 10], "note": ["one", None, "three", None],
    })
    folded = fold_rows(rows, ("src", "dst"), earliest=("since",))
    assert folded.to_pylist() == [
        {"src": "a", "dst": "x", "since": 10, "note": "three"},
        {"src": "b", "dst": "x", "since": 5, "note": None},
    ]
    assert folded.schema == rows.schema
    assert fold_rows(rows.slice(0, 0), ("src", "dst")).num_rows == 0
    events = pa.table({"src": ["a", "a", "a"], "dst": ["x", "x", "y"],
                       "event_id": ["e1", "e2", "e1"], "ts": [1, 2, 3]})
    assert fold_rows(events, ("src", "dst", "event_id")).equals(events)
