"""`riskgraph serve` refuses to start on a promoted model trained on another feature set: one
line that says to retrain, no traceback, before anything is served."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gnn"))

from gnn_lending_world import trained  # noqa: E402

from gnn import ModelRegistry  # noqa: E402


@pytest.mark.slow
def test_serve_refuses_a_model_without_a_feature_set_in_one_line(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "models")
    version = reg.save(trained().pipeline, data_sha256="0" * 64)
    reg.promote(version)
    # as a model registered before feature sets were versioned
    path = reg.root / version / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["feature_set"]
    path.write_text(json.dumps(manifest))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGRAPH_")}
    env.update(RISKGRAPH_DATA_DIR=str(tmp_path), RISKGRAPH_PSEUDONYM_SECRET="s" * 32,
               PYTHONPATH=str(Path.cwd()), PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-m", "serving.cli", "serve", "--port", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines[-1].startswith(f"riskgraph serve: model {version} stores no feature-set "
                                "version"), lines
    assert lines[-1].endswith("retrain it (riskgraph train --world DIR --promote)")
    # nothing was started: no embedded database was created
    assert not (tmp_path / "graph.lbug").exists()


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGRAPH_")}
    env.update(RISKGRAPH_DATA_DIR=str(tmp_path), RISKGRAPH_PSEUDONYM_SECRET="s" * 32,
               PYTHONPATH=str(Path.cwd()), PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "serving.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_serve_refuses_a_store_with_clear_ips_in_one_line(tmp_path: Path) -> None:
    from graph.ladybug_store import LadybugStore

    with LadybugStore(tmp_path / "graph.lbug") as store:
        store.apply_schema()
        store.upsert_edges("LOGGED_IN_FROM", [{"src": "u1", "dst": "10.0.0.1", "event_id": "e1"}])
    proc = _cli(tmp_path, "serve", "--port", "1")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1]
    assert last.startswith("riskgraph serve: the store holds 1 IP nodes whose ids are clear "
                           "addresses"), last


def test_erase_command_is_idempotent_audited_and_names_an_unknown_user(tmp_path: Path) -> None:
    from graph.ladybug_store import LadybugStore

    with LadybugStore(tmp_path / "graph.lbug") as store:
        store.apply_schema()
        store.upsert_nodes("User", [{"id": "u1", "name_masked": "张*", "home_lat": 31.23}])
    first = _cli(tmp_path, "erase", "--user", "u1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads(first.stdout)["user_id"] == "u1"
    again = _cli(tmp_path, "erase", "--user", "u1")
    assert again.returncode == 0 and again.stdout == first.stdout
    unknown = _cli(tmp_path, "erase", "--user", "nobody")
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert unknown.stdout.strip() == ("riskgraph erase: the store holds no user 'nobody'; "
                                      "nothing erased")
    audit = [json.loads(ln) for ln in (tmp_path / "erasures.jsonl").read_text().splitlines()]
    assert [a["user_id"] for a in audit] == ["u1", "u1"]
    with LadybugStore(tmp_path / "graph.lbug") as store:
        node = store.get_node("User", "u1")
    assert node is not None and not {"name_masked", "home_lat"} & set(node.properties)
