"""`aggregate_seeds` on hand-made worlds: mean ± std, the bootstrap interval, the standings."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from gnn import ScoredTestSet, aggregate_seeds
from gnn.train.bootstrap_metrics import stratified_resamples
from gnn.train.seed_aggregation import summarise


def _world(pattern: list[str], fraud_scores: dict[str, np.ndarray],
           product: list[str] | None = None, funded: np.ndarray | None = None,
           default: np.ndarray | None = None,
           pd_scores: dict[str, np.ndarray] | None = None) -> ScoredTestSet:
    n = len(pattern)
    pat = np.asarray(pattern, dtype=object)
    return ScoredTestSet(
        application_id=np.asarray([f"a{i}" for i in range(n)], dtype=object),
        fraud=pat != "", pattern=pat,
        product=np.asarray(product or ["bnpl"] * n, dtype=object),
        funded=np.zeros(n, bool) if funded is None else funded,
        default=np.zeros(n, bool) if default is None else default,
        fraud_scores=fraud_scores, pd_scores=pd_scores or {})


def _separable(n_pos: int, n_neg: int, seed: int) -> ScoredTestSet:
    """``good`` ranks every fraud first, ``bad`` last."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_pos), np.zeros(n_neg)]
    good = y + rng.random(y.shape[0]) * 0.5
    return _world(["ring"] * n_pos + [""] * n_neg, {"good": good, "bad": -good})


def test_summarise_known_answer() -> None:
    boots = np.stack([np.linspace(0, 1, 101), np.ones(101)])
    e = summarise(np.array([0.5, 1.0]), boots, 0.95)
    assert e.mean == pytest.approx(0.75)
    assert e.std == pytest.approx(np.sqrt(2 * 0.25 ** 2))
    # the per-resample mean of the worlds is (u + 1) / 2 for u on a uniform grid of [0, 1]
    assert (e.lo, e.hi) == pytest.approx(((0.025 + 1) / 2, (0.975 + 1) / 2))
    assert e.per_seed == (0.5, 1.0)
    # a world without the row is left out of the mean and the interval; one world has no std
    one = summarise(np.array([np.nan, 0.8]), np.stack([np.full(101, np.nan),
                                                       np.linspace(0, 1, 101)]), 0.9)
    assert one.mean == pytest.approx(0.8) and np.isnan(one.std)
    assert (one.lo, one.hi) == pytest.approx((0.05, 0.95))


def test_a_perfect_and_a_reversed_model_over_two_worlds() -> None:
    tests = {11: _separable(6, 60, 0), 12: _separable(4, 80, 1)}
    s = aggregate_seeds(tests, deployed="bad", resamples=50, log=lambda _: None)
    row = s.row("fraud", "overall")
    assert row.positives == (6, 4) and row.size == (66, 84)
    good = row.metrics["good"]["auroc"]
    assert (good.mean, good.std, good.lo, good.hi) == (1.0, 0.0, 1.0, 1.0)
    bad = row.metrics["bad"]["auprc"]
    # reversed: the positives come last, so precision at each is k / (n_neg + k)
    expect = np.mean([np.mean([k / (60 + k) for k in range(1, 7)]),
                      np.mean([k / (80 + k) for k in range(1, 5)])])
    assert bad.mean == pytest.approx(expect)
    diff = row.differences["good"]["auroc"]
    assert (diff.mean, diff.lo, diff.hi) == (-1.0, -1.0, -1.0)
    assert s.strongest_baseline() == "good"
    overall, ring, bnpl = s.standings(min_positives=10)
    assert overall.baseline == "good" and not overall.leads
    assert overall.verdict == "behind" and overall.seeds_behind == (11, 12)
    assert (ring.row.group, ring.row.name, ring.row.total_positives) == ("pattern", "ring", 10)
    assert (bnpl.row.group, bnpl.metric) == ("product", "auprc")
    # rows with fewer positives over the worlds are not judged; the overall row always is
    assert [x.row.group for x in s.standings(min_positives=11)] == ["overall"]

    flipped = aggregate_seeds(tests, deployed="good", resamples=50, log=lambda _: None)
    (top,) = [x for x in flipped.standings(min_positives=1000)]
    assert top.leads and top.verdict == "ahead" and top.seeds_behind == ()


def test_interval_is_the_percentile_of_the_mean_of_per_world_resamples() -> None:
    rng = np.random.default_rng(5)
    tests = {}
    for seed, n in ((21, 300), (22, 200)):
        y = rng.random(n) < 0.1
        tests[seed] = _world(["ring" if f else "" for f in y],
                             {"m": y + rng.normal(scale=0.7, size=n), "z": rng.random(n)})
    s = aggregate_seeds(tests, deployed="m", resamples=200, bootstrap_seed=3,
                        log=lambda _: None)
    got = s.row("fraud", "overall").metrics["m"]["auprc"]
    # the same draws done by hand: one generator per (bootstrap seed, world, row), items
    # repeated as often as drawn, scikit-learn's average precision, worlds averaged
    per_world = []
    points = []
    for seed, t in tests.items():
        gen = np.random.default_rng(np.random.SeedSequence(
            [3, seed, zlib.crc32(b"fraud/overall/all")]))
        w = np.concatenate(list(stratified_resamples(t.fraud, 200, gen)))
        score = t.fraud_scores["m"]
        per_world.append([average_precision_score(t.fraud[idx], score[idx]) for idx in
                          (np.repeat(np.arange(len(t)), row.astype(int)) for row in w)])
        points.append(average_precision_score(t.fraud, score))
    lo, hi = np.quantile(np.mean(per_world, axis=0), [0.025, 0.975])
    assert got.per_seed == pytest.approx(points)
    assert got.mean == pytest.approx(np.mean(points))
    assert got.std == pytest.approx(np.std(points, ddof=1))
    assert (got.lo, got.hi) == pytest.approx((lo, hi))
    assert got.lo < got.mean < got.hi
    # the same call gives the same numbers
    again = aggregate_seeds(tests, deployed="m", resamples=200, bootstrap_seed=3,
                            log=lambda _: None)
    assert again.row("fraud", "overall").metrics["m"]["auprc"] == got


def test_a_pattern_row_is_that_pattern_against_the_honest_applications() -> None:
    pattern = ["ring"] * 3 + ["ato"] * 2 + [""] * 20
    # ato scores highest, then ring, then honest: ring is perfect once ato is left out
    score = np.r_[np.full(3, 0.8), np.full(2, 0.9), np.linspace(0, 0.5, 20)]
    other = _world(["ato"] * 2 + [""] * 10, {"m": np.r_[0.9, 0.9, np.linspace(0, 0.5, 10)]})
    s = aggregate_seeds({1: _world(pattern, {"m": score}), 2: other}, deployed="m",
                        resamples=20, log=lambda _: None)
    ring = s.row("fraud", "pattern", "ring")
    assert ring.size == (23, 10) and ring.positives == (3, 0)
    e = ring.metrics["m"]["auprc"]
    assert e.per_seed[0] == 1.0 and np.isnan(e.per_seed[1])
    assert e.mean == 1.0 and np.isnan(e.std)
    overall = s.row("fraud", "overall").metrics["m"]["auprc"]
    # all fraud together: the 2 ato first, then the 3 ring: also perfect
    assert overall.per_seed == (1.0, 1.0)
    assert [r.name for r in s.rows if r.group == "pattern"] == ["ato", "ring"]


def test_default_rows_and_lower_is_better() -> None:
    n = 10
    default = np.zeros(n, bool)
    default[0] = True
    funded = np.ones(n, bool)
    constant = np.full(n, 0.1)
    sharp = np.r_[0.9, np.full(n - 1, 0.01)]
    t = _world([""] * n, {"m": np.zeros(n), "b": np.zeros(n)}, funded=funded,
               default=default, pd_scores={"m": constant, "b": sharp})
    s = aggregate_seeds({1: t, 2: t}, deployed="m", resamples=30, log=lambda _: None)
    row = s.row("default", "overall")
    brier = row.metrics["m"]["brier"]
    assert brier.mean == pytest.approx((0.81 + 9 * 0.01) / 10) and brier.std == 0.0
    assert row.metrics["m"]["predicted_over_observed"].mean == pytest.approx(1.0)
    standings = {x.metric: x for x in s.standings() if x.row.target == "default"}
    assert standings["brier"].baseline == "b" and standings["brier"].verdict == "behind"
    assert standings["auroc"].verdict in ("behind", "behind within the interval")
    assert set(s.reliability) == {1, 2} and len(s.reliability[1]) == 10
    # no fraud row has positives here: the overall fraud metrics are undefined, not 0
    assert np.isnan(s.row("fraud", "overall").metrics["m"]["auprc"].mean)


def test_worlds_must_score_the_same_models() -> None:
    a = _separable(3, 10, 0)
    b = _world(["ring"] * 3 + [""] * 10, {"good": np.arange(13.0)})
    with pytest.raises(ValueError, match="world 2 scores models"):
        aggregate_seeds({1: a, 2: b}, deployed="good", resamples=5, log=lambda _: None)
    with pytest.raises(ValueError, match="deployed model 'gnn'"):
        aggregate_seeds({1: a}, resamples=5, log=lambda _: None)
