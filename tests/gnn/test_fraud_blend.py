"""The fraud blend: the GNN's logit and trees over the neighbour aggregates, one decision for
online, batch, the registry and the explanations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gnn_lending_world import lending_graph, tiny_train_config, trained

from gnn import ApplicationQueries, ModelRegistry, TimeSplit, train_risk_model
from gnn.attribution import _aggregate_groups, attribute
from gnn.features.neighbour_aggregates import aggregate_names
from gnn.nn.fraud_blend import FraudBlend
from gnn.pipeline import Prepared, ScoringPipeline
from gnn.train.fraud_blend_trainer import BLEND_TREE_DEPTH, blend_weights


def _draws(n: int = 4000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * a + 2 * b - 3)))).astype(int)
    return a, b, y


def test_blend_weights_keep_both_models_when_each_sees_its_own_signal() -> None:
    a, b, y = _draws()
    rng = np.random.default_rng(4)
    w_gnn, w_trees, _ = blend_weights(a + 0.3 * rng.normal(size=a.shape[0]),
                                      b + 0.3 * rng.normal(size=b.shape[0]), y)
    assert w_gnn > 1.0 and w_trees > 1.0


def test_blend_weights_drop_a_model_that_would_score_against_fraud() -> None:
    a, b, y = _draws()
    # the first input over-weights b; the best linear fit corrects it with a negative weight on
    # the second, which alone ranks fraud higher: the blend would then score the second
    # model's fraud signal as a sign of honesty
    w_gnn, w_trees, _ = blend_weights(a + 2 * b, b, y)
    assert w_trees == 0.0 and w_gnn > 0.0


def test_a_models_blend_weight_is_its_own_calibration_whatever_the_other_model() -> None:
    # the joint regression let a second, correlated model take weight from the first (on the
    # development world the trees kept 0.03 of the GNN's); each weight is now the slope of its
    # own model's calibration, the same beside any other model that the blend keeps
    a, b, y = _draws()
    rng = np.random.default_rng(5)
    gnn = a + 0.3 * rng.normal(size=a.shape[0])
    beside_apart = blend_weights(gnn, b + 0.3 * rng.normal(size=b.shape[0]), y)
    beside_alike = blend_weights(gnn, 0.3 * a + b + 0.3 * rng.normal(size=b.shape[0]), y)
    assert min(beside_apart[:2]) > 0.0 and min(beside_alike[:2]) > 0.0
    assert beside_apart[0] == pytest.approx(beside_alike[0], rel=1e-6)


def _with_blend_weights(pipe: ScoringPipeline, w_gnn: float, w_trees: float) -> ScoringPipeline:
    """A copy of ``pipe`` whose blend gives the trees weight (the small test world's validation
    keeps the GNN alone, so the trees' path would otherwise go untested)."""
    assert pipe.fraud_blend is not None
    state = pipe.state()
    state["fraud_blend"] = {**state["fraud_blend"], "w_gnn": w_gnn, "w_trees": w_trees}
    return ScoringPipeline.from_state(state, pipe.model.state_dict())


def _blended(n: int) -> tuple[ScoringPipeline, FraudBlend, Prepared, np.ndarray]:
    """The shared model with trees weighted 0.4 (GNN 0.7), its first ``n`` applications
    prepared, and their blend inputs."""
    g = lending_graph()
    pipe = _with_blend_weights(trained().pipeline, 0.7, 0.4)
    assert pipe.fraud_blend is not None
    prep = pipe.prepare_applications(g, ApplicationQueries.from_graph(g, np.arange(n)))
    x = pipe.blend_inputs(prep)
    assert x is not None
    return pipe, pipe.fraud_blend, prep, x


def test_training_gives_the_pipeline_a_blend_of_the_gnn_and_the_trees() -> None:
    result = trained()
    blend = result.pipeline.fraud_blend
    assert isinstance(blend, FraudBlend)
    assert blend.feature_names == result.pipeline.root_feature_names["Application"]
    assert blend.aggregate_names == aggregate_names(
        result.pipeline.config.fanouts["Application"])
    assert blend.booster.num_trees() > 0 and blend.w_gnn + blend.w_trees > 0
    assert np.isfinite(result.metrics["val_trees_alone_auprc"])


def test_the_blend_decides_online_as_in_a_batch_and_after_the_registry(tmp_path: Path) -> None:
    pipe, blend, prep, x = _blended(120)
    batch = pipe.predict(prep)
    want = 0.7 * batch.gnn_logit + 0.4 * blend.trees_logit(x) + blend.intercept
    np.testing.assert_allclose(batch.fraud_logit, want, rtol=1e-5, atol=1e-5)
    assert np.ptp(blend.trees_logit(x)) > 0  # the trees move the decision
    assert not np.allclose(batch.fraud_logit, batch.gnn_logit)
    for i in (0, 7, 119):
        one = pipe.predict(prep.select(np.array([i])))
        np.testing.assert_allclose(one.fraud_logit[0], batch.fraud_logit[i], rtol=1e-5,
                                   atol=1e-5)
        np.testing.assert_allclose(one.fraud[0], batch.fraud[i], rtol=1e-5, atol=1e-6)
    reg = ModelRegistry(tmp_path / "models")
    version = reg.save(pipe, data_sha256=lending_graph().fingerprint)
    again = reg.load(version).predict(prep)
    np.testing.assert_allclose(again.fraud, batch.fraud, rtol=1e-6, atol=1e-7)


def test_a_pipeline_without_a_blend_decides_with_the_gnn_alone() -> None:
    g = lending_graph()
    result = train_risk_model(g, TimeSplit.from_fractions(g),
                              train_config=tiny_train_config(fraud_blend=False),
                              log=lambda s: None)
    assert result.pipeline.fraud_blend is None
    prep = result.pipeline.prepare_applications(
        g, ApplicationQueries.from_graph(g, np.arange(30)))
    s = result.pipeline.predict(prep)
    assert s.gnn_fraud_logit is None
    np.testing.assert_array_equal(s.gnn_logit, s.fraud_logit)


def test_the_explanation_adds_up_to_the_blended_logit() -> None:
    pipe, _, prep, _ = _blended(12)
    a = attribute(pipe, prep)
    np.testing.assert_allclose(a.fraud_logit, pipe.predict(prep).fraud_logit, rtol=1e-5,
                               atol=1e-5)
    # baseline + feature shares = the logit, up to the GNN part's Integrated Gradients error
    gap = a.fraud_baseline + a.fraud_features.sum(axis=1) - a.fraud_logit
    assert np.abs(gap).max() < 0.05
    # the trees' shares of the neighbours reach the relation groups
    alone = attribute(_with_blend_weights(pipe, 0.7, 0.0), prep)
    assert not np.allclose(a.fraud_relations, alone.fraud_relations)


def test_the_trees_shares_sum_to_their_part_of_the_blended_logit() -> None:
    _, blend, _, x = _blended(60)
    shares, expected = blend.trees_contributions(x)
    np.testing.assert_allclose(shares.sum(axis=1) + expected, 0.4 * blend.trees_logit(x),
                               rtol=1e-6, atol=1e-6)
    assert (np.abs(shares) > 0).sum(axis=1).min() > 0


def test_every_neighbour_aggregate_hangs_under_the_group_it_is_reached_through() -> None:
    fanouts = trained().pipeline.config.fanouts["Application"]
    names = aggregate_names(fanouts)
    groups = dict(zip(names, _aggregate_groups(fanouts, "Application"), strict=True))
    assert groups["h1_app_device_count"] == "device"
    assert groups["h2_device_user_count"] == "device"
    assert groups["h2_ip_app_count"] == "ip"
    assert groups["h2_merchant_buyer_count"] == "merchant"
    assert groups["h2_user_contact_count"] == "contacts"
    assert groups["h2_contact_of_count"] == "contacts"
    assert groups["h2_user_home_count"] == "user_addresses"
    assert groups["h1_app_user_count"] is None  # the applicant's own node
    with pytest.raises(KeyError):
        groups["h3_app_device_count"]


def _depth(node: dict) -> int:
    if "split_index" not in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))


def test_the_blends_trees_stay_shallow_enough_to_explain_every_verdict() -> None:
    """Every explained verdict pays the trees' TreeSHAP, which grows with depth squared."""
    blend = trained().pipeline.fraud_blend
    assert blend is not None
    depths = [_depth(t["tree_structure"]) for t in blend.booster.dump_model()["tree_info"]]
    assert max(depths) <= BLEND_TREE_DEPTH
