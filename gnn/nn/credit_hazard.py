"""`CreditHazardModel`: the probability of default of an application, from a discrete-time
hazard.

The learner (gradient-boosted trees) scores *defaults in period j given alive at its start*
(:mod:`gnn.data.loan_periods`) from the application's inputs and the period; a Platt map,
fitted on later loans' periods, calibrates that hazard; the probability of default over the
loan's life is ``1 - prod_j (1 - h_j)`` over :attr:`periods` periods.

Periods after the last one any training loan lived through (:attr:`fit_periods`) cannot be
learned before the cut; their hazard continues the applicant's own last learned hazard,
shrinking per period by its product's ratio of the last two learned baseline hazards
(:attr:`tail_ratio`, at most 1). The applicant's distance from its product's hazard narrows
too: in log-odds, by :attr:`tail_spread` per period after the last learned one (the ratio of the
spreads across applicants of the last two learned periods' log-odds, at most 1), around the
product's mean log-odds of the last learned period (:attr:`tail_centre`): the first months
that can be learned mix fraud, which defaults at once, and short loans, which can only default
early, so an applicant's early spread overstates its later one.

The application names its term (the root feature :data:`TERM_FEATURE`): the learner reads it
as an input, so a short loan's early default is told apart from a long loan's, and a loan's
hazard is zero after the periods its term can default in
(:func:`gnn.data.loan_periods.term_periods`). An application that does not state it (``0``)
gets every period, over the product's mix of terms as funded. Where the model was trained so
(:attr:`term_offset`), the learner's log-odds carry ``-log(term)`` as an offset: a loan's risk
spread over its instalments, so the trees learn the risk every term shares and the term tells
only *when*. Last, the probability's log-odds go through a map fitted on matured loans
(:meth:`recalibrate`: the slope that corrects the spread the extrapolated periods leave).

Inputs (:func:`credit_inputs`): the application's root features the model was trained on
(:attr:`feature_names`) and, where :attr:`gnn_inputs` says so, the GNN's fraud and default
logits of the same application.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np

from gnn.data.loan_periods import term_pd, term_periods
from gnn.errors import ModelError
from gnn.nn.tree_shap import TreeShap
from gnn.train.calibration import Calibrator

GNN_INPUTS: Final[tuple[str, ...]] = ("gnn_fraud_logit", "gnn_pd_logit")
PRODUCT_FEATURES: Final[tuple[str, ...]] = ("product_bnpl", "product_cash_loan",
                                            "product_merchant_loan", "product_sme_owner_loan")
"""The root features that one-hot the product, in :data:`graph.typing.PRODUCTS` order."""
TERM_FEATURE: Final = "term_months"
"""The root feature that holds the loan's term in monthly instalments (``0`` not stated)."""


def credit_inputs(root_x: np.ndarray, root_names: Sequence[str], feature_names: Sequence[str],
                  gnn_inputs: Sequence[str], fraud_logit: np.ndarray | None = None,
                  pd_logit: np.ndarray | None = None) -> np.ndarray:
    """The credit model's input matrix: the chosen root features, then the GNN logits.

    Raises:
        ModelError: if a chosen root feature or a needed GNN logit is missing.

    Shapes:
        - **output:** ``[R, len(feature_names) + len(gnn_inputs)]`` float64
    """
    index = {n: i for i, n in enumerate(root_names)}
    missing = [n for n in feature_names if n not in index]
    if missing:
        raise ModelError(f"the credit model needs root features the scorer lacks: {missing}")
    cols = [np.asarray(root_x, dtype=np.float64)[:, [index[n] for n in feature_names]]]
    for name, v in (("gnn_fraud_logit", fraud_logit), ("gnn_pd_logit", pd_logit)):
        if name in gnn_inputs:
            if v is None:
                raise ModelError(f"the credit model needs {name}")
            cols.append(np.asarray(v, dtype=np.float64).reshape(-1, 1))
    return np.concatenate(cols, axis=1)


class CreditHazardModel:
    """Discrete-time hazard of default over a loan's periods (see the module docstring).

    Args:
        booster (str): the LightGBM booster, as ``Booster.model_to_string`` writes it; its
            last input column is the period.
        calibrator (Calibrator): Platt map of the booster's raw hazard logit.
        feature_names (Sequence[str]): root features read, in column order.
        gnn_inputs (Sequence[str]): which of :data:`GNN_INPUTS` follow them.
        fit_periods (int): periods ``0 .. fit_periods - 1`` were learned.
        periods (int): periods the probability of default runs over.
        tail_ratio (Sequence[float]): per product (:data:`PRODUCT_FEATURES` order), the
            per-period ratio of the hazard after the learned periods, in ``[0, 1]``.
        reference_period (int): the period whose hazard the contributions explain.
        shift (float, optional): added to every period's calibrated hazard log-odds: the
            level set on recent applications (:func:`gnn.train.credit_trainer.level_shift`).
            (default: ``0``)
        tail_spread (float, optional): per period after the learned ones, the factor, in
            ``[0, 1]``, that narrows the applicant's last learned log-odds towards
            ``tail_centre``. (default: ``1``, no narrowing)
        tail_centre (Sequence[float], optional): per product, the log-odds (before ``shift``)
            the tail narrows towards; ``None`` for no narrowing. (default: ``None``)
        term_offset (bool, optional): add :meth:`offset` (``-log(term)``) to the learner's
            raw log-odds. (default: ``False``)
        pd_slope, pd_intercept (float, optional): the map of the probability's log-odds
            fitted on matured loans (:meth:`recalibrate`). (default: ``1``, ``0``)
    """

    def __init__(self, booster: str, calibrator: Calibrator, feature_names: Sequence[str],
                 gnn_inputs: Sequence[str], fit_periods: int, periods: int,
                 tail_ratio: Sequence[float], reference_period: int,
                 shift: float = 0.0, tail_spread: float = 1.0,
                 tail_centre: Sequence[float] | None = None, term_offset: bool = False,
                 pd_slope: float = 1.0, pd_intercept: float = 0.0) -> None:
        import lightgbm as lgb

        if not 1 <= fit_periods <= periods:
            raise ValueError(f"fit_periods must be in [1, periods], got {fit_periods}, "
                             f"{periods}")
        if len(tail_ratio) != len(PRODUCT_FEATURES):
            raise ValueError(f"tail_ratio needs one ratio per product, got {len(tail_ratio)}")
        if not 0.0 <= tail_spread <= 1.0:
            raise ValueError(f"tail_spread must be in [0, 1], got {tail_spread}")
        if tail_centre is not None and len(tail_centre) != len(PRODUCT_FEATURES):
            raise ValueError(f"tail_centre needs one log-odds per product, got "
                             f"{len(tail_centre)}")
        unknown = set(gnn_inputs) - set(GNN_INPUTS)
        if unknown:
            raise ValueError(f"gnn_inputs must be among {GNN_INPUTS}, got {sorted(unknown)}")
        self.booster_text = booster
        self.booster = lgb.Booster(model_str=booster)
        self.calibrator = calibrator
        self.feature_names = list(feature_names)
        self.gnn_inputs = [g for g in GNN_INPUTS if g in gnn_inputs]
        self.fit_periods = int(fit_periods)
        self.periods = int(periods)
        self.tail_ratio = np.clip(np.asarray(tail_ratio, dtype=np.float64), 0.0, 1.0)
        self.reference_period = int(min(reference_period, fit_periods - 1))
        self.shift = float(shift)
        self.tail_spread = float(tail_spread)
        self.tail_centre = (None if tail_centre is None
                            else np.asarray(tail_centre, dtype=np.float64))
        self._product = [self.feature_names.index(p) if p in self.feature_names else -1
                         for p in PRODUCT_FEATURES]
        self._term = (self.feature_names.index(TERM_FEATURE) if TERM_FEATURE in
                      self.feature_names else -1)
        self.term_offset = bool(term_offset) and self._term >= 0
        if not pd_slope > 0:
            raise ValueError(f"pd_slope must be positive, got {pd_slope}")
        self.pd_slope = float(pd_slope)
        self.pd_intercept = float(pd_intercept)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(inputs={len(self.input_names)}, "
                f"trees={self.booster.num_trees()}, fit_periods={self.fit_periods}, "
                f"periods={self.periods})")

    @property
    def input_names(self) -> list[str]:
        return [*self.feature_names, *self.gnn_inputs]

    def inputs(self, root_x: np.ndarray, root_names: Sequence[str],
               fraud_logit: np.ndarray | None = None,
               pd_logit: np.ndarray | None = None) -> np.ndarray:
        """:func:`credit_inputs` with this model's columns."""
        return credit_inputs(root_x, root_names, self.feature_names, self.gnn_inputs,
                             fraud_logit, pd_logit)

    def hazard_logit(self, x: np.ndarray, period: int | np.ndarray) -> np.ndarray:
        """Calibrated hazard log-odds of inputs ``x`` in ``period`` (clipped to the learned
        ones)."""
        x = np.asarray(x, dtype=np.float64)
        j = np.broadcast_to(np.minimum(np.asarray(period), self.fit_periods - 1),
                            (x.shape[0],)).astype(np.float64)
        raw = self.booster.predict(np.column_stack([x, j]), raw_score=True, num_threads=1)
        p = self.calibrator(np.asarray(raw, dtype=np.float64) + self.offset(x))
        p = np.clip(p, 1e-9, 1 - 1e-9)
        return np.asarray(np.log(p / (1 - p)) + self.shift)

    def _learned_logits(self, x: np.ndarray) -> np.ndarray:
        """:meth:`hazard_logit` of ``x`` in every learned period ``[fit_periods, R]``.

        NOTE: a few rows (an online batch) go in one prediction for all periods, a row's score
        not depending on the others': what a call per period gives, to the bit, at a fraction
        of the calls' cost; many rows go a period at a time, without copies of ``x``."""
        r = x.shape[0]
        if r * self.fit_periods > _ONE_CALL_ROWS:
            return np.stack([self.hazard_logit(x, j) for j in range(self.fit_periods)])
        return self.hazard_logit(np.tile(x, (self.fit_periods, 1)),
                                 np.repeat(np.arange(self.fit_periods), r)
                                 ).reshape(self.fit_periods, r)

    def offset(self, x: np.ndarray) -> np.ndarray:
        """Per row, what the term adds to the learner's raw log-odds: ``-log(term)`` where
        :attr:`term_offset` (a loan's risk spread over its instalments), else ``0`` ``[R]``."""
        if not self.term_offset:
            return np.zeros(x.shape[0])
        return term_offset(x[:, self._term])

    def term_periods(self, x: np.ndarray) -> np.ndarray:
        """Per row of inputs ``x``, the periods its term can default in; :attr:`periods` where
        the term is not stated or the model does not read it ``[R]`` int64."""
        if self._term < 0:
            return np.full(x.shape[0], self.periods, dtype=np.int64)
        n = term_periods(np.rint(x[:, self._term]))
        return np.where(n > 0, np.minimum(n, self.periods), self.periods)

    def hazards(self, x: np.ndarray) -> np.ndarray:
        """Hazard per period ``[R, periods]``: learned, then the product's tail; zero after
        the periods the loan's term can default in."""
        x = np.asarray(x, dtype=np.float64)
        h = self._hazards(x)
        if self._term < 0:
            return h
        return np.where(np.arange(self.periods)[None] < self.term_periods(x)[:, None], h, 0.0)

    def _hazards(self, x: np.ndarray) -> np.ndarray:
        logits = self._learned_logits(x)
        learned = _sigmoid(logits.T)
        tail = self.periods - self.fit_periods
        if tail == 0:
            return learned
        ratio = np.ones(x.shape[0])
        centre = np.full(x.shape[0], np.nan)
        for k, col in enumerate(self._product):
            if col >= 0:
                own = x[:, col] > 0.5
                ratio = np.where(own, self.tail_ratio[k], ratio)
                if self.tail_centre is not None:
                    centre = np.where(own, self.tail_centre[k], centre)
        steps = np.arange(1, tail + 1, dtype=np.float64)
        last = np.broadcast_to(learned[:, -1:], (x.shape[0], tail))
        if self.tail_centre is not None and self.tail_spread < 1.0:
            z = logits[-1]
            # NOTE: an applicant of no known product keeps its own spread (centre = itself)
            c = np.where(np.isnan(centre), z, centre + self.shift)
            last = _sigmoid(c[:, None] + self.tail_spread ** steps[None] * (z - c)[:, None])
        return np.concatenate([learned, last * ratio[:, None] ** steps[None]], axis=1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probability of default over the loan's life ``[R]`` (float64)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[0] == 0:
            return np.zeros(0)
        return self.recalibrate(term_pd(self.hazards(x)))

    def recalibrate(self, pd: np.ndarray) -> np.ndarray:
        """The probability over the loan's life through the map fitted on matured loans:
        ``sigmoid(pd_slope * logit(pd) + pd_intercept)`` (the identity by default)."""
        if self.pd_slope == 1.0 and self.pd_intercept == 0.0:
            return pd
        p = np.clip(pd, 1e-12, 1 - 1e-12)
        return _sigmoid(self.pd_slope * np.log(p / (1 - p)) + self.pd_intercept)

    def contributions(self, x: np.ndarray, pd: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Per input, its share of the default log-odds (TreeSHAP of the hazard log-odds in
        :attr:`reference_period`, through the Platt slope), and the log-odds it starts from.

        Args:
            x (np.ndarray): :meth:`inputs` ``[R, len(input_names)]``.
            pd (np.ndarray, optional): :meth:`predict` of ``x`` where the caller has it (the
                scorer computed it for the verdict); computed here otherwise. (default: ``None``)

        NOTE: the probability over the term moves with the hazard of every period and the
        periods share their trees, so the reference period's attribution ranks the reasons of
        the probability; the shares sum to ``logit(pd) - baseline`` exactly by construction of
        the returned baseline.

        Shapes:
            - **output:** ``[R, len(input_names)]`` and ``[R]``
        """
        x = np.asarray(x, dtype=np.float64)
        j = np.full((x.shape[0], 1), float(self.reference_period))
        contrib = np.asarray(self._tree_shap(np.column_stack([x, j])))
        slope = self.calibrator.slope
        shares = contrib[:, :x.shape[1]] * slope
        # NOTE: the term's offset stays in the baseline: it moves the reference period's hazard
        # (-log(term)) but hardly the probability over the term's periods, which it spreads over
        shares *= self.pd_slope
        pd = np.clip(self.predict(x) if pd is None else np.asarray(pd, dtype=np.float64),
                     1e-9, 1 - 1e-9)
        return shares, np.log(pd / (1 - pd)) - shares.sum(axis=1)

    @functools.cached_property
    def _tree_shap(self) -> Callable[[np.ndarray], np.ndarray]:
        return TreeShap.of(self.booster)

    def state_dict(self) -> dict[str, Any]:
        return {"booster": self.booster_text, "calibrator": self.calibrator.state_dict(),
                "feature_names": self.feature_names, "gnn_inputs": self.gnn_inputs,
                "fit_periods": self.fit_periods, "periods": self.periods,
                "tail_ratio": self.tail_ratio.tolist(),
                "reference_period": self.reference_period, "shift": self.shift,
                "tail_spread": self.tail_spread,
                "tail_centre": None if self.tail_centre is None else self.tail_centre.tolist(),
                "term_offset": self.term_offset, "pd_slope": self.pd_slope,
                "pd_intercept": self.pd_intercept}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> CreditHazardModel:
        return cls(state["booster"], Calibrator.from_state_dict(state["calibrator"]),
                   state["feature_names"], state["gnn_inputs"], state["fit_periods"],
                   state["periods"], state["tail_ratio"], state["reference_period"],
                   state.get("shift", 0.0), state.get("tail_spread", 1.0),
                   state.get("tail_centre"), state.get("term_offset", False),
                   state.get("pd_slope", 1.0), state.get("pd_intercept", 0.0))


_ONE_CALL_ROWS: Final = 4096
"""Rows up to which :meth:`CreditHazardModel.hazards` predicts every learned period in one
call."""


def term_offset(term_months: np.ndarray) -> np.ndarray:
    """``-log(term)`` per loan, ``0`` where the term is not stated: the offset of the hazard's
    log-odds that spreads a loan's risk over its instalments."""
    t = np.rint(np.asarray(term_months, dtype=np.float64))
    return np.asarray(np.where(t > 0, -np.log(np.maximum(t, 1.0)), 0.0))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


__all__ = ["CreditHazardModel", "GNN_INPUTS", "PRODUCT_FEATURES", "TERM_FEATURE",
           "credit_inputs", "term_offset"]
