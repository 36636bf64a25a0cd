"""What a hostile or careless client sends, over real HTTP (uvicorn on loopback): numbers JSON
cannot carry back (NaN, ±Infinity, overflows), lone surrogates, times that mean nothing,
bodies too large to announce their length, keys that cannot be used. Each is a 4xx that names
the field, on a connection that stays open; never a 500."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_world import (
    ADMIN_KEY,
    NOW,
    SHANGHAI,
    FlakyStore,
    LiveServer,
    application,
    iso,
    make_settings,
)

from fastapi import FastAPI, Request

from serving.api import create_app
from serving.api.middleware import RequestContextMiddleware
from serving.metrics import ServingMetrics
from serving.scorers import load_live_graph, load_scorer
from serving.stores import build_store

pytestmark = pytest.mark.timeout(300)

HOLE = "<hole>"
"""Stands for the raw JSON token put in place of a field's value."""


def _app(settings: Any, store: Any) -> Any:
    """The app as `riskgraph serve` builds it: the live graph and the scorer over it."""
    graph = load_live_graph(settings, store)
    return create_app(settings, store, load_scorer(settings, graph, store), live_graph=graph)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("input") / "data")
    store = build_store(settings)
    store.apply_schema()
    live = LiveServer(_app(settings, store)).start()
    yield live
    live.stop()
    store.close()


def _login() -> dict[str, Any]:
    return {"type": "login", "event_id": "in-login", "user_id": "in-u",
            "ts": iso(NOW - timedelta(hours=1)), "device_id": "in-phone", "ip": "10.0.0.1",
            "lat": 31.2, "lon": 121.4}


def _order() -> dict[str, Any]:
    return {"type": "order", "event_id": "in-order", "user_id": "in-u", "merchant_id": "in-m",
            "ts": iso(NOW - timedelta(hours=1)), "amount": 10.0, "category": "books"}


def _repayment(**change: Any) -> dict[str, Any]:
    return {"type": "repayment", "event_id": "in-repay", "user_id": "in-u",
            "application_id": "in-app", "ts": iso(NOW - timedelta(days=2)),
            "due_at": iso(NOW - timedelta(days=1)), "amount": 100.0, "status": "on_time",
            **change}


def _sales(**change: Any) -> dict[str, Any]:
    return {"type": "merchant_sales", "event_id": "in-sales", "merchant_id": "in-m",
            "day": (NOW - timedelta(days=1)).date().isoformat(), "gmv": 10.0, "orders": 1,
            "refunds": 0.0, "inventory": 5.0, **change}


def _label() -> dict[str, Any]:
    return {"event_id": "in-label", "entity_type": "User", "entity_id": "in-u",
            "kind": "fraud", "at": iso(NOW - timedelta(hours=1)), "source": "investigator:x"}


def _bodies() -> dict[str, tuple[str, dict[str, Any], list[str | int]]]:
    """Per request kind: the path, a valid body, and the ``loc`` prefix of its fields."""
    return {
        "score": ("/v1/score", application("in-app-1", "in-u", amount=100.0, device="in-d",
                                           place=SHANGHAI, address="上海市1号",
                                           phone="+86 138 0000 0000"), ["body"]),
        "login": ("/v1/events", {"events": [_login()]}, ["body", "events", 0, "login"]),
        "order": ("/v1/events", {"events": [_order()]}, ["body", "events", 0, "order"]),
        "repayment": ("/v1/events", {"events": [_repayment()]},
                      ["body", "events", 0, "repayment"]),
        "sales": ("/v1/events", {"events": [_sales()]}, ["body", "events", 0, "merchant_sales"]),
        "label": ("/v1/labels", {"labels": [_label()]}, ["body", "labels", 0]),
        "key": ("/v1/keys", {"name": "in-key", "role": "scoring", "rate_limit_per_s": 5.0},
                ["body"]),
    }


def _fields(kind: str) -> Iterator[tuple[list[str | int], Any]]:
    """``(path inside the body, value)`` of every leaf field of a kind's body."""
    _, body, _ = _bodies()[kind]
    root: Any = body
    prefix: list[str | int] = []
    if kind in ("login", "order", "repayment", "sales"):
        root, prefix = body["events"][0], ["events", 0]
    elif kind == "label":
        root, prefix = body["labels"][0], ["labels", 0]

    def walk(node: Any, path: list[str | int]) -> Iterator[tuple[list[str | int], Any]]:
        if isinstance(node, dict):
            for k, v in node.items():
                yield from walk(v, [*path, k])
        else:
            yield path, node

    for path, value in walk(root, []):
        yield [*prefix, *path], value


def _cases() -> list[Any]:
    cases = []
    for kind in _bodies():
        for path, value in _fields(kind):
            if isinstance(value, bool) or path[-1] == "type":
                continue
            name = f"{kind}.{'.'.join(str(p) for p in path if not isinstance(p, int))}"
            if isinstance(value, float | int):
                tokens = [b"NaN", b"Infinity", b"-Infinity", b"1e309"]
            else:
                # a lone surrogate as JSON escapes it, and as raw (CESU-8) bytes
                tokens = [b'"a\\ud800"', b'"\\udfff"', b'"x\xed\xa0\x80y"']
            cases += [pytest.param(kind, path, token, id=f"{name}={token.decode('latin-1')}")
                      for token in tokens]
    return cases


def _raw(body: dict[str, Any], path: list[str | int], token: bytes) -> bytes:
    """``body`` as JSON with the value at ``path`` replaced by the raw bytes ``token``."""
    doc = json.loads(json.dumps(body))
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = HOLE
    return json.dumps(doc).encode().replace(json.dumps(HOLE).encode(), token)


@pytest.mark.parametrize(("kind", "path", "token"), _cases())
def test_numbers_and_text_json_cannot_carry_back_are_422_naming_the_field(
        server: LiveServer, kind: str, path: list[str | int], token: bytes) -> None:
    url, body, loc = _bodies()[kind]
    headers = {"X-API-Key": ADMIN_KEY, "content-type": "application/json"}
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        r = c.post(url, content=_raw(body, path, token), headers=headers)
        assert r.status_code == 422, r.text
        locs = [d["loc"] for d in r.json()["detail"]]
        assert loc + [p for p in path if p not in ("events", "labels", 0)] in locs, locs
        assert r.headers["x-request-id"]
        assert c.get("/healthz").status_code == 200


@pytest.mark.parametrize(("url", "field"), [
    ("/v1/users/%ED%A0%80/neighbourhood", ["path", "user_id"]),
    ("/v1/users/u1/neighbourhood?hops=NaN", ["query", "hops"]),
    ("/v1/users/u1/shared-accounts?limit=1e309", ["query", "limit"]),
    ("/v1/verdicts/a%ED%A0%80", ["path", "application_id"]),
])
def test_path_and_query_values_are_422_naming_them(server: LiveServer, url: str,
                                                   field: list[str]) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30,
                      headers={"X-API-Key": ADMIN_KEY}) as c:
        r = c.get(url)
    assert r.status_code == 422, r.text
    assert field in [d["loc"] for d in r.json()["detail"]]


@pytest.mark.parametrize(("kind", "change", "field"), [
    ("login", {"ts": 1732838400}, "ts"),
    ("login", {"ts": "1732838400"}, "ts"),
    ("order", {"ts": 1732838400.5}, "ts"),
    ("repayment", {"due_at": 1732838400}, "due_at"),
    ("sales", {"day": 20000}, "day"),
    ("sales", {"day": "20000"}, "day"),
    ("sales", {"day": (NOW + timedelta(days=1)).date().isoformat()}, "day"),
    ("sales", {"day": (NOW + timedelta(days=300)).date().isoformat()}, "day"),
    ("repayment", {"status": "late", "due_at": iso(NOW + timedelta(days=3))}, "status"),
    ("repayment", {"status": "missed", "due_at": iso(NOW + timedelta(days=3))}, "status"),
    ("repayment", {"due_at": iso(NOW + timedelta(days=6 * 366))}, "due_at"),
    ("repayment", {"ts": iso(NOW + timedelta(days=1))}, "ts"),
    ("label", {"at": 1732838400}, "at"),
    ("score", {"applied_at": 1732838400}, "applied_at"),
])
def test_times_are_validated_by_meaning(server: LiveServer, kind: str, change: dict[str, Any],
                                        field: str) -> None:
    url, body, loc = _bodies()[kind]
    if kind == "score":
        body.update(change)
    else:
        body[next(iter(body))][0].update(change)
    with server.client() as c:
        r = c.post(url, json=body)
    assert r.status_code == 422, r.text
    assert loc + [field] in [d["loc"] for d in r.json()["detail"]], r.text


@pytest.mark.parametrize("kind", ["score", "order"])
@pytest.mark.parametrize("amount", [5e-324, 1e-9, 0.009])
def test_amounts_below_a_hundredth_are_422(server: LiveServer, kind: str, amount: float) -> None:
    url, body, loc = _bodies()[kind]
    (body if kind == "score" else body["events"][0]).update(amount=amount)
    with server.client() as c:
        r = c.post(url, json=body)
    assert r.status_code == 422, r.text
    assert loc + ["amount"] in [d["loc"] for d in r.json()["detail"]], r.text


def test_an_order_of_a_hundredth_is_accepted(server: LiveServer) -> None:
    with server.client() as c:
        r = c.post("/v1/events", json={"events": [_order() | {"event_id": "in-cent",
                                                              "amount": 0.01}]})
    assert r.status_code == 202, r.text


def test_early_repayments_and_todays_sales_are_accepted(server: LiveServer) -> None:
    events = [
        _repayment(event_id="in-early", ts=iso(NOW - timedelta(hours=2)),
                   due_at=iso(NOW + timedelta(days=20))),
        _repayment(event_id="in-late", status="late", ts=iso(NOW - timedelta(hours=2)),
                   due_at=iso(NOW - timedelta(days=3))),
        _sales(event_id="in-today", day=NOW.date().isoformat()),
    ]
    with server.client() as c:
        r = c.post("/v1/events", json={"events": events})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 3


def test_chunked_bodies_over_the_limit_are_413(server: LiveServer) -> None:
    def chunks(n: int, size: int) -> Iterator[bytes]:
        for _ in range(n):
            yield b" " * size

    events = json.dumps({"events": [_login() | {"event_id": "in-chunked"}]}).encode()
    with server.client() as c:
        big = c.post("/v1/events", content=chunks(5, 1024 * 1024),
                     headers={"content-type": "application/json"})
        small = c.post("/v1/events", content=iter([events[:10], events[10:]]),
                       headers={"content-type": "application/json"})
    assert big.status_code == 413, big.text
    assert small.status_code == 202, small.text


@pytest.fixture(scope="module")
def echo() -> Iterator[LiveServer]:
    """A bare app behind the service's middleware, bodies allowed 0.5 s of silence."""
    app = FastAPI()

    @app.post("/echo")
    async def echo_body(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    app.add_middleware(RequestContextMiddleware, metrics=ServingMetrics(),
                       max_body_bytes=1024, body_timeout_s=0.5)
    live = LiveServer(app).start()
    yield live
    live.stop()


def _send_then_wait(port: int, head: bytes, body: bytes) -> tuple[bytes, float]:
    """Send ``head`` and ``body`` and then nothing; what comes back and after how long."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        t0 = time.monotonic()
        s.sendall(head + body)
        got = b""
        while chunk := s.recv(4096):  # NOTE: until the server closes the connection
            got += chunk
        return got, time.monotonic() - t0


@pytest.mark.parametrize("head", [
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n",
])
def test_a_body_that_stops_coming_is_408_and_the_connection_closed(echo: LiveServer,
                                                                   head: bytes) -> None:
    got, took = _send_then_wait(echo.port, head, b"{")
    assert got.startswith(b"HTTP/1.1 408"), got
    assert b"0.5 s" in got and 0.4 < took < 5
    with httpx.Client(base_url=echo.base_url, timeout=10) as c:
        assert c.post("/echo", content=b"x" * 100).json() == {"bytes": 100}
        assert c.post("/echo", content=iter([b"x" * 60, b"y" * 40])).json() == {"bytes": 100}
        assert c.post("/echo", content=b"x" * 2000).status_code == 413


def test_the_service_passes_its_body_timeout_to_the_middleware(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", API_BODY_TIMEOUT_S=7.5)
    store = build_store(settings)
    try:
        store.apply_schema()
        app = _app(settings, store)
    finally:
        store.close()
    (context,) = [m for m in app.user_middleware if m.cls is RequestContextMiddleware]
    assert context.kwargs["body_timeout_s"] == 7.5


@pytest.mark.parametrize("rate", [0.0, 1e-300, 5e-324, 0.009, 100_001.0])
def test_key_rates_outside_the_sane_range_are_422(server: LiveServer, rate: float) -> None:
    with server.client() as c:
        r = c.post("/v1/keys", json={"name": "slow", "role": "scoring",
                                     "rate_limit_per_s": rate})
    assert r.status_code == 422, r.text
    assert ["body", "rate_limit_per_s"] in [d["loc"] for d in r.json()["detail"]]


def test_slowest_key_is_told_a_bounded_wait(server: LiveServer) -> None:
    key = server.new_key("scoring", rate_limit_per_s=0.01)
    with server.client(key) as c:
        codes = [c.post("/v1/score", json=application(
            f"in-slow-{i}", "in-u", amount=100.0, device="d", place=SHANGHAI))
            for i in range(2)]
    assert codes[0].status_code == 200
    assert codes[1].status_code == 429 and int(codes[1].headers["retry-after"]) <= 100


def test_keys_per_caller_are_capped(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", MAX_KEYS_PER_CALLER=2)
    store = build_store(settings)
    store.apply_schema()
    live = LiveServer(_app(settings, store)).start()
    try:
        with live.client() as admin:
            made = [admin.post("/v1/keys", json={"name": f"cap-{i}", "role": "admin"})
                    for i in range(3)]
            assert [r.status_code for r in made] == [201, 201, 409], made[2].text
            assert "revoke one first" in made[2].json()["detail"]
            assert admin.delete(f"/v1/keys/{made[0].json()['key_id']}").status_code == 204
            again = admin.post("/v1/keys", json={"name": "cap-again", "role": "scoring"})
            assert again.status_code == 201, again.text
        # another caller has a cap of its own
        with live.client(made[1].json()["key"]) as other:
            codes = [other.post("/v1/keys", json={"name": f"cap-other-{i}",
                                                  "role": "scoring"}).status_code
                     for i in range(3)]
        assert codes == [201, 201, 409]
    finally:
        live.stop()
        store.close()


class _BuggyStore(FlakyStore):
    """A store whose shared-accounts read fails as a bug would (not as an outage)."""

    def _shared_accounts(self, user_id: str, via: Any, limit: int) -> Any:
        raise RuntimeError("a bug")


def test_an_unhandled_error_is_a_500_naming_its_request_id(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    store = build_store(settings)
    store.apply_schema()
    store.upsert_nodes("User", [{"id": "u1"}])
    live = LiveServer(_app(settings, _BuggyStore(store))).start()
    try:
        with live.client() as c:
            r = c.get("/v1/users/u1/shared-accounts", headers={"X-Request-ID": "req-bug-1"})
            after = c.get("/healthz")
    finally:
        live.stop()
        store.close()
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error", "request_id": "req-bug-1"}
    assert r.headers["x-request-id"] == "req-bug-1"
    assert after.status_code == 200
