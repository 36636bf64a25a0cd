"""The hazard rows of gnn/data/loan_periods.py: censoring at the cut."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.data.loan_periods import DAY, PERIOD_DAYS, funded_before, loan_periods, term_pd
from gnn.data.time_split import TimeSplit
from gnn.train.credit_trainer import CreditTrainConfig, cohort_pd, credit_rows, fit_credit_model
from tests.gnn.gnn_lending_world import lending_graph

P = PERIOD_DAYS * DAY


@pytest.fixture(scope="module")
def graph_and_cut():  # type: ignore[no-untyped-def]
    g = lending_graph(users=3000, seed=11, fraud_rate=0.02)
    return g, TimeSplit.from_fractions(g).t2


def test_a_loan_alive_at_the_cut_gives_only_its_complete_periods(graph_and_cut) -> None:  # type: ignore[no-untyped-def]
    g, cut = graph_and_cut
    apps = np.flatnonzero(g.attrs["Application"]["ts"] < cut)
    rows = loan_periods(g, apps, cut)
    ts = g.attrs["Application"]["ts"]
    seen = g.default_at["Application"]
    alive = rows.application[~(seen[rows.application] < cut)]
    counts = np.bincount(rows.application, minlength=g.num_nodes("Application"))
    loans = np.unique(alive)
    assert loans.size > 100
    np.testing.assert_array_equal(counts[loans], (cut - ts[loans]) // P)
    assert rows.event[~(seen[rows.application] < cut)].sum() == 0
    # every funded loan of the period is there, however young (no loan is dropped)
    funded = apps[funded_before(g, cut)[apps]]
    old = funded[(cut - ts[funded]) >= P]
    assert np.isin(old, rows.application).all()


def test_a_default_after_the_cut_is_censored_not_a_non_default_of_the_term(graph_and_cut) -> None:  # type: ignore[no-untyped-def]
    g, cut = graph_and_cut
    apps = np.flatnonzero(g.attrs["Application"]["ts"] < cut)
    rows = loan_periods(g, apps, cut)
    ts = g.attrs["Application"]["ts"]
    seen = g.default_at["Application"]
    later = np.unique(rows.application[(seen[rows.application] >= cut)
                                       & (seen[rows.application] < np.iinfo(np.int64).max)])
    assert later.size > 0, "the world must hold loans whose default shows after the cut"
    for a in later[:50]:
        mine = rows.period[rows.application == a]
        # rows stop at the last complete period before the cut, before the default's period
        assert mine.max() < (seen[a] - ts[a]) // P
        assert mine.max() == (cut - ts[a]) // P - 1
    # the rows are what is known at the cut: moving a later default changes nothing
    moved = loan_periods(g, apps, cut)
    np.testing.assert_array_equal(moved.event, rows.event)


class _Loans:
    """The four arrays :func:`loan_periods` reads, for loans built by hand."""

    def __init__(self, ts: np.ndarray, default_at: np.ndarray) -> None:
        n = ts.shape[0]
        self.attrs = {"Application": {"ts": ts, "user": np.arange(n)}}
        self.default_at = {"Application": default_at}
        # one repayment per loan, 25 days after its application
        self.events = {"repayments": {"application": np.arange(n), "ts": ts + 25 * DAY}}

    def num_nodes(self, node_type: str) -> int:
        return int(self.attrs["Application"]["ts"].shape[0])


def _two_cohorts() -> tuple[_Loans, int, np.ndarray]:
    """1000 loans 5 periods old at the cut and 1000 2.5 periods old; in each, one in five
    defaults in period 2 (visible at age 75 days): the young ones' defaults show after the
    cut."""
    cut = 1_000 * P
    age = np.repeat([5 * P, 5 * P // 2], 1000)
    ts = cut - age
    defaults = np.tile(np.arange(1000) % 5 == 0, 2)
    never = np.iinfo(np.int64).max
    return _Loans(ts, np.where(defaults, ts + 75 * DAY, never)), cut, defaults


def test_censored_loans_count_only_the_periods_they_lived() -> None:
    """A young loan contributes periods 0 and 1; were it counted a non-default of its term
    (rows up to the horizon, or a 0 target), the cohort's 20 % would read 10 %."""
    loans, cut, defaults = _two_cohorts()
    rows = loan_periods(loans, np.arange(2000), cut)  # type: ignore[arg-type]
    young = rows.application >= 1000
    assert rows.period[young].max() == 1 and rows.event[young].sum() == 0
    assert rows.event.sum() == 200
    assert cohort_pd(rows, 3, 3, 1.0) == pytest.approx(0.2)
    naive = float(np.mean((loans.default_at["Application"] < cut)))
    assert naive == pytest.approx(0.1)


def test_hazard_model_learns_the_term_default_of_censored_cohorts() -> None:
    """The fitted hazard gives the young loans the 20 % their cohort defaults over its life,
    not the 0 % seen at the cut."""
    loans, cut, defaults = _two_cohorts()
    rows, held = credit_rows(loans, np.arange(2000), cut, 0.3, 0)  # type: ignore[arg-type]
    x = np.zeros((2000, 1))
    model = fit_credit_model(rows, x, ["one"], ["one"], [], held,
                             CreditTrainConfig(periods=5, min_period_rows=500,
                                               min_child_samples=20))
    pd = model.predict(x[1000:])
    assert pd.mean() == pytest.approx(0.2, rel=0.25)


def test_term_pd_is_one_minus_the_survival() -> None:
    h = np.array([[0.0, 0.1, 0.2], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(term_pd(h), [1 - 0.9 * 0.8, 0.0, 1.0])


def test_period_days_must_be_positive(graph_and_cut) -> None:  # type: ignore[no-untyped-def]
    g, cut = graph_and_cut
    with pytest.raises(ValueError, match="period_days"):
        loan_periods(g, np.arange(3), cut, period_days=0)
