"""The policy backtest: a policy file replayed on the store's historical applications.

``history`` reads the applications and their outcomes from the store, ``scores`` the scores
their decisions used (stored verdicts, or the model), ``replay`` decides each with
:func:`serving.policy.decide` and sums money, ``location_reasons`` finds the reasons that rest
on location alone, ``report`` writes the Markdown and the plots (docs/BACKTEST.md).
"""

from serving.backtest.history import THIN_FILE_DAYS, ApplicationHistory, load_history
from serving.backtest.location_reasons import (
    LOCATION_INPUTS,
    ReasonInputs,
    location_only_reasons,
    reason_inputs,
)
from serving.backtest.replay import Replay, Totals, replay, totals_by
from serving.backtest.report import BacktestRun, write_backtest_report
from serving.backtest.scores import ReplayScores, model_scores, stored_scores

__all__ = [
    "LOCATION_INPUTS",
    "THIN_FILE_DAYS",
    "ApplicationHistory",
    "BacktestRun",
    "ReasonInputs",
    "Replay",
    "ReplayScores",
    "Totals",
    "load_history",
    "location_only_reasons",
    "model_scores",
    "reason_inputs",
    "replay",
    "stored_scores",
    "totals_by",
    "write_backtest_report",
]
