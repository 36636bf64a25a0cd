"""Neo4j's bulk path (``neo4j-admin database import`` into a stopped server): the same graph as
the upserts over Bolt, a refusal for a database that holds anything, and a failed import that
leaves the database as it was.

The tests run a Neo4j server of their own (a home under ``tmp_path``, the jars that
``scripts/neo4j.sh`` installed for the suite's server under ``NEO4J_HOME_DIR``, Bolt on
``NEO4J_IMPORT_BOLT_PORT`` or else a free port), since they stop and start it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import neo4j
import pyarrow as pa
import pytest

from graph import Pseudonymiser, StoreError
from graph.loader import BulkLoadRefusedError, checkpoint_path, load_world
from graph.neo4j_import import Neo4jImport, Neo4jScript, write_import_files
from graph.neo4j_store import Neo4jStore
from graph.schema import SCHEMA
from simulator import WorldConfig
from tests.utils.graphs import DroppedMerchant, assert_same_snapshot, snapshot

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "neo4j.sh"
PASSWORD = "import-test-pw-0123"
P_SECRET = "neo4j-import-test-secret-0123"
P = Pseudonymiser(P_SECRET.encode())
CHUNK = 1000
"""Chunks of 1000 rows: the upserts over Bolt take a few seconds (the fold across many small
chunks, the same code for every store, is tested on LadybugDB in test_loader_bulk.py)."""


def _installed_lib() -> Path:
    home = Path(os.environ.get("NEO4J_HOME_DIR", ROOT / ".cache" / "neo4j"))
    lib = home / "lib"
    if not list(lib.glob(".installed-*")):
        pytest.fail(f"no Neo4j installed in {lib}: run `bash scripts/neo4j.sh start` (the "
                    "suite's server) first", pytrace=False)
    return lib


def _port() -> int:
    if os.environ.get("NEO4J_IMPORT_BOLT_PORT"):
        return int(os.environ["NEO4J_IMPORT_BOLT_PORT"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jScript]:
    """A server of this module's own, started, stopped at the end."""
    home = tmp_path_factory.mktemp("neo4j-home")
    (home / "lib").symlink_to(_installed_lib())
    script = Neo4jScript(SCRIPT, home=home, bolt_port=_port(), password=PASSWORD,
                         environment={"NEO4J_HEAP_MAX": "1g", "NEO4J_PAGECACHE": "256m",
                                      "PYTHON": sys.executable})
    script.start()
    yield script
    script.stop()


@pytest.fixture(scope="module")
def driver(server: Neo4jScript) -> Iterator[neo4j.Driver]:
    with neo4j.GraphDatabase.driver(f"bolt://127.0.0.1:{server.bolt_port}",
                                    auth=("neo4j", PASSWORD)) as d:
        yield d


@pytest.fixture
def plain(driver: neo4j.Driver) -> Neo4jStore:
    """The module's database, emptied (identity too), schema applied; no bulk path."""
    store = Neo4jStore(driver)
    store.clear()
    store.apply_schema()
    return store


@pytest.fixture
def importing(driver: neo4j.Driver, server: Neo4jScript, plain: Neo4jStore) -> Neo4jStore:
    """The same database through a store whose bulk path is the offline import."""
    return Neo4jStore(driver, bulk_import=Neo4jImport(server, threads=2))


def _schema_objects(store: Neo4jStore) -> set[tuple[str, str]]:
    with store.driver.session(database=store.database) as session:
        return {(r["name"], r["state"]) for r in session.run("SHOW INDEXES YIELD name, state")}


@pytest.mark.neo4j
def test_an_import_is_the_upsert_load(plain: Neo4jStore, importing: Neo4jStore,
                                      ragged_world: Path) -> None:
    """The world with bare endpoints, a repeated contact and a label cleared later (the
    ``ragged_world``): the imported database holds what the upserts over Bolt leave, row for
    row, with the schema's constraints and indexes online; the store keeps its identity, so a
    second load finds every chunk done."""
    slow = load_world(plain, ragged_world, P, chunk_rows=CHUNK, target="up", progress=False)
    want, counts, schema = snapshot(plain), plain.counts(), _schema_objects(plain)
    plain.clear()
    identity = importing.identity()

    fast = load_world(importing, ragged_world, P, chunk_rows=CHUNK, target="import",
                      progress=False, bulk=True)
    assert fast.bulk and not slow.bulk
    assert_same_snapshot(snapshot(importing), want)
    assert importing.counts() == counts
    assert fast.written == slow.written and fast.chunks_done == slow.chunks_done
    assert {"fold", "check", "files", "stop", "import", "start", "schema"} <= set(
        fast.bulk_seconds)
    assert _schema_objects(importing) == schema
    assert {state for _, state in schema} == {"ONLINE"}
    assert importing.identity() == identity

    again = load_world(importing, ragged_world, P, chunk_rows=CHUNK, target="import",
                       progress=False)
    assert not again.bulk
    assert (again.chunks_done, again.chunks_skipped) == (0, fast.chunks_done)
    assert importing.counts() == counts


@pytest.mark.neo4j
def test_the_import_refuses_a_database_that_holds_anything(
        plain: Neo4jStore, importing: Neo4jStore, fresh_dir: Path, server: Neo4jScript,
        tmp_path: Path) -> None:
    """An API key, a node of a label the schema does not know, a user: each would be lost,
    so the import refuses before it reads a chunk (the server keeps running); `riskgraph load
    --neo4j-import` says so in one line."""
    pid = (server.home / "run" / "neo4j.pid").read_text()
    plain.upsert_nodes("ApiKey", [{"id": "k1", "name": "ops", "role": "admin",
                                   "key_hash": "0" * 64, "created_at": 1}])
    with pytest.raises(BulkLoadRefusedError, match=r"it is not empty \(1 ApiKey\)"):
        load_world(importing, fresh_dir, P, chunk_rows=CHUNK, target="t", progress=False,
                   bulk=True)
    plain.clear()
    with plain.driver.session() as session:
        session.run("CREATE (:Scratch {note: 'not ours'})").consume()
    with pytest.raises(BulkLoadRefusedError, match="1 nodes of other labels"):
        load_world(importing, fresh_dir, P, bulk=True, progress=False)
    plain.clear()
    plain.upsert_nodes("User", [{"id": "u1"}, {"id": "u2"}])
    assert importing.bulk_load_refusal() == "it is not empty (2 User)"
    assert (server.home / "run" / "neo4j.pid").read_text() == pid
    ckpt = checkpoint_path(fresh_dir, target="t", as_of=WorldConfig().end_ts,
                           chunk_rows=CHUNK, pseudonymiser=P)
    assert not ckpt.exists() or '"chunk"' not in ckpt.read_text()

    env = {**os.environ, "RISKGRAPH_NEO4J_URI": f"bolt://127.0.0.1:{server.bolt_port}",
           "RISKGRAPH_NEO4J_PASSWORD": PASSWORD, "RISKGRAPH_PSEUDONYM_SECRET": P_SECRET,
           "RISKGRAPH_DATA_DIR": str(tmp_path)}
    cli = subprocess.run([sys.executable, "-m", "serving.cli", "load", str(fresh_dir),
                          "--quiet", "--neo4j-import", str(server.home)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2, cli.stderr
    lines = cli.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in cli.stderr, cli.stderr
    assert lines[0] == ("riskgraph load: --neo4j-import refused: database 'neo4j': it is not "
                        "empty (2 User); the import replaces the whole database, so load into "
                        "it without --neo4j-import (upserts, chunk by chunk), or empty it first")
    assert (server.home / "run" / "neo4j.pid").read_text() == pid
    assert plain.counts()["User"] == 2


@pytest.mark.neo4j
@pytest.mark.slow
def test_a_failed_import_leaves_the_database_as_it_was(
        plain: Neo4jStore, server: Neo4jScript, tmp_path: Path) -> None:
    """neo4j-admin fails (a relationship names a node that no file holds): the database the
    import was to replace is untouched, whatever it held, and serves again; the stage is
    gone."""
    plain.upsert_nodes("User", [{"id": "keep", "created_at": 7}])
    users = pa.table({"id": ["u1"]})
    contact = pa.table({"src": ["u1"], "dst": ["u2"], "since": [5]})
    arguments = write_import_files(SCHEMA, [("User", users)], [("CONTACT", contact)], tmp_path)
    server.stop()
    try:
        with pytest.raises(StoreError, match="neo4j is as it was"):
            server.import_database("neo4j", ["--threads=2", *arguments])
    finally:
        server.start()
    assert not (server.home / "import-stage").exists()
    node = plain.get_node("User", "keep")
    assert node is not None and node.properties == {"created_at": 7}
    assert plain.counts()["User"] == 1


@pytest.mark.neo4j
@pytest.mark.slow
def test_a_load_whose_import_fails_leaves_an_empty_store_that_loads_whole(
        plain: Neo4jStore, importing: Neo4jStore, fresh_dir: Path) -> None:
    """Through the loader: the error says the database is as it was and the server runs;
    the store holds nothing but its identity, the checkpoint no chunk, and the same load run
    again imports the world whole."""
    identity = importing.identity()
    with pytest.raises(StoreError, match="failed and the database is as it was"):
        load_world(DroppedMerchant(importing), fresh_dir, P,  # type: ignore[arg-type]
                   chunk_rows=CHUNK, target="t", progress=False, bulk=True)
    assert importing.identity() == identity
    assert not any(n for name, n in importing.counts().items() if name != "StoreIdentity")
    ckpt = checkpoint_path(fresh_dir, target="t", as_of=WorldConfig().end_ts,
                           chunk_rows=CHUNK, pseudonymiser=P)
    assert not ckpt.exists() or '"chunk"' not in ckpt.read_text()

    again = load_world(importing, fresh_dir, P, chunk_rows=CHUNK, target="t", progress=False)
    assert again.bulk and again.chunks_skipped == 0
    assert importing.counts()["Merchant"] > 0 and importing.identity() == identity


def test_import_files_carry_types_nulls_quotes_and_id_spaces(tmp_path: Path) -> None:
    """What neo4j-admin reads: the header names each label's id space and each property's
    type; a null is an empty field (no property), an empty string a quoted one; quotes are
    doubled; a line break asks for the multi-line reader."""
    users = pa.table({"id": ["u1", 'u"2'], "created_at": pa.array([5, None], pa.int64()),
                      "home_lat": [31.25, None], "name_masked": ["A, b", ""],
                      "default_label": [True, None]})
    uses = pa.table({"src": ["u1"], "dst": ["d1"], "first_seen": pa.array([1], pa.int64()),
                     "last_seen": pa.array([None], pa.int64())})
    devices = pa.table({"id": ["d1"]})
    arguments = write_import_files(SCHEMA, [("User", users), ("Device", devices)],
                                   [("USES", uses)], tmp_path)
    assert (tmp_path / "00-User.csv").read_text().splitlines() == [
        "id:ID(User),created_at:long,home_lat:double,name_masked:string,default_label:boolean",
        '"u1",5,31.25,"A, b",true',
        '"u""2",,,"",',
    ]
    assert (tmp_path / "02-USES.csv").read_text().splitlines() == [
        ":START_ID(User),:END_ID(Device),first_seen:long,last_seen:long",
        '"u1","d1",1,',
    ]
    assert arguments[-4:] == [f"--nodes=User={tmp_path / '00-User.csv'}",
                              f"--nodes=Device={tmp_path / '01-Device.csv'}",
                              f"--relationships=USES={tmp_path / '02-USES.csv'}",
                              "--multiline-fields=false"]
    (tmp_path / "multi").mkdir()
    phones = pa.table({"id": ["p1"], "masked": ["13\n8"]})
    multi = write_import_files(SCHEMA, [("Phone", phones)], [], tmp_path / "multi")
    assert multi[-1] == "--multiline-fields=true"


@pytest.mark.neo4j
def test_the_load_command_imports_and_keeps_the_stores_key(
        plain: Neo4jStore, fresh_dir: Path, server: Neo4jScript, tmp_path: Path) -> None:
    """`riskgraph load` records the store's pseudonymisation key before it loads
    (serving.key_rotation); the import replaces the whole database, so it carries that record
    over like the store's identity, instead of refusing the database for holding it."""
    env = {**os.environ, "RISKGRAPH_NEO4J_URI": f"bolt://127.0.0.1:{server.bolt_port}",
           "RISKGRAPH_NEO4J_PASSWORD": PASSWORD, "RISKGRAPH_PSEUDONYM_SECRET": P_SECRET,
           "RISKGRAPH_DATA_DIR": str(tmp_path)}
    load = [sys.executable, "-m", "serving.cli", "load", str(fresh_dir), "--quiet"]
    cli = subprocess.run([*load, "--neo4j-import", str(server.home)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    counts = plain.counts()
    assert counts["User"] > 0 and counts["PseudonymKey"] == 1
    # the same key again: the chunks are done, nothing is refused or written
    again = subprocess.run(load, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert plain.counts() == counts
    # another key is refused: the record came through the import
    other = subprocess.run(load, cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**env, "RISKGRAPH_PSEUDONYM_SECRET": "another-secret-0123456789"})
    assert other.returncode != 0 and "Traceback" not in other.stderr
