"""Credit default: funding, repayment schedules and which loans default.

Default of an honest loan is driven by behaviour (a latent repayment discipline that also makes
instalments late, the user's return propensity, the amount against what the user usually
borrows, a hidden income band, a thin file) and by the network (the share of the user's
emergency contacts who default). It never looks at fraud labels; fraud loans default with their
pattern's ``default_prob``. The intercept is solved so that all funded loans together default at
``CreditConfig.default_rate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graph.typing import PRODUCT_TERMS, PRODUCTS
from simulator._builder import BNPL, CASH_LOAN, DAY, MERCHANT_LOAN, SME_OWNER_LOAN, WorldBuilder
from simulator._sampling import rank_within

_TERM_PROBS = {  # product -> probability of each of its terms (graph.typing.PRODUCT_TERMS)
    BNPL: (0.5, 0.3, 0.2),
    CASH_LOAN: (0.4, 0.4, 0.2),
    MERCHANT_LOAN: (0.5, 0.5),
    SME_OWNER_LOAN: (0.5, 0.5),
}
_MONTH = 30 * DAY
STATUSES = ("on_time", "late", "missed")


@dataclass(frozen=True)
class LoanOutcomes:
    """Per application: funded or not, default or not, and when the default becomes known.

    Args:
        funded (np.ndarray): bool per application.
        default (np.ndarray): bool per application (False when not funded).
        default_visible_at (np.ndarray): epoch seconds when the ledger marks the default
            (DPD30 after the first missed instalment), ``-1`` for none; may lie after the window.
        intercept (float): the solved intercept of the honest default model.
    """

    funded: np.ndarray
    default: np.ndarray
    default_visible_at: np.ndarray
    intercept: float


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _solve_intercept(x: np.ndarray, rate: float) -> float:
    """The ``b`` with ``mean(sigmoid(b + x)) == rate`` (bisection; the mean is monotone in b)."""
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _sigmoid(mid + x).mean() < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def settle_loans(b: WorldBuilder, rng: np.random.Generator) -> LoanOutcomes:
    """Decide funding and default of every application and write the repayment events.

    Args:
        b (WorldBuilder): the world with every application (honest and planted).
        rng (np.random.Generator): random source of this stage.

    Returns:
        LoanOutcomes: per-application outcomes, in application position order.
    """
    cc, bc = b.config.credit, b.config.behaviour
    apps = b.applications.frame()
    users = b.users.frame()
    n = len(apps["user"])
    u = apps["user"]
    product = apps["product"].astype(np.int64)
    funded = rng.random(n) < bc.approve_prob
    fraud = apps["pattern"] > 0

    n_orders = np.bincount(b.orders.col("user"), minlength=len(users["created_at"]))
    ret = users["return_prop"][u].astype(np.float64)
    ret_z = (ret - ret.mean()) / max(float(ret.std()), 1e-9)
    typical = np.ones(n)
    for p in range(4):
        sel = (product == p) & ~fraud
        if sel.any():
            typical[product == p] = np.median(apps["amount"][sel])
    x = (cc.w_discipline * -users["discipline"][u].astype(np.float64)
         + cc.w_returns * ret_z
         + cc.w_utilisation * np.log(apps["amount"] / typical)
         + cc.w_income * (2.0 - users["income_band"][u])
         + cc.w_thin * (n_orders[u] < 2))

    fraud_default = funded & fraud & (rng.random(n) < np.nan_to_num(apps["default_prob"]))
    honest = funded & ~fraud
    target = cc.default_rate * funded.sum() - fraud_default.sum()
    rate = float(np.clip(target / max(honest.sum(), 1), 1e-4, 0.9))
    draw = rng.random(n)

    # Pass 1 without the network, to know who defaults; pass 2 adds contacts in default.
    b1 = _solve_intercept(x[honest], rate)
    first = fraud_default | (honest & (draw < _sigmoid(b1 + x)))
    in_default = np.zeros(len(users["created_at"]), dtype=bool)
    in_default[u[first]] = True
    c = b.contacts.frame()
    n_contacts = np.bincount(c["user"], minlength=len(in_default))
    share = np.bincount(c["user"], weights=in_default[c["contact"]],
                        minlength=len(in_default)) / np.maximum(n_contacts, 1)
    x2 = x + cc.w_network * share[u]
    b2 = _solve_intercept(x2[honest], rate)
    default = fraud_default | (honest & (draw < _sigmoid(b2 + x2)))

    visible = _write_repayments(b, rng, funded, default, fraud, product)
    return LoanOutcomes(funded=funded, default=default, default_visible_at=visible,
                        intercept=b2)


def _write_repayments(b: WorldBuilder, rng: np.random.Generator, funded: np.ndarray,
                      default: np.ndarray, fraud: np.ndarray, product: np.ndarray) -> np.ndarray:
    cc = b.config.credit
    apps = b.applications.frame()
    n = len(funded)
    n_inst = np.empty(n, dtype=np.int64)
    for p in range(4):
        sel = product == p
        n_inst[sel] = rng.choice(PRODUCT_TERMS[PRODUCTS[p]], size=int(sel.sum()),
                                 p=_TERM_PROBS[p])
    # NOTE: the term is the application's (the applicant chose it), funded or not; drawn here,
    # after the default, because it does not change whether a loan defaults, only when.
    b.applications.update("term", np.arange(n), n_inst)
    loans = np.flatnonzero(funded)
    # First missed instalment of a defaulting loan: fraud at once, honest anywhere.
    k_miss = np.where(fraud, np.where(rng.random(n) < 0.8, 1, 2),
                      1 + (rng.random(n) * n_inst).astype(np.int64))
    k_miss = np.minimum(k_miss, n_inst)
    visible = np.where(default, apps["ts"] + k_miss * _MONTH + cc.default_label_days * DAY, -1)

    loan = np.repeat(loans, n_inst[loans])
    k = rank_within(loan) + 1
    due = apps["ts"][loan] + k * _MONTH
    missed = default[loan] & (k >= k_miss[loan])
    disc = b.users.col("discipline")[apps["user"][loan]].astype(np.float64)
    late = ~missed & (rng.random(len(loan)) < _sigmoid(cc.late_base_logit - disc))
    ts = np.where(missed, due + cc.grace_days * DAY,
                  np.where(late, due + rng.integers(DAY, 20 * DAY, size=len(loan)),
                           due - rng.integers(0, 5 * DAY, size=len(loan))))
    status = np.where(missed, 2, np.where(late, 1, 0))
    rate = 0.02 * n_inst[loan]
    amount = np.round(apps["amount"][loan] * (1 + rate) / n_inst[loan], 2)
    seen = ts < b.end
    b.repayments.append(user=apps["user"][loan][seen], application=loan[seen], due_ts=due[seen],
                        ts=ts[seen], amount=amount[seen], status=status[seen])
    return visible
