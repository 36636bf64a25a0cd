"""`attribute`: the reasons' numbers are shares of the very logits `predict` returns.

Checked on two trained models: the shared tiny one (two members, two epochs) and one trained
for 20 epochs on a world where account takeover dominates (:func:`takeover_trained`), which has
learned enough for its attributions to mean something.

* completeness: a root's feature attributions sum to ``predict(x) - predict(training mean)``
  within 0.2 logits (0.01 on average) with the default 32 Gauss-Legendre points, on logits that
  move by up to ~11;
* relation occlusion equals scoring, with ``predict``, the tree rebuilt without the group;
* determinism, and a root's attributions do not depend on the rest of its batch;
* the deployed blend of the GNN and trees (tests/gnn/test_fraud_blend.py) adds the trees'
  TreeSHAP shares to these; the properties above are the network's, checked on the GNN alone
  (:func:`gnn_alone`);
* a planted account takeover (an old account, a new device, ~2,500 km from home, a 30,000
  CNY cash loan) is explained by location or amount first, and the same application from home
  for 300 CNY is not.
"""

from __future__ import annotations

import numpy as np
import pytest
from gnn_lending_world import gnn_alone, lending_graph, takeover_trained, takeover_world, trained

from gnn import ApplicationQueries, LendingGraph, ModelError, Prepared, SampledTrees
from gnn.attribution import DEFAULT_STEPS, RELATION_GROUPS, Attributions, attribute
from gnn.data.lending_graph import NODE_TYPES, RELATIONS
from gnn.data.neighbour_sampler import RELATION_IDS

LOCATION = ("dist_usual_log_km", "dist_usual_missing", "dist_home_log_km", "dist_home_missing")
AMOUNT = ("log_amount", "amount_ratio_log", "amount_robust_z", "amount_history_log")
NEW_DEVICE = ("device_age_log_h", "new_device_7d", "new_device", "device_new_to_platform",
              "device_entities", "devices_log")
"""The takeover's third fact: the new device (the applicant's devices, the new one among them)."""


def _all_applications(g: LendingGraph) -> ApplicationQueries:
    return ApplicationQueries.from_graph(g, np.arange(g.num_nodes("Application")))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["tiny", "takeover"])
def test_attributions_explain_the_logits_predict_returns(which: str) -> None:
    if which == "tiny":
        pipe, g = gnn_alone(trained().pipeline), lending_graph()
    else:
        pipe, g = gnn_alone(takeover_trained().pipeline), takeover_world()[1]
    prepared = pipe.prepare_applications(g, _all_applications(g))
    scores = pipe.predict(prepared)
    a = attribute(pipe, prepared)
    assert a.steps == DEFAULT_STEPS and len(a) == len(prepared)
    np.testing.assert_allclose(a.fraud_logit, scores.fraud_logit, rtol=0, atol=1e-5)
    np.testing.assert_allclose(a.pd_logit, scores.pd_logit, rtol=0, atol=1e-5)
    np.testing.assert_allclose(a.scores.fraud, scores.fraud, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.scores.pd, scores.pd, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.scores.embedding, scores.embedding, rtol=0, atol=1e-5)
    # the baseline is what predict gives with the root features at the training mean
    at_mean = Prepared(prepared.trees, prepared.x,
                       np.broadcast_to(pipe.root_norm["Application"].mean,
                                       prepared.root_x.shape).astype(np.float32),
                       prepared.root_names, prepared.root_groups)
    base = pipe.predict(at_mean)
    np.testing.assert_allclose(a.fraud_baseline, base.fraud_logit, rtol=0, atol=1e-4)
    np.testing.assert_allclose(a.pd_baseline, base.pd_logit, rtol=0, atol=1e-4)
    for features, logit, baseline in ((a.fraud_features, scores.fraud_logit, base.fraud_logit),
                                      (a.pd_features, scores.pd_logit, base.pd_logit)):
        gap = np.abs(features.sum(axis=1) - (logit - baseline))
        assert gap.max() <= 0.2 and gap.mean() <= 0.01, (gap.max(), gap.mean())
    if which == "takeover":
        # the model moved these logits far from the baseline: completeness is not trivial
        assert np.abs(scores.fraud_logit - base.fraud_logit).max() > 5.0


def test_more_points_integrate_closer() -> None:
    pipe, g = gnn_alone(trained().pipeline), lending_graph()
    prepared = pipe.prepare_applications(g, ApplicationQueries.from_graph(g, np.arange(80)))
    gaps = []
    for steps in (2, 32):
        a = attribute(pipe, prepared, steps=steps, relations=False)
        gaps.append(np.abs(a.fraud_features.sum(1) - (a.fraud_logit - a.fraud_baseline)).max())
    assert gaps[1] < gaps[0] / 4, gaps


def _without(prepared: Prepared, root: int, paths: tuple[tuple[str, ...], ...]) -> Prepared:
    """Root ``root``'s tree alone, rebuilt without the nodes the relation paths reach (and
    everything below them): the occluded tree, built independently of the module."""
    one = Prepared(*_select(prepared, root))
    trees = one.trees
    drop = {t: np.zeros(trees.num_nodes(t), dtype=bool) for t in NODE_TYPES}
    names = {i: n for n, i in RELATION_IDS.items()}
    for t in NODE_TYPES:
        for k in range(trees.num_nodes(t)):
            path: list[str] = []
            node_t, node = t, k
            while trees.rel[node_t][node] >= 0:
                name = names[int(trees.rel[node_t][node])]
                path.insert(0, name)
                node, node_t = int(trees.parent[node_t][node]), RELATIONS[name][0]
            drop[t][k] = any(tuple(path[:len(p)]) == p for p in paths)
    keep = {t: ~drop[t] for t in NODE_TYPES}
    new = {t: np.cumsum(keep[t]) - 1 for t in NODE_TYPES}
    parent = {}
    for t in NODE_TYPES:
        par = trees.parent[t][keep[t]].copy()
        rel = trees.rel[t][keep[t]]
        for i in np.flatnonzero(rel >= 0):
            par[i] = new[RELATIONS[names[int(rel[i])]][0]][par[i]]
        parent[t] = par
    kept = SampledTrees(trees.root_type, trees.num_roots,
                        {t: v[keep[t]] for t, v in trees.pos.items()},
                        {t: v[keep[t]] for t, v in trees.tree.items()},
                        {t: v[keep[t]] for t, v in trees.depth.items()}, parent,
                        {t: v[keep[t]] for t, v in trees.rel.items()},
                        {t: v[keep[t]] for t, v in trees.edge_time.items()}, trees.seed_time)
    return Prepared(kept, {t: v[keep[t]] for t, v in one.x.items()}, one.root_x,
                    one.root_names, one.root_groups)


def _select(prepared: Prepared, root: int) -> tuple[object, ...]:
    one = prepared.select(np.array([root]))
    return one.trees, one.x, one.root_x, one.root_names, one.root_groups


def test_relation_attributions_are_the_score_without_the_group() -> None:
    pipe, g = gnn_alone(takeover_trained().pipeline), takeover_world()[1]
    prepared = pipe.prepare_applications(g, ApplicationQueries.from_graph(g, np.arange(40)))
    a = attribute(pipe, prepared)
    assert a.relation_names == list(RELATION_GROUPS["Application"])
    full = pipe.predict(prepared)
    checked = 0
    for root in (0, 7, 23, 39):
        for gi, (name, paths) in enumerate(RELATION_GROUPS["Application"].items()):
            reduced = _without(prepared, root, paths)
            if reduced.trees.num_nodes() == prepared.select(np.array([root])).trees.num_nodes():
                assert a.fraud_relations[root, gi] == 0.0, name  # nothing there to remove
                continue
            s = pipe.predict(reduced)
            np.testing.assert_allclose(a.fraud_relations[root, gi],
                                       full.fraud_logit[root] - s.fraud_logit[0], atol=2e-5)
            np.testing.assert_allclose(a.pd_relations[root, gi],
                                       full.pd_logit[root] - s.pd_logit[0], atol=2e-5)
            checked += 1
    assert checked >= 20
    assert np.abs(a.fraud_relations).max() > 0.05  # the neighbourhood moves this model


def test_attributions_are_deterministic_and_do_not_depend_on_the_batch() -> None:
    pipe, g = takeover_trained().pipeline, takeover_world()[1]
    rows = np.array([3, 50, 51, 200, 333, 400, 512, 600])
    prepared = pipe.prepare_applications(g, ApplicationQueries.from_graph(g, rows))
    a, b = attribute(pipe, prepared), attribute(pipe, prepared)
    for field in ("fraud_features", "pd_features", "fraud_relations", "pd_relations",
                  "fraud_logit", "fraud_baseline"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    for i in (0, 4, 7):
        one = attribute(pipe, pipe.prepare_applications(
            g, ApplicationQueries.from_graph(g, rows[[i]])))
        np.testing.assert_allclose(one.fraud_features[0], a.fraud_features[i], atol=1e-4)
        np.testing.assert_allclose(one.pd_features[0], a.pd_features[i], atol=1e-4)
        np.testing.assert_allclose(one.fraud_relations[0], a.fraud_relations[i], atol=1e-4)
    r = a.root(4)
    assert r.fraud["dist_usual_log_km"] == a.fraud_features[4, a.feature_names.index(
        "dist_usual_log_km")]
    assert r.values["log_amount"] == pytest.approx(np.log1p(g.attrs["Application"]["amount"][
        rows[4]]), rel=1e-6)
    assert set(r.fraud_relations) == set(RELATION_GROUPS["Application"])


def test_a_planted_account_takeover_is_explained_by_place_and_amount() -> None:
    """Old accounts apply on a device new to the platform, once from far away for 100x the
    usual amount (planted) and once from home for a usual amount (control)."""
    pipe, g = takeover_trained().pipeline, takeover_world()[1]
    u = g.attrs["User"]
    old = np.flatnonzero((g.as_of - u["created_at"]) > 200 * 86_400)[:40]
    assert old.shape[0] == 40
    queries = []
    for kind in ("control", "planted"):
        for p in old:
            lat, lon = float(u["home_lat"][p]), float(u["home_lon"][p])
            far = (kind == "planted")
            queries.append(ApplicationQueries.from_facts(
                g, application_id=f"{kind}-{p}", user_id=str(g.ids["User"][p]),
                product="cash_loan", amount=30_000.0 if far else 300.0,
                ts=int(g.as_of) + 3600, lat=lat - 20.0 if far else lat,
                lon=lon + 15.0 if far else lon, device_id=f"dv-new-{p}", ip=None,
                merchant_id=None))
    a = attribute(pipe, pipe.prepare_applications(g, ApplicationQueries.concat(queries)))
    control, planted = slice(0, 40), slice(40, 80)
    assert (a.fraud_logit[planted] > a.fraud_logit[control] + 1.0).mean() >= 0.9
    names = np.array(a.feature_names)
    top = names[np.argmax(a.fraud_features[planted], axis=1)]
    assert set(top) <= set(LOCATION + AMOUNT + NEW_DEVICE), top
    assert np.isin(top, LOCATION + AMOUNT).mean() >= 0.75, top
    place_and_amount = [a.feature_names.index(n) for n in LOCATION + AMOUNT]
    share = a.fraud_features[:, place_and_amount].sum(1)
    assert (share[planted] > share[control] + 1.0).all()
    assert (share[control] < 0.5).all()


def test_user_roots_have_their_own_relation_groups() -> None:
    pipe, g = trained().pipeline, lending_graph()
    prepared = pipe.prepare_nodes(g, "User", np.arange(5), np.full(5, g.as_of + 1))
    a = attribute(pipe, prepared)
    assert a.root_type == "User" and a.relation_names == list(RELATION_GROUPS["User"])
    np.testing.assert_allclose(a.fraud_logit, pipe.predict(prepared).fraud_logit, atol=1e-5)
    assert a.fraud_features.shape == (5, len(prepared.root_names))


def test_bad_arguments_and_empty_batches() -> None:
    pipe, g = trained().pipeline, lending_graph()
    prepared = pipe.prepare_applications(g, ApplicationQueries.from_graph(g, np.arange(3)))
    with pytest.raises(ValueError, match="steps"):
        attribute(pipe, prepared, steps=0)
    empty = attribute(pipe, prepared.select(np.zeros(0, dtype=np.int64)))
    assert isinstance(empty, Attributions) and len(empty) == 0
    assert empty.fraud_features.shape == (0, len(prepared.root_names))
    with pytest.raises(IndexError):
        attribute(pipe, prepared).root(3)
    prepared.root_names = prepared.root_names[::-1]
    with pytest.raises(ModelError, match="differ"):
        attribute(pipe, prepared)
