"""`loan_periods`: funded loans as discrete-time hazard rows, censored at a cut.

A loan's life is cut into periods of ``period_days`` by its age, the time since its
application: period ``j`` holds the ages ``[j * P, (j + 1) * P)``. A default belongs to the
period in which its label became visible (the ledger marks it ``default_label_days`` after the
first missed instalment, so it is the lender's own event time). At a cut ``c`` a loan of age
``A = c - ts`` has ``floor(A / P)`` complete periods; each is one row, *defaulted in period j
given alive at its start*:

* a loan whose default became visible in a complete period ``d`` gives rows ``0 .. d``, the
  last one positive, and none after (it left the risk set);
* a loan alive at the cut gives a row per complete period, all negative, and nothing about the
  periods it has not lived yet: it is *censored*, never counted a non-default of its term;
* a default visible inside the incomplete last period is not used (the loan is censored at the
  end of its last complete period), so no period is judged before it is over.

A loan is known to be funded once one of its repayments is recorded before the cut. The rows
read only what is visible before the cut (repayments, default labels), so moving any later
event leaves them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from gnn.data.lending_graph import LendingGraph

DAY: Final = 86_400
PERIOD_DAYS: Final = 30
"""One period of the hazard: the instalment month."""


@dataclass(frozen=True)
class LoanPeriods:
    """Hazard rows: one per loan and complete period.

    Args:
        application (np.ndarray): int64 graph position of the loan's application ``[N]``.
        period (np.ndarray): int64 period index from 0 ``[N]``.
        event (np.ndarray): float32, 1 when the default became visible in that period ``[N]``.
    """

    application: np.ndarray
    period: np.ndarray
    event: np.ndarray

    def __len__(self) -> int:
        return int(self.application.shape[0])


def funded_before(graph: LendingGraph, cut: int) -> np.ndarray:
    """Bool per application: a repayment of its loan was recorded before ``cut``."""
    rep = graph.events["repayments"]
    funded = np.zeros(graph.num_nodes("Application"), dtype=bool)
    funded[rep["application"][rep["ts"] < cut]] = True
    return funded


def loan_periods(graph: LendingGraph, applications: np.ndarray, cut: int, *,
                 period_days: int = PERIOD_DAYS) -> LoanPeriods:
    """Hazard rows of the funded loans among ``applications`` as known at ``cut``.

    Args:
        graph (LendingGraph): the graph (events at or after ``cut`` are not read).
        applications (np.ndarray): graph positions of candidate applications; the unfunded
            ones (as known at ``cut``) give no row.
        cut (int): epoch seconds; only what is visible strictly before it counts.
        period_days (int, optional): period length. (default: :data:`PERIOD_DAYS`)

    Raises:
        ValueError: if ``period_days`` is not positive.
    """
    if period_days <= 0:
        raise ValueError(f"period_days must be positive, got {period_days}")
    apps = np.asarray(applications, dtype=np.int64)
    apps = apps[funded_before(graph, cut)[apps]]
    period = period_days * DAY
    ts = graph.attrs["Application"]["ts"][apps]
    complete = np.maximum(cut - ts, 0) // period
    seen = graph.default_at["Application"][apps]
    defaulted = seen < cut
    d = np.where(defaulted, (seen - ts) // period, np.iinfo(np.int64).max)
    # NOTE: a default inside the incomplete last period is censored with its loan (module doc)
    event = defaulted & (d < complete)
    n_rows = np.where(event, d + 1, complete).astype(np.int64)
    loan = np.repeat(np.arange(apps.shape[0]), n_rows)
    start = np.cumsum(n_rows) - n_rows
    j = np.arange(loan.shape[0], dtype=np.int64) - start[loan]
    y = (event[loan] & (j == n_rows[loan] - 1)).astype(np.float32)
    return LoanPeriods(apps[loan], j, y)


def term_periods(term_months: np.ndarray) -> np.ndarray:
    """Periods a loan of ``term_months`` monthly instalments can default in: period 0, the
    instalments' months and the month until a missed one shows as default (the ledger marks
    it 30 days after the due date), so ``term + 2``; ``0`` for a term not stated.

    NOTE: instalment ``k`` falls due at the end of period ``k - 1``; missed, its default shows
    in period ``k + 1``; the last instalment's in period ``term + 1``.
    """
    t = np.asarray(term_months, dtype=np.int64)
    return np.where(t > 0, t + 2, 0)


def term_pd(hazard: np.ndarray) -> np.ndarray:
    """Probability of default over the periods: ``1 - prod_j (1 - h_j)``.

    Shapes:
        - **input:** ``[R, J]`` hazards
        - **output:** ``[R]``
    """
    h = np.clip(np.asarray(hazard, dtype=np.float64), 0.0, 1.0)
    return np.asarray(1.0 - np.exp(np.log1p(-np.minimum(h, 1 - 1e-12)).sum(axis=1)))


__all__ = ["LoanPeriods", "PERIOD_DAYS", "funded_before", "loan_periods", "term_pd",
           "term_periods"]
