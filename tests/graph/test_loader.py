"""Loading a world into each real store: complete, idempotent, resumable, as of a time."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import neo4j
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from graph import (
    BufferPoolFullError,
    GraphStore,
    Pseudonymiser,
    StoreError,
    TransactionLimitError,
)
from graph.ingest import PLAN, device_usage, visible_as_of
from graph.ladybug_store import LadybugStore
from graph.loader import (
    LoadError,
    _LimitReached,
    _write_in_batches,
    append_events,
    checkpoint_path,
    clear_checkpoints,
    load_world,
)
from graph.neo4j_store import Neo4jStore
from simulator import WorldConfig, read_table, simulate_world, write_world
from graph.typing import Rows
from tests.utils.neo4j import NEO4J_DATABASE, neo4j_auth, neo4j_uri

P_SECRET = b"loader-test-secret-0123"
P = Pseudonymiser(P_SECRET)
ROOT = Path(__file__).resolve().parents[2]


def _keys(kind: str, rows: list[dict[str, Any]]) -> set[object]:
    if kind == "node":
        return {r["id"] for r in rows}
    if rows and "event_id" in rows[0]:
        return {r["event_id"] for r in rows}
    return {(r["src"], r["dst"]) for r in rows}


def expected_keys(directory: Path, as_of: int | None = None) -> dict[str, set[object]]:
    """The node ids, event ids and (src, dst) pairs a complete load must leave, per target,
    from the files alone."""
    end = as_of if as_of is not None else WorldConfig(users=300, seed=7).end_ts
    keys: dict[str, set[object]] = {}
    for step in PLAN:
        if step.table == "device_usage":
            logins = visible_as_of("logins", read_table(directory, "logins"), end)
            apps = visible_as_of("applications", read_table(directory, "applications"), end)
            table = device_usage(logins, apps)
        else:
            table = visible_as_of(step.table, read_table(directory, step.table), end)
        keys[step.target] = _keys(step.kind, step.build(table, P))
    return keys


def graph_counts(store: GraphStore, expected: dict[str, set[object]]) -> dict[str, int]:
    """Per target, how many stored nodes / relationships carry a key of this world; a
    duplicate written by a non-idempotent load would count twice.

    NOTE: counted by key rather than with ``counts()`` so that other tests writing into the
    shared Neo4j server at the same time do not disturb these checks.
    """
    out: dict[str, int] = {}
    for step in PLAN:
        table = (store.export_nodes(step.target) if step.kind == "node"
                 else store.export_edges(step.target))
        keys = expected[step.target]
        out[step.target] = sum(1 for r in table.to_pylist() if _keys(step.kind, [r]) <= keys)
    return out


def counts_of(expected: dict[str, set[object]]) -> dict[str, int]:
    return {k: len(v) for k, v in expected.items()}


def test_load_is_complete_and_idempotent(store: GraphStore, fresh_dir: Path) -> None:
    first = load_world(store, fresh_dir, P, chunk_rows=2000, target="t", progress=False)
    keys = expected_keys(fresh_dir)
    expected = counts_of(keys)
    assert graph_counts(store, keys) == expected
    assert first.chunks_skipped == 0 and first.edges > first.nodes > 0 and first.labels > 0

    again = load_world(store, fresh_dir, P, chunk_rows=2000, target="t", progress=False)
    assert again.chunks_done == 0 and again.chunks_skipped == first.chunks_done
    assert graph_counts(store, keys) == expected

    # Without the checkpoint every row is written again: upserts add nothing.
    clear_checkpoints(fresh_dir)
    redo = load_world(store, fresh_dir, P, chunk_rows=2000, target="t", progress=False)
    assert redo.chunks_done == first.chunks_done
    assert graph_counts(store, keys) == expected


def test_parallel_writers_load_the_same_graph(store: GraphStore, fresh_dir: Path) -> None:
    load_world(store, fresh_dir, P, chunk_rows=2000, target="t", workers=3, progress=False)
    keys = expected_keys(fresh_dir)
    assert graph_counts(store, keys) == counts_of(keys)


class _Interrupting:
    """Delegates to a real store and raises ``error`` (Ctrl-C unless told) on the n-th
    relationship batch."""

    def __init__(self, store: GraphStore, after: int,
                 error: BaseException | None = None) -> None:
        self._store = store
        self._left = after
        self._error = error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def upsert_edges(self, rel_type: str, rows: Rows) -> int:
        self._left -= 1
        if self._left < 0:
            raise self._error or KeyboardInterrupt()
        return self._store.upsert_edges(rel_type, rows)


def test_load_resumes_after_interruption(store: GraphStore, fresh_dir: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        load_world(_Interrupting(store, 6), fresh_dir, P,  # type: ignore[arg-type]
                   chunk_rows=1000, target="t", progress=False, bulk=False)
    keys = expected_keys(fresh_dir)
    partial = graph_counts(store, keys)
    assert partial["User"] == len(keys["User"]) and partial["REPAID"] == 0
    rest = load_world(store, fresh_dir, P, chunk_rows=1000, target="t", progress=False)
    assert not rest.bulk and rest.chunks_skipped > 0 and rest.chunks_done > 0
    assert "User" not in rest.written  # finished before the interruption, not redone
    assert graph_counts(store, keys) == counts_of(keys)


class _Place:
    """Where a store lives, one backend's way: :meth:`new` deletes the store there (a LadybugDB
    file) or wipes it (a Neo4j database) and opens an empty one; :meth:`reopen` opens the store
    there again, as a second run of `riskgraph load` would."""

    def __init__(self, backend: str, path: Path, driver: neo4j.Driver | None) -> None:
        self.backend = backend
        self.target = f"{backend}:place"
        self._path = path
        self._driver = driver
        self._store: GraphStore | None = None

    def reopen(self) -> GraphStore:
        self.close()
        if self._driver is None:
            self._store = LadybugStore(self._path)
        else:
            self._store = Neo4jStore(self._driver, database=NEO4J_DATABASE)
        return self._store

    def new(self) -> GraphStore:
        self.close()
        if self._driver is None:
            for path in self._path.parent.glob(f"{self._path.name}*"):
                path.unlink()
            return self.reopen()
        store = self.reopen()
        assert isinstance(store, Neo4jStore)
        store.clear()
        return store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


@pytest.fixture(params=["ladybug", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Place]:
    driver = request.getfixturevalue("neo4j_driver") if request.param == "neo4j" else None
    where = _Place(request.param, tmp_path / "graph.lbug", driver)
    yield where
    where.close()


def _stopped_midway(store: GraphStore, directory: Path, target: str) -> None:
    """A chunk-by-chunk load that a store error stops after the node labels and a few
    relationship chunks."""
    with pytest.raises(StoreError, match="disk full"):
        load_world(_Interrupting(store, 6, StoreError("disk full")),  # type: ignore[arg-type]
                   directory, P, chunk_rows=1000, target=target, progress=False, bulk=False)


def test_a_store_created_again_at_the_same_place_is_loaded_whole(
        place: _Place, fresh_dir: Path) -> None:
    """Defect: a load stopped by a store error, the store deleted (or wiped) and the same
    command run again skipped the chunks recorded for the old store and reported success with
    whole tables missing (USES=0, Phone=0 ...)."""
    keys = expected_keys(fresh_dir)
    _stopped_midway(place.new(), fresh_dir, place.target)

    store = place.new()
    again = load_world(store, fresh_dir, P, chunk_rows=1000, target=place.target,
                       progress=False)
    assert again.chunks_skipped == 0
    assert graph_counts(store, keys) == counts_of(keys)
    reloaded = store.counts()
    # The checkpoint now records this store: running the command once more skips every chunk.
    rerun = load_world(store, fresh_dir, P, chunk_rows=1000, target=place.target,
                       progress=False)
    assert (rerun.chunks_done, rerun.chunks_skipped) == (0, again.chunks_done)

    store = place.new()
    clear_checkpoints(fresh_dir)
    one_shot = load_world(store, fresh_dir, P, chunk_rows=1000, target=place.target,
                          progress=False)
    assert one_shot.chunks_done == again.chunks_done
    assert store.counts() == reloaded


def test_a_load_resumes_into_the_same_store_opened_again(
        place: _Place, fresh_dir: Path) -> None:
    keys = expected_keys(fresh_dir)
    _stopped_midway(place.new(), fresh_dir, place.target)
    partial = graph_counts(place.reopen(), keys)
    assert partial["User"] == len(keys["User"]) and partial["REPAID"] == 0

    rest = load_world(place.reopen(), fresh_dir, P, chunk_rows=1000, target=place.target,
                      progress=False)
    assert rest.chunks_skipped > 0 and rest.chunks_done > 0
    assert "User" not in rest.written  # finished before the store error, not redone
    assert graph_counts(place.reopen(), keys) == counts_of(keys)


def test_a_checkpoint_that_names_no_store_is_not_trusted(
        place: _Place, fresh_dir: Path) -> None:
    """A checkpoint written before checkpoints named their store (one chunk a line, no header)
    says nothing about the store there now: every chunk is loaded."""
    store = place.new()
    first = load_world(store, fresh_dir, P, chunk_rows=1000, target=place.target,
                       progress=False)
    path = checkpoint_path(fresh_dir, target=place.target, as_of=first.as_of,
                           chunk_rows=1000, pseudonymiser=P)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[1:]) + "\n")
    again = load_world(place.new(), fresh_dir, P, chunk_rows=1000, target=place.target,
                       progress=False)
    assert (again.chunks_done, again.chunks_skipped) == (first.chunks_done, 0)


def test_a_full_buffer_pool_stops_the_load_and_a_larger_one_resumes(
        fresh_dir: Path, tmp_path: Path) -> None:
    """LadybugDB's page cache too small for the load (28 MiB fails on this world after its
    first labels; 64 MiB loads it; 16 MiB since the schema gained its PseudonymKey table, and
    up to 22 MiB since it gained the investigators' records, fail before any chunk is
    recorded): the store's own error, naming the pool, rather than the failed rollback that
    used to hide it ("No active transaction for ROLLBACK"); the same store opened with a
    larger pool resumes."""
    path = tmp_path / "graph.lbug"
    with LadybugStore(path, buffer_pool_bytes=28 * 2**20) as store:
        with pytest.raises(BufferPoolFullError) as info:
            load_world(store, fresh_dir, P, target="t", progress=False, bulk=False)
    assert info.value.pool_bytes == 28 * 2**20
    assert "buffer pool (28 MiB) is full" in str(info.value)
    with LadybugStore(path, buffer_pool_bytes=256 * 2**20) as store:
        rest = load_world(store, fresh_dir, P, target="t", progress=False)
        assert rest.chunks_skipped > 0 and "User" not in rest.written
        keys = expected_keys(fresh_dir)
        assert graph_counts(store, keys) == counts_of(keys)


def test_load_as_of_leaves_out_the_future(store: GraphStore, fresh_dir: Path) -> None:
    cut = WorldConfig().start_ts + 90 * 86_400
    load_world(store, fresh_dir, P, as_of=cut, target="t", progress=False)
    keys = expected_keys(fresh_dir, cut)
    assert graph_counts(store, keys) == counts_of(keys)
    app_ids = keys["Application"]
    apps = [a for a in store.export_nodes("Application").to_pylist() if a["id"] in app_ids]
    assert max(a["ts"] for a in apps) <= cut
    label_times = [a[k] for a in apps for k in ("fraud_label_at", "default_label_at")
                   if a[k] is not None]
    assert label_times and max(label_times) <= cut
    logins = [e for e in store.export_edges("LOGGED_IN_FROM").to_pylist()
              if e["event_id"] in keys["LOGGED_IN_FROM"]]
    assert len(logins) == len(keys["LOGGED_IN_FROM"])
    assert max(e["ts"] for e in logins) <= cut
    # Labels that became visible later are absent now.
    events = read_table(fresh_dir, "label_events")
    later = events.filter(pc.greater(events.column("visible_at"), cut))
    assert later.num_rows > 0


def test_labels_match_the_label_events(store: GraphStore, fresh_dir: Path) -> None:
    load_world(store, fresh_dir, P, target="t", progress=False)
    end = WorldConfig().end_ts
    events = visible_as_of("label_events", read_table(fresh_dir, "label_events"), end)
    fraud_apps = {e["entity_id"] for e in events.to_pylist()
                  if e["entity_type"] == "Application" and e["kind"] == "fraud"}
    mine = {e["entity_id"] for e in read_table(fresh_dir, "applications").select(
        ["application_id"]).rename_columns(["entity_id"]).to_pylist()}
    apps = [a for a in store.export_nodes("Application").to_pylist() if a["id"] in mine]
    assert {a["id"] for a in apps if a["fraud_label"] == "fraud"} == fraud_apps
    assert all(a["fraud_label_at"] > a["ts"] for a in apps if a["fraud_label"] == "fraud")


def test_no_clear_identifier_in_the_store(store: GraphStore, fresh_dir: Path) -> None:
    load_world(store, fresh_dir, P, target="t", progress=False)
    clear = set(read_table(fresh_dir, "phones").column("phone").to_pylist())
    clear |= set(read_table(fresh_dir, "users").column("national_id").to_pylist())
    clear |= set(read_table(fresh_dir, "devices").column("device_serial").to_pylist())
    clear |= set(read_table(fresh_dir, "addresses").column("value").to_pylist())
    stored: set[object] = set()
    for _, _, table in store.iter_export():
        for column in table.columns:
            if column.type == "string":
                stored.update(column.to_pylist())
    assert not clear & stored


def test_append_events_as_they_happen(store: GraphStore) -> None:
    login = {"event_id": "L-x1", "user_id": "U-new", "ts": 1_000, "device_serial": "DEV-123456",
             "ip": "10.0.0.1", "lat": 31.2, "lon": 121.4}
    written = append_events(store, "login", [login], P)
    assert written == {"Device": 1, "USES": 1, "LOGGED_IN_FROM": 1}
    device_id = P.hash("device", "DEV-123456")
    device = store.get_node("Device", device_id)
    assert device is not None and device.properties["first_seen"] == 1_000
    later = dict(login, event_id="L-x2", ts=5_000)
    append_events(store, "login", [later, later], P)  # a replay is one event
    uses = [u for u in store.export_edges("USES").to_pylist() if u["dst"] == device_id]
    assert [(u["first_seen"], u["last_seen"]) for u in uses] == [(1_000, 5_000)]
    logins = store.export_edges("LOGGED_IN_FROM").to_pylist()
    assert sorted(e["event_id"] for e in logins if e["src"] == "U-new") == ["L-x1", "L-x2"]

    app = {"application_id": "A-x1", "user_id": "U-new", "product": "bnpl", "amount": 900.0,
           "currency": "CNY", "ts": 6_000, "device_serial": "DEV-123456", "ip": "10.0.0.1",
           "lat": 31.2, "lon": 121.4, "merchant_id": "M-1"}
    written = append_events(store, "application", [app], P)
    assert written["Application"] == 1 and written["APPLIED_AT"] == 1 and "Device" not in written
    append_events(store, "label", [{"entity_type": "Application", "entity_id": "A-x1",
                                    "kind": "fraud", "visible_at": 9_000,
                                    "source": "investigator:test"}], P)
    node = store.get_node("Application", "A-x1")
    assert node is not None and node.properties["fraud_label"] == "fraud"

    with pytest.raises(ValueError, match="kind"):
        append_events(store, "teleport", [login], P)
    with pytest.raises(ValueError, match="device_serial"):
        append_events(store, "login", [dict(login, device_serial=None)], P)


def test_load_refuses_a_directory_without_a_world(store: GraphStore, tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="world"):
        load_world(store, tmp_path, P, progress=False)
    with pytest.raises(ValueError, match="chunk_rows"):
        load_world(store, tmp_path, P, chunk_rows=0, progress=False)
    with pytest.raises(ValueError, match="workers"):
        load_world(store, tmp_path, P, workers=0, progress=False)


# -- hubs and the store's transaction limit (issue 18, defect 7) ------------------------------
@pytest.fixture(scope="module")
def hub_world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small world made hub-heavy: nine logins in ten come through one public IP."""
    out = tmp_path_factory.mktemp("hub-world")
    write_world(simulate_world(WorldConfig(users=300, seed=7)), out)
    logins = pq.read_table(out / "logins.parquet")
    ips = logins.column("ip").to_pylist()
    hub = max(set(ips), key=ips.count)
    rng = np.random.default_rng(0)
    hubbed = [hub if rng.random() < 0.9 else ip for ip in ips]
    logins = logins.set_column(logins.schema.get_field_index("ip"), "ip",
                               pa.array(hubbed, type=logins.schema.field("ip").type))
    pq.write_table(logins, out / "logins.parquet")
    return out


def _hub_id(directory: Path) -> str:
    step = next(s for s in PLAN if s.target == "LOGGED_IN_FROM")
    targets = [r["dst"] for r in step.build(read_table(directory, "logins"), P)]
    return max(set(targets), key=targets.count)


class _HubLock:
    """Holds the write lock of one node in an open transaction of its own (another writer on
    the hub), until :meth:`release` or ``hold_s``."""

    def __init__(self, driver: neo4j.Driver, node_id: str, hold_s: float) -> None:
        self._released = threading.Event()
        self._locked = threading.Event()
        self._thread = threading.Thread(target=self._hold, args=(driver, node_id, hold_s))
        self._thread.start()
        assert self._locked.wait(30)

    def _hold(self, driver: neo4j.Driver, node_id: str, hold_s: float) -> None:
        with driver.session(database=NEO4J_DATABASE) as session:
            tx = session.begin_transaction()
            tx.run("MERGE (i:IP {id: $id}) SET i.masked = 'held'", id=node_id).consume()
            self._locked.set()
            self._released.wait(hold_s)
            tx.rollback()

    def release(self) -> None:
        self._released.set()
        self._thread.join(30)


class _OnWarning(logging.Handler):
    """Calls ``action`` the first time the loader says it split a transaction."""

    def __init__(self, action: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.action = action
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "transaction limit" in record.getMessage():
            self.seen += 1
            if self.seen == 1:
                self.action()


@pytest.mark.neo4j
def test_hub_world_loads_through_transactions_past_the_limit(
        neo4j_driver: neo4j.Driver, hub_world_dir: Path) -> None:
    """Another writer holds the hub past the store's 1 s transaction timeout: the batches that
    wait on it are rolled back, split and retried, and the load finishes complete."""
    clear_checkpoints(hub_world_dir)
    store = Neo4jStore(neo4j_driver, database=NEO4J_DATABASE, query_timeout=1.0)
    store.clear()
    hub = _hub_id(hub_world_dir)
    lock = _HubLock(neo4j_driver, hub, hold_s=30)
    handler = _OnWarning(lock.release)
    logging.getLogger("graph.loader").addHandler(handler)
    try:
        load_world(store, hub_world_dir, P, target="hub", progress=False)
    finally:
        lock.release()
        logging.getLogger("graph.loader").removeHandler(handler)
    assert handler.seen >= 1
    keys = expected_keys(hub_world_dir)
    assert graph_counts(store, keys) == counts_of(keys)
    hub_logins = sum(1 for r in store.export_edges("LOGGED_IN_FROM").to_pylist()
                     if r["dst"] == hub)
    assert hub_logins > 0.8 * len(keys["LOGGED_IN_FROM"])


@pytest.mark.neo4j
def test_load_stops_with_one_line_naming_the_setting(
        neo4j_driver: neo4j.Driver, hub_world_dir: Path, tmp_path: Path) -> None:
    """A hub locked for longer than every retry: `riskgraph load` stops with one line that
    names the setting to change (no traceback), and the same command resumes once it passes."""
    clear_checkpoints(hub_world_dir)
    Neo4jStore(neo4j_driver, database=NEO4J_DATABASE).clear()
    env = {**os.environ, "RISKGRAPH_NEO4J_URI": neo4j_uri(),
           "RISKGRAPH_NEO4J_PASSWORD": neo4j_auth()[1],
           "RISKGRAPH_PSEUDONYM_SECRET": P_SECRET.decode(), "RISKGRAPH_DATA_DIR": str(tmp_path),
           "RISKGRAPH_NEO4J_QUERY_TIMEOUT_S": "1"}
    command = [sys.executable, "-m", "serving.cli", "load", str(hub_world_dir), "--quiet"]
    lock = _HubLock(neo4j_driver, _hub_id(hub_world_dir), hold_s=120)
    try:
        stopped = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                                 cwd=ROOT)
    finally:
        lock.release()
    assert stopped.returncode == 2, stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stderr
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith("riskgraph load: chunk "), last
    assert "RISKGRAPH_NEO4J_QUERY_TIMEOUT_S (now 1)" in last and "resume" in last
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                             cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    store = Neo4jStore(neo4j_driver, database=NEO4J_DATABASE)
    keys = expected_keys(hub_world_dir)
    assert graph_counts(store, keys) == counts_of(keys)


def test_a_write_past_the_limit_is_halved_then_reported() -> None:
    """The split-and-retry rule without a store: halves until the write passes, at most
    MAX_HALVINGS times, then one error naming the rows tried."""
    calls: list[int] = []

    def write(rows: Sequence[int]) -> None:
        calls.append(len(rows))
        if len(rows) > 300:
            raise TransactionLimitError("Neo4j transaction failed: timed out\nmore")

    _write_in_batches(write, 1000, list(range(2000)))
    assert calls[:4] == [1000, 500, 250, 250] and sum(c for c in calls if c <= 300) == 2000
    calls.clear()
    with pytest.raises(_LimitReached) as info:
        _write_in_batches(lambda rows: write([0] * 10_000), 1000, list(range(1000)))
    assert info.value.rows == 125 and info.value.cause == "Neo4j transaction failed: timed out"


def test_a_world_written_before_the_term_loads_with_none(world_dir: Path,
                                                         tmp_path: Path) -> None:
    """Applications files from before ``term_months`` existed load whole: the store holds no
    term for them and the graph a model reads says "not stated" (0)."""
    from gnn.data.lending_graph import LendingGraph

    old = tmp_path / "old"
    old.mkdir()
    for file in world_dir.glob("*"):
        if file.is_file() and not file.name.startswith("."):
            (old / file.name).write_bytes(file.read_bytes())
    apps = read_table(old, "applications")
    assert pc.min(apps.column("term_months")).as_py() >= 1
    pq.write_table(apps.drop(["term_months"]), old / "applications.parquet")
    with LadybugStore(tmp_path / "graph.lbug") as store:
        load_world(store, old, P, chunk_rows=2000, target="t", progress=False)
        stored = store.export_nodes("Application").select(["id", "term_months"])
    assert stored.num_rows == apps.num_rows
    assert stored.column("term_months").null_count == stored.num_rows
    graph = LendingGraph.from_world(old)
    assert graph.num_nodes("Application") == apps.num_rows
    assert (graph.attrs["Application"]["term_months"] == 0).all()
