"""`train_credit_model`: fit the :class:`~gnn.nn.credit_hazard.CreditHazardModel` of a world.

* Rows: every funded loan applied for before ``T2``, cut into complete periods as known at
  ``T2`` (:func:`gnn.data.loan_periods.loan_periods`): loans not mature at ``T2`` count for the
  periods they lived, never as non-defaults of their whole term.
* Cross-fitted: the applicants fall in ``folds`` parts (a hash of the position, the same for
  every loan of one applicant). Each part is held out once: trees fitted on the other parts
  stop early on its loans and give their periods out-of-fold log-odds. The Platt map of the
  hazard is fitted on every loan's out-of-fold log-odds, and the trees that score are refitted
  on every loan with the parts' mean number of trees: every loan teaches the trees, none
  calibrates on trees that saw it (on the development world, seed 9, default AUROC 0.711
  over three seeds against 0.696 for one held-out 30 %, docs/evaluation_notes.md). With
  ``folds=1`` the loans of a share of the applicants are held out instead, and the trees
  fitted on the others score.
* Tail and level are measured on the loans not labelled fraud before the cut (fraud loans
  default at once, and their share moves).
* Level: the root features that count history from the first event the graph holds (device
  age, orders, repayments, entity degrees) are immature for the only loans old enough to show
  a default, and mature for the applications scored later, so trees fitted on them rate the
  later ones safer than they are. The probability is therefore set, by one shift of every
  period's hazard log-odds, to average on the latest applications (``[T1, T2)``, no label read;
  those labelled or scored fraud left out, :func:`level_applications`)
  what the loans before ``T2`` not labelled fraud default over their periods (the pooled hazards, Kaplan-Meier
  style, with the same tail): the model ranks, the cohort sets the level — an assumption that
  the default rate of a cohort is stable, stated in the report.
* Tail spread: how fast an applicant's hazard log-odds narrows towards its product's after
  the learned periods, measured on the same recent applications as the level
  (:func:`tail_spread`, no label read).
* Inputs: the application root features of the chosen groups and, optionally, the GNN's
  logits (:data:`gnn.nn.credit_hazard.GNN_INPUTS`).
* Term: where the application's term is an input, the hazard's log-odds carry ``-log(term)``
  as an offset (a loan's risk spread over its instalments), the tail is measured on the loans
  whose term reaches the last learned period, the level's target is per term, and the loans
  whose every default period ended before the cut (their outcome known: the one-instalment
  loans of the window's first weeks), each scored by the trees that never saw its applicant,
  fit the slope of the probability's log-odds, the level kept (:func:`matured_slope`): the
  extrapolated periods leave the probabilities too spread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gnn.data.lending_graph import LendingGraph
from gnn.data.loan_periods import (DAY, PERIOD_DAYS, LoanPeriods, funded_before, loan_periods,
                                   term_pd, term_periods)
from gnn.errors import ModelError
from gnn.nn.credit_hazard import (PRODUCT_FEATURES, TERM_FEATURE, CreditHazardModel,
                                  term_offset)
from gnn.train.calibration import Calibrator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CreditTrainConfig:
    """How the credit model learns.

    Args:
        groups (tuple[str, ...]): root feature groups read (``own``, ``lookup``, ``graph``).
            (default: all three)
        gnn_inputs (tuple[str, ...]): GNN logits read. The fraud logit carries the fraud
            loans' default (they default at once, and their share moves); the GNN's default
            logit, in-sample on the training loans it learned from, made the model worse on
            the development world (AUROC 0.665 against 0.703). (default: the fraud logit)
        periods (int): periods the probability of default runs over: the longest term, 12
            monthly instalments, and the month until a missed one shows as default.
            (default: ``14``)
        min_period_rows (int): a period is learned when this many loans lived through it;
            the rows of later periods are too few to learn from and are left out (the tail
            stands for them). (default: ``500``)
        folds (int): parts of the applicants the trees are cross-fitted over (module
            docstring); ``1``: one hold-out (``holdout``, ``holdout_share``). (default: ``3``)
        holdout_share (float): with ``folds=1``, share of applicants whose loans calibrate
            (``holdout`` is ``"applicants"``), or of the loans old enough to have lived
            through the busiest default period (``"latest"``: the latest of them and every
            younger loan). (default: ``0.3``)
        holdout (str): with ``folds=1``, ``"applicants"`` or ``"latest"``.
            (default: ``"applicants"``)
        num_leaves, min_child_samples, learning_rate (int, int, float): tree shape and step.
            (default: ``15``, ``200``, ``0.03``)
        max_depth (int): deepest tree, ``-1`` for no bound. Six keeps the explanation's
            TreeSHAP (trees x leaves x depth squared) cheap and lost nothing on the development
            world (default AUROC 0.713 against 0.710 unbounded, mean of three seeds,
            cross-fitted). (default: ``6``)
        narrow_tail (bool): narrow the applicants' spread after the learned periods at the
            rate measured between the last two (:func:`tail_spread`). (default: ``True``)
        term_offset (bool): where the term is an input, offset the hazard's log-odds by
            ``-log(term)``: a loan's risk spread over its instalments, so the trees learn the
            risk shared by every term. (default: ``True``)
        matured_slope (bool): where the term is an input and ``min_matured_defaults``
            defaults show among the matured loans of held-out applicants, map the
            probability's log-odds by the slope fitted on them, the level kept
            (:func:`matured_slope`). (default: ``True``)
        min_matured_defaults (int): see ``matured_slope``. (default: ``30``)
        seed (int): seed of the trees and the hold-out hash. (default: ``0``)
        threads (int): LightGBM threads. (default: ``1``)
    """

    groups: tuple[str, ...] = ("own", "lookup", "graph")
    gnn_inputs: tuple[str, ...] = ("gnn_fraud_logit",)
    periods: int = 14
    min_period_rows: int = 500
    folds: int = 3
    holdout_share: float = 0.3
    holdout: str = "applicants"
    num_leaves: int = 15
    min_child_samples: int = 200
    learning_rate: float = 0.03
    max_depth: int = 6
    narrow_tail: bool = True
    term_offset: bool = True
    matured_slope: bool = True
    min_matured_defaults: int = 30
    seed: int = 0
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _user_bucket(users: np.ndarray, seed: int) -> np.ndarray:
    """Per entry, a fixed hash of the applicant's position and ``seed`` in ``[0, 10000)``."""
    h = (np.asarray(users, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
         + np.uint64(seed) * np.uint64(0xBF58476D1CE4E5B9))
    h ^= h >> np.uint64(31)
    return (h % np.uint64(10_000)).astype(np.float64)


def holdout_users(users: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Bool per entry: the applicant is held out (a fixed hash of its position and ``seed``)."""
    return _user_bucket(users, seed) < share * 10_000


def holdout_folds(users: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Per entry, the part ``0 .. folds - 1`` its applicant is held out in (the hash of
    :func:`holdout_users`: part 0 is the applicants ``holdout_users(users, 1 / folds, seed)``
    holds out)."""
    if folds < 1:
        raise ValueError(f"folds must be at least 1, got {folds}")
    # NOTE: buckets are below 10000, so every part is below ``folds``
    return (_user_bucket(users, seed) * folds / 10_000).astype(np.int64)


def fit_credit_model(rows: LoanPeriods, x_apps: np.ndarray, input_names: Sequence[str],
                     feature_names: Sequence[str], gnn_inputs: Sequence[str],
                     held_out: np.ndarray, config: CreditTrainConfig,
                     tail_rows: np.ndarray | None = None) -> CreditHazardModel:
    """Fit the hazard on ``rows`` whose inputs are ``x_apps[rows.application]``: the trees on
    the rows not held out, stopped early and calibrated on the held-out ones.

    Args:
        rows (LoanPeriods): hazard rows; ``rows.application`` indexes ``x_apps``.
        x_apps (np.ndarray): ``[A, F]`` inputs per application (:func:`credit_inputs`).
        input_names (Sequence[str]): the ``F`` column names.
        feature_names (Sequence[str]), gnn_inputs (Sequence[str]): how the columns were made.
        held_out (np.ndarray): bool per row: calibration rows.
        config (CreditTrainConfig): learner settings.
        tail_rows (np.ndarray, optional): bool per row: the rows the tail ratios are measured
            on. (default: all)

    Raises:
        ModelError: if the rows hold no default, or no default in their first learned period.
    """
    t = _TreeRows.of(rows, x_apps, input_names, config)
    fit, cal = ~held_out & t.keep, held_out & t.keep
    if rows.event[fit].sum() == 0 or rows.event[cal].sum() == 0:
        raise ModelError("the training or calibration loans hold no visible default")
    text, _ = _fit_trees(t, rows.event, fit, config, stop=cal)
    calibrator = Calibrator("platt").fit(_raw(text, t, cal), rows.event[cal])
    return _assemble(text, calibrator, rows, x_apps, input_names, feature_names, gnn_inputs,
                     t.fit_periods, config, tail_rows)


def cross_fit_credit_model(rows: LoanPeriods, x_apps: np.ndarray, input_names: Sequence[str],
                           feature_names: Sequence[str], gnn_inputs: Sequence[str],
                           fold: np.ndarray, config: CreditTrainConfig,
                           tail_rows: np.ndarray | None = None
                           ) -> tuple[CreditHazardModel, list[str]]:
    """Fit the hazard on every row of ``rows`` (module docstring, "Cross-fitted"): per part,
    trees fitted on the other parts and stopped early on it; the Platt map on every row's
    out-of-fold log-odds; the model's trees refitted on every row with the parts' mean number
    of trees.

    Args:
        rows, x_apps, input_names, feature_names, gnn_inputs, config, tail_rows: as
            :func:`fit_credit_model`.
        fold (np.ndarray): int per row: the part ``0 .. k - 1`` it is held out in (the same
            for every row of one applicant, :func:`holdout_folds`).

    Returns:
        tuple[CreditHazardModel, list[str]]: the model, and per part the trees (LightGBM model
        text) that never saw its rows: they score its applicants' loans out of fold
        (:func:`out_of_fold_pd`).

    Raises:
        ModelError: if a part or the rest holds no visible default.
    """
    t = _TreeRows.of(rows, x_apps, input_names, config)
    parts = int(fold.max()) + 1 if len(fold) else 0
    oof = np.zeros(len(rows))
    trees, sizes = [], []
    for k in range(parts):
        fit, stop = (fold != k) & t.keep, (fold == k) & t.keep
        if rows.event[fit].sum() == 0 or rows.event[stop].sum() == 0:
            raise ModelError(f"part {k} of the applicants or the rest holds no visible default")
        text, size = _fit_trees(t, rows.event, fit, config, stop=stop)
        oof[stop] = _raw(text, t, stop)
        trees.append(text)
        sizes.append(size)
    text, _ = _fit_trees(t, rows.event, t.keep, config, n_trees=int(round(np.mean(sizes))))
    calibrator = Calibrator("platt").fit(oof[t.keep], rows.event[t.keep])
    return _assemble(text, calibrator, rows, x_apps, input_names, feature_names, gnn_inputs,
                     t.fit_periods, config, tail_rows), trees


@dataclass(frozen=True)
class _TreeRows:
    """The trees' rows: inputs with the period column, the term's offset, and which rows lie in
    the learned periods (``keep``, the first :attr:`fit_periods`)."""

    x: np.ndarray
    offset: np.ndarray
    keep: np.ndarray
    fit_periods: int
    names: list[str]

    @classmethod
    def of(cls, rows: LoanPeriods, x_apps: np.ndarray, input_names: Sequence[str],
           config: CreditTrainConfig) -> _TreeRows:
        learned = np.flatnonzero(np.bincount(rows.period) >= config.min_period_rows)
        if learned.size == 0:
            raise ModelError(f"no period has {config.min_period_rows} loans living through it")
        fit_periods = int(learned.max()) + 1
        terms = _terms(x_apps, input_names)
        offset = (term_offset(terms[rows.application])
                  if config.term_offset and terms is not None else np.zeros(len(rows)))
        return cls(np.column_stack([x_apps[rows.application], rows.period.astype(np.float64)]),
                   offset, rows.period < fit_periods, fit_periods, [*input_names, "period"])


def _fit_trees(t: _TreeRows, event: np.ndarray, fit: np.ndarray, config: CreditTrainConfig, *,
               stop: np.ndarray | None = None, n_trees: int | None = None) -> tuple[str, int]:
    """Trees on rows ``fit``: stopped early on rows ``stop``, or ``n_trees`` of them. Returns
    the model text and its number of trees."""
    import lightgbm as lgb

    model = lgb.LGBMClassifier(
        n_estimators=n_trees or 3000, learning_rate=config.learning_rate,
        num_leaves=config.num_leaves, min_child_samples=config.min_child_samples,
        max_depth=config.max_depth, subsample=0.8, subsample_freq=1, colsample_bytree=0.5,
        reg_lambda=1.0, random_state=config.seed, n_jobs=config.threads, verbose=-1)
    # NOTE: no class weight: the trees' log-odds stay those of the hazard, so the Platt map
    # only corrects, and the periods' hazards stay comparable.
    if stop is None:
        model.fit(t.x[fit], event[fit], init_score=t.offset[fit], feature_name=t.names)
        return model.booster_.model_to_string(), model.booster_.num_trees()
    model.fit(t.x[fit], event[fit], init_score=t.offset[fit], eval_X=(t.x[stop],),
              eval_y=(event[stop],), eval_init_score=[t.offset[stop]],
              eval_metric="binary_logloss", feature_name=t.names,
              callbacks=[lgb.early_stopping(100, verbose=False)])
    best = int(model.best_iteration_ or model.booster_.num_trees())
    return model.booster_.model_to_string(num_iteration=best), best


def _raw(text: str, t: _TreeRows, sel: np.ndarray) -> np.ndarray:
    """The hazard log-odds of rows ``sel`` by trees ``text``, the offset included."""
    import lightgbm as lgb

    return (np.asarray(lgb.Booster(model_str=text).predict(t.x[sel], raw_score=True),
                       dtype=np.float64) + t.offset[sel])


def _assemble(text: str, calibrator: Calibrator, rows: LoanPeriods, x_apps: np.ndarray,
              input_names: Sequence[str], feature_names: Sequence[str],
              gnn_inputs: Sequence[str], fit_periods: int, config: CreditTrainConfig,
              tail_rows: np.ndarray | None) -> CreditHazardModel:
    """The model of trees ``text`` and their map, with the tail ratios of ``rows``."""
    events = np.bincount(rows.period, weights=rows.event)
    tail = rows if tail_rows is None else LoanPeriods(
        rows.application[tail_rows], rows.period[tail_rows], rows.event[tail_rows])
    return CreditHazardModel(text, calibrator, feature_names, gnn_inputs, fit_periods,
                             max(config.periods, fit_periods),
                             _tail_ratios(tail, x_apps, input_names, fit_periods),
                             int(np.argmax(events[:fit_periods])),
                             term_offset=config.term_offset)


def _tail_ratios(rows: LoanPeriods, x_apps: np.ndarray, input_names: Sequence[str],
                 fit_periods: int, min_events: int = 10, *,
                 by_product: bool = True) -> list[float]:
    """Per product, the observed hazard of the last learned period over the one before (the
    pooled ratio for a product with too few defaults in either, or for every product when not
    ``by_product``; 1 at most; 0, no tail, when not even the pooled ratio can be measured: a
    ratio guessed at 1 would carry one noisy period's hazard over every later month)."""
    if fit_periods < 2:
        return [0.0] * len(PRODUCT_FEATURES)
    # NOTE: a loan whose term ends before the last learned period cannot default in it; its
    # rows would read as a falling hazard, so only loans that reach it compare the two.
    reach = _reaches(x_apps[rows.application], input_names, fit_periods)
    last = (rows.period == fit_periods - 1) & reach
    before = (rows.period == fit_periods - 2) & reach

    def ratio(sel: np.ndarray) -> float | None:
        e1, e0 = rows.event[sel & last].sum(), rows.event[sel & before].sum()
        if e1 < min_events or e0 < min_events:
            return None
        return float((e1 / (sel & last).sum()) / (e0 / (sel & before).sum()))

    pooled = ratio(np.ones(len(rows), dtype=bool))
    out = []
    for name in PRODUCT_FEATURES:
        r = None
        if by_product and name in input_names:
            r = ratio(x_apps[rows.application, list(input_names).index(name)] > 0.5)
        out.append(min(1.0, r if r is not None else (pooled if pooled is not None else 0.0)))
    return out


def _terms(x: np.ndarray, input_names: Sequence[str]) -> np.ndarray | None:
    """The term column of inputs ``x`` as whole months (``0`` not stated); ``None`` where the
    term is not an input."""
    if TERM_FEATURE not in input_names:
        return None
    return np.rint(x[:, list(input_names).index(TERM_FEATURE)]).astype(np.int64)


def _reaches(x: np.ndarray, input_names: Sequence[str], fit_periods: int) -> np.ndarray:
    """Bool per row of inputs ``x``: the loan's term can default in the last learned period
    (every row where the term is not an input or not stated)."""
    terms = _terms(x, input_names)
    if terms is None:
        return np.ones(x.shape[0], dtype=bool)
    n = term_periods(terms)
    return np.asarray((n == 0) | (n >= fit_periods))


def cohort_pd(rows: LoanPeriods, periods: int, fit_periods: int, tail_ratio: float) -> float:
    """The default probability of the loans behind ``rows`` over ``periods``: the pooled
    hazard of each learned period, then the tail."""
    h = [float(rows.event[rows.period == j].mean()) if (rows.period == j).any() else 0.0
         for j in range(fit_periods)]
    h += [h[-1] * tail_ratio ** k for k in range(1, periods - fit_periods + 1)]
    return float(1.0 - np.prod(1.0 - np.asarray(h)))


def level_target(rows: LoanPeriods, x: np.ndarray, input_names: Sequence[str], periods: int,
                 fit_periods: int, recent: np.ndarray) -> float:
    """What the ``recent`` applications should default on average: the cohort probability of
    the loans behind ``rows`` (:func:`cohort_pd`, the pooled tail ratio), per term where the
    term is an input (the loans of each term over the periods it can default in, weighted by
    the recent applications' terms; the whole cohort for those that state none).
    """
    pooled = _tail_ratios(rows, x, input_names, fit_periods, by_product=False)[0]
    everyone = cohort_pd(rows, periods, fit_periods, pooled)
    term = _terms(x, input_names)
    if term is None or not np.any(recent):
        return everyone
    row_term = term[rows.application]
    per_app = np.full(x.shape[0], everyone)
    for t in np.unique(term[recent]):
        sel = row_term == t
        if t > 0 and sel.any():
            own = LoanPeriods(rows.application[sel], rows.period[sel], rows.event[sel])
            per_app[term == t] = cohort_pd(own, int(term_periods(t)), min(
                fit_periods, int(term_periods(t))), pooled)
    return float(per_app[recent].mean())


def matured_loans(graph: LendingGraph, apps: np.ndarray, cut: int, input_names: Sequence[str],
                  x: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    """Bool per application: a funded loan of a ``held_out`` applicant (bool per application:
    one whose loans some trees never saw) whose every period its term can default in ended
    before ``cut``: its outcome is known. No loan where the term is not an input."""
    terms = _terms(x, input_names)
    if terms is None:
        return np.zeros(apps.shape[0], dtype=bool)
    a = graph.attrs["Application"]
    reach = term_periods(terms)
    return np.asarray(funded_before(graph, cut)[apps] & (reach > 0)
                      & np.asarray(held_out, dtype=bool)
                      & (cut - a["ts"][apps] >= reach * PERIOD_DAYS * DAY))


def out_of_fold_pd(model: CreditHazardModel, trees: Sequence[str], x: np.ndarray,
                   fold: np.ndarray) -> np.ndarray:
    """The probability of default of rows ``x`` before the model's own map (``pd_slope``,
    ``pd_intercept``), each row's hazards from the trees of its part (``trees[fold]``, those
    that never saw it) under the model's hazard map, level and tail."""
    p = np.zeros(x.shape[0])
    for k, text in enumerate(trees):
        sel = np.asarray(fold) == k
        if sel.any():
            part = CreditHazardModel.from_state_dict({**model.state_dict(), "booster": text})
            p[sel] = term_pd(part.hazards(x[sel]))
    return p


def matured_slope(p: np.ndarray, defaulted: np.ndarray) -> float:
    """The slope of a logistic fit of ``defaulted`` on the log-odds of the probabilities ``p``
    of matured loans before the model's own map (:func:`out_of_fold_pd`): a Platt fit's slope,
    below 1 where the probabilities are too spread. Clipped to ``[0.25, 1.5]``."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    slope = Calibrator("platt").fit(np.log(p / (1 - p)), defaulted).slope
    return float(np.clip(slope, 0.25, 1.5))


def recalibration_intercept(model: CreditHazardModel, x_recent: np.ndarray,
                            target: float) -> float:
    """The :attr:`~CreditHazardModel.pd_intercept` that keeps the mean probability of
    ``x_recent`` at ``target`` under the model's slope (bisection)."""
    if x_recent.shape[0] == 0 or not 0 < target < 1:
        return 0.0
    return _solve_mean(model, "pd_intercept", x_recent, target, 0.0, 10.0, 50)


def tail_spread(model: CreditHazardModel, x: np.ndarray) -> tuple[float, list[float]]:
    """How the applicants' hazards narrow after the learned periods, measured on inputs ``x``
    (no label read): the ratio of the standard deviations of the last two learned periods'
    log-odds (at most 1; 1 with fewer than two learned periods or rows), and per product the
    mean log-odds of the last learned period (the pooled mean for a product absent from ``x``).

    NOTE: the tail continues that narrowing per period (:class:`CreditHazardModel`); on the
    development world (seed 9) the spread narrowed from 0.82 (period 2) to 0.69 (period 3).
    """
    last = model.fit_periods - 1
    x = x[_reaches(x, model.feature_names, model.fit_periods)]
    if last < 1 or x.shape[0] < 2:
        return 1.0, [0.0] * len(PRODUCT_FEATURES)
    base = model.shift
    model.shift = 0.0
    try:
        z1, z0 = model.hazard_logit(x, last), model.hazard_logit(x, last - 1)
    finally:
        model.shift = base
    spread = float(np.clip(z1.std() / max(float(z0.std()), 1e-12), 0.0, 1.0))
    centre = []
    for name in PRODUCT_FEATURES:
        own = (x[:, model.feature_names.index(name)] > 0.5 if name in model.feature_names
               else np.zeros(x.shape[0], dtype=bool))
        centre.append(float(z1[own].mean() if own.any() else z1.mean()))
    return spread, centre


def level_shift(model: CreditHazardModel, x_recent: np.ndarray, target: float) -> float:
    """The shift of every hazard log-odds that makes the mean probability of ``x_recent``
    equal ``target`` (bisection: the mean is increasing in the shift)."""
    if x_recent.shape[0] == 0 or not 0 < target < 1:
        return 0.0
    return _solve_mean(model, "shift", x_recent, target, model.shift, 5.0, 40)


def _solve_mean(model: CreditHazardModel, attr: str, x: np.ndarray, target: float, base: float,
                half_width: float, steps: int) -> float:
    """The value ``base + d`` of ``model.<attr>``, ``|d| <= half_width``, at which the mean
    probability of ``x`` is ``target`` (bisection: the mean increases with it); the attribute
    is left as it was."""
    kept = getattr(model, attr)
    lo, hi = -half_width, half_width
    try:
        for _ in range(steps):
            mid = (lo + hi) / 2
            setattr(model, attr, base + mid)
            if model.predict(x).mean() < target:
                lo = mid
            else:
                hi = mid
    finally:
        setattr(model, attr, kept)
    return base + (lo + hi) / 2


def level_applications(recent: np.ndarray, labelled: np.ndarray,
                       fraud_logit: np.ndarray | None) -> np.ndarray:
    """Bool per application: the recent applications the level is set on, those neither
    labelled fraud before the cut nor scored fraud by the GNN (fraud logit above 0).

    NOTE: the level's target is the default rate of the loans not labelled fraud, so the
    applications it is matched on must be as honest. The latest applications' fraud labels are
    mostly not in yet at the cut, and their fraud loans' probability of default is near 1: on
    the development world (seed 9) the 1 % of recent applications scored fraud pulled the
    shift from +0.81 to +0.38 and the mean probability of the test loans to 0.62 of their
    default rate (0.82 without them).
    """
    keep = np.asarray(recent, dtype=bool) & ~np.asarray(labelled, dtype=bool)
    if fraud_logit is not None:
        keep &= ~(np.asarray(fraud_logit, dtype=np.float64) > 0.0)
    return np.asarray(keep)


def _latest(rows: LoanPeriods, ts: np.ndarray, share: float) -> np.ndarray:
    """Bool per row: loans applied for after the ``1 - share`` quantile of the loans that
    lived through the busiest default period (a hold-out later in time, features as drifted
    as the data allows)."""
    events = np.bincount(rows.period, weights=rows.event)
    busiest = int(np.argmax(events))
    lived = np.unique(rows.application[rows.period == busiest])
    start = np.quantile(ts[lived], 1 - share)
    return np.asarray(ts[rows.application] >= start)


def credit_rows(graph: LendingGraph, applications: np.ndarray, cut: int, holdout_share: float,
                seed: int) -> tuple[LoanPeriods, np.ndarray]:
    """The hazard rows of ``applications`` at ``cut`` (``application`` re-indexed into
    ``applications``) and which rows are held out."""
    apps = np.asarray(applications, dtype=np.int64)
    rows = loan_periods(graph, apps, cut)
    local = np.searchsorted(apps, rows.application)
    users = graph.attrs["Application"]["user"][rows.application]
    return (LoanPeriods(local, rows.period, rows.event),
            holdout_users(users, holdout_share, seed))


def train_credit_model(graph: LendingGraph, applications: np.ndarray, root_x: np.ndarray,
                       root_names: Sequence[str], root_groups: Sequence[str], cut: int,
                       config: CreditTrainConfig | None = None, *,
                       fraud_logit: np.ndarray | None = None,
                       pd_logit: np.ndarray | None = None, recent_from: int | None = None,
                       log: Callable[[str], None] | None = None) -> CreditHazardModel:
    """Fit the credit model on the loans among ``applications`` (sorted graph positions, as
    the rows of ``root_x``) as known at ``cut`` (``T2``); the applications from
    ``recent_from`` (``T1``) set its level (module docstring; ``None``: no level shift).

    Raises:
        ModelError: see :func:`fit_credit_model`.
    """
    from gnn.nn.credit_hazard import credit_inputs

    cfg = config or CreditTrainConfig()
    say = log or logger.info
    apps = np.asarray(applications, dtype=np.int64)
    if apps.size and np.any(np.diff(apps) <= 0):
        raise ValueError("applications must be sorted and unique")
    names = [n for n, g in zip(root_names, root_groups, strict=True) if g in cfg.groups]
    x = credit_inputs(root_x, root_names, names, cfg.gnn_inputs, fraud_logit, pd_logit)
    rows, held = credit_rows(graph, apps, cut, cfg.holdout_share, cfg.seed)
    # NOTE: fraud loans default at their first instalment and their share changes over time;
    # the tail and the level are those of the loans not labelled fraud before the cut.
    labelled = graph.fraud_at["Application"][apps] < cut
    honest = ~labelled[rows.application]
    users = graph.attrs["Application"]["user"][apps]
    if cfg.folds > 1:
        fold = holdout_folds(users, cfg.folds, cfg.seed)
        model, trees = cross_fit_credit_model(rows, x, [*names, *cfg.gnn_inputs], names,
                                              cfg.gnn_inputs, fold[rows.application], cfg,
                                              tail_rows=honest)
    else:
        if cfg.holdout == "latest":
            held = _latest(rows, graph.attrs["Application"]["ts"][apps], cfg.holdout_share)
        model = fit_credit_model(rows, x, [*names, *cfg.gnn_inputs], names, cfg.gnn_inputs,
                                 held, cfg, tail_rows=honest)
        # NOTE: the trees that score saw every applicant but the held-out ones
        fold = np.where(holdout_users(users, cfg.holdout_share, cfg.seed), 0, -1)
        trees = [model.booster_text]
    ts = graph.attrs["Application"]["ts"][apps]
    recent = level_applications(ts >= (recent_from if recent_from is not None else ts.min()),
                                labelled, fraud_logit)
    if cfg.narrow_tail and model.periods > model.fit_periods:
        spread, centre = tail_spread(model, x[recent])
        model.tail_spread, model.tail_centre = spread, np.asarray(centre)
        say(f"credit model tail: the applicants' log-odds spread narrows by {spread:.3f} per "
            "period after the learned ones")
    if recent_from is not None:
        h_rows = LoanPeriods(rows.application[honest], rows.period[honest], rows.event[honest])
        target = level_target(h_rows, x, names, model.periods, model.fit_periods, recent)
        model.shift = level_shift(model, x[recent], target)
        say(f"credit model level: default probability {target:.4f} of the loans not labelled "
            f"fraud, shift {model.shift:+.3f} on {int(recent.sum())} recent applications "
            "neither labelled nor scored fraud")
        matured = matured_loans(graph, apps, cut, names, x, fold >= 0)
        defaulted = graph.default_at["Application"][apps][matured] < cut
        if cfg.matured_slope and defaulted.any() and (
                defaulted.sum() >= cfg.min_matured_defaults):
            slope = matured_slope(out_of_fold_pd(model, trees, x[matured], fold[matured]),
                                  defaulted)
            model.pd_slope = slope
            model.pd_intercept = recalibration_intercept(model, x[recent], target)
            say(f"credit model spread: slope {slope:.3f} of the log-odds on {int(matured.sum())}"
                " matured loans, each scored by trees that never saw its applicant, intercept "
                f"{model.pd_intercept:+.3f} keeping the level")
    say(f"credit model: {len(rows)} loan periods ({int(rows.event.sum())} defaults) of "
        f"{np.unique(rows.application).size} loans, {model!r}")
    return model


__all__ = ["CreditTrainConfig", "cohort_pd", "credit_rows", "cross_fit_credit_model",
           "fit_credit_model", "holdout_folds", "holdout_users", "level_applications",
           "level_shift", "level_target", "matured_loans", "matured_slope", "out_of_fold_pd",
           "recalibration_intercept", "tail_spread", "train_credit_model"]
