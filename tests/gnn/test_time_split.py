"""No label crosses the time split: training at T2 must not see a label visible at or after T2.

Every label visible at or after T2 is moved, dropped or invented; targets, prepared features and
the trained weights must not change. If any part of training read such a label (as a target, a
feature, a seed choice, a normaliser statistic), this test fails.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from gnn_lending_world import lending_graph, relabelled_graph, tiny_train_config

from gnn import LendingGraph, TimeSplit, application_targets, train_risk_model
from gnn.data.lending_graph import NEVER


def _perturb_after(g: LendingGraph, cut: int, seed: int = 0) -> LendingGraph:
    rng = np.random.default_rng(seed)

    def perturb(at: np.ndarray) -> np.ndarray:
        out = at.copy()
        late = out >= cut
        out[late & (rng.random(out.shape[0]) < 0.5)] = NEVER
        fake = (out == NEVER) & (rng.random(out.shape[0]) < 0.3)
        out[fake] = cut + rng.integers(0, 10**6, int(fake.sum()))
        return out

    del g  # NOTE: rebuilt from the world with the labels changed (the graph is not copied)
    return relabelled_graph(perturb)


def test_split_times_and_masks() -> None:
    g = lending_graph()
    split = TimeSplit.from_fractions(g)
    ts = g.attrs["Application"]["ts"]
    t = application_targets(g, split)
    assert split.t1 < split.t2
    assert (t.train == (ts < split.t1)).all() and (t.test == (ts >= split.t2)).all()
    assert not (t.train & t.val).any() and not (t.val & t.test).any()
    assert (ts[t.pd_train | t.pd_val] < split.pd_mature_before).all()
    assert t.fraud[t.train].sum() > 0 and t.fraud[t.val].sum() > 0
    with pytest.raises(ValueError, match="t1 must be before t2"):
        TimeSplit(10, 5)
    with pytest.raises(ValueError, match="train and val"):
        TimeSplit.from_fractions(g, 0.8, 0.3)


def test_targets_ignore_labels_visible_at_or_after_t2() -> None:
    g = lending_graph()
    split = TimeSplit.from_fractions(g)
    a, b = application_targets(g, split), application_targets(_perturb_after(g, split.t2), split)
    for field in dataclasses.fields(a):
        np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name),
                                      err_msg=field.name)


def test_a_label_after_t2_changes_nothing_in_training() -> None:
    g = lending_graph()
    split = TimeSplit.from_fractions(g)
    g2 = _perturb_after(g, split.t2)
    assert any((g2.fraud_at[k] != g.fraud_at[k]).any() for k in g.fraud_at)
    cfg = tiny_train_config(epochs=1)
    a = train_risk_model(g, split, train_config=cfg, log=lambda s: None)
    b = train_risk_model(g2, split, train_config=cfg, log=lambda s: None)
    assert a.counts == b.counts
    wa, wb = a.pipeline.model.state_dict(), b.pipeline.model.state_dict()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0, msg=k)
    for t, n in a.pipeline.node_norm.items():
        np.testing.assert_array_equal(n.mean, b.pipeline.node_norm[t].mean)


def test_the_leak_test_can_fail() -> None:
    """Sanity check of the method: a label *before* T2 does change training."""
    g = lending_graph()
    split = TimeSplit.from_fractions(g)
    g2 = _perturb_after(g, split.t1)  # perturbs labels visible in [T1, T2) too
    a, b = application_targets(g, split), application_targets(g2, split)
    assert (a.fraud != b.fraud).any() or (a.pd != b.pd).any()


def test_the_account_phase_leaves_application_scores_alone() -> None:
    from gnn import ApplicationQueries

    g = lending_graph()
    split = TimeSplit.from_fractions(g)
    with_nodes = train_risk_model(g, split, train_config=tiny_train_config(epochs=1, node_epochs=2),
                                  log=lambda s: None)
    without = train_risk_model(g, split, train_config=tiny_train_config(epochs=1, node_epochs=0),
                               log=lambda s: None)
    apps = ApplicationQueries.from_graph(g, np.arange(40))
    a = with_nodes.pipeline.score_applications(g, apps)
    b = without.pipeline.score_applications(g, apps)
    np.testing.assert_array_equal(a.fraud_logit, b.fraud_logit)
    np.testing.assert_array_equal(a.pd_logit, b.pd_logit)
    users = np.arange(30)
    u1 = with_nodes.pipeline.score_nodes(g, "User", users, g.as_of + 1)
    u0 = without.pipeline.score_nodes(g, "User", users, g.as_of + 1)
    assert not np.array_equal(u1.fraud_logit, u0.fraud_logit)
