"""`FeatureSet`: the version and fingerprint of the features, and the check that refuses a model
trained on others."""

from __future__ import annotations

import numpy as np
import pytest
from gnn_lending_world import lending_graph

import gnn.features.feature_set as fs_mod
from gnn import (
    FEATURE_SET_VERSION,
    ApplicationQueries,
    FeatureSet,
    FeatureSetMismatchError,
    RiskFeatures,
    check_feature_set,
    current_feature_set,
)
from gnn.features.feature_set import current_feature_names, names_fingerprint, pipeline_feature_set
from gnn.features.risk_features import NODE_FEATURES


def test_the_names_are_those_the_features_compute_on_a_real_graph() -> None:
    g = lending_graph()
    feats = RiskFeatures(g)
    names = current_feature_names()
    apps = ApplicationQueries.from_graph(g, np.arange(5))
    assert tuple(feats.application_features(apps)[1]) == names["root"]["Application"]
    users, t = np.arange(5), np.full(5, g.as_of)
    assert tuple(feats.user_features(users, t)[1]) == names["root"]["User"]
    assert tuple(feats.merchant_features(np.arange(2), t[:2])[1]) == names["root"]["Merchant"]
    assert names["node"] == dict(NODE_FEATURES)


def test_the_fingerprint_follows_every_name_and_its_order() -> None:
    node = {"User": ("a", "b")}
    root = {"Application": ("x", "y")}
    base = names_fingerprint(node, root)
    assert base == names_fingerprint(dict(node), dict(root))
    assert names_fingerprint(node, {"Application": ("y", "x")}) != base
    assert names_fingerprint(node, {"Application": ("x", "y", "z")}) != base
    assert names_fingerprint({"User": ("a", "c")}, root) != base
    current = current_feature_set()
    assert current.version == FEATURE_SET_VERSION and len(current.fingerprint) == 64
    assert FeatureSet.from_dict(current.to_dict()) == current


def test_check_accepts_the_current_set_and_refuses_any_other_in_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    stored = current_feature_set().to_dict()
    assert check_feature_set(stored, model="m1") == current_feature_set()
    with pytest.raises(FeatureSetMismatchError, match="stores no feature-set version") as e:
        check_feature_set(None, model="m1")
    assert "\n" not in str(e.value) and "riskgraph train" in str(e.value)
    with pytest.raises(FeatureSetMismatchError, match="feature names changed"):
        check_feature_set({**stored, "fingerprint": "0" * 64}, model="m1")
    with pytest.raises(FeatureSetMismatchError, match="unreadable feature set"):
        check_feature_set({"version": "one"}, model="m1")
    # a definition changed: the integer was bumped, the names are the same
    monkeypatch.setattr(fs_mod, "FEATURE_SET_VERSION", FEATURE_SET_VERSION + 1)
    with pytest.raises(FeatureSetMismatchError, match="feature definitions changed") as e:
        check_feature_set(stored, model="m1")
    assert f"v{FEATURE_SET_VERSION} " in str(e.value)
    assert f"v{FEATURE_SET_VERSION + 1} " in str(e.value)


def test_a_pipeline_with_other_root_names_has_no_feature_set() -> None:
    names = current_feature_names()["root"]
    assert pipeline_feature_set(names) == current_feature_set()
    assert pipeline_feature_set({"Application": names["Application"]}).root_types == (
        "Application",)
    renamed = {**names, "User": ("tenure",) + names["User"][1:]}
    with pytest.raises(FeatureSetMismatchError, match="User root features"):
        pipeline_feature_set(renamed)
