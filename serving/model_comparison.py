"""`compare_models`: the champion and the challenger on the labels that matured since they
scored (``riskgraph models compare``).

Each ``ChallengerScore`` record holds both models' scores and decisions for one answered
application (:mod:`serving.champion_challenger`). An application is judged once it is
``maturity_days`` old (its record's ``scored_at``): a younger one without a fraud label may be
fraud not confirmed yet. Outcome: a fraud label on the application in the store now.

Reported per model: fraud AUPRC and AUROC, Brier score and expected calibration error of the
fraud probability, each with a 95 % stratified-bootstrap interval (the same resamples for both
models, so the difference has its interval too); and the decisions that would have changed:
how many, as a share with a Wilson 95 % interval, and from which decision to which.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from gnn.train.bootstrap_metrics import (
    probability_metrics,
    ranking_metrics,
    stratified_resamples,
)
from graph import GraphStore

DAY: Final = 86_400
METRICS: Final = ("auprc", "auroc", "brier", "ece")


@dataclass(frozen=True)
class Interval:
    """A value with its 95 % interval."""

    value: float
    lo: float
    hi: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "lo": self.lo, "hi": self.hi}


@dataclass(frozen=True)
class ModelComparison:
    """The champion and a challenger on matured applications (module docstring).

    Args:
        challenger (str): the challenger's version.
        champions (list[str]): the champion versions whose verdicts it was scored beside.
        applications (int): matured applications compared.
        frauds (int): those with a fraud label.
        skipped_young (int): records not yet ``maturity_days`` old.
        champion, challenger_metrics, difference (dict[str, Interval]): per metric;
            difference is challenger minus champion.
        changed (Interval): share of decisions that would have changed.
        changed_count (int): how many.
        transitions (dict[str, int]): ``"approve->review"`` -> count.
    """

    challenger: str
    champions: list[str]
    applications: int
    frauds: int
    skipped_young: int
    champion: dict[str, Interval] = field(default_factory=dict)
    challenger_metrics: dict[str, Interval] = field(default_factory=dict)
    difference: dict[str, Interval] = field(default_factory=dict)
    changed: Interval = Interval(0.0, 0.0, 0.0)
    changed_count: int = 0
    transitions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "challenger": self.challenger, "champions": self.champions,
            "applications": self.applications, "frauds": self.frauds,
            "skipped_young": self.skipped_young,
            "champion": {k: v.to_dict() for k, v in self.champion.items()},
            "challenger_metrics": {k: v.to_dict() for k, v in self.challenger_metrics.items()},
            "difference": {k: v.to_dict() for k, v in self.difference.items()},
            "decisions_changed": {**self.changed.to_dict(), "count": self.changed_count,
                                  "transitions": self.transitions},
        }


def compare_models(store: GraphStore, *, challenger: str | None = None, maturity_days: float = 30,
                   now: int | None = None, resamples: int = 1000, seed: int = 0
                   ) -> ModelComparison:
    """Compare the champion with a challenger on what the store holds.

    Args:
        store (GraphStore): holds the ``ChallengerScore`` records and the labels.
        challenger (str, optional): the challenger version (default: the one with the most
            recent record).
        maturity_days (float, optional): how old a record must be to count. (default: ``30``)
        now (int, optional): the time maturity is measured at. (default: the clock)
        resamples (int, optional): bootstrap resamples. (default: ``1000``)
        seed (int, optional): seed of the resampling. (default: ``0``)

    Raises:
        ValueError: on no record of the challenger, no matured application, or matured
            applications of one class only (nothing to rank).
    """
    if maturity_days < 0:
        raise ValueError(f"maturity_days must be >= 0, got {maturity_days}")
    rows = store.export_nodes("ChallengerScore").to_pylist()
    if not rows:
        raise ValueError("no challenger scores in the store: set one with `riskgraph models "
                         "challenger VERSION` on a serving registry, then score traffic")
    if challenger is None:
        challenger = str(max(rows, key=lambda r: (r["scored_at"] or 0, r["id"]))
                         ["model_version"])
    rows = [r for r in rows if r["model_version"] == challenger]
    if not rows:
        raise ValueError(f"no challenger scores of {challenger} in the store")
    cutoff = (int(time.time()) if now is None else now) - maturity_days * DAY
    mature = sorted((r for r in rows if (r["scored_at"] or 0) <= cutoff),
                    key=lambda r: r["application_id"])
    skipped = len(rows) - len(mature)
    if not mature:
        raise ValueError(f"none of the {len(rows)} applications {challenger} scored is "
                         f"{maturity_days:g} days old yet (--maturity-days)")
    apps = store.get_nodes("Application", [r["application_id"] for r in mature])
    y = np.asarray([(apps.get(r["application_id"]) is not None
                     and apps[r["application_id"]].properties.get("fraud_label") == "fraud")
                    for r in mature], dtype=bool)
    if y.all() or not y.any():
        raise ValueError(f"the {len(mature)} matured applications are all of one class "
                         f"({int(y.sum())} frauds): nothing to rank")
    p = {"champion": np.asarray([r["champion_fraud_probability"] for r in mature], float),
         "challenger": np.asarray([r["fraud_probability"] for r in mature], float)}
    point = {m: _metrics(y, p[m], None) for m in p}
    boot: dict[str, dict[str, list[np.ndarray]]] = {m: {k: [] for k in METRICS} for m in p}
    for w in stratified_resamples(y, resamples, np.random.default_rng(seed)):
        for m in p:
            for k, v in _metrics(y, p[m], w).items():
                boot[m][k].append(v)
    stacked = {m: {k: np.concatenate(v) for k, v in per.items()} for m, per in boot.items()}

    def interval(value: float, draws: np.ndarray) -> Interval:
        ok = draws[np.isfinite(draws)]
        if ok.size == 0:
            return Interval(value, math.nan, math.nan)
        lo, hi = np.percentile(ok, [2.5, 97.5])
        return Interval(value, float(lo), float(hi))

    champion = {k: interval(float(point["champion"][k][0]), stacked["champion"][k])
                for k in METRICS}
    contender = {k: interval(float(point["challenger"][k][0]), stacked["challenger"][k])
                 for k in METRICS}
    difference = {k: interval(float(point["challenger"][k][0] - point["champion"][k][0]),
                              stacked["challenger"][k] - stacked["champion"][k])
                  for k in METRICS}
    moves = Counter(f"{r['champion_decision']}->{r['decision']}" for r in mature
                    if r["champion_decision"] != r["decision"])
    changed = sum(moves.values())
    return ModelComparison(
        challenger, sorted({str(r["champion_version"]) for r in mature}), len(mature),
        int(y.sum()), skipped, champion, contender, difference,
        _wilson(changed, len(mature)), changed, dict(sorted(moves.items())))


def _metrics(y: np.ndarray, p: np.ndarray, w: np.ndarray | None) -> dict[str, np.ndarray]:
    ranking = ranking_metrics(y, p, w)
    probability = probability_metrics(y, p, w)
    return {"auprc": ranking["auprc"], "auroc": ranking["auroc"],
            "brier": probability["brier"], "ece": probability["ece"]}


def _wilson(k: int, n: int, z: float = 1.96) -> Interval:
    """The share ``k / n`` with its Wilson score interval."""
    share = k / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(share, max(0.0, centre - half), min(1.0, centre + half))


def render_comparison(c: ModelComparison) -> str:
    """The comparison as the lines ``riskgraph models compare`` prints."""
    lines = [f"challenger {c.challenger} beside champion {', '.join(c.champions)}: "
             f"{c.applications} matured applications, {c.frauds} frauds "
             f"({c.skipped_young} younger ones left out)",
             f"{'metric':8s} {'champion':>26s} {'challenger':>26s} {'difference':>26s}"]
    for k in METRICS:
        cells = [c.champion[k], c.challenger_metrics[k], c.difference[k]]
        lines.append(f"{k:8s} " + " ".join(
            f"{x.value:>8.4f} [{x.lo:7.4f}, {x.hi:7.4f}]" for x in cells))
    lines.append(f"decisions that would have changed: {c.changed_count} "
                 f"({c.changed.value:.1%}, 95% [{c.changed.lo:.1%}, {c.changed.hi:.1%}])"
                 + ("" if not c.transitions else ": " + ", ".join(
                     f"{k} {v}" for k, v in c.transitions.items())))
    return "\n".join(lines)
