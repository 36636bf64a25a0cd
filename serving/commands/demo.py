"""`riskgraph demo`: the README's main job on the embedded store, from nothing to a verdict.

Simulates a small world, loads it into LadybugDB, trains and promotes a model, creates a scoring
key, starts the API on loopback and scores two example applications through real HTTP: an
ordinary one from a known user, and a textbook account takeover of the same user.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shlex
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import uvicorn

from gnn import ModelRegistry, PipelineConfig, RiskTrainConfig, train_world
from graph.loader import load_world
from graph.simulator import WorldConfig, simulate_world, write_world
from serving import keys
from serving.commands.serve import build_app
from serving.settings import ConfigurationError, Settings, get_settings
from serving.stores import build_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="simulate, load, train, serve on the embedded store and "
                       "score an example application")
    p.add_argument("--users", type=int, default=3000, help="users in the world (default 3000)")
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


def _step(name: str, started: float) -> None:
    print(f"[demo] {name} ({time.perf_counter() - started:.1f}s)", file=sys.stderr, flush=True)


def _demo(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    settings = _demo_settings(args.data_dir, args.port)
    world_dir = args.data_dir / "world"
    if not (world_dir / "world.json").exists():
        world = simulate_world(WorldConfig(users=args.users, seed=args.seed, days=args.days))
        write_world(world, world_dir)
    _step(f"world of {args.users} users in {world_dir}", t0)

    pseudonymiser = settings.pseudonymiser()
    with build_store(settings) as store:
        store.apply_schema()
        load_world(store, world_dir, pseudonymiser, progress=False)
        _step(f"loaded into LadybugDB at {settings.ladybug_path}", t0)
        registry = ModelRegistry(settings.DATA_DIR / "models")
        trained = train_world(
            world_dir, registry, pipeline_config=PipelineConfig(sampler_seed=args.seed),
            train_config=RiskTrainConfig(epochs=6, patience=2, user_seeds=2000, seed=args.seed,
                                         max_minutes=3.0),
            pseudonymiser=pseudonymiser, promote=True,
        )
        _step(f"trained and promoted model {trained.version}", t0)
        _, api_key = keys.create_key(store, "demo", "scoring")
        app = build_app(settings, store)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=args.port,
                                               log_config=None, access_log=False))
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{args.port}"
        _wait_ready(base, server)
        _step(f"API ready on {base}", t0)
        try:
            for title, body in _examples(world_dir):
                _show(base, api_key, title, body)
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


def _examples(world_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """An ordinary application of a long-standing user, then the same user taken over."""
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
    last = max(by_user[user["user_id"]], key=lambda r: r["ts"])
    now = datetime.now(timezone.utc).replace(microsecond=0)
    # NOTE: ids carry the time so that a rerun scores anew instead of answering 409.
    run = now.strftime("%Y%m%d%H%M%S")
    ordinary = {
        "application_id": f"demo-{run}-{user['user_id']}-1", "product": "bnpl", "amount": 299.0,
        "currency": "CNY", "user_id": user["user_id"], "device_id": last["device_serial"],
        "ip": last["ip"], "geo": {"lat": last["lat"], "lon": last["lon"]},
        "merchant_id": merchant, "applied_at": now.isoformat(),
    }
    far = {"lat": 20.0442, "lon": 110.1999, "city": "Haikou"}
    if abs(last["lat"] - far["lat"]) < 5:
        far = {"lat": 45.8038, "lon": 126.5350, "city": "Harbin"}
    takeover = {
        **ordinary, "application_id": f"demo-{run}-{user['user_id']}-2", "product": "cash_loan",
        "amount": 40000.0, "merchant_id": None, "device_id": f"NEW-{user['user_id']}-DEVICE", "ip": "203.0.113.77",
        "geo": far,
    }
    return [("an ordinary BNPL purchase", ordinary),
            ("the same user: new device, far city, large cash loan", takeover)]


def _show(base: str, api_key: str, title: str, body: dict[str, Any]) -> None:
    payload = json.dumps(body, ensure_ascii=False)
    print(f"\n# {title}")
    print(f"curl -s -X POST {base}/v1/score -H 'Content-Type: application/json' "
          f"-H 'X-API-Key: {api_key}' -d {shlex.quote(payload)}")
    response = httpx.post(f"{base}/v1/score", json=body, headers={"X-API-Key": api_key},
                          timeout=30)
    print(json.dumps(response.json(), indent=2, ensure_ascii=False))
