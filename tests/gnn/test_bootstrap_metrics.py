"""Metrics over bootstrap count weights: known answers, scikit-learn agreement, the draws."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from gnn.train.bootstrap_metrics import (
    probability_metrics,
    ranking_metrics,
    reliability_bins,
    stratified_resamples,
)


def test_ranking_metrics_known_answers() -> None:
    y = np.array([0, 0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.95])
    m = ranking_metrics(y, s)
    # order: .95 (+), .9 (-), .8 (+): 7 of the 8 positive-negative pairs are ranked right
    assert m["auroc"][0] == pytest.approx(7 / 8)
    # precision 1 at the first positive, 2/3 at the second
    assert m["auprc"][0] == pytest.approx((1 + 2 / 3) / 2)
    # one negative is 25 % FPR: within 1 % only the first positive is found
    assert m["recall_at_1pct_fpr"][0] == pytest.approx(0.5)


def test_ties_count_half_and_move_together() -> None:
    y = np.array([1, 0, 1, 0])
    s = np.array([0.5, 0.5, 0.9, 0.1])
    m = ranking_metrics(y, s)
    # pairs: (.9, .5) right, (.9, .1) right, (.5+, .5-) tie = 1/2, (.5+, .1) right
    assert m["auroc"][0] == pytest.approx(3.5 / 4)
    # the tied pair enters together: precision 1 at recall 1/2, then 2/3 at recall 1
    assert m["auprc"][0] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_weights_are_repeated_items_and_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    for _ in range(25):
        n = int(rng.integers(5, 300))
        y = rng.random(n) < rng.uniform(0.05, 0.6)
        y[:2] = [True, False]
        s = np.round(rng.random(n) + rng.random() * y, int(rng.integers(1, 4)))
        w = rng.integers(0, 4, size=(4, n)).astype(float)
        w[:, :2] = 1.0  # every row keeps a positive and a negative
        got = ranking_metrics(y, s, w)
        for i in range(4):
            fpr, tpr, _ = roc_curve(y, s, sample_weight=w[i], drop_intermediate=False)
            assert got["auroc"][i] == pytest.approx(roc_auc_score(y, s, sample_weight=w[i]),
                                                    abs=1e-12)
            assert got["auprc"][i] == pytest.approx(
                average_precision_score(y, s, sample_weight=w[i]), abs=1e-12)
            assert got["recall_at_1pct_fpr"][i] == pytest.approx(tpr[fpr <= 0.01].max(),
                                                                 abs=1e-12)
            idx = np.repeat(np.arange(n), w[i].astype(int))
            plain = ranking_metrics(y[idx], s[idx])
            for k in got:
                assert got[k][i] == pytest.approx(plain[k][0], abs=1e-12)


def test_one_class_gives_nan_per_row() -> None:
    y = np.array([0, 0, 1])
    s = np.array([0.1, 0.2, 0.3])
    w = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    m = ranking_metrics(y, s, w)
    assert np.isnan(m["auprc"][0]) and m["auprc"][1] == pytest.approx(1.0)
    assert all(np.isnan(v[0]) for v in ranking_metrics(np.zeros(3), s).values())
    with pytest.raises(ValueError, match="NaN"):
        ranking_metrics(y, np.array([0.1, np.nan, 0.2]))
    with pytest.raises(ValueError, match="shape"):
        ranking_metrics(y, s, np.ones((2, 4)))


def test_probability_metrics_known_answers() -> None:
    y = np.array([0, 1, 0, 1])
    p = np.array([0.1, 0.9, 0.2, 0.6])
    m = probability_metrics(y, p, bins=2)
    assert m["auroc"][0] == pytest.approx(1.0)
    assert m["brier"][0] == pytest.approx((0.01 + 0.01 + 0.04 + 0.16) / 4)
    assert m["predicted_over_observed"][0] == pytest.approx(0.45 / 0.5)
    # bins {.1, .2} (observed 0) and {.6, .9} (observed 1): gaps .15 and .25
    assert m["ece"][0] == pytest.approx(0.2)
    # weighting item 4 (p .6, y 1) twice is the same as listing it twice
    w = np.array([[1.0, 1.0, 1.0, 2.0]])
    yy, pp = np.r_[y, 1], np.r_[p, 0.6]
    weighted = probability_metrics(y, p, w, bins=2)
    assert weighted["brier"][0] == pytest.approx(probability_metrics(yy, pp)["brier"][0])
    assert weighted["predicted_over_observed"][0] == pytest.approx(
        pp.mean() / yy.mean())
    assert [b["n"] for b in reliability_bins(y, p, bins=2)] == [2.0, 2.0]


def test_stratified_resamples_keep_class_counts_and_repeat_with_the_seed() -> None:
    y = np.array([1] * 3 + [0] * 40)
    blocks = list(stratified_resamples(y, 250, np.random.default_rng(7), chunk=100))
    assert [b.shape for b in blocks] == [(100, 43), (100, 43), (50, 43)]
    w = np.concatenate(blocks)
    assert (w[:, :3].sum(axis=1) == 3).all() and (w[:, 3:].sum(axis=1) == 40).all()
    assert len({tuple(r) for r in w}) > 200
    again = np.concatenate(list(stratified_resamples(y, 250, np.random.default_rng(7),
                                                     chunk=100)))
    np.testing.assert_array_equal(w, again)
    # each item is drawn about once per resample on average
    np.testing.assert_allclose(w[:, 3:].mean(), 1.0)
