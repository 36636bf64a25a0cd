"""`riskgraph` as a new user meets it (issue 18): a quick `--help`, no library warnings, one
line that says what to do for every known condition, the same secret rules everywhere."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graph import Pseudonymiser
from graph.ladybug_store import LadybugStore
from graph.loader import load_world
from serving.cli import COMMANDS, build_parser
from simulator import WorldConfig, simulate_world, write_world

ROOT = Path(__file__).resolve().parents[2]


def _riskgraph(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "serving.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """A new user's environment: no RISKGRAPH_ settings, an empty home, the project on the
    path (as `pip install -e .` puts it)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RISKGRAPH_") and k != "XDG_DATA_HOME"}
    env["HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_help_imports_no_command_module() -> None:
    code = ("import sys\nfrom serving.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'gnn', 'fastapi', 'serving.commands.train', "
            "'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    for name in COMMANDS:
        assert f"    {name}" in out.stdout


def test_the_command_table_names_what_the_modules_register() -> None:
    for module in sorted({m for m, _ in COMMANDS.values()}):
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(sub)
        assert set(sub.choices) == {n for n, (m, _) in COMMANDS.items() if m == module}
    assert build_parser(["load", "x"]).parse_args(["load", "x"]).command == "load"


def test_no_future_warning_from_the_model_libraries(clean_env: dict[str, str]) -> None:
    out = _riskgraph("models", "list", env={**clean_env, "PYTHONWARNINGS": "default"})
    assert out.returncode == 0, out.stderr
    assert "Warning" not in out.stderr, out.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (("rescore",), "riskgraph train --world DIR --promote"),
    (("rescore", "--chunk-size", "0"), "--chunk-size must be positive, got 0"),
    (("load", "/nonexistent-world"), "RISKGRAPH_PSEUDONYM_SECRET"),
    (("serve",), "RISKGRAPH_PSEUDONYM_SECRET"),
    (("benchmark", "tolokers", "--data", "/nonexistent/tolokers.npz"), "--data PATH"),
    (("counts",), "riskgraph load DIR"),
])
def test_known_conditions_say_what_to_do_in_one_line(
        clean_env: dict[str, str], tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    out = _riskgraph(*args, env=clean_env, cwd=tmp_path)
    assert out.returncode in (1, 2), out
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("riskgraph"), out.stderr
    assert needle in lines[0]


def test_a_missing_world_with_the_secret_set_is_one_line(clean_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    env = {**clean_env, "RISKGRAPH_PSEUDONYM_SECRET": "cli-test-secret-0123456789",
           "RISKGRAPH_DATA_DIR": str(tmp_path / "data")}
    out = _riskgraph("load", str(tmp_path / "no-world"), env=env, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (f"riskgraph load: {tmp_path / 'no-world'} holds no simulated "
                                  "world (world.json missing); make a world with `riskgraph "
                                  "simulate --out DIR`")


def test_a_store_held_by_another_process_says_so_in_one_line(clean_env: dict[str, str],
                                                             tmp_path: Path) -> None:
    """It said "start the store, or check RISKGRAPH_NEO4J_URI" while the embedded store was
    held by a running server (seen with `rotate-key` beside `riskgraph demo`)."""
    data = tmp_path / "data"
    data.mkdir()
    held = LadybugStore(data / "graph.lbug")  # this process holds the file's lock
    try:
        out = _riskgraph("schema", env={**clean_env, "RISKGRAPH_DATA_DIR": str(data)},
                         cwd=tmp_path)
    finally:
        held.close()
    assert out.returncode in (1, 2) and "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "another process holds the embedded store" in lines[0]
    assert "NEO4J_URI" not in lines[0]


def test_the_secret_is_named_where_it_is_needed() -> None:
    for command in ("serve", "load", "rotate-key"):
        parser = build_parser([command])
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        assert "RISKGRAPH_PSEUDONYM_SECRET" in (sub.choices[command].description or "")
    top = build_parser().format_help()
    assert "`load` and `serve` need RISKGRAPH_PSEUDONYM_SECRET" in " ".join(top.split())


def test_a_full_buffer_pool_names_the_setting_in_one_line(clean_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    """`load` into an embedded store whose page cache is too small (32 MiB for this world; 24
    MiB, since the schema gained the record tables of issues 14-16, fails before the first
    chunk)
    stops with one line naming RISKGRAPH_LADYBUG_BUFFER_POOL_MB and its value; raised, the
    same command loads what a one-shot load does (the store was empty: the bulk load that
    stopped kept nothing, and the next one loads it whole). `serve` on a pool too small to
    open the store says the same."""
    world = tmp_path / "world"
    write_world(simulate_world(WorldConfig(users=300, seed=7)), world)
    env = {**clean_env, "RISKGRAPH_PSEUDONYM_SECRET": "cli-test-secret-0123456789",
           "RISKGRAPH_DATA_DIR": str(tmp_path / "data"),
           # NOTE: 32: with the record tables of cases, rescoring runs and challenger scores
           # 24 MiB fails before the first chunk, where the line cannot offer a resume.
           "RISKGRAPH_LADYBUG_BUFFER_POOL_MB": "32"}
    stopped = _riskgraph("load", str(world), "--quiet", env=env, cwd=tmp_path)
    assert stopped.returncode == 2 and "Traceback" not in stopped.stderr, stopped.stderr
    lines = stopped.stderr.strip().splitlines()
    assert len(lines) == 1, stopped.stderr
    assert lines[0].startswith("riskgraph load: LadybugDB write failed: its buffer pool (32 MiB) "
                               "is full"), lines[0]
    assert "raise RISKGRAPH_LADYBUG_BUFFER_POOL_MB (now 32)" in lines[0]
    assert "run the same command again to resume" in lines[0]

    resumed = _riskgraph("load", str(world), "--quiet", cwd=tmp_path,
                         env={**env, "RISKGRAPH_LADYBUG_BUFFER_POOL_MB": "256"})
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    one_shot = _riskgraph("load", str(world), "--quiet", "--restart", cwd=tmp_path,
                          env={**env, "RISKGRAPH_LADYBUG_BUFFER_POOL_MB": "256",
                               "RISKGRAPH_DATA_DIR": str(tmp_path / "data-one-shot")})
    assert one_shot.returncode == 0, one_shot.stderr
    expected = json.loads(one_shot.stdout)
    assert report["bulk"] and report["chunks_skipped"] == 0 and expected["chunks_skipped"] == 0
    assert report["counts"] == expected["counts"] and expected["counts"]["USES"] > 0

    served = _riskgraph("serve", "--port", "1", cwd=tmp_path, timeout=120,
                        env={**env, "RISKGRAPH_LADYBUG_BUFFER_POOL_MB": "2"})
    assert served.returncode == 2 and "Traceback" not in served.stderr, served.stderr
    (line,) = served.stderr.strip().splitlines()
    assert line.startswith("riskgraph serve: cannot open LadybugDB") and "(2 MiB)" in line
    assert "raise RISKGRAPH_LADYBUG_BUFFER_POOL_MB (now 2)" in line


def test_serve_stops_when_the_buffer_pool_cannot_hold_the_export(clean_env: dict[str, str],
                                                                 tmp_path: Path) -> None:
    """A store that opens in a 32 MiB page cache but whose export at start does not fit in it
    (this 3,000-user world with the schema's record tables of issues 14-16: exports from 36
    MiB; 24 MiB no longer opens in `serve`): `serve` stops with the one
    line rather than starting with an empty graph (the embedded store is never refreshed)."""
    world = tmp_path / "world"
    write_world(simulate_world(WorldConfig(users=3000, seed=7)), world)
    secret = "cli-test-secret-0123456789"
    (tmp_path / "data").mkdir()
    with LadybugStore(tmp_path / "data" / "graph.lbug", buffer_pool_bytes=512 * 2**20) as store:
        load_world(store, world, Pseudonymiser(secret.encode()), progress=False)
    env = {**clean_env, "RISKGRAPH_PSEUDONYM_SECRET": secret,
           "RISKGRAPH_DATA_DIR": str(tmp_path / "data"),
           "RISKGRAPH_LADYBUG_BUFFER_POOL_MB": "32"}
    served = _riskgraph("serve", "--port", "1", cwd=tmp_path, timeout=120, env=env)
    assert served.returncode == 2 and "Traceback" not in served.stderr, served.stderr
    (line,) = served.stderr.strip().splitlines()
    assert line == ("riskgraph serve: LadybugDB read failed: its buffer pool (32 MiB) is full "
                    "and no page in it could be freed; raise RISKGRAPH_LADYBUG_BUFFER_POOL_MB "
                    "(now 32), e.g. to 64")


def test_rings_refresh_stores_the_rings_and_list_ranks_them(tmp_path: Path,
                                                            clean_env: dict[str, str]) -> None:
    """`riskgraph rings refresh` then `rings list` on the embedded store: two groups of
    accounts sharing a device and a phone, one with a confirmed fraud."""
    data = tmp_path / "data"
    data.mkdir()
    with LadybugStore(data / "graph.lbug") as store:
        store.apply_schema()
        users = [f"g{g}u{i}" for g in range(2) for i in range(4)]
        store.upsert_nodes("User", [{"id": u} for u in users] + [
            {"id": "g1u0", "fraud_label": "fraud"}])
        store.upsert_edges("USES", [{"src": u, "dst": f"D{u[1]}"} for u in users])
        store.upsert_edges("HAS_PHONE", [{"src": u, "dst": f"P{u[1]}"} for u in users])
        store.upsert_edges("LIVES_AT", [{"src": f"c{i}{w}", "dst": f"A{i}"}
                                        for i in range(40) for w in "mf"])
    env = {**clean_env, "RISKGRAPH_DATA_DIR": str(data)}
    done = _riskgraph("rings", "refresh", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rings"] == 2
    listed = _riskgraph("rings", "list", "--limit", "5", env=env)
    assert listed.returncode == 0, listed.stderr
    rings = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["size"], r["risk"], r["shared_entities"]) for r in rings] == [
        (4, 0.25, 2), (4, 0.0, 2)]
    with LadybugStore(data / "graph.lbug", read_only=True) as store:
        assert store.get_node("User", "g1u3").properties["ring_id"] == rings[0]["ring_id"]
