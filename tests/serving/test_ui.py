"""The investigators' page in a real browser (Playwright driving Debian's chromium) against a
live server over a simulated world with a planted ring, on both stores: open the queue, open
the ring's case, see the ring's members on the graph, confirm the case; then the labels are in
the store and the next member's verdict names them. Screenshots go to docs/img/ (docs/UI.md).

A missing browser or driver fails the test: CI installs both (scripts/test.sh)."""

from __future__ import annotations

import functools
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from serving_world import SECRET, LiveServer, make_settings

from graph import GraphStore, Pseudonymiser
from graph.loader import load_world
from serving.api import create_app
from serving.scorers import load_live_graph, load_scorer
from simulator import WorldConfig, simulate_world, write_world

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"
RING_SIZE = 5


@functools.lru_cache(maxsize=1)
def _world_dir() -> Path:
    out = Path(tempfile.mkdtemp(prefix="rg-ui-world-"))
    write_world(simulate_world(WorldConfig(users=300, seed=11)), out)
    return out


@pytest.fixture(scope="module", autouse=True)
def _remove_world() -> Iterator[None]:
    yield
    if _world_dir.cache_info().currsize:
        shutil.rmtree(_world_dir(), ignore_errors=True)
        _world_dir.cache_clear()


@pytest.fixture
def server(graph_store: GraphStore, tmp_path: Path) -> Iterator[LiveServer]:
    load_world(graph_store, _world_dir(), Pseudonymiser(SECRET.encode()), progress=False,
               target=f"{graph_store.backend}:{tmp_path}")
    settings = make_settings(tmp_path / "data", graph_store.backend)
    graph = load_live_graph(settings, graph_store)
    live = LiveServer(create_app(settings, graph_store, load_scorer(settings, graph, graph_store),
                                 live_graph=graph)).start()
    yield live
    live.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    if not CHROMIUM.exists():
        pytest.fail(f"no browser at {CHROMIUM}: apt-get install -y chromium (scripts/test.sh "
                    "does it in CI)", pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


class _Ring:
    """New accounts on one device, phone and address, put in one ring by the ring refresh
    (the ``ring_id`` it writes on their users), applying for cash loans in a burst."""

    def __init__(self, store: GraphStore, server: LiveServer) -> None:
        self.run = uuid.uuid4().hex[:6]
        self.ring_id = f"r-{self.run}"
        self.server = server
        self.users = [f"ring-{self.run}-{i}" for i in range(RING_SIZE)]
        self.device = f"FARM-{self.run}"
        created = int((datetime.now(UTC) - timedelta(days=2)).timestamp())
        store.upsert_nodes("User", [{"id": u, "created_at": created, "ring_id": self.ring_id,
                                     "home_city": "Guangzhou"} for u in self.users])

    def apply(self, i: int, at: datetime) -> dict[str, Any]:
        body = {"application_id": f"app-{self.users[i]}", "product": "cash_loan",
                "amount": 4000.0 + 500 * i, "currency": "CNY", "user_id": self.users[i],
                "device_id": self.device, "ip": "10.77.0.1",
                "geo": {"lat": 23.13, "lon": 113.26, "city": "Guangzhou"},
                "phone": "+86 139 0000 0001", "address": f"环路{self.run}号",
                "applied_at": at.isoformat()}
        with self.server.client() as c:
            r = c.post("/v1/score", json=body)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def _shot(page: Page, name: str, backend: str) -> None:
    # NOTE: the LadybugDB run's pictures are the ones docs/UI.md shows; the Neo4j run's go
    # beside them under their backend's name, so a reader can compare.
    SHOTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if backend == "ladybug" else f"-{backend}"
    page.screenshot(path=str(SHOTS / f"ui-{name}{suffix}.png"), full_page=True)


def test_an_investigator_confirms_a_ring_in_the_browser(
        graph_store: GraphStore, server: LiveServer, page: Page) -> None:
    ring = _Ring(graph_store, server)
    investigator = server.new_key("investigator", name="alice")
    with server.client(investigator) as c:
        r = c.post("/v1/watchlist", json={"entity_type": "Device", "value": ring.device,
                                          "reason": "device farm reported by a merchant"})
        assert r.status_code == 201, r.text
    t0 = datetime.now(UTC) - timedelta(hours=1)
    verdicts = [ring.apply(i, t0 + timedelta(minutes=2 * i)) for i in range(RING_SIZE - 1)]
    assert [v["decision"] for v in verdicts] == ["review"] * (RING_SIZE - 1), verdicts
    server.drain()
    case_id = f"ring:{ring.ring_id}:1"

    page.goto(f"{server.base_url}/ui")
    page.get_by_test_id("api-key").fill(investigator)
    page.get_by_test_id("key-save").click()
    row = page.locator(f'[data-testid="case-row"][data-case-id="{case_id}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text(f"{RING_SIZE - 1} verdicts")
    _shot(page, "queue", graph_store.backend)

    row.click()
    expect(page.get_by_test_id("case-title")).to_have_text(case_id)
    expect(page.get_by_test_id("verdicts").locator("tbody tr")).to_have_count(RING_SIZE - 1)
    expect(page.get_by_test_id("verdicts")).to_contain_text("WATCHLISTED_DEVICE")
    graph = page.get_by_test_id("graph")
    for user in ring.users[:-1]:
        expect(graph.locator(f'[data-label="User"][data-id="{user}"]')).to_be_visible()
    # the shared device ties them: a click on it tells what it is
    (device_id,) = {r["evidence"]["entity_id"] for v in verdicts for r in v["reasons"]
                    if r["code"] == "WATCHLISTED_DEVICE"}
    graph.locator(f'[data-label="Device"][data-id="{device_id}"]').click()
    expect(page.get_by_test_id("node-info")).to_contain_text(device_id)
    _shot(page, "case", graph_store.backend)

    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("status")).to_contain_text("closed as confirmed_fraud")
    expect(page.get_by_test_id("case-meta")).to_contain_text("disposition confirmed_fraud")
    for user in ring.users[:-1]:
        expect(graph.locator(f'[data-label="User"][data-id="{user}"]')).to_have_attribute(
            "data-fraud-label", "fraud")
    _shot(page, "confirmed", graph_store.backend)

    server.drain()
    labelled = graph_store.get_nodes("User", ring.users)
    assert {u: n.properties.get("fraud_label") for u, n in labelled.items()} == {
        **{u: "fraud" for u in ring.users[:-1]}, ring.users[-1]: None}
    assert all(labelled[u].properties["fraud_label_source"] == f"investigator:"
               f"{investigator.split('_')[1]}" for u in ring.users[:-1])
    # the next member, applying now, is told why: the accounts just confirmed
    nxt = ring.apply(RING_SIZE - 1, datetime.now(UTC) + timedelta(seconds=2))
    named = [r for r in nxt["reasons"] if r["code"] == "SHARED_ENTITY_FRAUD"]
    assert named, [(r["code"], r["message_en"]) for r in nxt["reasons"]]
    assert max(int(r["message_en"].rsplit(", ", 1)[1].split()[0]) for r in named) == \
        RING_SIZE - 1
    assert nxt["decision"] != "approve"
