"""The durable spool and the writer that replays it, on the embedded store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_world import FlakyStore, make_settings, wait_until

from graph import GraphStore, SchemaError
from serving.spool import Answer, SiblingAnswers, Spool, SpoolError, claim_spool
from serving.store_guard import StoreDown, StoreGuard
from serving.stores import build_store
from serving.writer import DurableWriter, apply_ops


def test_append_peek_ack_find_and_survive_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    seqs = [spool.append("events", {"ops": [i]}, key=f"k{i}") for i in range(5)]
    assert seqs == sorted(seqs) and spool.depth == 5
    assert [e.payload["ops"] for e in spool.peek(3)] == [[0], [1], [2]]
    spool.ack(seqs[0])
    assert spool.find("events", "k3") == {"ops": [3]}
    assert spool.find("events", "k0") is None and spool.find("score", "k3") is None
    spool.close()
    reopened = Spool(tmp_path / "s.sqlite")
    assert reopened.depth == 4
    entry = reopened.peek(1)[0]
    assert reopened.record_failure(entry) == 1
    reopened.dead_letter(entry, "boom")
    assert reopened.depth == 3 and reopened.dead_count() == 1
    reopened.close()


def test_answers_are_kept_with_their_writes_survive_reopen_and_go_when_old(
        tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    a = Answer("app-1", "h1", '{"decision":"approve"}')
    spool.append("application", {"ops": []}, "app-1", answer=a)
    spool.record_answer(Answer("app-2", "h2", '{"decision":"review"}'))
    assert spool.depth == 1  # an answer alone queues nothing
    assert spool.answer("app-1") == a and spool.answer("app-3") is None
    # what the store kept instead, recorded with the acknowledgement
    stored = Answer("app-1", "h9", '{"decision":"decline"}')
    spool.ack_many([e.seq for e in spool.peek()], [stored])
    assert spool.depth == 0 and spool.answer("app-1") == stored
    spool.close()
    reopened = Spool(tmp_path / "s.sqlite")
    assert reopened.answer("app-1") == stored
    assert reopened.answer("app-2") == Answer("app-2", "h2", '{"decision":"review"}')
    assert reopened.prune_answers(time.time() - 3600) == 0
    assert reopened.prune_answers(time.time() + 1, limit=1) == 1
    assert reopened.prune_answers(time.time() + 1) == 1
    assert reopened.answer("app-1") is None and reopened.answer("app-2") is None
    reopened.close()


def test_appends_leave_the_log_to_the_checkpoint_off_their_path(tmp_path: Path) -> None:
    """With SQLite's default (a checkpoint by the commit that passes 1,000 log pages), one
    request's claim every ~3 s at 100 verdicts/s also copied the log and fsynced the database
    file while every other append waited (serving.spool.WAL_AUTOCHECKPOINT_PAGES)."""
    path = tmp_path / "s.sqlite"
    spool = Spool(path)
    empty = path.stat().st_size
    blob = "x" * 4000  # about a page a verdict
    for i in range(1500):  # past SQLite's default of 1,000 pages
        spool.append("score", {"ops": [blob]}, key=f"k{i}")
    assert path.stat().st_size == empty  # nothing copied into the database file yet
    spool.checkpoint()
    assert path.stat().st_size > 1500 * 4000
    assert [e.key for e in spool.peek(2)] == ["k0", "k1"]
    spool.close()


def test_the_replay_thread_checkpoints_the_spool(tmp_path: Path, store: GraphStore) -> None:
    path = tmp_path / "s.sqlite"
    spool = Spool(path)
    guard = StoreGuard(store, read_timeout_s=1, write_timeout_s=1, probe_interval_s=0.05,
                       threads=2)
    writer = DurableWriter(guard, spool, linger_s=0.01)
    empty = path.stat().st_size
    spool.record_answer(Answer("app-1", "h1", "{}"))  # in the log only (see the test above)
    writer.start()
    try:
        wait_until(lambda: path.stat().st_size > empty, timeout_s=10)
    finally:
        writer.close()
        guard.close()
        spool.close()


def test_replicas_of_one_host_read_each_others_answers(tmp_path: Path) -> None:
    first, second = claim_spool(tmp_path), claim_spool(tmp_path)
    siblings = SiblingAnswers(tmp_path, second.path)
    try:
        assert siblings.answer("app-1") is None
        first.append("score", {"ops": []}, "app-1", answer=Answer("app-1", "h", "{}"))
        assert siblings.answer("app-1") == Answer("app-1", "h", "{}")
        assert SiblingAnswers(tmp_path, first.path).answer("app-1") is None  # its own
    finally:
        siblings.close()
        first.close()
        second.close()


def test_one_process_per_spool_file(tmp_path: Path) -> None:
    first = claim_spool(tmp_path)
    second = claim_spool(tmp_path)
    assert first.path != second.path
    first.append("events", {"ops": []})
    first.close()
    third = claim_spool(tmp_path)
    assert third.path == first.path and third.depth == 1  # picks up what was left
    second.close()
    third.close()


def test_unwritable_spool_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SpoolError):
        Spool(tmp_path / "file" / "s.sqlite")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GraphStore]:
    s = build_store(make_settings(tmp_path / "data"))
    s.apply_schema()
    yield s
    s.close()


def _login(event_id: str, ts: int) -> dict[str, object]:
    return {"op": "edges", "rel": "USES", "rows": [
        {"src": "u1", "dst": "dv_1", "last_seen": ts}]} if event_id == "uses" else {
        "op": "edges", "rel": "LOGGED_IN_FROM", "rows": [
            {"src": "u1", "dst": "10.0.0.1", "event_id": event_id, "ts": ts}]}


def test_writer_spools_while_down_and_replays_in_order_once(tmp_path: Path,
                                                            store: GraphStore) -> None:
    flaky = FlakyStore(store)
    guard = StoreGuard(flaky, read_timeout_s=1, write_timeout_s=1, probe_interval_s=0.05,
                       threads=4)
    writer = DurableWriter(guard, Spool(tmp_path / "s.sqlite"))
    guard.start()
    writer.start()
    try:
        writer.enqueue("events", [_login("e0", 1)])
        assert writer.wait_drained(30)
        flaky.down = True
        assert writer.write("labels", [_login("e1", 1)]) is None  # store down: spooled
        for ts in (2, 3, 4):
            writer.enqueue("events", [_login(f"e{ts}", ts), _login("uses", ts)])
        assert writer.pending == 4
        flaky.calls.clear()
        flaky.down = False
        assert writer.wait_drained(30)
        # replayed in acceptance order: the last write of USES.last_seen wins
        edges = store.neighbourhood("User", "u1", hops=1, fanout=10).edges
        assert sorted(e.properties["event_id"] for e in edges if e.type == "LOGGED_IN_FROM") \
            == ["e0", "e1", "e2", "e3", "e4"]
        assert [e.properties["last_seen"] for e in edges if e.type == "USES"] == [4]
        # a replay of everything again changes nothing (idempotent ops)
        apply_ops(store, [_login("e2", 2), _login("e3", 3)])
        edges = store.neighbourhood("User", "u1", hops=1, fanout=10).edges
        assert sum(e.type == "LOGGED_IN_FROM" for e in edges) == 5
    finally:
        writer.close()
        guard.close()


def test_rejected_entries_are_set_aside_not_lost(tmp_path: Path, store: GraphStore) -> None:
    guard = StoreGuard(store, read_timeout_s=1, write_timeout_s=1, probe_interval_s=0.05,
                       threads=2)
    spool = Spool(tmp_path / "s.sqlite")
    spool.append("events", {"ops": [{"op": "nodes", "label": "Nope", "rows": [{"id": "x"}]}]})
    spool.append("events", {"ops": [_login("ok", 1)]})
    dead: list[str] = []
    writer = DurableWriter(guard, spool, on_dead_letter=lambda e, err: dead.append(err))
    for _ in range(10):
        writer.replay()
    assert spool.depth == 0 and spool.dead_count() == 1 and "Nope" in dead[0]
    assert store.get_node("IP", "10.0.0.1") is not None
    with pytest.raises(SchemaError):
        apply_ops(store, [{"op": "nodes", "label": "Nope", "rows": [{"id": "x"}]}])
    guard.close()


def test_guard_trips_on_timeouts_and_recovers(store: GraphStore) -> None:
    flaky = FlakyStore(store)
    guard = StoreGuard(flaky, read_timeout_s=0.05, write_timeout_s=0.05,
                       probe_interval_s=0.05, threads=8, trip_after=2)
    guard.start()
    try:
        flaky.delay_s = 0.2
        for _ in range(3):
            with pytest.raises(StoreDown, match="read slower"):
                guard.read(lambda s: s.ping())
        assert guard.up  # slow reads degrade their own answer only
        for _ in range(2):
            with pytest.raises(StoreDown, match="write slower"):
                guard.write(lambda s: s.ping())
        assert not guard.up
        flaky.delay_s = 0.0
        wait_until(lambda: guard.up, 10)
        guard.read(lambda s: s.ping())
        with pytest.raises(KeyError):  # a caller's bug is not an outage
            guard.read(lambda s: {}["missing"])
        assert guard.up
    finally:
        guard.close()


def test_wait_stored_waits_for_the_writes_accepted_before_it(tmp_path: Path,
                                                             store: GraphStore) -> None:
    flaky = FlakyStore(store)
    guard = StoreGuard(flaky, read_timeout_s=1, write_timeout_s=1, probe_interval_s=0.05,
                       threads=4)
    spool = Spool(tmp_path / "s.sqlite")
    writer = DurableWriter(guard, spool)
    guard.start()
    writer.start()
    try:
        assert writer.wait_stored(1)  # nothing accepted yet
        flaky.down = True
        writer.enqueue("events", [_login("e1", 1)])
        assert spool.last_seq >= 1 and spool.oldest_seq() == spool.last_seq
        assert not writer.wait_stored(0.3)  # the store is down: it cannot be there
        flaky.down = False
        assert writer.wait_stored(30)
        assert spool.oldest_seq() is None
        edges = store.neighbourhood("User", "u1", hops=1, fanout=10).edges
        assert [e.properties["event_id"] for e in edges if e.type == "LOGGED_IN_FROM"] == ["e1"]
    finally:
        writer.close()
        guard.close()
