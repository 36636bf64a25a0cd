"""The decision policy: per-product thresholds, limit formula and caps, from a versioned file.

Scores come from the model; what the business does with them is configuration
(``serving/policy.toml``), validated when the service starts. :func:`decide` is a pure
function of the policy, the scores and the request, so the same inputs always give the same
decision, limit and policy reasons.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Final, Literal, Self, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from graph.typing import PRODUCTS, Product
from serving.scoring import Evidence, FeatureValue, Signal

Decision = Literal["approve", "review", "decline"]
DECISIONS: Final[tuple[Decision, ...]] = get_args(Decision)
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class PolicyError(ValueError):
    """The policy file is missing or invalid; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ThinFile(_Strict):
    """Who counts as thin-file: new, or with too few orders to judge behaviour."""

    max_tenure_days: int = Field(ge=0)
    max_orders: int = Field(ge=0)


class Grade(_Strict):
    """A credit grade: applies to a pd strictly below ``max_pd``."""

    name: str = Field(min_length=1, max_length=8)
    max_pd: Probability


class LimitPolicy(_Strict):
    """Inputs and caps of the recommended-limit formula (see policy.toml)."""

    volume: Literal["monthly_spend", "monthly_gmv", "none"]
    base: float = Field(ge=0)
    volume_multiple: float = Field(ge=0)
    min_limit: float = Field(ge=0)
    max_limit: float = Field(gt=0)
    thin_file_max_limit: float = Field(gt=0)
    step: float = Field(gt=0)

    @model_validator(mode="after")
    def _caps_ordered(self) -> Self:
        if not self.min_limit <= self.thin_file_max_limit <= self.max_limit:
            raise ValueError("need min_limit <= thin_file_max_limit <= max_limit")
        return self


class ProductPolicy(_Strict):
    """Thresholds and limits of one product."""

    max_amount: float = Field(gt=0)
    review_fraud: Probability
    decline_fraud: Probability
    review_pd: Probability
    decline_pd: Probability
    degraded_max_approve_amount: float = Field(ge=0)
    review_fraud_reason: float = Field(gt=0)
    limit: LimitPolicy

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Self:
        if not 0 < self.review_fraud <= self.decline_fraud:
            raise ValueError("need 0 < review_fraud <= decline_fraud")
        if not 0 < self.review_pd <= self.decline_pd:
            raise ValueError("need 0 < review_pd <= decline_pd")
        if self.limit.max_limit > self.max_amount:
            raise ValueError("limit.max_limit must not exceed max_amount")
        return self


class ReasonsPolicy(_Strict):
    """Which of the model's attributions become reasons (serving/explanations.py)."""

    min_weight: float = Field(ge=0)


class Policy(_Strict):
    """The whole policy file."""

    version: str = Field(min_length=1, max_length=64)
    description: str = ""
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    thin_file: ThinFile
    reasons: ReasonsPolicy
    grades: tuple[Grade, ...] = Field(min_length=1)
    products: dict[Product, ProductPolicy]

    @model_validator(mode="after")
    def _complete(self) -> Self:
        missing = sorted(set(PRODUCTS) - set(self.products))
        if missing:
            raise ValueError(f"products missing from the policy: {missing}")
        bounds = [g.max_pd for g in self.grades]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds) or bounds[-1] != 1.0:
            raise ValueError("grades must have strictly increasing max_pd ending at 1.0")
        return self

    def product(self, product: Product) -> ProductPolicy:
        return self.products[product]

    def grade(self, pd: float) -> str:
        """The first grade whose ``max_pd`` exceeds ``pd`` (the last one otherwise)."""
        for g in self.grades:
            if pd < g.max_pd:
                return g.name
        return self.grades[-1].name


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a policy file; the packaged ``serving/policy.toml`` by default.

    Raises:
        PolicyError: if the file cannot be read, is not TOML, or breaks the policy's rules;
            the message names the file and the field.
    """
    try:
        if path is None:
            text = resources.files("serving").joinpath("policy.toml").read_text("utf-8")
            name = "serving/policy.toml"
        else:
            text = path.read_text("utf-8")
            name = str(path)
        return Policy.model_validate(tomllib.loads(text))
    except OSError as e:
        raise PolicyError(f"policy file cannot be read: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"policy file {name} is not valid TOML: {e}") from e
    except ValidationError as e:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise PolicyError(f"policy file {name} is invalid: {fields}") from e


@dataclass(frozen=True)
class PolicyOutcome:
    """What the policy made of one application's scores."""

    decision: Decision
    grade: str
    credit_limit: float
    thin_file: bool
    signals: tuple[Signal, ...]


PRIOR_PD: dict[Product, float] = {
    "bnpl": 0.04, "cash_loan": 0.05, "merchant_loan": 0.05, "sme_owner_loan": 0.06}
"""Default rate of each product before anything is known of the applicant (degraded mode)."""


def policy_inputs(names: Sequence[str], values: np.ndarray) -> dict[str, FeatureValue]:
    """What the limit formula and the thin-file rule read, from the model's own root features
    (:mod:`gnn.features.risk_features`, the one definition): tenure in days, orders, the monthly
    spending (a third of the last 90 days' orders) and the merchant's last 30 days' GMV.

    Args:
        names (Sequence[str]): root feature names.
        values (np.ndarray): their values for one application (``log1p`` counts and sums).
    """
    v = dict(zip(names, np.asarray(values, dtype=np.float64).tolist(), strict=True))

    def undo(name: str) -> float:
        return math.expm1(max(v.get(name, 0.0), 0.0))

    known = v.get("user_unknown", 0.0) < 0.5
    return {
        "tenure_days": round(undo("tenure_log_d"), 2) if known else 0.0,
        "order_count": int(round(undo("orders_log"))),
        "monthly_spend": round(undo("spend_90d_log") / 3.0, 2),
        "monthly_gmv": round(undo("merchant_gmv_30d_log"), 2),
    }


def is_thin_file(policy: Policy, features: Mapping[str, FeatureValue]) -> bool:
    """Thin-file: tenure or order count at or below the policy's bounds, or unknown."""
    tenure = features.get("tenure_days")
    orders = features.get("order_count")
    if not isinstance(tenure, int | float) or not isinstance(orders, int | float):
        return True
    return tenure <= policy.thin_file.max_tenure_days or orders <= policy.thin_file.max_orders


def recommended_limit(
    policy: Policy, product: Product, pd: float, features: Mapping[str, FeatureValue]
) -> float:
    """The limit formula of policy.toml: base + multiple x volume, cut by risk, capped."""
    spec = policy.product(product)
    lim = spec.limit
    volume = 0.0
    if lim.volume != "none":
        value = features.get(lim.volume)
        if isinstance(value, int | float) and math.isfinite(value) and value > 0:
            volume = float(value)
    raw = (lim.base + lim.volume_multiple * volume) * max(0.0, 1.0 - pd / spec.decline_pd)
    cap = lim.thin_file_max_limit if is_thin_file(policy, features) else lim.max_limit
    return math.floor(min(raw, cap) / lim.step) * lim.step


def main_adverse_reason(fraud_reasons: Sequence[Signal], credit_reasons: Sequence[Signal]
                        ) -> tuple[Literal["fraud", "credit"], Signal] | None:
    """The strongest reason against an application (the largest positive weight) and which
    score it raised; ``None`` when no reason raised one. A tie goes to fraud."""
    heads: tuple[tuple[Literal["fraud", "credit"], Sequence[Signal]], ...] = (
        ("fraud", fraud_reasons), ("credit", credit_reasons))
    best: tuple[Literal["fraud", "credit"], Signal] | None = None
    for kind, signals in heads:
        for s in signals:
            if s.weight > 0 and (best is None or s.weight > best[1].weight):
                best = (kind, s)
    return best


def decide(
    policy: Policy,
    *,
    application_id: str,
    product: Product,
    amount: float,
    fraud_probability: float,
    pd: float,
    features: Mapping[str, FeatureValue],
    degraded: bool,
    degraded_cap: float | None = None,
    fraud_reasons: Sequence[Signal] = (),
    credit_reasons: Sequence[Signal] = (),
) -> PolicyOutcome:
    """Apply the policy to one application's scores.

    Args:
        policy (Policy): the loaded policy.
        application_id (str): for the evidence of policy reasons.
        product (Product): the product applied for.
        amount (float): the amount applied for.
        fraud_probability (float): from the scorer.
        pd (float): probability of default from the scorer.
        features (Mapping[str, FeatureValue]): the scorer's features (limit inputs, tenure).
        degraded (bool): decided without the graph.
        degraded_cap (float, optional): operator ceiling on degraded approvals on top of the
            policy's; the lower wins. (default: ``None``)
        fraud_reasons (Sequence[Signal], optional): the model's fraud reasons
            (:func:`serving.explanations.explain`); an approval whose strongest adverse reason
            is one of them, with a weight of at least the product's ``review_fraud_reason``,
            goes to review instead. (default: none)
        credit_reasons (Sequence[Signal], optional): the model's credit reasons.
            (default: none)
    """
    spec = policy.product(product)
    thin = is_thin_file(policy, features)
    limit = recommended_limit(policy, product, pd, features)
    app = ("Application", application_id, application_id)
    signals: list[Signal] = []

    def add(code: str, weight: float, metric: str, value: float, reference: float,
            **params: FeatureValue) -> None:
        signals.append(Signal(code, weight, Evidence(*app, metric, value, reference), params))

    decision: Decision = "approve"
    # NOTE: a suspected fraud goes to a person whatever its credit risk: the probability of
    # default describes whoever applies, perhaps an impostor, and a credit decline would close
    # a case nobody looked at. Credit decides once the investigator clears it.
    suspected = spec.review_fraud <= fraud_probability < spec.decline_fraud
    if fraud_probability >= spec.decline_fraud:
        decision = "decline"
        add("FRAUD_DECLINE", 10.0, "fraud_probability", fraud_probability, spec.decline_fraud)
    elif suspected:
        decision = "review"
        add("FRAUD_REVIEW", 7.0, "fraud_probability", fraud_probability, spec.review_fraud)
    if pd >= spec.decline_pd:
        if suspected:
            add("PD_REVIEW", 6.0, "pd", pd, spec.review_pd)
        else:
            decision = "decline"
            add("PD_DECLINE", 9.0, "pd", pd, spec.decline_pd)
    if decision == "approve" and limit < spec.limit.min_limit:
        # NOTE: in degraded mode the history behind the limit is missing, and missing data
        # is not evidence against the applicant: a person decides instead.
        decision = "review" if degraded else "decline"
        add("NO_CREDIT_OFFER", 8.0, "credit_limit", limit, spec.limit.min_limit,
            limit=limit, minimum=spec.limit.min_limit)
    if decision == "approve":
        if pd >= spec.review_pd:
            decision = "review"
            add("PD_REVIEW", 6.0, "pd", pd, spec.review_pd)
        if amount > limit:
            decision = "review"
            add("AMOUNT_ABOVE_LIMIT", 5.0, "amount", amount, limit, amount=amount, limit=limit)
        main = main_adverse_reason(fraud_reasons, credit_reasons)
        if main is not None and main[0] == "fraud" and main[1].weight >= spec.review_fraud_reason:
            decision = "review"
            add("FRAUD_MAIN_REASON", 6.5, "main_reason_weight", main[1].weight,
                spec.review_fraud_reason, reason=main[1].code)
    if degraded:
        cap = spec.degraded_max_approve_amount
        if degraded_cap is not None:
            cap = min(cap, degraded_cap)
        limit = min(limit, math.floor(cap / spec.limit.step) * spec.limit.step)
        if decision == "approve" and amount > cap:
            decision = "review"
            add("DEGRADED_AMOUNT_CAP", 5.5, "amount", amount, cap, amount=amount, cap=cap)
    return PolicyOutcome(decision, policy.grade(pd), float(limit), thin, tuple(signals))
