"""`judge_promotion`: whether a newly trained model may replace the one the service runs.

A candidate is promotable only when, on the validation applications of its own split (those
in ``[T1, T2)`` old enough at ``T2`` for their labels to have arrived, judged against the fraud
labels visible before ``T2``), its fraud AUPRC is at least ``margin`` above both

* the transparent rules (:class:`gnn.rules.RiskRules`) on the same applications, and
* the current champion (the promoted model), re-scored on the same applications of the same
  graph — not the figure it reported on its own validation period.

Scores are the raw fraud logits, whose order calibration does not change (an isotonic step
function would add ties). The figures are stored with the candidate in the registry whatever
the outcome, and a refusal says why in one line. Both models chose their epochs on their own
validation period, so the candidate's figure is a little optimistic and a champion trained on
the same world and split equally so; a champion trained on another split may have trained on
these applications, which makes the gate stricter, not laxer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from gnn.data.lending_graph import LendingGraph
from gnn.features.risk_features import ApplicationQueries
from gnn.rules import RiskRules
from gnn.pipeline import ScoringPipeline
from gnn.data.time_split import TimeSplit, application_targets


@dataclass(frozen=True)
class PromotionDecision:
    """The gate's figures and verdict.

    Args:
        passed (bool): whether the candidate may be promoted.
        reason (str): one plain line with the numbers.
        margin (float): required AUPRC lead over the rules and the champion.
        applications (int): validation applications judged.
        positives (int): of them, fraud labelled before ``T2``.
        candidate_auprc (float): the candidate's fraud AUPRC on them.
        rules_auprc (float): the rules'.
        champion_version (str, optional): the promoted model at the time, if any.
        champion_auprc (float, optional): its AUPRC on the same applications, ``None`` when
            there is no champion or it cannot be loaded.
        champion_note (str, optional): why a champion was not compared (it cannot be loaded).
    """

    passed: bool
    reason: str
    margin: float
    applications: int
    positives: int
    candidate_auprc: float
    rules_auprc: float
    champion_version: str | None = None
    champion_auprc: float | None = None
    champion_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (NaN as ``None``)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}


def _auprc(y: np.ndarray, score: np.ndarray) -> float:
    if not 0 < int(y.sum()) < y.shape[0]:
        return float("nan")
    return float(average_precision_score(y, score))


def judge_promotion(
    graph: LendingGraph,
    split: TimeSplit,
    candidate: ScoringPipeline,
    *,
    margin: float,
    champion: ScoringPipeline | None = None,
    champion_version: str | None = None,
    champion_note: str | None = None,
    device: str = "cpu",
) -> PromotionDecision:
    """Judge ``candidate`` against the rules and ``champion`` on the validation applications.

    Args:
        graph (LendingGraph): the graph the candidate was trained on.
        split (TimeSplit): its split.
        candidate (ScoringPipeline): the trained model.
        margin (float): AUPRC the candidate must gain over each of the others (``>= 0``).
        champion (ScoringPipeline, optional): the promoted model, loaded. (default: none)
        champion_version (str, optional): its version. (default: none)
        champion_note (str, optional): why a promoted model is not compared (it could not be
            loaded); it does not count against the candidate. (default: none)
        device (str, optional): where the models run. (default: ``"cpu"``)

    Raises:
        ValueError: if ``margin`` is negative or not finite.
    """
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a non-negative number, got {margin}")
    targets = application_targets(graph, split)
    val = np.flatnonzero(targets.val_choose)
    y = targets.fraud[val].astype(np.int64)
    apps = ApplicationQueries.from_graph(graph, val)
    prepared = candidate.prepare_applications(graph, apps)
    cand = _auprc(y, candidate.predict(prepared, device=device).fraud_logit)
    rules = _auprc(y, RiskRules(prepared.root_names).score(prepared.root_x).fraud_logit)
    champ: float | None = None
    if champion is not None:
        # NOTE: the same features and trees when the champion samples and featurises alike;
        # its own otherwise.
        same = champion.config == candidate.config
        champ_prep = prepared if same else champion.prepare_applications(graph, apps)
        champ = _auprc(y, champion.predict(champ_prep, device=device).fraud_logit)
    n, pos = int(val.shape[0]), int(y.sum())
    where = f"on {n:,} validation applications with {pos:,} fraud"
    if not math.isfinite(cand):
        return PromotionDecision(False, f"not promoted: no validation AUPRC {where}", margin, n,
                                 pos, cand, rules, champion_version, champ, champion_note)
    short: list[str] = []
    compared = [f"the rules' {rules:.4f}"]
    if math.isfinite(rules) and cand - rules < margin:
        short.append(compared[0])
    if champ is not None:
        compared.append(f"champion {champion_version}'s {champ:.4f}")
        if math.isfinite(champ) and cand - champ < margin:
            short.append(compared[-1])
    note = f"; {champion_note}" if champion_note else ""
    if short:
        reason = (f"not promoted: validation AUPRC {cand:.4f} is not {margin:.4f} above "
                  f"{' and '.join(short)} {where}{note}")
    else:
        reason = (f"promotable: validation AUPRC {cand:.4f} is at least {margin:.4f} above "
                  f"{' and '.join(compared)} {where}{note}")
    return PromotionDecision(not short, reason, margin, n, pos, cand, rules, champion_version,
                             champ, champion_note)
