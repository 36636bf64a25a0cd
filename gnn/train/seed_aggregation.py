"""`aggregate_seeds`: every model's metrics over several simulated worlds, with their spread.

For each *row* (fraud on all test applications, per planted pattern, per product; default on
all funded test loans and per product) and each model and metric:

* the **point** value on each world (seed);
* **mean ± std** across the worlds that have the row (sample standard deviation, ``n - 1``);
* a **bootstrap interval** of that mean: in each of ``B`` resamples the row's test items of
  every world are drawn with replacement, positives and negatives apart (so each resample keeps
  the world's class counts and every metric stays defined), the metric is computed per world and
  the worlds are averaged with equal weight; the interval is the central ``confidence`` share of
  those ``B`` means (percentiles). The draws come from one generator per world and row, seeded
  from ``(bootstrap_seed, world seed, row)``, so the numbers are reproducible and do not depend
  on which other rows or worlds are aggregated. The interval measures how much the test sets'
  sampling moves the mean over these worlds; the spread *between* worlds is the std and the
  per-world values.

Every model of a row sees the same resamples, so the difference between two models has its own
(paired) interval; :class:`Standing` reads those to say where the deployed model leads.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

import numpy as np

from gnn.train.bootstrap_metrics import (
    PROBABILITY_METRICS,
    RANKING_METRICS,
    probability_metrics,
    ranking_metrics,
    reliability_bins,
    stratified_resamples,
)
from gnn.train.scored_test_set import ScoredTestSet

logger = logging.getLogger(__name__)

Target = Literal["fraud", "default"]
Group = Literal["overall", "pattern", "product"]

METRICS: Final[dict[str, tuple[str, ...]]] = {"fraud": RANKING_METRICS,
                                               "default": PROBABILITY_METRICS}
HIGHER_IS_BETTER: Final[dict[str, bool]] = {"auroc": True, "auprc": True,
                                            "recall_at_1pct_fpr": True, "brier": False,
                                            "ece": False}
"""Metrics with a direction (``predicted_over_observed`` is best at 1 and has none)."""

STANDING_METRICS: Final[dict[str, tuple[str, ...]]] = {"fraud": ("auprc",),
                                                       "default": ("auroc", "brier")}
"""The metrics on which :meth:`SeedSummary.standings` judges the deployed model."""


@dataclass(frozen=True)
class Estimate:
    """One metric over the worlds.

    Args:
        mean (float): mean of the per-world values (NaN when no world has the row).
        std (float): their sample standard deviation (NaN with fewer than two worlds).
        lo (float): lower end of the bootstrap interval of the mean.
        hi (float): upper end.
        per_seed (tuple[float, ...]): the value on each world, in the summary's seed order
            (NaN where the world has no such row).
    """

    mean: float
    std: float
    lo: float
    hi: float
    per_seed: tuple[float, ...]


def summarise(points: np.ndarray, boots: np.ndarray, confidence: float) -> Estimate:
    """Mean ± std of ``points`` and the percentile interval of the per-resample world mean.

    Args:
        points (np.ndarray): ``[S]`` per-world values; NaN marks a world without the row.
        boots (np.ndarray): ``[S, B]`` the same metric on each of ``B`` resamples per world.
        confidence (float): the interval's coverage, e.g. ``0.95``.
    """
    points = np.asarray(points, np.float64)
    boots = np.asarray(boots, np.float64)
    ok = np.isfinite(points)
    per_seed = tuple(float(v) for v in points)
    if not ok.any():
        nan = float("nan")
        return Estimate(nan, nan, nan, nan, per_seed)
    std = float(points[ok].std(ddof=1)) if ok.sum() >= 2 else float("nan")
    means = boots[ok].mean(axis=0)
    tail = (1.0 - confidence) / 2
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return Estimate(float(points[ok].mean()), std, float(lo), float(hi), per_seed)


@dataclass(frozen=True)
class RowSummary:
    """One row of the report: a target on a subset of the test applications.

    Args:
        target (str): ``"fraud"`` or ``"default"``.
        group (str): ``"overall"``, ``"pattern"`` or ``"product"``.
        name (str): the pattern or product (``"all"`` for the overall rows).
        positives (tuple[int, ...]): fraud (or default) items per world.
        size (tuple[int, ...]): items per world.
        metrics (dict[str, dict[str, Estimate]]): model -> metric -> estimate.
        differences (dict[str, dict[str, Estimate]]): other model -> metric -> estimate of
            *deployed minus other*, on paired resamples.
    """

    target: str
    group: str
    name: str
    positives: tuple[int, ...]
    size: tuple[int, ...]
    metrics: dict[str, dict[str, Estimate]]
    differences: dict[str, dict[str, Estimate]]

    @property
    def total_positives(self) -> int:
        return int(sum(self.positives))


@dataclass(frozen=True)
class Standing:
    """Where the deployed model stands against the best baseline of a row on one metric.

    Args:
        row (RowSummary): the row.
        metric (str): the metric.
        baseline (str): the baseline with the best mean on this row and metric.
        difference (Estimate): deployed minus that baseline (paired resamples).
        higher_is_better (bool): the metric's direction.
        seeds_behind (tuple[int, ...]): the worlds on which the deployed model is worse.
    """

    row: RowSummary
    metric: str
    baseline: str
    difference: Estimate
    higher_is_better: bool
    seeds_behind: tuple[int, ...]

    @property
    def advantage(self) -> float:
        """Mean difference signed so that positive means the deployed model is better."""
        return self.difference.mean if self.higher_is_better else -self.difference.mean

    @property
    def leads(self) -> bool:
        """Better than the best baseline on the mean over the worlds (a tie is not a lead)."""
        return self.advantage > 0

    @property
    def verdict(self) -> str:
        """``ahead`` / ``behind`` (the whole difference interval on one side of 0),
        ``ahead within the interval`` / ``behind within the interval``, or ``level``."""
        sign = 1.0 if self.higher_is_better else -1.0
        lo, hi = sorted((sign * self.difference.lo, sign * self.difference.hi))
        if lo > 0:
            return "ahead"
        if hi < 0:
            return "behind"
        if self.advantage > 0:
            return "ahead within the interval"
        if self.advantage < 0:
            return "behind within the interval"
        return "level"


@dataclass(frozen=True)
class SeedSummary:
    """Every row over the worlds.

    Args:
        seeds (tuple[int, ...]): the worlds, in order.
        deployed (str): the model the service deploys.
        models (tuple[str, ...]): the fraud models, deployed included, in report order.
        default_models (tuple[str, ...]): the models with a probability of default.
        rows (list[RowSummary]): fraud rows first (overall, patterns, products), then default.
        reliability (dict[int, list[dict[str, float]]]): per world, the deployed model's
            probability-of-default bins on funded test loans.
        resamples (int): bootstrap resamples per world and row.
        confidence (float): interval coverage.
        bootstrap_seed (int): the base seed of every draw.
    """

    seeds: tuple[int, ...]
    deployed: str
    models: tuple[str, ...]
    default_models: tuple[str, ...]
    rows: list[RowSummary]
    reliability: dict[int, list[dict[str, float]]]
    resamples: int
    confidence: float
    bootstrap_seed: int

    @property
    def baselines(self) -> tuple[str, ...]:
        return tuple(m for m in self.models if m != self.deployed)

    def row(self, target: str, group: str, name: str = "all") -> RowSummary:
        """The row of ``target`` / ``group`` / ``name``.

        Raises:
            KeyError: if there is no such row.
        """
        for r in self.rows:
            if (r.target, r.group, r.name) == (target, group, name):
                return r
        raise KeyError(f"no row {target}/{group}/{name}")

    def best_baseline(self, row: RowSummary, metric: str) -> str | None:
        """The model other than the deployed one with the best mean on ``row``'s ``metric``."""
        higher = HIGHER_IS_BETTER[metric]
        candidates = [(m, e[metric].mean) for m, e in row.metrics.items()
                      if m != self.deployed and np.isfinite(e[metric].mean)]
        if not candidates:
            return None
        return (max if higher else min)(candidates, key=lambda c: c[1])[0]

    def strongest_baseline(self) -> str | None:
        """The best baseline on fraud AUPRC over all test applications."""
        return self.best_baseline(self.row("fraud", "overall"), "auprc")

    def standings(self, min_positives: int = 30) -> list[Standing]:
        """The deployed model against the best baseline of each row with enough positives.

        Args:
            min_positives (int, optional): rows other than the overall ones need this many
                positives, summed over the worlds. (default: ``30``)

        Returns:
            list[Standing]: one per row and metric of :data:`STANDING_METRICS`.
        """
        out = []
        for row in self.rows:
            if row.group != "overall" and row.total_positives < min_positives:
                continue
            if self.deployed not in row.metrics:
                continue
            for metric in STANDING_METRICS[row.target]:
                base = self.best_baseline(row, metric)
                if base is None:
                    continue
                higher = HIGHER_IS_BETTER[metric]
                dep = np.asarray(row.metrics[self.deployed][metric].per_seed)
                other = np.asarray(row.metrics[base][metric].per_seed)
                worse = dep < other if higher else dep > other
                behind = tuple(s for s, w in zip(self.seeds, worse, strict=True) if w)
                out.append(Standing(row, metric, base, row.differences[base][metric], higher,
                                    behind))
        return out

    def to_json(self) -> dict[str, Any]:
        """Every number, JSON-ready."""
        return {
            "seeds": list(self.seeds), "deployed": self.deployed, "models": list(self.models),
            "default_models": list(self.default_models), "resamples": self.resamples,
            "confidence": self.confidence, "bootstrap_seed": self.bootstrap_seed,
            "reliability": {str(s): b for s, b in self.reliability.items()},
            "rows": [asdict(r) for r in self.rows],
        }


def _selection(test: ScoredTestSet, target: str, group: str, name: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """The row's items (mask over the test set) and their 0/1 labels."""
    if target == "fraud":
        if group == "overall":
            mask = np.ones(len(test), bool)
            return mask, test.fraud
        if group == "pattern":
            own = test.pattern == name
            mask = own | ~test.fraud
            return mask, own[mask]
        mask = test.product == name
        return mask, test.fraud[mask]
    mask = test.funded.copy() if group == "overall" else test.funded & (test.product == name)
    return mask, test.default[mask]


def _row_rng(bootstrap_seed: int, seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(
        [bootstrap_seed, seed, zlib.crc32(key.encode())]))


def aggregate_seeds(
    tests: Mapping[int, ScoredTestSet],
    *,
    deployed: str = "gnn",
    resamples: int = 1000,
    confidence: float = 0.95,
    bootstrap_seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> SeedSummary:
    """Metrics of every model over the worlds' test sets, with bootstrap intervals.

    Args:
        tests (Mapping[int, ScoredTestSet]): world seed -> its scored test set. Every world
            must score the same models.
        deployed (str, optional): the model the service deploys; the others are baselines.
            (default: ``"gnn"``)
        resamples (int, optional): bootstrap resamples per world and row. (default: ``1000``)
        confidence (float, optional): interval coverage. (default: ``0.95``)
        bootstrap_seed (int, optional): base seed of every draw. (default: ``0``)
        log (Callable[[str], None], optional): progress lines. (default: module logger)

    Raises:
        ValueError: on no worlds, worlds scoring different models, or ``deployed`` missing.
    """
    say = log or logger.info
    if not tests:
        raise ValueError("tests must hold at least one world")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    seeds = tuple(tests)
    first = tests[seeds[0]]
    models = tuple(first.fraud_scores)
    default_models = tuple(first.pd_scores)
    for s, t in tests.items():
        if set(t.fraud_scores) != set(models) or set(t.pd_scores) != set(default_models):
            raise ValueError(f"world {s} scores models {sorted(t.fraud_scores)} / "
                             f"{sorted(t.pd_scores)}, world {seeds[0]} {sorted(models)} / "
                             f"{sorted(default_models)}")
    if deployed not in models:
        raise ValueError(f"deployed model {deployed!r} is not among {list(models)}")

    def union(attr: str, mask_attr: str) -> list[str]:
        values: set[str] = set()
        for t in tests.values():
            values |= set(getattr(t, attr)[getattr(t, mask_attr)].tolist())
        return sorted(values - {""})

    keys: list[tuple[str, str, str]] = [("fraud", "overall", "all")]
    keys += [("fraud", "pattern", p) for p in union("pattern", "fraud")]
    products = sorted({p for t in tests.values() for p in t.product.tolist()})
    keys += [("fraud", "product", p) for p in products]
    if default_models:
        keys.append(("default", "overall", "all"))
        keys += [("default", "product", p) for p in products]

    rows = []
    for target, group, name in keys:
        t0 = time.perf_counter()
        row_models = models if target == "fraud" else default_models
        metrics = METRICS[target]
        score = (probability_metrics if target == "default" else ranking_metrics)
        points = {m: {k: np.full(len(seeds), np.nan) for k in metrics} for m in row_models}
        boots = {m: {k: np.full((len(seeds), resamples), np.nan) for k in metrics}
                 for m in row_models}
        positives, size = [], []
        for i, s in enumerate(seeds):
            test = tests[s]
            mask, y = _selection(test, target, group, name)
            positives.append(int(y.sum()))
            size.append(int(y.shape[0]))
            if y.all() or not y.any():
                continue
            scores = test.fraud_scores if target == "fraud" else test.pd_scores
            subset = {m: np.asarray(scores[m])[mask] for m in row_models}
            for m in row_models:
                for k, v in score(y, subset[m]).items():
                    points[m][k][i] = v[0]
            rng = _row_rng(bootstrap_seed, s, f"{target}/{group}/{name}")
            lo = 0
            for w in stratified_resamples(y, resamples, rng):
                for m in row_models:
                    for k, v in score(y, subset[m], w).items():
                        boots[m][k][i, lo:lo + w.shape[0]] = v
                lo += w.shape[0]
        est = {m: {k: summarise(points[m][k], boots[m][k], confidence) for k in metrics}
               for m in row_models}
        diffs: dict[str, dict[str, Estimate]] = {}
        if deployed in row_models:
            diffs = {m: {k: summarise(points[deployed][k] - points[m][k],
                                      boots[deployed][k] - boots[m][k], confidence)
                         for k in metrics}
                     for m in row_models if m != deployed}
        rows.append(RowSummary(target, group, name, tuple(positives), tuple(size), est, diffs))
        say(f"bootstrap {target}/{group}/{name}: {len(seeds)} worlds x {resamples} resamples "
            f"in {time.perf_counter() - t0:.1f}s")

    reliability: dict[int, list[dict[str, float]]] = {}
    if deployed in default_models:
        for s, t in tests.items():
            reliability[s] = reliability_bins(t.default[t.funded],
                                              np.asarray(t.pd_scores[deployed])[t.funded])
    return SeedSummary(seeds, deployed, models, default_models, rows, reliability, resamples,
                       confidence, bootstrap_seed)

