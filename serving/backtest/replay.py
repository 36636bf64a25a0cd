"""`replay`: a policy's decisions on historical applications, and `Totals` of any group of them.

Every decision is :func:`serving.policy.decide`, the function the service decides with, on the
scores the application had (:mod:`serving.backtest.scores`); nothing of the policy is computed
here. What the replay adds is money:

* **exposure**: what the policy lends: the amount applied for, on an approval (an approval
  never exceeds the recommended limit); reviews and declines lend nothing until a person
  decides;
* **expected loss**: pd x exposure (loss given default taken as 1: the whole amount);
* **realised loss**: on approvals whose loan was funded by the incumbent and is mature
  (:attr:`ApplicationHistory.known`), the amount less what was repaid, for those that
  defaulted. A loan the incumbent did not fund has no outcome, whatever this policy decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final

import numpy as np

from serving.backtest.history import ApplicationHistory
from serving.backtest.scores import MAIN_REASON, ReplayScores
from serving.policy import DECISIONS, Policy, decide

_MAIN_RULE: Final = "FRAUD_MAIN_REASON"


@dataclass(frozen=True)
class Replay:
    """A policy's outcome on each replayed application (``history`` order).

    Args:
        policy (Policy): the policy replayed.
        history (ApplicationHistory): the applications replayed (those with scores).
        decision (np.ndarray): object, approve / review / decline.
        grade (np.ndarray): object, the credit grade.
        limit (np.ndarray): float64, the recommended limit.
        policy_thin (np.ndarray): bool, thin-file by the policy's own rule.
        fraud (np.ndarray): float64 fraud probability.
        pd (np.ndarray): float64 probability of default.
        source (np.ndarray): object, where the scores came from (``verdict`` / ``model``).
        main_reason (np.ndarray): object, the fraud reason that sent an approval to review
            (``""`` for none; ``FRAUD_MAIN_REASON`` when a stored verdict did not record it).
    """

    policy: Policy
    history: ApplicationHistory
    decision: np.ndarray
    grade: np.ndarray
    limit: np.ndarray
    policy_thin: np.ndarray
    fraud: np.ndarray
    pd: np.ndarray
    source: np.ndarray
    main_reason: np.ndarray

    def __len__(self) -> int:
        return len(self.history)

    @property
    def approved(self) -> np.ndarray:
        return np.asarray(self.decision == "approve")

    @property
    def exposure(self) -> np.ndarray:
        """float64, what is lent: the amount on an approval, else 0."""
        return np.where(self.approved, np.minimum(self.history.amount, self.limit), 0.0)

    @property
    def expected_loss(self) -> np.ndarray:
        return np.asarray(self.pd * self.exposure)


def replay(policy: Policy, history: ApplicationHistory, scores: Mapping[str, ReplayScores], *,
           degraded_cap: float | None = None) -> Replay:
    """Decide every application of ``history`` that has scores with ``policy``.

    Args:
        policy (Policy): the policy to replay.
        history (ApplicationHistory): the applications.
        scores (Mapping[str, ReplayScores]): scores by application id; applications without
            are left out of the replay.
        degraded_cap (float, optional): the operator's ceiling on degraded approvals, as the
            service applies it. (default: ``None``)
    """
    have = np.asarray([a in scores for a in history.application_id.tolist()], dtype=bool)
    history = history.select(have)
    n = len(history)
    decision = np.empty(n, dtype=object)
    grade = np.empty(n, dtype=object)
    main = np.full(n, "", dtype=object)
    limit = np.zeros(n)
    thin = np.zeros(n, dtype=bool)
    fraud = np.zeros(n)
    pd = np.zeros(n)
    source = np.empty(n, dtype=object)
    keep = policy.reasons.min_weight
    for i, app_id in enumerate(history.application_id.tolist()):
        s = scores[app_id]
        out = decide(
            policy, application_id=app_id, product=history.product[i],
            amount=float(history.amount[i]), fraud_probability=s.fraud_probability, pd=s.pd,
            features=s.features, degraded=s.degraded, degraded_cap=degraded_cap,
            fraud_reasons=[r for r in s.fraud_reasons if abs(r.weight) >= keep],
            credit_reasons=[r for r in s.credit_reasons if abs(r.weight) >= keep])
        decision[i], grade[i], limit[i], thin[i] = (out.decision, out.grade, out.credit_limit,
                                                    out.thin_file)
        fraud[i], pd[i], source[i] = s.fraud_probability, s.pd, s.source
        for signal in out.signals:
            if signal.code == _MAIN_RULE:
                main[i] = str(signal.params.get("reason", MAIN_REASON))
    return Replay(policy, history, decision, grade, limit, thin, fraud, pd, source, main)


@dataclass(frozen=True)
class Totals:
    """Counts and sums over a group of replayed applications.

    Args:
        applications (int): applications in the group.
        approve, review, decline (int): decisions.
        limits (float): recommended limits of the approvals, summed.
        exposure (float): amounts lent (approvals).
        expected_loss (float): pd x exposure over the approvals.
        mean_pd (float): mean pd of the approvals (NaN for none).
        known (int): approvals whose outcome is known (funded, mature).
        defaults (int): of those, defaulted.
        known_pd (float): their pds, summed.
        known_exposure (float): amounts lent on them.
        known_expected_loss (float): pd x exposure on them.
        realised_loss (float): what the defaulted ones lost.
    """

    applications: int
    approve: int
    review: int
    decline: int
    limits: float
    exposure: float
    expected_loss: float
    mean_pd: float
    known: int
    defaults: int
    known_pd: float
    known_exposure: float
    known_expected_loss: float
    realised_loss: float

    @classmethod
    def of(cls, r: Replay, group: np.ndarray | None = None) -> Totals:
        """The totals of ``r``'s applications where ``group`` (bool; all by default)."""
        g = np.ones(len(r), bool) if group is None else np.asarray(group, bool)
        ok = g & r.approved
        known = ok & r.history.known
        return cls(
            applications=int(g.sum()),
            approve=int(ok.sum()),
            review=int((g & (r.decision == "review")).sum()),
            decline=int((g & (r.decision == "decline")).sum()),
            limits=float(r.limit[ok].sum()),
            exposure=float(r.exposure[ok].sum()),
            expected_loss=float(r.expected_loss[ok].sum()),
            mean_pd=float(r.pd[ok].mean()) if ok.any() else float("nan"),
            known=int(known.sum()),
            defaults=int((known & r.history.defaulted).sum()),
            known_pd=float(r.pd[known].sum()),
            known_exposure=float(r.exposure[known].sum()),
            known_expected_loss=float(r.expected_loss[known].sum()),
            realised_loss=float(r.history.loss()[known].sum()),
        )

    def rate(self, decision: str) -> float:
        """Share of the group's applications with ``decision``."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
        count: int = getattr(self, decision)
        return count / self.applications if self.applications else float("nan")

    @property
    def default_rate(self) -> float:
        """Observed default rate of the approvals whose outcome is known."""
        return self.defaults / self.known if self.known else float("nan")

    @property
    def expected_default_rate(self) -> float:
        """Mean pd of the same loans: what the model expected of them."""
        return self.known_pd / self.known if self.known else float("nan")

    def to_dict(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def totals_by(r: Replay, key: np.ndarray) -> dict[str, Totals]:
    """:class:`Totals` per distinct value of ``key`` (one per application), sorted."""
    key = np.asarray(key, dtype=object)
    return {str(k): Totals.of(r, key == k) for k in sorted(set(key.tolist()), key=str)}
