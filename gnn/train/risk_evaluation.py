"""`evaluate_world`: the GNN against rules and gradient-boosted trees on the test period.

Everything is scored on the applications after ``T2`` of the model's own split and judged
against the world's ground truth (``truth_applications``), which training never reads. The
baselines are trained on the same split with the same targets (labels visible before ``T2``)
and early-stopped on the same validation period:

* **rules** — the transparent points model (:class:`gnn.rules.RiskRules`) on the same
  application root features the GNN reads; the score is its fraud log-odds (its default
  log-odds enter the default table);
* **GBT, no graph** — LightGBM on the root features of groups ``own`` and ``lookup`` (the
  application, its applicant's own history, the device / IP / merchant it names);
* **GBT + neighbours** — LightGBM on every root feature (shared-entity counts, labelled
  neighbours, device and IP velocity) plus mean / max / count of every sampled neighbour's
  features per relation and hop (the GADBench recipe).

Metrics: AUROC, AUPRC, recall at 1 % false-positive rate — overall, per planted pattern
(that pattern's applications against the honest ones) and per product; for default, on funded
test loans: AUROC, Brier score and a reliability table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from sklearn.metrics import precision_recall_curve

from gnn.train.bootstrap_metrics import ranking_metrics, reliability_bins
from gnn.train.calibration import Calibrator
from gnn.data.lending_graph import NEVER, LendingGraph
from gnn.features.neighbour_aggregates import aggregate_names
from gnn.nn.fraud_blend import blend_inputs
from gnn.features.risk_features import ApplicationQueries
from gnn.rules import RULES_VERSION, RiskRules
from gnn.train.fraud_blend_trainer import fit_lightgbm
from gnn.train.scored_test_set import ScoredTestSet
from gnn.pipeline import ScoringPipeline
from gnn.data.time_split import DAY, TimeSplit, application_targets
from graph.typing import PRODUCTS

logger = logging.getLogger(__name__)

MODELS: Final[tuple[str, ...]] = ("rules", "gbt_no_graph", "gbt_neighbours", "gnn_alone",
                                  "gnn")
MODEL_NAMES: Final[dict[str, str]] = {
    "rules": "(a) rules (points model)", "gbt_no_graph": "(b) LightGBM, no graph",
    "gbt_neighbours": "(c) LightGBM + neighbour aggregates",
    "gnn_alone": "HeteroRiskGNN alone", "gnn": "Deployed (HeteroRiskGNN + trees blend)",
    "gnn_head": "GNN default head (calibrated)",
}
"""Display names. ``gnn`` is what the deployed pipeline decides with: for fraud its blend of
the GNN and trees over the neighbour aggregates where it has one (``gnn_alone`` the GNN's own
logit), for default its credit model where it has one (``gnn_head`` the GNN's own default
head)."""


def binary_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """AUROC, AUPRC and recall at 1 % FPR of ``score`` against 0/1 ``y`` (NaN if one class)."""
    y = np.asarray(y, dtype=np.int64)
    pos = int(y.sum())
    out = {"n": float(y.shape[0]), "positives": float(pos)}
    if pos == 0 or pos == y.shape[0]:
        return {**out, "auroc": float("nan"), "auprc": float("nan"), "recall_at_1pct_fpr":
                float("nan")}
    return {**out, **{k: float(v[0]) for k, v in ranking_metrics(y, score).items()}}


@dataclass
class EvaluationReport:
    """Every number of the evaluation, ready to render.

    Args:
        overall (dict[str, dict[str, float]]): model -> metrics on all test applications.
        per_pattern (dict[str, dict[str, dict[str, float]]]): pattern -> model -> metrics.
        per_product (dict[str, dict[str, dict[str, float]]]): product -> model -> metrics.
        default (dict[str, dict[str, float]]): model -> AUROC, Brier on funded test loans.
        reliability (dict[str, list[dict[str, float]]]): ``"pd"`` / ``"fraud"`` -> bins.
        curves (dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]): subset -> model -> PR.
        info (dict[str, Any]): world, model version, split, counts, timings.
        test (ScoredTestSet, optional): every test application's truth and scores, for
            resampling and for aggregating worlds (:mod:`gnn.train.seed_aggregation`).
    """

    overall: dict[str, dict[str, float]]
    per_pattern: dict[str, dict[str, dict[str, float]]]
    per_product: dict[str, dict[str, dict[str, float]]]
    default: dict[str, dict[str, float]]
    reliability: dict[str, list[dict[str, float]]]
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(repr=False)
    info: dict[str, Any]
    test: ScoredTestSet | None = field(default=None, repr=False)


def _reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Equal-count bins: mean predicted and observed rate per bin."""
    return reliability_bins(y, p, bins)


@dataclass(frozen=True)
class GroundTruth:
    """What the test period is judged against, per application (graph position).

    Args:
        application_id (np.ndarray): object ids.
        fraud (np.ndarray): bool, the application is fraud.
        pattern (np.ndarray): object, the planted pattern (``""`` for honest or unknown).
        product (np.ndarray): object, the product.
        funded (np.ndarray): bool, the loan was funded.
        default (np.ndarray): bool, the funded loan defaulted.
        evaluable (np.ndarray): bool, the application may be judged (its outcome is mature).
        source (str): where the truth comes from (``world:<dir>`` or ``store:<id>``).
    """

    application_id: np.ndarray
    fraud: np.ndarray
    pattern: np.ndarray
    product: np.ndarray
    funded: np.ndarray
    default: np.ndarray
    evaluable: np.ndarray
    source: str

    @classmethod
    def from_world(cls, world_dir: str | Path, graph: LendingGraph) -> GroundTruth:
        """The simulator's own truth (``truth_applications``), which no part of training reads.

        Raises:
            ValueError: if a truth application is not in the graph.
        """
        import pyarrow.parquet as pq

        world_dir = Path(world_dir)
        truth = pq.read_table(world_dir / "truth_applications.parquet").to_pandas()
        pos = graph.positions("Application", truth["application_id"].tolist())
        if (pos < 0).any():
            raise ValueError(f"{int((pos < 0).sum())} truth applications are not in the graph")
        n_apps = graph.num_nodes("Application")

        def column(name: str, dtype: Any, fill: Any) -> np.ndarray:
            out = np.full(n_apps, fill, dtype=dtype)
            values = truth[name]
            out[pos] = (values.fillna("") if dtype is object else values).to_numpy(dtype)
            return out

        return cls(column("application_id", object, ""), column("fraud", bool, False),
                   column("pattern", object, ""), column("product", object, ""),
                   column("funded", bool, False), column("default", bool, False),
                   np.ones(n_apps, dtype=bool), f"world:{world_dir}")

    @classmethod
    def from_labels(cls, graph: LendingGraph, *, maturity_days: int, source: str
                    ) -> GroundTruth:
        """The labels a store holds now: fraud is a fraud label on the application, default a
        default label, funded a repayment; no pattern is known.

        An application counts (``evaluable``) only once it is ``maturity_days`` old at the
        graph's latest event: a younger one without a label may be fraud not confirmed yet.

        Raises:
            ValueError: if ``maturity_days`` is negative.
        """
        if maturity_days < 0:
            raise ValueError(f"maturity_days must be >= 0, got {maturity_days}")
        a = graph.attrs["Application"]
        n_apps = graph.num_nodes("Application")
        rep = graph.events["repayments"]
        funded = np.zeros(n_apps, dtype=bool)
        funded[rep["application"]] = True
        products = np.asarray(PRODUCTS, dtype=object)
        product = np.where(a["product"] < len(PRODUCTS),
                           products[np.minimum(a["product"], len(PRODUCTS) - 1)], "")
        return cls(np.asarray(graph.ids["Application"], dtype=object),
                   graph.fraud_at["Application"] < NEVER, np.full(n_apps, "", dtype=object),
                   product.astype(object), funded, graph.default_at["Application"] < NEVER,
                   a["ts"] <= graph.as_of - maturity_days * DAY, source)


def evaluate_world(
    world_dir: str | Path,
    graph: LendingGraph,
    pipeline: ScoringPipeline,
    split: TimeSplit,
    *,
    seed: int = 0,
    threads: int = 1,
    log: Callable[[str], None] | None = None,
) -> EvaluationReport:
    """Score the test period with the GNN and the three baselines against a world's truth.

    Args:
        world_dir (str or Path): the world (for its ground truth).
        graph (LendingGraph): the same world as a graph (``LendingGraph.from_world``).
        pipeline (ScoringPipeline): the trained pipeline.
        split (TimeSplit): the split the pipeline was trained under (from its manifest).
        seed (int, optional): LightGBM seed. (default: ``0``)
        threads (int, optional): LightGBM threads. (default: ``1``)
        log (Callable[[str], None], optional): progress lines. (default: module logger)
    """
    return evaluate_applications(graph, pipeline, split, GroundTruth.from_world(world_dir, graph),
                                 seed=seed, threads=threads, log=log)


def evaluate_applications(
    graph: LendingGraph,
    pipeline: ScoringPipeline,
    split: TimeSplit,
    truth: GroundTruth,
    *,
    seed: int = 0,
    threads: int = 1,
    log: Callable[[str], None] | None = None,
) -> EvaluationReport:
    """Score the test period (its ``truth.evaluable`` applications) with the GNN and the three
    baselines; training targets are the labels visible before ``T2``, as in training.

    Args:
        graph (LendingGraph): the graph the pipeline was trained on, or its later state.
        pipeline (ScoringPipeline): the trained pipeline.
        split (TimeSplit): the split the pipeline was trained under (from its manifest).
        truth (GroundTruth): what the test period is judged against.
        seed (int, optional): LightGBM seed. (default: ``0``)
        threads (int, optional): LightGBM threads. (default: ``1``)
        log (Callable[[str], None], optional): progress lines. (default: module logger)

    Raises:
        ValueError: if no test application is evaluable.
    """
    say = log or logger.info
    started = time.perf_counter()
    timings: dict[str, float] = {}
    targets = application_targets(graph, split)
    t_fraud, t_pattern, t_funded = truth.fraud, truth.pattern, truth.funded
    t_default, t_product, t_id = truth.default, truth.product, truth.application_id
    judged = targets.test & truth.evaluable
    if not judged.any():
        raise ValueError("no test application is old enough to be judged (label maturity)")
    if not truth.fraud[judged].any():
        raise ValueError(f"no fraud label among the {int(judged.sum())} test applications old "
                         "enough to be judged: nothing to rank against")

    idx = {k: np.flatnonzero(getattr(targets, m)) for k, m in
           (("train", "train"), ("val", "val_choose"), ("test", "test"))}
    idx["test"] = np.flatnonzero(targets.test & truth.evaluable)
    t0 = time.perf_counter()
    prep = {k: pipeline.prepare_applications(graph, ApplicationQueries.from_graph(graph, v))
            for k, v in idx.items()}
    timings["prepare"] = time.perf_counter() - t0
    say(f"prepared {sum(len(p) for p in prep.values())} applications in {timings['prepare']:.1f}s")

    scores: dict[str, np.ndarray] = {}
    pd_scores: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    gnn = pipeline.predict(prep["test"])
    scores["gnn"], pd_scores["gnn"] = gnn.fraud, gnn.pd
    scores["gnn_alone"] = gnn.gnn_logit
    if pipeline.credit is not None:
        pd_scores["gnn_head"] = pipeline.gnn_pd("Application", gnn.pd_logit)
    timings["gnn_score"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rules = RiskRules(prep["test"].root_names).score(prep["test"].root_x)
    scores["rules"], pd_scores["rules"] = rules.fraud_logit, rules.pd
    timings["rules"] = time.perf_counter() - t0

    names = prep["train"].root_names
    groups = np.asarray(prep["train"].root_groups)
    no_graph = np.flatnonzero(np.isin(groups, ("own", "lookup")))
    fanouts = pipeline.config.fanouts["Application"]
    feats = {
        "gbt_no_graph": {k: p.root_x[:, no_graph] for k, p in prep.items()},
        "gbt_neighbours": {k: blend_inputs(p.trees, p.x, p.root_x, p.root_names, names,
                                           fanouts) for k, p in prep.items()},
    }
    y = {k: targets.fraud[v] for k, v in idx.items()}
    for name, x in feats.items():
        t0 = time.perf_counter()
        model = fit_lightgbm(x["train"], y["train"], x["val"], y["val"], seed, threads)
        scores[name] = model.predict_proba(x["test"])[:, 1]
        # default: same features, mature loans, calibrated on the later mature loans
        tr = targets.pd_train[idx["train"]]
        ca = targets.pd_val[idx["train"]]
        ypd = targets.pd[idx["train"]]
        pd_model = fit_lightgbm(x["train"][tr], ypd[tr], x["train"][ca], ypd[ca], seed, threads)
        raw = pd_model.predict_proba(x["train"][ca])[:, 1]
        cal = Calibrator("platt").fit(_logit(raw), ypd[ca])
        pd_scores[name] = cal(_logit(pd_model.predict_proba(x["test"])[:, 1]))
        timings[name] = time.perf_counter() - t0
        say(f"{name}: {x['train'].shape[1]} features, {model.best_iteration_} trees, "
            f"{timings[name]:.1f}s")

    test = idx["test"]
    fraud = t_fraud[test]
    honest = ~fraud
    overall = {m: binary_metrics(fraud, scores[m]) for m in MODELS}
    per_pattern: dict[str, dict[str, dict[str, float]]] = {}
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {"all": {}}
    for m in MODELS:
        p, r, _ = precision_recall_curve(fraud, scores[m])
        curves["all"][m] = (r, p)
    for pattern in sorted(set(t_pattern[test]) - {""}):
        sel = (t_pattern[test] == pattern) | honest
        yy = (t_pattern[test] == pattern)[sel]
        per_pattern[pattern] = {m: binary_metrics(yy, scores[m][sel]) for m in MODELS}
        curves[pattern] = {}
        for m in MODELS:
            p, r, _ = precision_recall_curve(yy, scores[m][sel])
            curves[pattern][m] = (r, p)
    per_product = {}
    for product in sorted(set(t_product[test])):
        sel = t_product[test] == product
        per_product[product] = {m: binary_metrics(fraud[sel], scores[m][sel]) for m in MODELS}
    funded = t_funded[test]
    dflt = t_default[test][funded]
    default = {}
    for m in pd_scores:
        p = pd_scores[m][funded]
        default[m] = {**binary_metrics(dflt, p), "brier": float(np.mean((p - dflt) ** 2)),
                      "mean_predicted": float(p.mean()), "observed_rate": float(dflt.mean())}
    reliability = {"pd": _reliability(dflt.astype(float), pd_scores["gnn"][funded]),
                   "fraud": _reliability(fraud.astype(float), scores["gnn"])}
    timings["total"] = time.perf_counter() - started
    info = {
        "world": truth.source.removeprefix("world:"), "truth": truth.source,
        "model_version": pipeline.version,
        "split": split.to_dict(), "timings_s": timings,
        "test_applications": int(test.shape[0]), "test_fraud": int(fraud.sum()),
        "test_patterns": {k: int((t_pattern[test] == k).sum()) for k in per_pattern},
        "funded_test_loans": int(funded.sum()), "test_defaults": int(dflt.sum()),
        "train_applications": int(idx["train"].shape[0]),
        "train_fraud_labels": int(y["train"].sum()),
        "val_applications": int(idx["val"].shape[0]), "val_fraud_labels": int(y["val"].sum()),
        "root_features": len(names), "no_graph_features": int(no_graph.shape[0]),
        "aggregate_features": len(aggregate_names(fanouts)),
        "credit_model": repr(pipeline.credit) if pipeline.credit is not None else None,
    }
    scored = ScoredTestSet(
        application_id=t_id[test], fraud=fraud, pattern=t_pattern[test],
        product=t_product[test], funded=funded, default=t_default[test],
        fraud_scores={m: scores[m] for m in MODELS},
        pd_scores={m: pd_scores[m] for m in default})
    say("default deciles of the deployed probability: "
        + decile_check(reliability["pd"], default["gnn"]["auroc"],
                       default["gbt_no_graph"]["auroc"]).summary() + " Sampling alone: "
        + decile_feasibility(reliability["pd"]).summary() + ".")
    return EvaluationReport(overall, per_pattern, per_product, default, reliability, curves,
                            info, scored)


def default_row_name(model: str, has_credit: bool) -> str:
    """A default-table row's name: the deployed pipeline's probability is its credit model's
    where it has one."""
    if model == "gnn" and has_credit:
        return "Deployed PD (credit model: hazard over loan periods)"
    return MODEL_NAMES.get(model, model)


@dataclass(frozen=True)
class DecileCheck:
    """The credit targets on one world's per-decile table (predicted against observed).

    Args:
        within (int): deciles whose mean predicted is within ``tolerance`` (relative) of the
            observed rate.
        deciles (int): deciles in the table.
        monotone (bool): the observed rate never falls from one decile to the next.
        auroc_margin (float): default AUROC of the deployed probability minus (b)'s.
        tolerance (float): the relative band. (default: ``0.25``)
    """

    within: int
    deciles: int
    monotone: bool
    auroc_margin: float
    tolerance: float = 0.25

    @property
    def met(self) -> bool:
        return self.within == self.deciles and self.monotone and self.auroc_margin >= 0

    def summary(self) -> str:
        return (f"Credit targets: {self.within}/{self.deciles} deciles within "
                f"±{self.tolerance:.0%} of observed, observed rate "
                f"{'monotone' if self.monotone else 'not monotone'} over the deciles, AUROC "
                f"{self.auroc_margin:+.3f} against (b): {'met' if self.met else 'not met'}.")


def decile_check(bins: Sequence[Mapping[str, float]], auroc: float, auroc_no_graph: float,
                 tolerance: float = 0.25) -> DecileCheck:
    """Check a reliability table (:func:`gnn.train.bootstrap_metrics.reliability_bins`)
    against the credit targets."""
    obs = np.asarray([b["observed"] for b in bins], dtype=np.float64)
    pred = np.asarray([b["predicted"] for b in bins], dtype=np.float64)
    within = int(np.sum(np.abs(pred - obs) <= tolerance * obs))
    return DecileCheck(within, len(bins), bool(np.all(np.diff(obs) >= 0)),
                       float(auroc - auroc_no_graph), tolerance)


@dataclass(frozen=True)
class DecileFeasibility:
    """How often a *perfectly calibrated* model with a table's predictions and bin sizes would
    meet the decile targets by sampling alone: each bin's outcomes drawn as
    ``Binomial(n, predicted)``.

    Args:
        within (float): share of draws with every bin within the tolerance.
        monotone (float): share of draws whose observed rate never falls.
        both (float): share of draws meeting both.
        draws (int): draws made.
    """

    within: float
    monotone: float
    both: float
    draws: int

    def summary(self) -> str:
        return (f"a perfectly calibrated model with these predictions and bin sizes would pass "
                f"all deciles within the band in {self.within:.0%} of {self.draws:,} draws, "
                f"monotone in {self.monotone:.0%}, both in {self.both:.0%}")


def decile_feasibility(bins: Sequence[Mapping[str, float]], tolerance: float = 0.25,
                       draws: int = 2000, seed: int = 0) -> DecileFeasibility:
    """The sampling noise of the decile targets (:class:`DecileFeasibility`): whether a miss
    can be the model's or only the test set's size.

    NOTE: a bin's predicted mean stands for each of its loans (a binomial draw); loans of
    unequal probability within a bin vary a little less, so the shares are slightly
    pessimistic.
    """
    if draws <= 0:
        raise ValueError(f"draws must be positive, got {draws}")
    pred = np.asarray([b["predicted"] for b in bins], dtype=np.float64)
    n = np.asarray([b["n"] for b in bins], dtype=np.int64)
    rng = np.random.default_rng(seed)
    obs = rng.binomial(n[None, :], np.clip(pred, 0.0, 1.0)[None, :],
                       size=(draws, n.shape[0])) / np.maximum(n, 1)[None, :]
    within = np.all(np.abs(pred[None, :] - obs) <= tolerance * obs, axis=1)
    monotone = np.all(np.diff(obs, axis=1) >= 0, axis=1)
    return DecileFeasibility(float(within.mean()), float(monotone.mean()),
                             float((within & monotone).mean()), draws)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _fmt(v: float) -> str:
    return "—" if not np.isfinite(v) else f"{v:.3f}"


def render_markdown(report: EvaluationReport, *, command: str, img_prefix: str = "img/",
                    notes: Sequence[str] = ()) -> str:
    """docs/EVALUATION.md as text."""
    i = report.info
    from datetime import UTC, datetime

    def day(ts: int) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")

    sp = i["split"]
    lines = [
        "# Evaluation: HeteroRiskGNN against rules and gradient-boosted trees",
        "",
        "Generated by `riskgraph evaluate`; do not edit by hand. Reproduce with:",
        "",
        "```",
        command,
        "```",
        "",
        f"World `{i['world']}`, model `{i['model_version']}`. Split: train on applications "
        f"before {day(sp['t1'])} UTC, choose (early stopping, calibration) on "
        f"{day(sp['t1'])}–{day(sp['t2'])}, test from {day(sp['t2'])}; every label used in "
        f"training became visible before {day(sp['t2'])}. Test: {i['test_applications']} "
        f"applications, {i['test_fraud']} fraud (ground truth); training saw "
        f"{i['train_fraud_labels']} fraud labels on {i['train_applications']} applications, "
        f"validation {i['val_fraud_labels']} on {i['val_applications']}.",
        "",
        "Baselines, trained on the same split and targets and early-stopped on the same "
        "validation period (never on test):",
        "",
        f"- **(a) rules** — `gnn.RiskRules` ({RULES_VERSION}), the transparent points model "
        "over the same application root features the GNN reads (expert weights, not fitted); "
        "score = its fraud log-odds, default = its (uncalibrated) default probability.",
        f"- **(b) LightGBM, no graph** — {i['no_graph_features']} features of the application, "
        "its applicant's own history and the device / IP / merchant it names.",
        f"- **(c) LightGBM + neighbour aggregates** — all {i['root_features']} root features "
        "(adding shared-entity counts with labelled neighbours, device / IP velocity, contacts "
        f"in default) plus {i['aggregate_features']} mean / max / count aggregates of the "
        "sampled neighbours' features per relation and hop.",
        "- **HeteroRiskGNN alone** — the same root features and sampled trees, relation-wise "
        "message passing (2 layers): the network's own fraud logit.",
        "- **Deployed** — what the service decides with: for fraud, the blend of the GNN's "
        "logit and trees of (c)'s recipe over (c)'s inputs, each calibrated alone on the "
        "validation period and the two calibrated log-odds added, then calibrated there "
        "(gnn/nn/fraud_blend.py); for default, "
        "the credit model.",
        "",
        "## Fraud, all test applications",
        "",
        "| model | AUROC | AUPRC | recall @ 1 % FPR |",
        "|---|---|---|---|",
    ]
    for m in MODELS:
        o = report.overall[m]
        lines.append(f"| {MODEL_NAMES[m]} | {_fmt(o['auroc'])} | {_fmt(o['auprc'])} | "
                     f"{_fmt(o['recall_at_1pct_fpr'])} |")
    lines += ["", f"![PR curves]({img_prefix}pr_curves.png)", "",
              "## Fraud per planted pattern (that pattern against honest applications)", "",
              "AUPRC / recall at 1 % FPR; n = fraud applications of the pattern in the test "
              "period.", "",
              "| pattern | n | " + " | ".join(MODEL_NAMES[m] for m in MODELS) +
              " | Deployed − (b) AUPRC |",
              "|---|---|" + "---|" * len(MODELS) + "---|"]
    for pattern, per in report.per_pattern.items():
        cells = [f"{_fmt(per[m]['auprc'])} / {_fmt(per[m]['recall_at_1pct_fpr'])}"
                 for m in MODELS]
        gain = per["gnn"]["auprc"] - per["gbt_no_graph"]["auprc"]
        lines.append(f"| {pattern} | {int(per['gnn']['positives'])} | " + " | ".join(cells) +
                     f" | {gain:+.3f} |")
    lines += ["", "## Fraud per product", "", "AUPRC (n fraud / n applications).", "",
              "| product | n | " + " | ".join(MODEL_NAMES[m] for m in MODELS) + " |",
              "|---|---|" + "---|" * len(MODELS)]
    for product, per in report.per_product.items():
        g = per["gnn"]
        lines.append(f"| {product} | {int(g['positives'])} / {int(g['n'])} | " +
                     " | ".join(_fmt(per[m]["auprc"]) for m in MODELS) + " |")
    lines += ["", "## Default (funded test loans, ground truth)", "",
              f"{i['funded_test_loans']} funded test loans, {i['test_defaults']} default. The "
              "baselines' default models train on loans mature at T2 and calibrate on the "
              "latest mature ones; the deployed probability (the Deployed row) is the "
              "credit model's, a discrete-time hazard over loan periods where loans not "
              "mature at T2 count for the periods they lived (gnn/train/credit_trainer.py)."
              + (f" {decile_check(report.reliability['pd'], report.default['gnn']['auroc'], report.default['gbt_no_graph']['auroc']).summary()}"
                 if report.reliability.get("pd") else ""), "",
              "| model | AUROC | AUPRC | Brier | mean predicted | observed rate |",
              "|---|---|---|---|---|---|"]
    for m, d in report.default.items():
        lines.append(f"| {default_row_name(m, 'gnn_head' in report.default)} | {_fmt(d['auroc'])} | {_fmt(d['auprc'])} | "
                     f"{d['brier']:.4f} | {d['mean_predicted']:.4f} | "
                     f"{d['observed_rate']:.4f} |")
    lines += ["", f"![Reliability]({img_prefix}reliability.png)", "",
              "Reliability of the GNN's calibrated probabilities on the test period "
              "(equal-count bins):", "", "| head | bin | n | mean predicted | observed |",
              "|---|---|---|---|---|"]
    for head, bins in report.reliability.items():
        for k, b in enumerate(bins):
            lines.append(f"| {head} | {k + 1} | {int(b['n'])} | {b['predicted']:.4f} | "
                         f"{b['observed']:.4f} |")
    t = i["timings_s"]
    lines += ["", "## Timings", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in t.items()]
    bullets = [n for n in notes if not n.startswith("\n")]
    if bullets:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in bullets]
    lines += [n.strip("\n") for n in notes if n.startswith("\n")]
    return "\n".join(lines) + "\n"


def plot_report(report: EvaluationReport, img_dir: str | Path) -> list[Path]:
    """PR curves (overall, rings, account takeover) and reliability diagrams as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir = Path(img_dir)
    img_dir.mkdir(parents=True, exist_ok=True)
    panels = [k for k in ("all", "fraud_ring", "account_takeover") if k in report.curves]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    for ax, key in zip(axes[0], panels, strict=True):
        for m in MODELS:
            r, p = report.curves[key][m]
            ap = (report.overall[m] if key == "all" else report.per_pattern[key][m])["auprc"]
            ax.plot(r, p, label=f"{MODEL_NAMES[m]} ({ap:.3f})", drawstyle="steps-post")
        ax.set_title({"all": "all fraud"}.get(key, key))
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    pr = img_dir / "pr_curves.png"
    fig.savefig(pr, dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, head in zip(axes, ("pd", "fraud"), strict=True):
        bins = report.reliability[head]
        x = [b["predicted"] for b in bins]
        y = [b["observed"] for b in bins]
        hi = max(max(x, default=0), max(y, default=0), 1e-3) * 1.1
        ax.plot([0, hi], [0, hi], "k--", lw=0.8)
        ax.plot(x, y, "o-")
        ax.set_title({"pd": "probability of default", "fraud": "fraud probability"}[head])
        ax.set_xlabel("mean predicted")
        ax.set_ylabel("observed rate")
        ax.set_xlim(0, hi)
        ax.set_ylim(0, hi)
    fig.tight_layout()
    rel = img_dir / "reliability.png"
    fig.savefig(rel, dpi=110)
    plt.close(fig)
    return [pr, rel]


def report_to_json(report: EvaluationReport) -> Mapping[str, Any]:
    """The report's numbers (no curves) as JSON-ready values."""
    return {"overall": report.overall, "per_pattern": report.per_pattern,
            "per_product": report.per_product, "default": report.default,
            "reliability": report.reliability, "info": report.info}
