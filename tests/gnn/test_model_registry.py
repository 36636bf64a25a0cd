"""`ModelRegistry`: a saved model reloads and scores identically; list, show, promote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from gnn_lending_world import lending_graph, trained

import gnn.features.feature_set as feature_set
from gnn import (
    ApplicationQueries,
    FeatureSetMismatchError,
    ModelNotFoundError,
    ModelRegistry,
    RegistryError,
    current_feature_set,
)
from gnn.features.feature_set import current_feature_names


def test_a_saved_model_reloads_and_scores_identically(tmp_path: Path) -> None:
    g = lending_graph()
    result = trained()
    reg = ModelRegistry(tmp_path / "models")
    version = reg.save(result.pipeline, data_sha256=g.fingerprint,
                       metrics={"val_auprc": 0.5}, extra={"split": result.split.to_dict()})
    loaded = reg.load(version)
    apps = ApplicationQueries.from_graph(g, np.arange(g.num_nodes("Application")))
    a = result.pipeline.score_applications(g, apps)
    b = loaded.score_applications(g, apps)
    np.testing.assert_array_equal(a.fraud, b.fraud)
    np.testing.assert_array_equal(a.pd, b.pd)
    np.testing.assert_array_equal(a.embedding, b.embedding)
    users = np.arange(50)
    ua = result.pipeline.score_nodes(g, "User", users, g.as_of + 1)
    ub = loaded.score_nodes(g, "User", users, g.as_of + 1)
    np.testing.assert_array_equal(ua.fraud, ub.fraud)
    for k, v in result.pipeline.model.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k]), k


def test_list_show_promote_and_load_the_promoted(tmp_path: Path) -> None:
    g = lending_graph()
    reg = ModelRegistry(tmp_path)
    assert reg.list() == [] and reg.promoted() is None
    with pytest.raises(ModelNotFoundError, match="no model is promoted"):
        reg.load()
    v = reg.save(trained().pipeline, data_sha256=g.fingerprint, metrics={"x": 1})
    info = reg.list()
    assert [i.version for i in info] == [v] and not info[0].promoted
    reg.promote(v)
    assert reg.promoted() == v and reg.list()[0].promoted
    shown = reg.show(v)
    assert shown["manifest"]["data_sha256"] == g.fingerprint and shown["metrics"] == {"x": 1}
    assert set(shown["manifest"]["files"]) == {"weights.pt", "pipeline.json", "metrics.json"}
    assert reg.load().version == v
    with pytest.raises(ModelNotFoundError):
        reg.promote("gnn-20000101-000000-deadbeef")
    with pytest.raises(ModelNotFoundError, match="not a model version"):
        reg.show("../etc")


def test_a_damaged_model_is_refused(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    v = reg.save(trained().pipeline, data_sha256="0" * 64)
    path = tmp_path / v / "pipeline.json"
    state = json.loads(path.read_text())
    state["root_norm"]["Application"]["mean"][0] += 1.0
    path.write_text(json.dumps(state))
    with pytest.raises(RegistryError, match="does not match"):
        reg.load(v)


def test_every_saved_model_stores_the_current_feature_set(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    v = reg.save(trained().pipeline, data_sha256="0" * 64)
    assert reg.manifest(v)["feature_set"] == current_feature_set().to_dict()
    assert reg.check(v) == v and reg.list()[0].refused is None


def _unversioned(reg: ModelRegistry, v: str) -> None:
    """Make ``v`` look like a model registered before feature sets were versioned."""
    path = reg.root / v / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["feature_set"]
    path.write_text(json.dumps(manifest))


def test_a_model_without_a_feature_set_is_refused_when_it_loads(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    v = reg.save(trained().pipeline, data_sha256="0" * 64)
    reg.promote(v)
    _unversioned(reg, v)
    for call in (lambda: reg.load(), lambda: reg.load(v), lambda: reg.check(),
                 lambda: reg.promote(v)):
        with pytest.raises(FeatureSetMismatchError, match="stores no feature-set version") as e:
            call()
        assert "\n" not in str(e.value) and "retrain" in str(e.value) and v in str(e.value)
    assert "retrain" in (reg.list()[0].refused or "")


def test_a_changed_feature_set_is_refused_at_load_not_at_score_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    g = lending_graph()
    reg = ModelRegistry(tmp_path)
    v = reg.save(trained().pipeline, data_sha256=g.fingerprint)
    pipe = reg.load(v)
    # a feature renamed in the code (the integer not bumped) ...
    names = current_feature_names()["root"]
    renamed = {**names, "Application": (*names["Application"][:-1], "ip_fraud_apps")}
    monkeypatch.setattr(feature_set, "_current_root_names", lambda: renamed)
    with pytest.raises(FeatureSetMismatchError, match="feature names changed"):
        reg.load(v)
    monkeypatch.undo()
    # ... or a definition changed and the integer bumped
    monkeypatch.setattr(feature_set, "FEATURE_SET_VERSION", feature_set.FEATURE_SET_VERSION + 1)
    with pytest.raises(FeatureSetMismatchError, match="feature definitions changed"):
        reg.load(v)
    monkeypatch.undo()
    apps = ApplicationQueries.from_graph(g, np.arange(10))
    assert reg.load(v).score_applications(g, apps).fraud.shape == (10,)
    assert pipe.version == v
