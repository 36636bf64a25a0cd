"""Where a backtest's scores come from: the verdicts the service stored, or the model.

**Stored verdicts** (:func:`stored_scores`) are what the decisions used: the ``Verdict`` record
keeps the fraud probability, the pd, whether it was degraded and every feature the policy read
(``features_json``: tenure, orders, the limit's volume). It does not keep the weight of each
model reason; only a verdict sent to review by its strongest fraud reason
(``FRAUD_MAIN_REASON``) records that weight. So that rule is replayed from what was recorded:
a policy that lowers ``review_fraud_reason`` cannot be judged on stored verdicts (score with
the model instead, :func:`model_scores`). A verdict whose documents were erased
(``riskgraph erase``) keeps no features and is not replayed from the store.

**The model** (:func:`model_scores`) scores applications of the graph as of their own times
(every feature reads only what was known before the application, labels included) with the
pipeline the service decides with, and the same attributions, so that the reasons, and the
rule above, are the service's (:func:`serving.scorers.explain_batch`,
:func:`serving.explanations.explain`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from gnn import ApplicationQueries, LendingGraph
from graph import GraphStore
from graph.typing import PRODUCTS
from serving.explanations import explain
from serving.graph_scorer import ApplicationModel, Explain, verdict_features
from serving.scoring import ApplicationFacts, Evidence, FeatureValue, Signal

log = logging.getLogger(__name__)

MAIN_REASON: Final = "FRAUD_MAIN_REASON"
Source = Literal["verdict", "model"]


@dataclass(frozen=True)
class ReplayScores:
    """What the policy reads of one application.

    Args:
        fraud_probability (float): the fraud probability.
        pd (float): the probability of default.
        features (Mapping[str, FeatureValue]): the features the policy reads.
        degraded (bool): decided without the graph.
        fraud_reasons (tuple[Signal, ...]): the model's fraud reasons, every weight (a policy
            keeps those of at least its ``[reasons] min_weight``).
        credit_reasons (tuple[Signal, ...]): the model's credit reasons.
        source (Source): ``verdict`` or ``model``.
        model_version (str): the model that scored.
    """

    fraud_probability: float
    pd: float
    features: Mapping[str, FeatureValue]
    degraded: bool
    fraud_reasons: tuple[Signal, ...]
    credit_reasons: tuple[Signal, ...]
    source: Source
    model_version: str


def stored_scores(store: GraphStore) -> dict[str, ReplayScores]:
    """The scores of every application with a stored verdict that kept its features, by
    application id."""
    out: dict[str, ReplayScores] = {}
    for row in store.export_nodes("Verdict").to_pylist():
        if not row.get("features_json") or not row.get("verdict_json"):
            continue  # NOTE: erased documents: nothing to replay from
        features = json.loads(row["features_json"])
        verdict = json.loads(row["verdict_json"])
        main = tuple(_recorded_main_reason(row["id"], r) for r in verdict.get("reasons", ())
                     if r.get("code") == MAIN_REASON)
        out[row["id"]] = ReplayScores(
            float(row["fraud_probability"]), float(row["pd"]), features,
            bool(row["degraded"]), main, (), "verdict", str(row["model_version"]))
    return out


def _recorded_main_reason(application_id: str, reason: Mapping[str, Any]) -> Signal:
    """The strongest fraud reason as a verdict recorded it: its weight is the evidence of
    the ``FRAUD_MAIN_REASON`` the policy added (:func:`serving.policy.decide`); its own code
    is not recorded."""
    weight = float(reason["evidence"]["value"])
    return Signal(MAIN_REASON, weight, Evidence("Application", application_id, application_id,
                                                "main_reason_weight", weight))


def model_scores(graph: LendingGraph, model: ApplicationModel, application_ids: Sequence[str],
                 *, currency: str, explain_batch: Explain | None, device: str = "cpu",
                 chunk_size: int = 2048,
                 log_progress: Callable[[str], None] | None = None) -> dict[str, ReplayScores]:
    """Score applications of ``graph`` as of their own times with ``model``.

    Args:
        graph (LendingGraph): the graph state (the live graph's arrays, from the store).
        model (ApplicationModel): the pipeline the service decides with.
        application_ids (Sequence[str]): applications of the graph to score.
        currency (str): the policy's currency (for the reasons' evidence).
        explain_batch (Explain, optional): attributions of a batch's scores
            (:func:`serving.scorers.explain_batch`); ``None`` scores without reasons, so the
            rule that reviews an approval on its strongest fraud reason cannot fire.
        device (str, optional): where the model runs. (default: ``"cpu"``)
        chunk_size (int, optional): applications prepared at once. (default: ``2048``)
        log_progress (Callable[[str], None], optional): a line per chunk. (default: none)

    Raises:
        ValueError: if an application is not in the graph or ``chunk_size < 1``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    ids = list(application_ids)
    positions = graph.positions("Application", ids)
    if (positions < 0).any():
        missing = [i for i, p in zip(ids, positions.tolist(), strict=True) if p < 0][:3]
        raise ValueError(f"applications not in the graph: {missing}")
    out: dict[str, ReplayScores] = {}
    for lo in range(0, len(ids), chunk_size):
        pos = positions[lo:lo + chunk_size]
        prepared = model.prepare_applications(graph, ApplicationQueries.from_graph(graph, pos))
        if explain_batch is None:
            scores, explained = model.predict(prepared, device=device), None
        else:
            explained = explain_batch(model, prepared, device)
            scores = explained.scores
        for j, p in enumerate(pos.tolist()):
            fraud: tuple[Signal, ...] = ()
            credit: tuple[Signal, ...] = ()
            if explained is not None:
                reasons = explain(explained.root(j), _facts(graph, p, currency), min_weight=0.0)
                fraud, credit = reasons.fraud, reasons.credit
            out[ids[lo + j]] = ReplayScores(
                float(scores.fraud[j]), float(scores.pd[j]),
                verdict_features(list(prepared.root_names), np.asarray(prepared.root_x[j]),
                                 float(scores.fraud_logit[j]), float(scores.pd_logit[j])),
                False, fraud, credit, "model", model.version)
        if log_progress is not None:
            log_progress(f"scored {min(lo + chunk_size, len(ids)):,} of {len(ids):,} "
                         "applications")
    return out


def _facts(graph: LendingGraph, position: int, currency: str) -> ApplicationFacts:
    """An application of the graph as the reasons' evidence names it."""
    a = graph.attrs["Application"]

    def node(label: str, column: str) -> str | None:
        p = int(a[column][position])
        return None if p < 0 else str(graph.ids[label][p])

    product = int(a["product"][position])
    return ApplicationFacts(
        application_id=str(graph.ids["Application"][position]),
        product=PRODUCTS[product] if product < len(PRODUCTS) else "bnpl",
        amount=float(a["amount"][position]), currency=currency,
        user_id=node("User", "user") or "", device_id=node("Device", "device") or "",
        device_masked="", ip=node("IP", "ip") or "", lat=float(a["lat"][position]),
        lon=float(a["lon"][position]), ts=int(a["ts"][position]),
        merchant_id=node("Merchant", "merchant"),
        term_months=int(a["term_months"][position]) or None)
