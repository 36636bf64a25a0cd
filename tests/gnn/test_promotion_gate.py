"""The promotion gate: a new model is promoted only when it beats the rules and the promoted
model on the same validation applications by the margin; its figures go to the registry."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from gnn_lending_world import lending_graph, tiny_train_config, trained, world_dir
from sklearn.metrics import average_precision_score

from gnn import (
    ApplicationQueries,
    ModelRegistry,
    PipelineConfig,
    RiskRules,
    judge_promotion,
    train_world,
)
from gnn.data.time_split import application_targets


def test_the_figures_are_the_models_on_the_validation_applications() -> None:
    g, result = lending_graph(), trained()
    d = judge_promotion(g, result.split, result.pipeline, margin=0.0)
    val = np.flatnonzero(application_targets(g, result.split).val_choose)
    y = application_targets(g, result.split).fraud[val]
    apps = ApplicationQueries.from_graph(g, val)
    cand = result.pipeline.score_applications(g, apps).fraud_logit
    prep = result.pipeline.prepare_applications(g, apps)
    rules = RiskRules(prep.root_names).score(prep.root_x).fraud_logit
    assert (d.applications, d.positives) == (val.shape[0], int(y.sum())) and d.positives > 0
    assert d.candidate_auprc == pytest.approx(average_precision_score(y, cand))
    assert d.rules_auprc == pytest.approx(average_precision_score(y, rules))
    assert d.passed == (d.candidate_auprc >= d.rules_auprc)
    assert d.champion_version is None and d.champion_auprc is None
    assert json.loads(json.dumps(d.to_dict()))["margin"] == 0.0


def test_a_refusal_says_why_in_one_line_with_the_numbers() -> None:
    g, result = lending_graph(), trained()
    d = judge_promotion(g, result.split, result.pipeline, margin=1.0)
    assert not d.passed and "\n" not in d.reason
    assert d.reason.startswith(f"not promoted: validation AUPRC {d.candidate_auprc:.4f} is not "
                               "1.0000 above the rules'")
    assert f"{d.rules_auprc:.4f}" in d.reason and f"{d.positives:,} fraud" in d.reason
    with pytest.raises(ValueError, match="margin"):
        judge_promotion(g, result.split, result.pipeline, margin=-0.1)


def test_the_champion_is_rescored_on_the_same_applications() -> None:
    g, result = lending_graph(), trained()
    same = judge_promotion(g, result.split, result.pipeline, margin=0.01,
                           champion=result.pipeline, champion_version="gnn-champion")
    assert same.champion_auprc == pytest.approx(same.candidate_auprc)
    assert not same.passed and "champion gnn-champion's" in same.reason
    # a champion that samples differently prepares its own trees and features
    other = dataclasses.replace(result.pipeline.config, sampler_seed=5)
    champion = type(result.pipeline).from_state(
        {**result.pipeline.state(), "config": other.to_dict()},
        result.pipeline.model.state_dict())
    assert champion.config == PipelineConfig(**other.to_dict())
    d = judge_promotion(g, result.split, result.pipeline, margin=0.0, champion=champion,
                        champion_version="gnn-other")
    assert d.champion_auprc is not None and np.isfinite(d.champion_auprc)


def test_train_world_promotes_only_past_the_gate_and_stores_the_figures(
        tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "models")
    # a promoted model this code cannot load does not hold the new one back
    old = reg.save(trained().pipeline, data_sha256="0" * 64)
    manifest = reg.root / old / "manifest.json"
    m = json.loads(manifest.read_text())
    del m["feature_set"]
    manifest.write_text(json.dumps(m))
    (reg.root / "PROMOTED").write_text(old + "\n")
    lines: list[str] = []
    refused = train_world(world_dir(), reg, train_config=tiny_train_config(), promote=True,
                          margin=1.0, log=lines.append)
    assert not refused.promoted and not refused.forced and reg.promoted() == old
    assert any(line.startswith(refused.gate.reason) for line in lines)
    assert refused.gate.champion_auprc is None
    assert refused.gate.champion_note is not None and "not compared" in refused.gate.champion_note
    stored = reg.manifest(refused.version)["promotion_gate"]
    assert stored["passed"] is False and stored["forced"] is False
    assert stored["candidate_auprc"] == pytest.approx(refused.gate.candidate_auprc)
    assert stored["rules_auprc"] == pytest.approx(refused.gate.rules_auprc)
    forced = train_world(world_dir(), reg, train_config=tiny_train_config(), promote=True,
                         margin=1.0, force=True, log=lambda s: None)
    assert forced.promoted and forced.forced and reg.promoted() == forced.version
    assert reg.manifest(forced.version)["promotion_gate"]["forced"] is True
