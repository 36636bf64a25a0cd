"""`riskgraph demo`: the README's main job on the embedded store, from nothing to a verdict.

Simulates a small world, loads it into LadybugDB, trains a model and promotes it if it passes
the promotion gate (it must beat the rules and the promoted model on validation), creates a
scoring and an investigator key, starts the API on loopback and, through real HTTP:

1. scores an ordinary application of a known user, then a textbook account takeover of the
   same user (a new device in a far city asking for a large cash loan), each after its session
   login (``POST /v1/events``);
2. plays a live ring: brand-new accounts apply one after another from one new device, phone,
   address and IP; after the third an investigator confirms the first as fraud
   (``POST /v1/labels``); the model sees each accepted write at once, so the ring's
   probabilities rise as it grows and jump with the label. Two isolated new accounts apply too,
   for comparison.

The demo's world is richer in fraud than the default one (:func:`demo_world_config`), so that a
model trained in seconds on a few thousand users has enough fraud to learn from and to be
judged on. Its clock is the world's: the examples are applied an hour after the world's last
event, each after its session login (every application of the world follows one), so the model
sees the applicant as the world left it.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shlex
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import uvicorn

from gnn import ModelRegistry, PipelineConfig, RiskTrainConfig, train_world
from graph.loader import load_world
from simulator import (
    AccountTakeoverConfig,
    WorldConfig,
    read_metadata,
    simulate_world,
    write_world,
)
from serving import keys
from serving.commands.serve import build_app, check_promoted_model
from serving.settings import ConfigurationError, Settings, get_settings
from serving.stores import build_store

DEMO_FRAUD_RATE = 0.06
"""Share of fraud applications in the demo's world (the default world has 1.5 %)."""
DEMO_PATTERN_MIX = {
    "fraud_ring": 0.15, "synthetic_identity": 0.10, "account_takeover": 0.40,
    "merchant_collusion": 0.10, "sales_inflation": 0.02, "intermediary_packaging": 0.08,
    "device_farm": 0.15,
}
"""The demo shows a takeover, so takeovers are 40 % of its fraud (12 % by default)."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="simulate, load, train, serve on the embedded store and "
                       "score an example application")
    p.add_argument("--users", type=int, default=8000, help="users in the world (default 8000)")
    p.add_argument("--days", type=int, default=180, help="days simulated (default 180; "
                   "shorter worlds leave too few matured loans to fit the default head)")
    p.add_argument("--seed", type=int, default=1, help="seed of the world and model (default 1)")
    p.add_argument("--data-dir", type=Path, default=Path("data/demo"),
                   help="where the demo keeps its state (default data/demo)")
    p.add_argument("--port", type=int, default=8000, help="API port on 127.0.0.1 (default 8000)")
    p.add_argument("--once", action="store_true",
                   help="exit after printing the verdicts instead of serving on")
    p.set_defaults(func=_demo)


def _demo_settings(data_dir: Path, port: int) -> Settings:
    """The configured settings on the embedded store under ``data_dir``.

    NOTE: a demo without a configured secret gets a random one in ``data_dir`` (mode 0600);
    a real deployment sets RISKGRAPH_PSEUDONYM_SECRET and `serve` refuses to start without it.
    """
    base = get_settings()
    update: dict[str, Any] = {"DATA_DIR": data_dir, "NEO4J_URI": None, "LADYBUG_PATH": None,
                              "SPOOL_DIR": None, "API_HOST": "127.0.0.1", "API_PORT": port}
    try:
        base.pseudonymiser()
    except ConfigurationError:
        key_file = data_dir / "pseudonym.key"
        if not key_file.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        update.update(PSEUDONYM_SECRET=None, PSEUDONYM_SECRET_FILE=key_file)
    return base.model_copy(update=update)


def demo_world_config(users: int, seed: int, days: int) -> WorldConfig:
    """The demo's world: the default one with more fraud, more of it account takeover.

    NOTE: the default world (1.5 % fraud) leaves a 3,000-user demo one fraud application to
    validate on, and a model that learns nothing (validation AUPRC 0.005); its takeovers are
    crews sharing a few devices, so a model learns "a device shared by several victims" rather
    than "a new device in a far city", which is the demo's example. Here each takeover is a
    lone attacker on a device of its own who applies within hours of logging in.
    """
    return WorldConfig(
        users=users, seed=seed, days=days, fraud_rate=DEMO_FRAUD_RATE,
        pattern_mix=dict(DEMO_PATTERN_MIX),
        account_takeover=AccountTakeoverConfig(victims_min=1, victims_max=1,
                                               crew_devices_max=1, dwell_prob=0.0))


def _step(name: str, started: float) -> None:
    print(f"[demo] {name} ({time.perf_counter() - started:.1f}s)", file=sys.stderr, flush=True)


def _demo(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    settings = _demo_settings(args.data_dir, args.port)
    world_dir = args.data_dir / "world"
    if not (world_dir / "world.json").exists():
        world = simulate_world(demo_world_config(args.users, args.seed, args.days))
        write_world(world, world_dir)
    _step(f"world of {args.users} users in {world_dir}", t0)

    pseudonymiser = settings.pseudonymiser()
    with build_store(settings) as store:
        store.apply_schema()
        load_world(store, world_dir, pseudonymiser, progress=False)
        _step(f"loaded into LadybugDB at {settings.ladybug_path}", t0)
        registry = ModelRegistry(settings.models_dir)
        trained = train_world(
            world_dir, registry, pipeline_config=PipelineConfig(sampler_seed=args.seed),
            train_config=RiskTrainConfig(epochs=6, patience=2, user_seeds=2000, seed=args.seed,
                                         max_minutes=3.0),
            pseudonymiser=pseudonymiser, promote=True, margin=settings.PROMOTION_MARGIN,
        )
        _step(f"trained model {trained.version}: "
              + ("promoted" if trained.promoted else "kept the promoted model"), t0)
        print(f"[demo] {trained.gate.reason}", file=sys.stderr, flush=True)
        check_promoted_model(settings)
        examples = _examples(world_dir)
        _, api_key = keys.create_key(store, "demo", "scoring")
        _, investigator_key = keys.create_key(store, "demo-investigator", "investigator")
        app = build_app(settings, store)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=args.port,
                                               log_config=None, access_log=False))
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{args.port}"
        _wait_ready(base, server)
        _step(f"API ready on {base}", t0)
        try:
            for ex in examples:
                _post(base, api_key, "/v1/events", {"events": [ex.login]})
                _show(base, api_key, ex)
            _ring(base, api_key, investigator_key, ring_steps(world_dir))
            if not args.once:
                print(f"\nServing on {base} (OpenAPI at {base}/docs); Ctrl-C to stop.")
                while thread.is_alive():
                    thread.join(timeout=1.0)
        except KeyboardInterrupt:
            pass
        finally:
            server.should_exit = True
            thread.join(timeout=15)
    return 0


def _wait_ready(base: str, server: uvicorn.Server, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.started:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    raise SystemExit(f"riskgraph demo: the API at {base} was not ready in {timeout_s:.0f}s")


@dataclass(frozen=True)
class _Example:
    """An example application with the session login that precedes it."""

    title: str
    login: dict[str, Any]
    body: dict[str, Any]


def _examples(world_dir: Path) -> list[_Example]:
    """An ordinary application of a long-standing user, then the same user taken over, on the
    world's clock (an hour after its last event)."""
    users = pq.read_table(world_dir / "users.parquet").to_pylist()
    logins = pq.read_table(world_dir / "logins.parquet",
                           columns=["user_id", "ts", "device_serial", "ip", "lat", "lon"])
    truth = {r["user_id"]: r for r in pq.read_table(world_dir / "truth_users.parquet").to_pylist()}
    by_user: dict[str, list[dict[str, Any]]] = {}
    for row in logins.to_pylist():
        by_user.setdefault(row["user_id"], []).append(row)
    merchant = min(r["merchant_id"] for r in
                   pq.read_table(world_dir / "truth_merchants.parquet").to_pylist()
                   if not r["fraud"])
    honest = [u for u in users if not truth[u["user_id"]]["fraud"]
              and len(by_user.get(u["user_id"], ())) >= 5]
    user = min(honest, key=lambda u: (u["created_at"], u["user_id"]))
    uid = user["user_id"]
    last = max(by_user[uid], key=lambda r: r["ts"])
    end_ts = read_metadata(world_dir)["end_ts"]
    assert isinstance(end_ts, int)
    t = end_ts + 3600
    # NOTE: application ids carry the wall-clock time so that a rerun scores anew instead of
    # answering 409; login event ids do not, so that a rerun does not log in twice.
    run = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    lat, lon, city = 20.0442, 110.1999, "Haikou"
    if abs(last["lat"] - lat) < 5:
        lat, lon, city = 45.8038, 126.5350, "Harbin"
    far_ip = _mobile_ip_near(world_dir, lat, lon)
    device = f"NEW-{uid}-DEVICE"

    def login(name: str, ts: int, device_id: str, ip: str, lat: float,
              lon: float) -> dict[str, Any]:
        return {"type": "login", "event_id": f"demo-login-{uid}-{name}", "user_id": uid,
                "ts": _iso(ts), "device_id": device_id, "ip": ip, "lat": lat, "lon": lon}

    ordinary = {
        "application_id": f"demo-{run}-{uid}-1", "product": "bnpl", "amount": 299.0,
        "term_months": 3, "currency": "CNY", "user_id": uid, "device_id": last["device_serial"],
        "ip": last["ip"], "geo": {"lat": last["lat"], "lon": last["lon"]},
        "merchant_id": merchant, "applied_at": _iso(t),
    }
    takeover = {
        **ordinary, "application_id": f"demo-{run}-{uid}-2", "product": "cash_loan",
        "amount": 40000.0, "term_months": 12, "merchant_id": None, "device_id": device, "ip": far_ip,
        "geo": {"lat": lat, "lon": lon, "city": city},
        "applied_at": _iso(t + 1800),
    }
    return [
        _Example("an ordinary BNPL purchase",
                 login("usual", t - 300, last["device_serial"], last["ip"], last["lat"],
                       last["lon"]), ordinary),
        _Example(f"the same user: new device, {city}, large cash loan",
                 login("takeover", t + 1500, device, far_ip, lat, lon), takeover),
    ]


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _mobile_ip_near(world_dir: Path, lat: float, lon: float) -> str:
    """The world's mobile-network IP closest to a place (the attacker's carrier there)."""
    ips = pq.read_table(world_dir / "ips.parquet", columns=["ip", "kind", "lat", "lon"])
    rows = [r for r in ips.to_pylist() if r["kind"] == "mobile"]
    best = min(rows, key=lambda r: ((r["lat"] - lat) ** 2 + (r["lon"] - lon) ** 2, r["ip"]))
    return str(best["ip"])


def _show(base: str, api_key: str, ex: _Example) -> None:
    payload = json.dumps(ex.body, ensure_ascii=False)
    print(f"\n# {ex.title}")
    print(f"# after its session login: {json.dumps(ex.login, ensure_ascii=False)}")
    print(f"curl -s -X POST {base}/v1/score -H 'Content-Type: application/json' "
          f"-H 'X-API-Key: {api_key}' -d {shlex.quote(payload)}")
    response = httpx.post(f"{base}/v1/score", json=ex.body, headers={"X-API-Key": api_key},
                          timeout=30)
    print(json.dumps(response.json(), indent=2, ensure_ascii=False))


def _post(base: str, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{base}{path}", json=body, headers={"X-API-Key": key}, timeout=30)
    if r.status_code >= 300:
        raise SystemExit(f"riskgraph demo: {path} answered {r.status_code}: {r.text[:300]}")
    return r.json()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class RingStep:
    """One step of the live ring: a login then an application, or a label."""

    kind: str
    who: str
    body: dict[str, Any]
    login: dict[str, Any] | None = None


def ring_steps(world_dir: Path, *, members: int = 6, label_after: int = 3) -> list[RingStep]:
    """The live ring of the demo (module docstring), on the world's clock: two isolated new
    accounts, then ``members`` new accounts on one new device, phone, address and IP applying
    two minutes apart, the first confirmed fraud after the ``label_after``-th has applied.

    Ids carry the wall-clock time, so that a rerun plays a new ring.
    """
    end_ts = read_metadata(world_dir)["end_ts"]
    assert isinstance(end_ts, int)
    t = end_ts + 7200
    run = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    lat, lon, city = 23.1291, 113.2644, "Guangzhou"
    # NOTE: IPs the world has never seen (carrier-grade NAT range), as the devices, phones and
    # addresses are new: what differs between the ring and the isolated accounts is sharing.
    ring_ip = f"100.64.{int(run[-4:-2])}.{int(run[-2:])}"
    steps: list[RingStep] = []

    def apply(who: str, user: str, i: int, device: str, phone: str, address: str, ip: str,
              ts: int) -> None:
        login = {"type": "login", "event_id": f"demo-{run}-{user}-login", "user_id": user,
                 "ts": _iso(ts - 120), "device_id": device, "ip": ip, "lat": lat, "lon": lon}
        body = {"application_id": f"demo-{run}-{user}-app", "product": "cash_loan",
                "amount": 3000.0 + 100 * i, "term_months": 6, "currency": "CNY",
                "user_id": user,
                "device_id": device, "ip": ip, "geo": {"lat": lat, "lon": lon, "city": city},
                "phone": phone, "address": address, "applied_at": _iso(ts)}
        steps.append(RingStep("apply", who, body, login))

    for i in range(2):
        user = f"demo-{run}-alone-{i}"
        apply(f"isolated new account {i + 1}", user, i, f"ALONE-{run}-{i}",
              f"+86 137 {run[-8:-4]} {1000 + i}", f"广州市天河区独立路{run[-6:]}号{i}室",
              f"100.65.{int(run[-4:-2])}.{i}", t + 60 * i)
    device, phone = f"RING-{run}-DEVICE", f"+86 139 {run[-8:-4]} {run[-4:]}"
    address = f"广州市天河区环路{run[-6:]}号"
    first = f"demo-{run}-ring-0"
    for i in range(members):
        ts = t + 600 + 120 * i
        if i == label_after:
            steps.append(RingStep("label", "investigator confirms ring member 1", {"labels": [{
                "event_id": f"demo-{run}-ring-label", "entity_type": "User",
                "entity_id": first, "kind": "fraud", "at": _iso(ts - 30),
                "source": "investigator:demo"}]}))
        apply(f"ring member {i + 1}", f"demo-{run}-ring-{i}", i, device, phone, address,
              ring_ip, ts)
    return steps


def _ring(base: str, api_key: str, investigator_key: str, steps: list[RingStep]) -> None:
    print("\n# a live ring: brand-new accounts on one new device, phone and address")
    print(f"{'who':<38} {'fraud p':>8}  {'decision':<8} main reason")
    for step in steps:
        if step.kind == "label":
            _post(base, investigator_key, "/v1/labels", step.body)
            print(f"-- {step.who} (POST /v1/labels)")
            continue
        assert step.login is not None
        _post(base, api_key, "/v1/events", {"events": [step.login]})
        v = _post(base, api_key, "/v1/score", step.body)
        reason = v["reasons"][0]["code"] if v["reasons"] else "-"
        print(f"{step.who:<38} {v['fraud_probability']:>8.4f}  {v['decision']:<8} {reason}")
