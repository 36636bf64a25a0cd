"""The README's main job: `riskgraph demo` from an empty directory to two verdicts over HTTP."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from serving.policy import load_policy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_demo_scores_an_ordinary_application_and_flags_the_takeover(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGRAPH_")}
    proc = subprocess.run(
        [sys.executable, "-m", "serving.cli", "demo", "--once",
         "--data-dir", str(tmp_path / "demo"), "--port", str(_free_port())],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(Path.cwd())},
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # each verdict is an indented JSON object after its curl line
    verdicts = [json.loads(m) for m in re.findall(r"^\{\n.*?^\}$", proc.stdout, re.S | re.M)]
    assert len(verdicts) == 2, proc.stdout[-3000:]
    ordinary, takeover = verdicts
    assert ordinary["decision"] in ("approve", "review")
    assert takeover["decision"] in ("review", "decline")
    # the demo's own model passed the promotion gate, scores both, and sends the takeover to
    # review by its fraud probability alone
    assert "promotable: validation AUPRC" in proc.stderr, proc.stderr[-3000:]
    assert takeover["model_version"].startswith("gnn-"), takeover["model_version"]
    review = load_policy().product("cash_loan").review_fraud
    assert takeover["fraud_probability"] >= review, takeover
    assert ordinary["fraud_probability"] < takeover["fraud_probability"] / 5
    # an approval lists what spoke for the applicant too: the scorer's negative weights
    if ordinary["decision"] == "approve":
        assert any((r["weight"] or 0) < 0 for r in ordinary["reasons"]), ordinary["reasons"]
    codes = {r["code"] for r in takeover["reasons"]}
    assert any("LOCATION" in c for c in codes), codes
    assert any("AMOUNT" in c for c in codes), codes
    # the live ring: each member sees the ones before it, and the label on the first
    ring = {m.group(1): float(m.group(2)) for m in re.finditer(
        r"^(isolated new account \d|ring member \d)\s+([0-9.]+)\s", proc.stdout, re.M)}
    assert len(ring) == 8, proc.stdout[-3000:]
    assert ring["ring member 1"] < ring["ring member 2"] < ring["ring member 3"]
    assert ring["ring member 3"] > max(ring["isolated new account 1"],
                                       ring["isolated new account 2"])
    assert ring["ring member 4"] > ring["ring member 3"] and ring["ring member 4"] >= review
    assert (tmp_path / "demo" / "pseudonym.key").stat().st_mode & 0o077 == 0
    assert "curl -s -X POST" in proc.stdout
