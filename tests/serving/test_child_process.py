"""`die_with_parent` (serving/_child_process.py): the GNN scorer's forked child ends with the
API process, also when that is killed with ``kill -9``; and not before it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving_world import ADMIN_KEY, SECRET, SHANGHAI, application

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gnn"))

from gnn_lending_world import trained, world_dir  # noqa: E402

from gnn import ModelRegistry  # noqa: E402
from graph import Pseudonymiser  # noqa: E402
from graph.ladybug_store import LadybugStore  # noqa: E402
from graph.loader import load_world  # noqa: E402

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[2]

# A parent that forks its child from a thread which then ends, prints the child's pid, waits.
_PARENT = """
import multiprocessing as mp, threading, time
from serving._child_process import die_with_parent

def child():
    die_with_parent()
    time.sleep(600)

procs = []
t = threading.Thread(target=lambda: procs.append(mp.get_context("fork").Process(
    target=child, daemon=True)) or procs[0].start())
t.start(); t.join()
print(procs[0].pid, flush=True)
time.sleep(600)
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _gone_within(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def test_a_child_outlives_the_thread_that_forked_it_and_ends_with_its_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        time.sleep(1.0)  # the forking thread has long ended
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _gone_within([child], 2.0) == []
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


@pytest.mark.slow
def test_kill_9_of_the_api_ends_the_gnn_child(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = LadybugStore(data / "graph.lbug")
    load_world(store, world_dir(), Pseudonymiser(SECRET.encode()), progress=False)
    store.close()
    registry = ModelRegistry(data / "models")
    registry.promote(registry.save(trained().pipeline, data_sha256="0" * 64))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RISKGRAPH_")},
           "RISKGRAPH_DATA_DIR": str(data), "RISKGRAPH_PSEUDONYM_SECRET": SECRET,
           "RISKGRAPH_ADMIN_API_KEY": ADMIN_KEY, "RISKGRAPH_DEVICE": "cpu",
           "RISKGRAPH_GNN_PROCESS": "true"}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "serving.cli", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    children: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        body = application("app-child", "U00000001", amount=300.0, device="phone-1",
                           place=SHANGHAI)
        r = httpx.post(url + "/v1/score", json=body, headers={"X-API-Key": ADMIN_KEY},
                       timeout=60)
        assert r.status_code == 200 and r.json()["model_version"].startswith("gnn"), r.text
        children = _children(server.pid)
        assert children, "the GNN scorer runs in a child process"
        # the API's interpreter threads and its model process run under SCHED_BATCH (the
        # default); native helpers a library starts on import (jemalloc's) keep theirs
        threads = [(int(t.name), (t / "comm").read_text().strip(),
                    Path(f"/proc/{pid}/comm").read_text().strip())
                   for pid in (server.pid, *children) for t in Path(f"/proc/{pid}/task").iterdir()]
        # an interpreter thread keeps its process's name (python, python3 ...)
        policies = {t: os.sched_getscheduler(t) for t, comm, process in threads if comm == process}
        assert len(policies) > 3 and {server.pid, *children} <= policies.keys(), threads
        assert set(policies.values()) == {os.SCHED_BATCH}, policies
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        assert _gone_within(children, 2.0) == [], log.read_text()[-2000:]
    finally:
        server.kill()
        server.wait()
        for pid in children:
            if _alive(pid):  # an orphan of a failed run: ours to end
                os.kill(pid, signal.SIGKILL)
