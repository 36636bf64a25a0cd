"""`evaluate_seeds`: simulate several worlds, train and evaluate on each, aggregate the results.

The service function behind ``riskgraph evaluate --seeds``. For each seed, in its own directory
``<work_dir>/seed-<S>/``:

1. ``world/`` — the world, simulated from the template :class:`WorldConfig` with this seed
   (skipped when ``world/world.json``, written last, is there with the same parameters);
2. ``models/`` — a registry holding the model trained by :func:`gnn.train.risk_workflows.train_world`
   with the given configurations (``riskgraph train``'s recipe; nothing is tuned here);
3. ``evaluation.json`` — :func:`gnn.train.risk_evaluation.evaluate_world`'s numbers plus every test
   application's truth and scores (:class:`ScoredTestSet`); written last, so a seed with this
   file is done and is not redone.

``progress.json`` records each finished stage and its time. The worlds are then aggregated by
:func:`gnn.train.seed_aggregation.aggregate_seeds`; ``<work_dir>/summary.json`` holds every number.
The development seed (:data:`DEVELOPMENT_SEED`), on which the recipe was chosen, is refused.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from gnn.errors import ModelError, WorkDirMismatch
from gnn.registry import ModelRegistry
from gnn.train.risk_evaluation import (MODEL_NAMES, decile_check, decile_feasibility,
                                      default_row_name, report_to_json)
from gnn.train.risk_trainer import RiskTrainConfig
from gnn.train.risk_workflows import evaluate_registered, train_world
from gnn.train.scored_test_set import ScoredTestSet
from gnn.pipeline import PipelineConfig
from gnn.train.seed_aggregation import (
    Estimate,
    RowSummary,
    SeedSummary,
    Standing,
    aggregate_seeds,
)
from simulator import METADATA_FILE, WorldConfig, difficulty_of, simulate_world, write_world

logger = logging.getLogger(__name__)

DEVELOPMENT_SEED: Final = 9
"""The world the architecture and the training recipe were chosen on (docs/evaluation_notes.md):
an evaluation on it would flatter the model."""

DEPLOYED: Final = "gnn"
"""The key under which :func:`gnn.train.risk_evaluation.evaluate_world` reports the deployed pipeline."""

MIN_POSITIVES: Final = 30
"""A pattern or product is judged only with at least this many positives over the worlds."""

RESULT_FILE: Final = "evaluation.json"
PROGRESS_FILE: Final = "progress.json"
SUMMARY_FILE: Final = "summary.json"


def check_seeds(seeds: Sequence[int]) -> None:
    """Refuse seeds an honest multi-world evaluation cannot use.

    Raises:
        ValueError: on fewer than two seeds, a repeated or negative seed, or the development
            seed, with a message that says why.
    """
    if DEVELOPMENT_SEED in seeds:
        raise ValueError(f"seed {DEVELOPMENT_SEED} is the development seed: the model's "
                         "architecture and training recipe were chosen on that world, so it "
                         "cannot judge them; pick seeds the recipe was never tuned on")
    if len(seeds) < 2:
        raise ValueError(f"at least two seeds are needed for a spread across worlds, got "
                         f"{list(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"each seed once, got {list(seeds)}")
    if min(seeds) < 0:
        raise ValueError(f"seeds must be non-negative, got {list(seeds)}")


@dataclass(frozen=True)
class SeedRun:
    """One world's part of the evaluation (its ``evaluation.json`` without the scores).

    Args:
        seed (int): the world's seed.
        world (str): its directory.
        world_config (dict[str, Any]): the simulator's parameters.
        model_version (str): the model trained on it.
        train_config (dict[str, Any]): the training settings used.
        report (dict[str, Any]): the single-world report's numbers
            (:func:`gnn.train.risk_evaluation.report_to_json`).
        model_names (dict[str, str]): model key -> name in the report.
        seconds (dict[str, float]): wall time per stage: simulate, train, evaluate.
    """

    seed: int
    world: str
    world_config: dict[str, Any]
    model_version: str
    train_config: dict[str, Any]
    report: dict[str, Any]
    model_names: dict[str, str]
    seconds: dict[str, float]


@dataclass(frozen=True)
class MultiSeedEvaluation:
    """Every world's run and their aggregate.

    Args:
        runs (list[SeedRun]): in seed order as asked.
        summary (SeedSummary): the aggregate.
        seconds (dict[str, float]): wall time of this call: ``worlds`` (the stages run now)
            and ``aggregate``.
    """

    runs: list[SeedRun]
    summary: SeedSummary
    seconds: dict[str, float]

    @property
    def model_names(self) -> dict[str, str]:
        # NOTE: every model of the summary has a name, the default-only ones (the GNN's own
        # default head beside a credit model) included, also in runs saved without it
        names = {m: MODEL_NAMES.get(m, m) for m in (*self.summary.models,
                                                    *self.summary.default_models)}
        for r in self.runs:
            names.update(r.model_names)
        return names

    def to_json(self) -> dict[str, Any]:
        return {"runs": [r.__dict__ for r in self.runs], "summary": self.summary.to_json(),
                "seconds": self.seconds}


def _write_json(path: Path, value: Any) -> None:
    """Write ``value`` to ``path`` atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _check_world(world_dir: Path, config: WorldConfig) -> None:
    meta = json.loads((world_dir / METADATA_FILE).read_text())
    if meta.get("config") != _plain(config.to_dict()):
        differ = sorted(k for k, v in _plain(config.to_dict()).items()
                        if meta.get("config", {}).get(k) != v)
        raise WorkDirMismatch(f"{world_dir} holds a world simulated with other parameters "
                              f"({', '.join(differ)} differ): use another work directory or "
                              "remove it")


def _run_seed(
    seed: int,
    seed_dir: Path,
    world_config: WorldConfig,
    train_config: RiskTrainConfig,
    pipeline_config: PipelineConfig | None,
    threads: int,
    say: Callable[[str], None],
) -> None:
    """Simulate, train and evaluate one world, each stage only if not done before."""
    seed_dir.mkdir(parents=True, exist_ok=True)
    progress_path = seed_dir / PROGRESS_FILE
    progress: dict[str, Any] = (json.loads(progress_path.read_text())
                                if progress_path.exists() else {})
    world_dir = seed_dir / "world"
    config = replace(world_config, seed=seed)
    if (world_dir / METADATA_FILE).exists():
        _check_world(world_dir, config)
        say(f"world {world_dir} already there")
    else:
        say(f"simulating {config.users} users, seed {seed}, into {world_dir}")
        t0 = time.perf_counter()
        write_world(simulate_world(config, log=say), world_dir)
        # NOTE: a model trained on an earlier, unfinished copy of this world is not reused
        progress = {"simulate": {"seconds": time.perf_counter() - t0}}
        _write_json(progress_path, progress)

    registry = ModelRegistry(seed_dir / "models")
    version = progress.get("train", {}).get("version")
    if version is None or version not in registry.versions():
        say(f"training on {world_dir}")
        t0 = time.perf_counter()
        trained = train_world(world_dir, registry, pipeline_config=pipeline_config,
                              train_config=train_config, log=say)
        version = trained.version
        progress["train"] = {"seconds": time.perf_counter() - t0, "version": version,
                             "config": train_config.to_dict()}
        _write_json(progress_path, progress)
    else:
        say(f"model {version} already trained")

    say(f"evaluating {version} and the baselines on the test period")
    t0 = time.perf_counter()
    report = evaluate_registered(world_dir, registry, version=version, threads=threads,
                                 log=say)
    progress["evaluate"] = {"seconds": time.perf_counter() - t0}
    _write_json(progress_path, progress)
    assert report.test is not None
    seconds = {k: float(progress[k]["seconds"]) for k in ("simulate", "train", "evaluate")
               if k in progress}
    _write_json(seed_dir / RESULT_FILE, {
        "seed": seed, "world": str(world_dir), "world_config": _plain(config.to_dict()),
        "model_version": version, "train_config": progress["train"]["config"],
        "report": _plain(report_to_json(report)),
        "model_names": {m: MODEL_NAMES.get(m, m) for m in (*report.test.fraud_scores,
                                                           *report.test.pd_scores)},
        "seconds": seconds, "test": report.test.to_json(),
    })


def _load_seed(path: Path) -> tuple[SeedRun, ScoredTestSet]:
    value = json.loads(path.read_text())
    test = ScoredTestSet.from_json(value.pop("test"))
    return SeedRun(**value), test


def evaluate_seeds(
    seeds: Sequence[int],
    work_dir: str | Path,
    *,
    world_config: WorldConfig,
    train_config: RiskTrainConfig | None = None,
    pipeline_config: PipelineConfig | None = None,
    threads: int = 1,
    resamples: int = 1000,
    confidence: float = 0.95,
    bootstrap_seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> MultiSeedEvaluation:
    """Simulate, train and evaluate one world per seed (resumably), then aggregate.

    Args:
        seeds (Sequence[int]): the worlds; never :data:`DEVELOPMENT_SEED`.
        work_dir (str or Path): where each world, model and result goes.
        world_config (WorldConfig): the simulator's parameters; its seed is replaced by each
            of ``seeds``.
        train_config (RiskTrainConfig, optional): as ``riskgraph train``. (default: defaults)
        pipeline_config (PipelineConfig, optional): as ``riskgraph train``.
            (default: defaults)
        threads (int, optional): LightGBM threads of the baselines. (default: ``1``)
        resamples (int, optional): bootstrap resamples. (default: ``1000``)
        confidence (float, optional): interval coverage. (default: ``0.95``)
        bootstrap_seed (int, optional): base seed of the resampling. (default: ``0``)
        log (Callable[[str], None], optional): progress lines. (default: module logger)

    Raises:
        ValueError: on refused seeds (:func:`check_seeds`).
        WorkDirMismatch: if the work directory holds a world or a result of other parameters.
        ModelError: if a world cannot be trained on (e.g. too small to hold fraud labels in
            every period), naming its seed.
    """
    check_seeds(seeds)
    say = log or logger.info
    work_dir = Path(work_dir)
    train_config = train_config or RiskTrainConfig()
    runs: list[SeedRun] = []
    tests: dict[int, ScoredTestSet] = {}
    t0 = time.perf_counter()
    for i, seed in enumerate(seeds, start=1):
        seed_dir = work_dir / f"seed-{seed}"
        result = seed_dir / RESULT_FILE

        def tagged(line: str, i: int = i, seed: int = seed) -> None:
            say(f"[{i}/{len(seeds)} seed {seed}] {line}")

        if result.exists():
            run, test = _load_seed(result)
            if run.world_config != _plain(replace(world_config, seed=seed).to_dict()):
                raise WorkDirMismatch(f"{seed_dir} was evaluated on a world of other parameters: "
                                 "use another work directory or remove it")
            tagged(f"done before ({result}), kept")
        else:
            started = time.perf_counter()
            try:
                _run_seed(seed, seed_dir, world_config, train_config, pipeline_config, threads,
                          tagged)
            except ModelError as e:
                raise ModelError(f"seed {seed}: {e}") from e
            run, test = _load_seed(result)
            tagged(f"done in {time.perf_counter() - started:.0f}s")
        runs.append(run)
        tests[seed] = test
    worlds_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = aggregate_seeds(tests, deployed=DEPLOYED, resamples=resamples,
                              confidence=confidence, bootstrap_seed=bootstrap_seed, log=say)
    evaluation = MultiSeedEvaluation(runs, summary,
                                     {"worlds": worlds_s, "aggregate": time.perf_counter() - t0})
    _write_json(work_dir / SUMMARY_FILE, evaluation.to_json())
    say(f"wrote {work_dir / SUMMARY_FILE}")
    return evaluation


# -- the report ------------------------------------------------------------------------------

_METRIC_NAMES: Final[dict[str, str]] = {
    "auroc": "AUROC", "auprc": "AUPRC", "recall_at_1pct_fpr": "recall @ 1 % FPR",
    "brier": "Brier", "predicted_over_observed": "predicted / observed", "ece": "ECE",
}


def _num(v: float, metric: str = "auprc") -> str:
    if not np.isfinite(v):
        return "—"
    return f"{v:.4f}" if metric == "brier" else f"{v:.3f}"


def _cell(e: Estimate, metric: str) -> str:
    if not np.isfinite(e.mean):
        return "—"
    spread = f" ± {_num(e.std, metric)}" if np.isfinite(e.std) else ""
    return f"{_num(e.mean, metric)}{spread} [{_num(e.lo, metric)}, {_num(e.hi, metric)}]"


def _signed(e: Estimate, metric: str) -> str:
    digits = 4 if metric == "brier" else 3
    return f"{e.mean:+.{digits}f} [{e.lo:+.{digits}f}, {e.hi:+.{digits}f}]"


def _counts(row_positives: Sequence[int]) -> str:
    return f"{sum(row_positives)} ({' / '.join(str(p) for p in row_positives)})"


def _where(row: RowSummary) -> str:
    return "all" if row.group == "overall" else f"{row.group} {row.name}"


def _standing_line(s: Standing, names: Mapping[str, str], deployed: str) -> str:
    r = s.row
    where = "all test applications" if r.group == "overall" else f"{r.group} `{r.name}`"
    if r.target == "default":
        where = ("all funded test loans" if r.group == "overall"
                 else f"funded `{r.name}` loans")
    dep = r.metrics[deployed][s.metric]
    base = r.metrics[s.baseline][s.metric]
    seeds = (f"worse on world(s) {', '.join(str(x) for x in s.seeds_behind)}"
             if s.seeds_behind else "worse on no single world")
    direction = "" if s.higher_is_better else " (lower is better)"
    return (f"**{r.target} {_METRIC_NAMES[s.metric]}{direction}, {where}** "
            f"(n = {r.total_positives}): {names[deployed]} {_cell(dep, s.metric)} against "
            f"{names[s.baseline]} {_cell(base, s.metric)}; difference "
            f"{_signed(s.difference, s.metric)}: **{s.verdict}**; {seeds}.")


def _metric_table(summary: SeedSummary, rows: Sequence[RowSummary], metric: str,
                  names: Mapping[str, str], label: str) -> list[str]:
    models = summary.models if rows[0].target == "fraud" else summary.default_models
    lines = [f"| {label} | n (per world) | " + " | ".join(names[m] for m in models) + " |",
             "|---|---|" + "---|" * len(models)]
    for r in rows:
        lines.append(f"| {r.name} | {_counts(r.positives)} | " +
                     " | ".join(_cell(r.metrics[m][metric], metric) for m in models) + " |")
    return lines


def render_seeds_markdown(evaluation: MultiSeedEvaluation, *, command: str,
                          img_prefix: str = "img/", notes: Sequence[str] = (),
                          min_positives: int = MIN_POSITIVES) -> str:
    """docs/EVALUATION.md over several worlds, as text."""
    s = evaluation.summary
    names = evaluation.model_names
    dep = s.deployed
    runs = evaluation.runs
    users = sorted({r.world_config["users"] for r in runs})
    kinds = sorted({difficulty_of(WorldConfig.from_dict(r.world_config)) for r in runs})
    pct = round(s.confidence * 100)
    seeds_text = ", ".join(str(x) for x in s.seeds)
    strongest = s.strongest_baseline()
    overall = s.row("fraud", "overall")

    def day(ts: int) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")

    lines = [
        f"# Evaluation over {len(s.seeds)} unseen "
        f"{'' if kinds == ['default'] else '/'.join(kinds) + ' '}worlds: {names[dep]} against "
        "its baselines",
        "",
        "Generated by `riskgraph evaluate --seeds`; do not edit by hand. Reproduce with:",
        "", "```", command, "```", "",
        f"Worlds: seeds {seeds_text}, {' / '.join(f'{u:,}' for u in users)} honest users each "
        f"and {' / '.join(f'**{k}**' for k in kinds)} fraud (`riskgraph simulate --difficulty "
        f"{' / '.join(kinds)}`'s other defaults; docs/SIMULATOR.md, \"Harder worlds\"). The "
        f"development seed {DEVELOPMENT_SEED}, on "
        "which the architecture and the training recipe were chosen, is refused. Each world "
        "gets its own model, trained with `riskgraph train`'s recipe and defaults (nothing is "
        "tuned on these worlds), and its own baselines, trained on the same split and targets "
        "and early-stopped on the same validation period. Every model is judged on the "
        "applications after T2 of its world against the ground truth, which training never "
        "reads.",
        "",
        "| world (seed) | split T1 / T2 | test applications | fraud | funded loans | defaults "
        "| model |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        i = r.report["info"]
        lines.append(f"| {r.seed} | {day(i['split']['t1'])} / {day(i['split']['t2'])} | "
                     f"{i['test_applications']:,} | {i['test_fraud']:,} | "
                     f"{i['funded_test_loans']:,} | {i['test_defaults']:,} | "
                     f"`{r.model_version}` |")
    lines += [
        "",
        f"**How to read a cell**: *mean ± std [{pct} % interval]*. The mean and the (sample) "
        f"standard deviation are over the {len(s.seeds)} worlds' values. The interval is a "
        f"bootstrap interval of that mean: {s.resamples} resamples; in each, every world's "
        "test items of the row are drawn with replacement, the positives and the negatives "
        "apart (each resample keeps the world's class counts), the metric is computed on each "
        "world and the worlds are averaged with equal weight; the interval runs from the "
        f"{(100 - pct) / 2:g}th to the {100 - (100 - pct) / 2:g}th percentile of those "
        f"means. The draws are seeded ({s.bootstrap_seed}, world seed, row), and every model "
        "of a row sees the same draws, so a difference between two models has its own paired "
        "interval. The interval says how much the test sets' sampling moves the mean over "
        "*these* worlds; how much a new world may differ is the std and the per-world values. "
        "n is the number of positives (fraud applications or defaults) over all worlds, with "
        "each world's count in brackets.",
        "",
        f"## Where {names[dep]} does not lead",
        "",
    ]
    if strongest is not None:
        lines += [f"The strongest baseline is **{names[strongest]}**: the best mean fraud "
                  f"AUPRC over all test applications "
                  f"({_cell(overall.metrics[strongest]['auprc'], 'auprc')}, against "
                  f"{_cell(overall.metrics[dep]['auprc'], 'auprc')} for {names[dep]}). Below, "
                  f"each row is checked against the baseline best on that row: overall, every "
                  f"pattern and product with n ≥ {min_positives}, fraud AUPRC and default "
                  "AUROC and Brier score.", ""]
    standings = s.standings(min_positives)
    behind = [x for x in standings if not x.leads]
    if behind:
        lines += [f"- {_standing_line(x, names, dep)}" for x in behind]
    else:
        lines.append(f"- {names[dep]} leads on the mean of every row checked.")
    narrow = [x for x in standings if x.leads and x.verdict != "ahead"]
    if narrow:
        lines += ["", "Ahead on the mean, but the interval of the difference includes 0: " +
                  "; ".join(f"{x.row.target} {_METRIC_NAMES[x.metric]}, {_where(x.row)} "
                            f"({_signed(x.difference, x.metric)} against "
                            f"{names[x.baseline]})" for x in narrow) + "."]
    seeds_behind = [x for x in standings if x.leads and x.seeds_behind]
    if seeds_behind:
        lines += ["", "Ahead on the mean but behind on single worlds: " +
                  "; ".join(f"{x.row.target} {_METRIC_NAMES[x.metric]}, {_where(x.row)}, "
                            "on world(s) "
                            f"{', '.join(str(v) for v in x.seeds_behind)}"
                            for x in seeds_behind) + "."]
    lines += ["", "| target | row | metric | n | best baseline | difference "
              f"({names[dep]} − baseline) | verdict | worlds behind |",
              "|---|---|---|---|---|---|---|---|"]
    for x in standings:
        lines.append(f"| {x.row.target} | {_where(x.row)} | "
                     f"{_METRIC_NAMES[x.metric]} | {x.row.total_positives} | "
                     f"{names[x.baseline]} | {_signed(x.difference, x.metric)} | {x.verdict} | "
                     f"{', '.join(str(v) for v in x.seeds_behind) or '—'} |")

    lines += ["", "## Fraud, all test applications", "",
              "| model | AUROC | AUPRC | recall @ 1 % FPR |", "|---|---|---|---|"]
    for m in s.models:
        e = overall.metrics[m]
        lines.append(f"| {names[m]} | {_cell(e['auroc'], 'auroc')} | "
                     f"{_cell(e['auprc'], 'auprc')} | "
                     f"{_cell(e['recall_at_1pct_fpr'], 'recall_at_1pct_fpr')} |")
    lines += ["", f"![AUPRC per pattern over the worlds]({img_prefix}seeds_fraud_auprc.png)"]
    patterns = [r for r in s.rows if r.target == "fraud" and r.group == "pattern"]
    products = [r for r in s.rows if r.target == "fraud" and r.group == "product"]
    for title, rows, label in (
            ("Fraud per planted pattern (that pattern against honest applications)", patterns,
             "pattern"),
            ("Fraud per product", products, "product")):
        if not rows:
            continue
        lines += ["", f"## {title}"]
        for metric in ("auprc", "recall_at_1pct_fpr", "auroc"):
            lines += ["", f"{_METRIC_NAMES[metric]}:", ""]
            lines += _metric_table(s, rows, metric, names, label)

    if s.default_models:
        d = s.row("default", "overall")
        lines += ["", "## Default (funded test loans, ground truth)", "",
                  f"n = defaults among funded test loans. *predicted / observed*: mean "
                  "predicted probability over the observed default rate (1 is calibrated in the "
                  "large); ECE: mean |predicted − observed| over ten equal-count bins of the "
                  "predicted probability.", "",
                  "| model | n | " + " | ".join(_METRIC_NAMES[k] for k in
                                               ("auroc", "brier", "predicted_over_observed",
                                                "ece")) + " |", "|---|---|---|---|---|---|"]
        credit = "gnn_head" in s.default_models
        for m in s.default_models:
            e = d.metrics[m]
            lines.append(f"| {default_row_name(m, credit) if m == dep else names[m]} | {_counts(d.positives)} | " + " | ".join(
                _cell(e[k], k) for k in ("auroc", "brier", "predicted_over_observed", "ece")) +
                " |")
        dprod = [r for r in s.rows if r.target == "default" and r.group == "product"]
        for metric in ("auroc", "brier"):
            lines += ["", f"{_METRIC_NAMES[metric]} per product:", ""]
            lines += _metric_table(s, dprod, metric, names, "product")
        if s.reliability:
            lines += ["", f"![Reliability]({img_prefix}seeds_reliability.png)", "",
                      f"Reliability of {names[dep]}'s probability of default per world "
                      "(funded test loans, ten equal-count bins, predicted / observed):", "",
                      "| bin | " + " | ".join(f"world {x}" for x in s.reliability) + " |",
                      "|---|" + "---|" * len(s.reliability)]
            width = max(len(b) for b in s.reliability.values())
            for k in range(width):
                cells = []
                for bins in s.reliability.values():
                    cells.append(f"{bins[k]['predicted']:.4f} / {bins[k]['observed']:.4f}"
                                 if k < len(bins) else "—")
                lines.append(f"| {k + 1} | " + " | ".join(cells) + " |")
            auc = d.metrics.get(dep, {}).get("auroc")
            auc_b = d.metrics.get("gbt_no_graph", {}).get("auroc")
            if auc is not None and auc_b is not None:
                lines += ["", "Credit targets per world (each decile within ±25 % of observed, "
                          "observed rate monotone over the deciles, default AUROC at least "
                          "(b)'s):", ""]
                for k, (seed, bins) in enumerate(s.reliability.items()):
                    check = decile_check(bins, auc.per_seed[k], auc_b.per_seed[k])
                    line = f"- world {seed}: {check.summary()}"
                    if all("n" in b for b in bins):
                        line += (" Sampling alone: " + decile_feasibility(bins, seed=seed)
                                 .summary() + ".")
                    lines.append(line)

    lines += ["", "## Per world", "", "Fraud AUPRC over all test applications"
              + (" and default AUROC on funded test loans" if s.default_models else "") +
              ", per world:", "",
              "| model | " + " | ".join(f"fraud AUPRC, world {x}" for x in s.seeds) +
              (" | " + " | ".join(f"default AUROC, world {x}" for x in s.seeds)
               if s.default_models else "") + " |",
              "|---|" + "---|" * (len(s.seeds) * (2 if s.default_models else 1))]
    for m in s.models:
        cells = [_num(v) for v in overall.metrics[m]["auprc"].per_seed]
        if s.default_models:
            dm = s.row("default", "overall").metrics.get(m)
            cells += ([_num(v) for v in dm["auroc"].per_seed] if dm is not None
                      else ["—"] * len(s.seeds))
        lines.append(f"| {names[m]} | " + " | ".join(cells) + " |")
    lines += ["", "## Timings", "", "Wall seconds per stage and world (train and evaluate "
              "each include reading the world into a graph).", "",
              "| world | simulate | train | evaluate |", "|---|---|---|---|"]
    for r in runs:
        sec = r.seconds
        lines.append(f"| {r.seed} | " + " | ".join(
            f"{sec[k]:.0f}" if k in sec else "—" for k in ("simulate", "train", "evaluate")) +
            " |")
    lines += ["", f"Aggregation and bootstrap: {evaluation.seconds['aggregate']:.0f} s."]
    bullets = [n for n in notes if not n.startswith("\n")]
    if bullets:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in bullets]
    for n in notes:
        if n.startswith("\n"):
            lines += ["", n.strip("\n")]
    return "\n".join(lines) + "\n"


def plot_seeds(evaluation: MultiSeedEvaluation, img_dir: str | Path) -> list[Path]:
    """``seeds_fraud_auprc.png`` (AUPRC per pattern: mean, interval, each world) and
    ``seeds_reliability.png`` (the deployed model's probability of default per world)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = evaluation.summary
    names = evaluation.model_names
    img_dir = Path(img_dir)
    img_dir.mkdir(parents=True, exist_ok=True)
    rows = [r for r in s.rows if r.target == "fraud" and r.group in ("overall", "pattern")]
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) * max(len(s.models), 2) / 2 + 1.5))
    step = 0.8 / max(len(s.models), 1)
    for j, m in enumerate(s.models):
        ys = [i + (j - (len(s.models) - 1) / 2) * step for i in range(len(rows))]
        e = [r.metrics[m]["auprc"] for r in rows]
        mean = np.array([x.mean for x in e])
        err = np.array([[x.mean - x.lo for x in e], [x.hi - x.mean for x in e]])
        line = ax.errorbar(mean, ys, xerr=np.nan_to_num(err), fmt="o", ms=4, capsize=2,
                           label=names[m])
        for y, x in zip(ys, e, strict=True):
            ax.plot(x.per_seed, [y] * len(x.per_seed), "|", color=line[0].get_color(),
                    alpha=0.6)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([("all fraud" if r.group == "overall" else r.name) +
                        f" (n={r.total_positives})" for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.02)
    ax.set_xlabel(f"AUPRC: mean over worlds, {round(s.confidence * 100)} % bootstrap interval, "
                  "| each world")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2)
    fig.tight_layout()
    auprc = img_dir / "seeds_fraud_auprc.png"
    fig.savefig(auprc, dpi=110)
    plt.close(fig)
    out = [auprc]
    if s.reliability:
        fig, ax = plt.subplots(figsize=(4.8, 4.4))
        hi = 1e-3
        for seed, bins in s.reliability.items():
            predicted = [b["predicted"] for b in bins]
            observed = [b["observed"] for b in bins]
            hi = max(hi, *predicted, *observed)
            ax.plot(predicted, observed, "o-", ms=3, label=f"world {seed}")
        hi *= 1.1
        ax.plot([0, hi], [0, hi], "k--", lw=0.8)
        ax.set_xlim(0, hi)
        ax.set_ylim(0, hi)
        ax.set_xlabel("mean predicted probability of default")
        ax.set_ylabel("observed default rate")
        ax.set_title(names[s.deployed])
        ax.legend(fontsize=7)
        fig.tight_layout()
        rel = img_dir / "seeds_reliability.png"
        fig.savefig(rel, dpi=110)
        plt.close(fig)
        out.append(rel)
    return out


def write_seeds_report(evaluation: MultiSeedEvaluation, doc: str | Path, img_dir: str | Path,
                       *, command: str, notes: Sequence[str] = ()) -> None:
    """Write the Markdown report to ``doc`` and its plots under ``img_dir``."""
    doc = Path(doc)
    img_dir = Path(img_dir)
    plot_seeds(evaluation, img_dir)
    try:
        prefix = str(img_dir.resolve().relative_to(doc.resolve().parent)) + "/"
    except ValueError:
        prefix = str(img_dir.resolve()) + "/"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render_seeds_markdown(evaluation, command=command, img_prefix=prefix,
                                         notes=notes))

