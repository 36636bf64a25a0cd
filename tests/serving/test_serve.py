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
