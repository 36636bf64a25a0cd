"""Helpers of the serving tests: settings, a live uvicorn server on loopback, a world builder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from graph import GraphStore
from serving.settings import Settings
from tests.utils.neo4j import neo4j_auth, neo4j_uri

SECRET = "serving-tests-secret-0123456789abcdef"
ADMIN_KEY = "rgk_admintest_" + "A" * 43
# NOTE: the server scripts/neo4j.sh runs (NEO4J_BOLT_PORT, NEO4J_PASSWORD), the same one the
# `neo4j` fixture clears and reads: the replicas must write where the test looks.
NEO4J_URI = neo4j_uri()
ROOT = Path(__file__).resolve().parents[2]


def make_settings(data_dir: Path, backend: str = "ladybug", **overrides: Any) -> Settings:
    """Settings for a test: no .env file, a tmp data dir, generous timeouts unless overridden."""
    values: dict[str, Any] = {
        "DATA_DIR": data_dir, "PSEUDONYM_SECRET": SECRET, "ADMIN_API_KEY": ADMIN_KEY,
        "STORE_TIMEOUT_S": 5.0, "STORE_WRITE_TIMEOUT_S": 10.0, "STORE_PROBE_INTERVAL_S": 0.2,
        "RATE_LIMIT_PER_S": 10_000.0, "RATE_LIMIT_BURST": 10_000,
        "NEO4J_URI": NEO4J_URI if backend == "neo4j" else None,
        "NEO4J_USER": neo4j_auth()[0], "NEO4J_PASSWORD": neo4j_auth()[1],
        "NEO4J_MAX_RETRY_TIME_S": 2.0, "NEO4J_CONNECTION_TIMEOUT_S": 2.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class LiveServer:
    """An app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                                timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()

    def drain(self, timeout_s: float = 60.0) -> None:
        """Wait until every accepted write is in the store."""
        assert self.app.state.runtime.writer.wait_drained(timeout_s)

    def client(self, key: str | None = ADMIN_KEY) -> httpx.Client:
        headers = {} if key is None else {"X-API-Key": key}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def new_key(self, role: str, **extra: Any) -> str:
        with self.client() as c:
            r = c.post("/v1/keys", json={"name": f"test-{role}", "role": role, **extra})
            assert r.status_code == 201, r.text
            return str(r.json()["key"])


# -- a small world ------------------------------------------------------------------------------
def iso(t: datetime) -> str:
    return t.isoformat()


NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
SHANGHAI = (31.2304, 121.4737, "Shanghai")
BEIJING = (39.9042, 116.4074, "Beijing")
URUMQI = (43.8256, 87.6168, "Urumqi")


class World:
    """Builds users and their behaviour: sign-up data straight into the store (the bulk
    loader's job), behaviour through ``POST /v1/events`` (the API's job)."""

    def __init__(self, store: GraphStore, server: LiveServer, uid: Callable[[str], str]) -> None:
        self.store = store
        self.server = server
        self.uid = uid

    def user(self, name: str, *, days_old: float, home: tuple[float, float, str]) -> str:
        user_id = self.uid(name)
        created = int((NOW - timedelta(days=days_old)).timestamp())
        row = {"id": user_id, "created_at": created, "home_lat": home[0], "home_lon": home[1],
               "home_city": home[2]}
        self.store.upsert_nodes("User", [row])
        graph = self.server.app.state.runtime.live_graph
        if graph is not None:  # what the next snapshot refresh would bring in
            graph.apply([{"op": "nodes", "label": "User", "rows": [row]}])
        return user_id

    def events(self, events: list[dict[str, Any]]) -> None:
        """Post events, then wait until they are in the store (they are written behind)."""
        with self.server.client() as c:
            for start in range(0, len(events), 500):
                r = c.post("/v1/events", json={"events": events[start:start + 500]})
                assert r.status_code == 202, r.text
        self.server.drain()

    def habits(self, user_id: str, *, device: str, place: tuple[float, float, str],
               logins: int, orders: list[float], repayments: int = 0, days: int = 300,
               ip: str = "10.1.0.1") -> None:
        """Regular logins from one place and device, orders, on-time repayments."""
        evs: list[dict[str, Any]] = []
        for i in range(logins):
            t = NOW - timedelta(days=days * (i + 1) / (logins + 1))
            evs.append({"type": "login", "event_id": self.uid(f"{user_id}-login-{i}"),
                        "user_id": user_id, "ts": iso(t), "device_id": device, "ip": ip,
                        "lat": place[0] + 0.01 * (i % 3), "lon": place[1], })
        for i, amount in enumerate(orders):
            t = NOW - timedelta(days=days * (i + 1) / (len(orders) + 1), hours=1)
            evs.append({"type": "order", "event_id": self.uid(f"{user_id}-order-{i}"),
                        "user_id": user_id, "merchant_id": self.uid("shop"), "ts": iso(t),
                        "amount": amount, "category": "grocery", "bnpl": False})
        for i in range(repayments):
            t = NOW - timedelta(days=20 * (i + 1))
            evs.append({"type": "repayment", "event_id": self.uid(f"{user_id}-repay-{i}"),
                        "user_id": user_id, "application_id": self.uid(f"{user_id}-old-app"),
                        "ts": iso(t), "due_at": iso(t + timedelta(days=1)), "amount": 100.0,
                        "status": "on_time"})
        self.events(evs)


def application(app_id: str, user_id: str, *, amount: float, device: str,
                place: tuple[float, float, str], product: str = "bnpl",
                merchant: str | None = "m-checkout", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "application_id": app_id, "product": product, "amount": amount, "currency": "CNY",
        "user_id": user_id, "device_id": device, "ip": "10.9.0.1",
        "geo": {"lat": place[0], "lon": place[1], "city": place[2]},
        "applied_at": iso(NOW),
    }
    if merchant is not None:
        body["merchant_id"] = merchant
    body.update(extra)
    return body


class FlakyStore(GraphStore):
    """A real store behind a switch: ``down`` makes every call fail as an outage would,
    ``delay_s`` makes every call slow, ``failed_exports`` makes that many of the next exports
    fail as a store that answers but ends a long read would (Neo4j's transaction timeout). Used to drive the service's degraded mode and spool
    without stopping a server (the Neo4j outage test stops the real one)."""

    def __init__(self, inner: GraphStore) -> None:
        super().__init__(schema=inner.schema, batch_size=inner.batch_size)
        self.inner = inner
        self.backend = inner.backend
        self.down = False
        self.delay_s = 0.0
        self.failed_exports = 0
        self.calls: list[str] = []

    def _gate(self, name: str) -> None:
        self.calls.append(name)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.down:
            from graph import StoreUnavailableError

            raise StoreUnavailableError("store switched off by the test")

    def _apply_schema(self) -> None:
        self._gate("apply_schema")
        self.inner.apply_schema()

    def _ping(self) -> None:
        self._gate("ping")
        self.inner.ping()

    def _close(self) -> None:
        pass

    def _upsert_nodes(self, label: str, rows: Any) -> None:
        self._gate("upsert_nodes")
        self.inner.upsert_nodes(label, rows)

    def _upsert_edges(self, rel_type: str, rows: Any) -> None:
        self._gate("upsert_edges")
        self.inner.upsert_edges(rel_type, rows)

    def _create_node(self, label: str, row: Any) -> Any:
        self._gate("create_node")
        return self.inner.create_node(label, row)

    def _get_node(self, label: str, node_id: str) -> Any:
        self._gate("get_node")
        return self.inner.get_node(label, node_id)

    def _neighbourhood(self, label: str, node_id: str, hops: int, fanout: int) -> Any:
        self._gate("neighbourhood")
        return self.inner.neighbourhood(label, node_id, hops=hops, fanout=fanout)

    def _shared_accounts(self, user_id: str, via: Any, limit: int) -> Any:
        self._gate("shared_accounts")
        return self.inner.shared_accounts(user_id, via=via, limit=limit)

    def _explore(self, fn: Any) -> Any:
        self._gate("explore")
        return self.inner.explore(fn)

    def _edge_pairs(self, rel_type: str) -> Any:
        self._gate("edge_pairs")
        return self.inner.edge_pairs(rel_type)

    def _top_nodes(self, label: str, order_by: Any, limit: int, at_least: Any,
                   unset: Any) -> Any:
        self._gate("top_nodes")
        return self.inner.top_nodes(label, order_by=order_by, limit=limit, at_least=at_least,
                                    unset=unset)

    def _counts(self) -> dict[str, int]:
        self._gate("counts")
        return self.inner.counts()

    def _find_ids(self, label: str, name: str, value: str | None, limit: int) -> list[str]:
        self._gate("find_ids")
        return [n.id for n in self.inner.find_nodes(label, name, value, limit=limit)]

    def _node_ids(self, label: str) -> list[str]:
        self._gate("node_ids")
        return self.inner.node_ids(label)

    def _export_nodes(self, label: str, *, ordered: bool = True) -> Any:
        self._gate("export_nodes")
        self._export_gate()
        return self.inner.export_nodes(label, ordered=ordered)

    def _export_edges(self, rel_type: str, *, ordered: bool = True) -> Any:
        self._gate("export_edges")
        self._export_gate()
        return self.inner.export_edges(rel_type, ordered=ordered)

    def _export_gate(self) -> None:
        if self.failed_exports > 0:
            self.failed_exports -= 1
            from graph import StoreError

            raise StoreError("Neo4j transaction failed: the transaction has been terminated "
                             "(TransactionTimedOutClientConfiguration), set by the test")


class ServeProcess:
    """`python -m serving.cli serve` on a free port, logs to a file."""

    def __init__(self, data_dir: Path, log: Path, start_timeout_s: float = 120.0,
                 **env: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        full = {**os.environ, "RISKGRAPH_NEO4J_URI": NEO4J_URI,
                "RISKGRAPH_NEO4J_PASSWORD": neo4j_auth()[1],
                "RISKGRAPH_PSEUDONYM_SECRET": SECRET, "RISKGRAPH_ADMIN_API_KEY": ADMIN_KEY,
                "RISKGRAPH_DATA_DIR": str(data_dir), "RISKGRAPH_NEO4J_MAX_RETRY_TIME_S": "1",
                "RISKGRAPH_NEO4J_CONNECTION_TIMEOUT_S": "1",
                "RISKGRAPH_RATE_LIMIT_PER_S": "100000", "RISKGRAPH_RATE_LIMIT_BURST": "100000",
                **env}
        self._out = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serving.cli", "serve", "--port", str(self.port)],
            cwd=ROOT, env=full, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def client(self, key: str = ADMIN_KEY) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": key}, timeout=30)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


def neo4j_script(action: str) -> None:
    """``scripts/neo4j.sh start|stop`` on the test server (``NEO4J_BOLT_PORT`` /
    ``NEO4J_HOME_DIR`` of the environment)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "neo4j.sh"), action], check=True,
                   cwd=ROOT, timeout=300)


def wait_until(predicate: Callable[[], bool], timeout_s: float = 60.0,
               interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval_s)
