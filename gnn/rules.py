"""`RiskRules`: the transparent points model, read off the one feature definition.

Every rule reads the application root features that :class:`gnn.features.risk_features.RiskFeatures`
computes for the model (:meth:`~gnn.features.risk_features.RiskFeatures.application_features`), so the
rules, the model and whatever explains a verdict see the same numbers: there is no second
computation of a risk signal. A rule's points are its attribution: the fraud (default) log-odds
of an application are a base plus the points of the rules that fire, and each rule's name is
the stable reason code of the service's catalogue (``serving/reasons.py``). The weights are
expert priors, not fitted on outcomes; the probabilities are log-odds through a logistic, not
calibrated.

Fraud log-odds start from ``logit(0.01)``:

============================  ========  ==========================================================
code                          points    when (feature columns)
============================  ========  ==========================================================
SELF_CONFIRMED_FRAUD          +8.0      the applicant is confirmed fraud (``self_fraud_known``)
SHARED_ENTITY_FRAUD           +2.0      per confirmed-fraud account sharing a device, phone or
                                        address (at most 3 counted; ``*_fraud_neighbours``)
SHARED_ENTITY_DENSE           +1.0      per group: a device or phone shared with >= 3 other
                                        accounts, an address with >= 5, none of them confirmed
                                        fraud (``*_shared_accounts``: hubs are not counted)
ATO_NEW_DEVICE                +0.8      an account with history on a device it first used less
                                        than 7 days ago or never (``new_device_7d``)
ATO_FAR_LOCATION              +1.5      >= 300 km from the usual login place (>= 3 logins) and
                                        from home; ``ATO_FAR_FROM_USUAL`` / ``_FROM_HOME`` when
                                        only one of them is known (``dist_*_log_km``)
ATO_AMOUNT_SPIKE              +1.5/2.0  amount >= 5x / >= 10x the median of the applicant's
                                        recent orders and applications (>= 2 of them)
ATO_PATTERN                   +1.5      the three above at once on an account >= 90 days old
APPLICATION_VELOCITY          +0.8      per application by the user in the 24 h before (max 3)
THIN_FILE                     +0.5      account <= 30 days old with <= 2 orders
RISKY_IP                      +1.0      a datacenter IP (``ip_kind_datacenter``)
EMULATOR_DEVICE               +1.5      an emulator (``device_os_emulator``)
MERCHANT_CONFIRMED_FRAUD      +3.0      the merchant is confirmed fraud
MERCHANT_HIGH_REFUNDS         +1.0      >= 30 % of the merchant's >= 10 orders of the last 30
                                        days returned
MERCHANT_SALES_SPIKE          +1.5      merchant loan, the merchant's daily sales of the last
                                        14 days >= 3x those of the 76 days before
MERCHANT_NOT_OWNED            +2.0      merchant loan for a known merchant the user does not own
============================  ========  ==========================================================

Default log-odds start from the product's base rate (bnpl 4 %, cash loan 5 %, merchant loan
5 %, SME owner loan 6 %) and add: ``SELF_DEFAULT`` +4.0; ``LATE_REPAYMENTS`` +3.0 x the late
or missed share + 0.5 per missed (at most 3); ``CONTACT_DEFAULT`` +0.8 per emergency contact in
default (at most 3); ``HIGH_RETURN_RATE`` +0.5 (>= 4 orders, >= half returned); ``THIN_FILE``
+0.4; in the applicant's favour ``GOOD_REPAYMENT_HISTORY`` -0.7 (>= 3 repayments, none late)
and ``ESTABLISHED_CUSTOMER`` -0.3 (>= 365 days, >= 10 orders). Every feature counts only what
was known before the application (labels included), so historical applications are scored as
they would have been then.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from gnn.attribution import RootAttribution
from gnn.data.lending_graph import LendingGraph
from gnn.features.risk_features import ApplicationQueries, RiskFeatures
from gnn.pipeline import Scores

RULES_VERSION: Final = "rules-2.0"
"""The version a verdict decided by the rules alone records as its model version."""

FRAUD_BASE: Final = math.log(0.01 / 0.99)
PD_BASE: Final[dict[str, float]] = {
    "bnpl": math.log(0.04 / 0.96),
    "cash_loan": math.log(0.05 / 0.95),
    "merchant_loan": math.log(0.05 / 0.95),
    "sme_owner_loan": math.log(0.06 / 0.94),
}
"""Default log-odds before any rule, per product (an unknown product gets the mean)."""

SHARED_MIN_ACCOUNTS: Final[dict[str, int]] = {"device": 3, "phone": 3, "address": 5}
FAR_KM: Final = 300.0
SPIKE_RATIO: Final = 5.0
BIG_SPIKE_RATIO: Final = 10.0
MIN_LOGINS: Final = 3
MIN_AMOUNTS: Final = 2
ATO_MIN_TENURE_DAYS: Final = 90.0
THIN_MAX_TENURE_DAYS: Final = 30.0
THIN_MAX_ORDERS: Final = 2

Head = Literal["fraud", "pd"]

# NOTE: features are float32 logs of counts and distances; a threshold compared on the log
# scale must forgive the last float32 bit (log1p(300) is 5.71 +- 5e-7).
_TOL: Final = 1e-5


class _Columns:
    """Named float64 columns of a feature matrix, with the inverse of its log scales."""

    def __init__(self, x: np.ndarray, index: Mapping[str, int]) -> None:
        self._x = x
        self._index = index
        self.rows = int(x.shape[0])

    def __call__(self, name: str) -> np.ndarray:
        return np.asarray(self._x[:, self._index[name]], dtype=np.float64)

    def flag(self, name: str) -> np.ndarray:
        return self(name) > 0.5

    def count(self, name: str) -> np.ndarray:
        """A ``log1p`` count column back as a count."""
        return np.asarray(np.rint(np.expm1(np.maximum(self(name), 0.0))), dtype=np.float64)

    def at_least_log1p(self, name: str, value: float) -> np.ndarray:
        return self(name) >= math.log1p(value) - _TOL

    def tenure_days(self) -> np.ndarray:
        return np.asarray(np.expm1(np.maximum(self("tenure_log_d"), 0.0)), dtype=np.float64)


@dataclass(frozen=True)
class Rule:
    """One rule of the points model.

    Args:
        code (str): its stable reason code (the catalogue's).
        head (str): ``"fraud"`` or ``"pd"``.
        needs (tuple[str, ...]): the feature columns it reads.
        points (Callable): per application, the points it adds (0 when it does not fire).
    """

    code: str
    head: Head
    needs: tuple[str, ...]
    points: Callable[[_Columns], np.ndarray]


def _thin(c: _Columns) -> np.ndarray:
    return ((c.tenure_days() <= THIN_MAX_TENURE_DAYS + _TOL)
            & (c.count("orders_log") <= THIN_MAX_ORDERS))


def _new_device(c: _Columns) -> np.ndarray:
    # NOTE: "first used less than 7 days ago", not "never": a takeover logs in on its new
    # device before it applies, so at the application the device is days or hours old.
    history = ((c.count("login_history_log") > 0) | (c.count("orders_log") > 0)
               | (c.count("devices_log") > 0))
    return c.flag("new_device_7d") & history


def _far(c: _Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whether the usual place and home are known, and whether the application is far from
    every known one of them."""
    usual = ~c.flag("dist_usual_missing") & (c.count("login_history_log") >= MIN_LOGINS)
    home = ~c.flag("dist_home_missing")
    far_usual = c.at_least_log1p("dist_usual_log_km", FAR_KM)
    far_home = c.at_least_log1p("dist_home_log_km", FAR_KM)
    far = (usual | home) & (~usual | far_usual) & (~home | far_home)
    return usual, home, far


def _spike_ratio(c: _Columns) -> np.ndarray:
    enough = c.count("amount_history_log") >= MIN_AMOUNTS
    return np.where(enough, np.exp(c("amount_ratio_log")), 0.0)


def _ato_pattern(c: _Columns) -> np.ndarray:
    spike = _spike_ratio(c) >= SPIKE_RATIO * (1 - _TOL)
    old = c.tenure_days() >= ATO_MIN_TENURE_DAYS - _TOL
    return np.asarray(_new_device(c) & _far(c)[2] & spike & old, dtype=bool)


def _shared_fraud(c: _Columns) -> np.ndarray:
    frauds = sum(c.count(f"{g}_fraud_neighbours") for g in SHARED_MIN_ACCOUNTS)
    return 2.0 * np.minimum(frauds, 3)


def _shared_dense(c: _Columns) -> np.ndarray:
    out = np.zeros(c.rows)
    for g, least in SHARED_MIN_ACCOUNTS.items():
        dense = ((c.count(f"{g}_shared_accounts") >= least)
                 & (c.count(f"{g}_fraud_neighbours") == 0))
        out += dense
    return out


def _repayments(c: _Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    on_time = c.count("repaid_on_time_log")
    late = c.count("repaid_late_log")
    missed = c.count("repaid_missed_log")
    return on_time + late + missed, late + missed, missed


def _late_repayments(c: _Columns) -> np.ndarray:
    total, late, missed = _repayments(c)
    share = np.where(total > 0, late / np.maximum(total, 1), 0.0)
    return np.where(late > 0, 3.0 * share + 0.5 * np.minimum(missed, 3), 0.0)


def _good_repayments(c: _Columns) -> np.ndarray:
    total, late, _ = _repayments(c)
    return np.where((late == 0) & (total >= 3), -0.7, 0.0)


def _rule(code: str, head: Head, needs: Sequence[str],
          points: Callable[[_Columns], np.ndarray]) -> Rule:
    return Rule(code, head, tuple(needs), points)


_SHARED_FRAUD_COLS = tuple(f"{g}_fraud_neighbours" for g in SHARED_MIN_ACCOUNTS)
_NEW_DEVICE_COLS = ("new_device_7d", "login_history_log", "orders_log", "devices_log")
_FAR_COLS = ("dist_usual_missing", "dist_home_missing", "dist_usual_log_km",
             "dist_home_log_km", "login_history_log")
_SPIKE_COLS = ("amount_history_log", "amount_ratio_log")
_THIN_COLS = ("tenure_log_d", "orders_log")
_REPAID_COLS = ("repaid_on_time_log", "repaid_late_log", "repaid_missed_log")

RULES: Final[tuple[Rule, ...]] = (
    # -- fraud: the applicant's own label and the graph around it
    _rule("SELF_CONFIRMED_FRAUD", "fraud", ("self_fraud_known",),
          lambda c: 8.0 * c.flag("self_fraud_known")),
    _rule("SHARED_ENTITY_FRAUD", "fraud", _SHARED_FRAUD_COLS, _shared_fraud),
    _rule("SHARED_ENTITY_DENSE", "fraud",
          (*_SHARED_FRAUD_COLS, *(f"{g}_shared_accounts" for g in SHARED_MIN_ACCOUNTS)),
          _shared_dense),
    # -- account takeover: device, place, amount
    _rule("ATO_NEW_DEVICE", "fraud", _NEW_DEVICE_COLS, lambda c: 0.8 * _new_device(c)),
    _rule("ATO_FAR_LOCATION", "fraud", _FAR_COLS,
          lambda c: 1.5 * (_far(c)[2] & _far(c)[0] & _far(c)[1])),
    _rule("ATO_FAR_FROM_USUAL", "fraud", _FAR_COLS,
          lambda c: 1.5 * (_far(c)[2] & _far(c)[0] & ~_far(c)[1])),
    _rule("ATO_FAR_FROM_HOME", "fraud", _FAR_COLS,
          lambda c: 1.5 * (_far(c)[2] & ~_far(c)[0] & _far(c)[1])),
    _rule("ATO_AMOUNT_SPIKE", "fraud", _SPIKE_COLS,
          lambda c: np.select([_spike_ratio(c) >= BIG_SPIKE_RATIO * (1 - _TOL),
                               _spike_ratio(c) >= SPIKE_RATIO * (1 - _TOL)], [2.0, 1.5], 0.0)),
    _rule("ATO_PATTERN", "fraud", (*_NEW_DEVICE_COLS, *_FAR_COLS, *_SPIKE_COLS, "tenure_log_d"),
          lambda c: 1.5 * _ato_pattern(c)),
    # -- velocity, thin file, device and IP
    _rule("APPLICATION_VELOCITY", "fraud", ("user_apps_24h",),
          lambda c: 0.8 * np.minimum(c.count("user_apps_24h"), 3)),
    _rule("THIN_FILE", "fraud", _THIN_COLS, lambda c: 0.5 * _thin(c)),
    _rule("RISKY_IP", "fraud", ("ip_kind_datacenter",),
          lambda c: 1.0 * c.flag("ip_kind_datacenter")),
    _rule("EMULATOR_DEVICE", "fraud", ("device_os_emulator",),
          lambda c: 1.5 * c.flag("device_os_emulator")),
    # -- the merchant
    _rule("MERCHANT_CONFIRMED_FRAUD", "fraud", ("merchant_fraud_known",),
          lambda c: 3.0 * c.flag("merchant_fraud_known")),
    _rule("MERCHANT_HIGH_REFUNDS", "fraud",
          ("merchant_orders_30d_log", "merchant_returned_share_30d"),
          lambda c: 1.0 * ((c.count("merchant_orders_30d_log") >= 10)
                           & (c("merchant_returned_share_30d") >= 0.3 - _TOL))),
    _rule("MERCHANT_SALES_SPIKE", "fraud", ("product_merchant_loan", "merchant_sales_spike"),
          lambda c: 1.5 * (c.flag("product_merchant_loan")
                           & (c("merchant_sales_spike") >= 3.0 - _TOL))),
    _rule("MERCHANT_NOT_OWNED", "fraud",
          ("product_merchant_loan", "has_merchant", "merchant_size_unknown", "owns_merchant"),
          lambda c: 2.0 * (c.flag("product_merchant_loan") & c.flag("has_merchant")
                           & ~c.flag("merchant_size_unknown") & ~c.flag("owns_merchant"))),
    # -- credit
    _rule("SELF_DEFAULT", "pd", ("self_default_known",),
          lambda c: 4.0 * c.flag("self_default_known")),
    _rule("LATE_REPAYMENTS", "pd", _REPAID_COLS, _late_repayments),
    _rule("CONTACT_DEFAULT", "pd", ("contacts_default_log",),
          lambda c: 0.8 * np.minimum(c.count("contacts_default_log"), 3)),
    _rule("HIGH_RETURN_RATE", "pd", ("orders_log", "return_rate"),
          lambda c: 0.5 * ((c.count("orders_log") >= 4) & (c("return_rate") >= 0.5 - _TOL))),
    _rule("THIN_FILE", "pd", _THIN_COLS, lambda c: 0.4 * _thin(c)),
    _rule("GOOD_REPAYMENT_HISTORY", "pd", _REPAID_COLS, _good_repayments),
    _rule("ESTABLISHED_CUSTOMER", "pd", _THIN_COLS,
          lambda c: -0.3 * ((c.tenure_days() >= 365 - _TOL) & (c.count("orders_log") >= 10))),
)
"""Every rule, fraud first; the order is the column order of :class:`RuleScores`."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)), dtype=np.float64)


@dataclass(frozen=True)
class RuleScores:
    """Scores of a batch of applications under the rules.

    Args:
        fraud_logit (np.ndarray): float64 fraud log-odds ``[Q]``.
        pd_logit (np.ndarray): float64 default log-odds ``[Q]``.
        fraud_points (np.ndarray): float64 ``[Q, len(fraud_rules)]``: each rule's points.
        pd_points (np.ndarray): float64 ``[Q, len(pd_rules)]``.
        fraud_rules (tuple[str, ...]): reason codes of the fraud columns.
        pd_rules (tuple[str, ...]): reason codes of the default columns.
    """

    fraud_logit: np.ndarray
    pd_logit: np.ndarray
    fraud_points: np.ndarray
    pd_points: np.ndarray
    fraud_rules: tuple[str, ...]
    pd_rules: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.fraud_logit.shape[0])

    @property
    def fraud(self) -> np.ndarray:
        """Fraud probability ``[Q]`` (log-odds through a logistic, not calibrated)."""
        return _sigmoid(self.fraud_logit)

    @property
    def pd(self) -> np.ndarray:
        """Probability of default ``[Q]``."""
        return _sigmoid(self.pd_logit)

    def reasons(self, i: int, head: Head = "fraud") -> list[tuple[str, float]]:
        """The rules that fired for application ``i``, strongest first: ``(code, points)``."""
        points = self.fraud_points if head == "fraud" else self.pd_points
        codes = self.fraud_rules if head == "fraud" else self.pd_rules
        row = points[i]
        order = np.argsort(-np.abs(row), kind="stable")
        return [(codes[j], float(row[j])) for j in order if row[j] != 0.0]


class RiskRules:
    """The points model (module docstring) over application root features.

    Args:
        feature_names (Sequence[str]): the columns of the matrices :meth:`score` gets, as
            :meth:`gnn.features.risk_features.RiskFeatures.application_features` names them.

    Raises:
        ValueError: if a column a rule reads is missing.
    """

    def __init__(self, feature_names: Sequence[str]) -> None:
        self.feature_names = tuple(feature_names)
        self._index = {n: i for i, n in enumerate(self.feature_names)}
        needed = sorted({n for r in RULES for n in r.needs} | {f"product_{p}" for p in PD_BASE})
        missing = [n for n in needed if n not in self._index]
        if missing:
            raise ValueError(f"feature_names lacks the columns the rules read: {missing}")
        self.fraud_rules = tuple(r.code for r in RULES if r.head == "fraud")
        self.pd_rules = tuple(r.code for r in RULES if r.head == "pd")

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({RULES_VERSION!r}, fraud_rules="
                f"{len(self.fraud_rules)}, pd_rules={len(self.pd_rules)})")

    @property
    def version(self) -> str:
        return RULES_VERSION

    def score(self, x: np.ndarray) -> RuleScores:
        """Fraud and default log-odds with each rule's points.

        Args:
            x (np.ndarray): raw (not normalised) application root features ``[Q, F]``.

        Shapes:
            - **input:** ``[Q, F]`` with ``F = len(feature_names)``
            - **output:** log-odds ``[Q]``, points ``[Q, R_fraud]`` and ``[Q, R_pd]``

        Raises:
            ValueError: if ``x`` is not ``[Q, len(feature_names)]``.
        """
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(f"x must be [Q, {len(self.feature_names)}], got {x.shape}")
        c = _Columns(x, self._index)
        q = x.shape[0]
        heads: dict[str, list[np.ndarray]] = {"fraud": [], "pd": []}
        for r in RULES:
            heads[r.head].append(np.broadcast_to(
                np.asarray(r.points(c), dtype=np.float64), (q,)))
        fraud_points = np.stack(heads["fraud"], axis=1)
        pd_points = np.stack(heads["pd"], axis=1)
        products = np.stack([c.flag(f"product_{p}") for p in PD_BASE], axis=1)
        base = np.array(list(PD_BASE.values()))
        pd_base = np.where(products.any(axis=1), products @ base, float(base.mean()))
        return RuleScores(FRAUD_BASE + fraud_points.sum(axis=1), pd_base + pd_points.sum(axis=1),
                          fraud_points, pd_points, self.fraud_rules, self.pd_rules)


@dataclass(frozen=True)
class RulesPrepared:
    """Application root features for the rules (no neighbourhood: the rules read none)."""

    root_names: list[str]
    root_x: np.ndarray
    root_groups: list[str]

    def __len__(self) -> int:
        return int(self.root_x.shape[0])


@dataclass(frozen=True)
class RulesAttributions:
    """The rules' points as attributions of their log-odds, per root feature: each rule's
    points are shared by the features it read that hold a value (all of them if none does),
    so the rules' reasons are rendered by the same families as the model's."""

    scores: Any
    roots: list[RootAttribution]

    def root(self, i: int) -> RootAttribution:
        return self.roots[i]


class RulesModel:
    """:class:`RiskRules` as a scoring model: what the service runs while no model is
    promoted, over the same features and the same live graph state as the GNN.

    Args:
        kernel_hub_degree (int, optional): hub cap of the shared-entity kernel (the GNN
            pipeline's default). (default: ``20``)
    """

    version: str = RULES_VERSION

    def __init__(self, *, kernel_hub_degree: int = 20) -> None:
        self.kernel_hub_degree = kernel_hub_degree
        self._bound: tuple[int, RiskFeatures] | None = None
        self._rules: RiskRules | None = None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.version!r})"

    def prepare_applications(self, graph: LendingGraph, apps: ApplicationQueries
                             ) -> RulesPrepared:
        """The applications' root features as of their own times."""
        if self._bound is None or self._bound[0] != id(graph):
            self._bound = (id(graph), RiskFeatures(graph, hub_degree=self.kernel_hub_degree))
        x, names, groups = self._bound[1].application_features(apps)
        return RulesPrepared(names, x, groups)

    def predict(self, prepared: RulesPrepared, *, device: str = "cpu") -> Scores:
        """Fraud and default probabilities (log-odds through a logistic, not calibrated)."""
        del device  # NOTE: a handful of array operations: the CPU
        s = self._score(prepared)
        return Scores(s.fraud, s.pd, s.fraud_logit.astype(np.float32),
                      s.pd_logit.astype(np.float32), np.zeros((len(s), 0), np.float32))

    def attribute(self, prepared: RulesPrepared, *, device: str = "cpu") -> RulesAttributions:
        """Scores and each root's points by feature (:class:`RulesAttributions`)."""
        s = self._score(prepared)
        scores = self.predict(prepared, device=device)
        names = prepared.root_names
        roots = []
        for i in range(len(prepared)):
            values = dict(zip(names, prepared.root_x[i].astype(np.float64).tolist(),
                              strict=True))
            heads: dict[str, dict[str, float]] = {"fraud": {}, "pd": {}}
            for head, points, codes in (("fraud", s.fraud_points, s.fraud_rules),
                                        ("pd", s.pd_points, s.pd_rules)):
                for j, code in enumerate(codes):
                    p = float(points[i, j])
                    if p == 0.0:
                        continue
                    carriers = _CARRIERS[(code, head)]
                    held = [n for n in carriers if values[n] != 0.0] or list(carriers)
                    for n in held:
                        heads[head][n] = heads[head].get(n, 0.0) + p / len(held)
            roots.append(RootAttribution(values, heads["fraud"], heads["pd"], {}, {},
                                         float(s.fraud_logit[i]), float(s.pd_logit[i]),
                                         float(FRAUD_BASE),
                                         float(s.pd_logit[i] - s.pd_points[i].sum())))
        return RulesAttributions(scores, roots)

    def _score(self, prepared: RulesPrepared) -> RuleScores:
        if self._rules is None or self._rules.feature_names != tuple(prepared.root_names):
            self._rules = RiskRules(prepared.root_names)
        return self._rules.score(prepared.root_x)


_CARRIERS: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    (r.code, r.head): tuple(n for n in r.needs if not n.startswith("product_")) or r.needs
    for r in RULES
}
"""Per rule, the features its points are attributed to (the product is context, not a
reason: :data:`serving.explanations.IGNORED`)."""
