"""`riskgraph evaluate`: one world beside its model, several fresh worlds into a work directory;
the repository's docs only when asked; the development seed never."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gnn import DEVELOPMENT_SEED, ModelRegistry
from gnn.train.risk_evaluation import MODELS
from serving.cli import main
from serving.settings import get_settings
from tests.gnn.gnn_lending_world import lending_graph, trained, world_dir


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean environment, DATA_DIR under ``tmp_path``, working directory ``tmp_path``."""
    for key in list(os.environ):
        if key.startswith("RISKGRAPH_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RISKGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_the_development_seed_and_lone_seeds_are_refused(
        cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = cli_env / "work"
    assert main(["evaluate", "--seeds", f"11,{DEVELOPMENT_SEED},12", "--work-dir",
                 str(work)]) == 2
    err = capsys.readouterr().err
    assert f"seed {DEVELOPMENT_SEED} is the development seed" in err
    assert "Traceback" not in err
    assert main(["evaluate", "--seeds", "11", "--work-dir", str(work)]) == 2
    assert "at least two seeds" in capsys.readouterr().err
    assert main(["evaluate", "--seeds", "11,12"]) == 2
    assert "needs --work-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "--seeds", "11,x", "--work-dir", str(work)])
    assert not work.exists()


def test_one_world_is_reported_beside_its_model_unless_the_docs_are_asked_for(
        cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (cli_env / "docs").mkdir()
    assert main(["evaluate", "--world", str(world_dir())]) == 2
    assert "no promoted model" in capsys.readouterr().err
    result = trained()
    registry = ModelRegistry(cli_env / "data" / "models")
    version = registry.save(result.pipeline, data_sha256=lending_graph().fingerprint,
                            extra={"split": result.split.to_dict()})
    registry.promote(version)

    assert main(["evaluate", "--world", str(world_dir())]) == 0
    assert not (cli_env / "docs" / "EVALUATION.md").exists()
    beside = registry.root / version
    assert "| Deployed (HeteroRiskGNN + trees blend) |" in (beside / "EVALUATION.md").read_text()
    assert (beside / "img" / "pr_curves.png").exists()
    assert f"report: {beside / 'EVALUATION.md'}" in capsys.readouterr().out

    assert main(["evaluate", "--world", str(world_dir()), "--write-docs"]) == 0
    text = (cli_env / "docs" / "EVALUATION.md").read_text()
    assert "--write-docs" in text and "](img/pr_curves.png)" in text
    assert (cli_env / "docs" / "img" / "reliability.png").exists()


@pytest.mark.slow
def test_evaluate_seeds_end_to_end_resumes_and_writes_the_docs_only_when_asked(
        cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = cli_env / "work"
    # NOTE: a high fraud rate so that worlds this small hold fraud labels in every period
    argv = ["evaluate", "--seeds", "11,12", "--users", "2000", "--fraud-rate", "0.05",
            "--work-dir", str(work), "--resamples", "100"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "[1/2 seed 11] simulating 2000 users" in err and "[2/2 seed 12] training" in err
    for seed in (11, 12):
        d = work / f"seed-{seed}"
        assert (d / "world" / "world.json").exists()
        assert len(ModelRegistry(d / "models").versions()) == 1
        result = json.loads((d / "evaluation.json").read_text())
        assert result["seed"] == seed and result["world_config"]["users"] == 2000
        assert result["world_config"]["seed"] == seed
        test = result["test"]
        assert len(test["application_id"]) == result["report"]["info"]["test_applications"]
        assert test["fraud_models"] == list(MODELS)
        assert all(len(s) == len(test["fraud"]) for s in test["fraud_scores"].values())
        assert set(result["seconds"]) == {"simulate", "train", "evaluate"}
    summary = json.loads((work / "summary.json").read_text())["summary"]
    assert summary["seeds"] == [11, 12] and summary["resamples"] == 100
    text = (work / "EVALUATION.md").read_text()
    assert "# Evaluation over 2 unseen worlds" in text and "seeds 11, 12" in text
    assert "## Where Deployed (HeteroRiskGNN + trees blend) does not lead" in text
    assert "The strongest baseline is **" in text
    # the credit targets per world, each with what sampling alone allows a calibrated model
    assert text.count("Sampling alone: a perfectly calibrated model") == 2
    assert (work / "img" / "seeds_fraud_auprc.png").stat().st_size > 1000
    assert (work / "img" / "seeds_reliability.png").exists()
    assert not (cli_env / "docs").exists()

    # again, from a checkout's root with --write-docs: nothing is redone, the docs are written
    (cli_env / "docs").mkdir()
    assert main(argv + ["--write-docs"]) == 0
    err = capsys.readouterr().err
    assert err.count("done before") == 2 and "training" not in err
    assert "simulating" not in err
    again = json.loads((work / "summary.json").read_text())["summary"]
    assert again == summary
    docs = (cli_env / "docs" / "EVALUATION.md").read_text()
    assert "--write-docs" in docs and "](img/seeds_fraud_auprc.png)" in docs
    assert (cli_env / "docs" / "img" / "seeds_fraud_auprc.png").exists()

    # the same work directory with other world parameters is refused, not mixed
    assert main(["evaluate", "--seeds", "11,12", "--users", "1000", "--work-dir",
                 str(work)]) == 2
    assert "other parameters" in capsys.readouterr().err
