"""The service functions behind ``riskgraph train`` and ``riskgraph evaluate``.

Each takes paths, a registry and configurations as arguments (no settings are read here); the
CLI builds those and calls one function.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gnn.errors import ModelError
from gnn.data.lending_graph import LendingGraph
from gnn.registry import ModelRegistry
from gnn.train.promotion_gate import PromotionDecision, judge_promotion
from gnn.train.risk_evaluation import (
    EvaluationReport,
    GroundTruth,
    evaluate_applications,
    evaluate_world,
    plot_report,
    render_markdown,
    report_to_json,
)
from gnn.train.risk_trainer import RiskTrainConfig, RiskTrainResult, train_risk_model
from gnn.pipeline import PipelineConfig, ScoringPipeline
from gnn.data.time_split import TimeSplit, application_targets
from gnn.train.drift_reference import DRIFT_REFERENCE_FILE, build_drift_reference
from graph.label_history import labels_as_of
from graph.privacy import Pseudonymiser
from graph.snapshot import GraphSnapshot
from graph.errors import StoreError
from graph.store import GraphStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedVersion:
    """A model trained and registered by :func:`train_world`.

    Args:
        version (str): its registry version.
        result (RiskTrainResult): the training numbers.
        load_seconds (float): time to read the world into a graph.
        gate (PromotionDecision): the promotion gate's figures and verdict (stored in the
            model's manifest as ``promotion_gate``).
        promoted (bool): whether it was promoted.
        forced (bool): whether it was promoted although the gate refused.
    """

    version: str
    result: RiskTrainResult
    load_seconds: float
    gate: PromotionDecision
    promoted: bool = False
    forced: bool = False


def train_world(
    world_dir: str | Path,
    registry: ModelRegistry,
    *,
    train_fraction: float = 0.6,
    val_fraction: float = 0.2,
    pd_maturity_days: int = 75,
    pipeline_config: PipelineConfig | None = None,
    train_config: RiskTrainConfig | None = None,
    pseudonymiser: Pseudonymiser | None = None,
    promote: bool = False,
    margin: float = 0.01,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> TrainedVersion:
    """Read a world, train under a time split, judge the model at the promotion gate,
    register it with the gate's figures and promote it if asked and it passes.

    The gate (:func:`gnn.train.promotion_gate.judge_promotion`) compares the new model's validation
    AUPRC with the rules' and the promoted model's on the same validation applications; a
    refusal is logged in one line with the numbers, and the model stays registered.

    Args:
        world_dir (str or Path): a directory written by ``riskgraph simulate``.
        registry (ModelRegistry): where the model goes.
        train_fraction (float, optional): share of the application span before T1.
            (default: ``0.6``)
        val_fraction (float, optional): share between T1 and T2. (default: ``0.2``)
        pd_maturity_days (int, optional): see :class:`TimeSplit`. (default: ``75``)
        pipeline_config (PipelineConfig, optional): sampler and model. (default: defaults)
        train_config (RiskTrainConfig, optional): optimisation. (default: defaults)
        pseudonymiser (Pseudonymiser, optional): identifier hasher. (default: offline key)
        promote (bool, optional): promote the new version if it passes the gate.
            (default: ``False``)
        margin (float, optional): AUPRC the new model must gain over the rules and the
            promoted model. (default: ``0.01``)
        force (bool, optional): with ``promote``, promote even when the gate refuses (logged).
            (default: ``False``)
        log (Callable[[str], None], optional): progress lines. (default: module logger)

    Raises:
        ValueError: if ``margin`` is negative.
    """
    say = log or logger.info
    if margin < 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    t0 = time.perf_counter()
    graph = LendingGraph.from_world(world_dir, pseudonymiser=pseudonymiser)
    load_s = time.perf_counter() - t0
    say(f"loaded {graph!r} in {load_s:.1f}s")
    split = TimeSplit.from_fractions(graph, train_fraction, val_fraction, pd_maturity_days)
    return _train_graph(graph, split, registry, load_s=load_s,
                        source={"world": str(Path(world_dir).resolve())},
                        pipeline_config=pipeline_config, train_config=train_config,
                        promote=promote, margin=margin, force=force, say=say)


def train_store(
    store: GraphStore,
    registry: ModelRegistry,
    *,
    train_fraction: float = 0.6,
    val_fraction: float = 0.2,
    pd_maturity_days: int = 75,
    label_maturity_days: int = 14,
    pipeline_config: PipelineConfig | None = None,
    train_config: RiskTrainConfig | None = None,
    promote: bool = False,
    margin: float = 0.01,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> TrainedVersion:
    """Train on what a store holds, as :func:`train_world` trains on a world's files.

    The store is exported (:meth:`GraphSnapshot.from_store`) and split by its own application
    times; the model is built at ``T2`` with the labels known before ``T2`` only: a label set at
    or after ``T2`` is taken away and the one it replaced, if the store's label events know one,
    put back (:func:`graph.label_history.labels_as_of`). Features of an event read only labels
    known before it; validation applications younger than ``label_maturity_days`` at ``T2`` are
    not chosen on (their labels may not be in yet). The same store and configuration give the
    same model (the snapshot is in id order; every draw is seeded).

    Args:
        store (GraphStore): the store (Neo4j or the embedded one).
        registry (ModelRegistry): where the model goes.
        train_fraction, val_fraction, pd_maturity_days, pipeline_config, train_config, promote,
            margin, force, log: as :func:`train_world`.
        label_maturity_days (int, optional): see :class:`TimeSplit`. (default: ``14``)

    Raises:
        ValueError: if ``margin`` is negative or the fractions are out of range.
        GraphDataError: if the store holds no application.
    """
    say = log or logger.info
    if margin < 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    t0 = time.perf_counter()
    graph, split, info = store_training_graph(store, train_fraction=train_fraction,
                                              val_fraction=val_fraction,
                                              pd_maturity_days=pd_maturity_days,
                                              label_maturity_days=label_maturity_days)
    load_s = time.perf_counter() - t0
    say(f"read {store!r} into {graph!r} in {load_s:.1f}s; labels as of T2: "
        f"{info['labels_rewound']} node labels set at or after T2 taken back")
    return _train_graph(graph, split, registry, load_s=load_s, source={"store": info},
                        pipeline_config=pipeline_config, train_config=train_config,
                        promote=promote, margin=margin, force=force, say=say)


def store_training_graph(
    store: GraphStore,
    *,
    train_fraction: float = 0.6,
    val_fraction: float = 0.2,
    pd_maturity_days: int = 75,
    label_maturity_days: int = 14,
) -> tuple[LendingGraph, TimeSplit, dict[str, Any]]:
    """The graph a model is trained on from ``store``, its split and where it came from.

    Returns:
        tuple: the graph with labels as known before ``T2``, the split (by the store's own
        application times), and ``{"backend", "instance_id", "as_of", "labels_rewound",
        "label_events"}``.
    """
    snapshot = GraphSnapshot.from_store(store)
    events = store.export_nodes("LabelEvent")
    full = LendingGraph.from_snapshot(snapshot)
    split = TimeSplit.from_fractions(full, train_fraction, val_fraction, pd_maturity_days,
                                     label_maturity_days)
    as_of_t2, rewound = labels_as_of(snapshot, events, split.label_cutoff)
    graph = full if rewound == 0 else LendingGraph.from_snapshot(as_of_t2)
    info = {"backend": store.backend, "instance_id": _instance_id(store),
            "as_of": full.as_of, "labels_rewound": rewound, "label_events": events.num_rows}
    return graph, split, info


def _instance_id(store: GraphStore) -> str | None:
    """The store's identity, or ``None`` for a store opened read-only that has none yet."""
    try:
        return store.identity().instance_id
    except StoreError:
        return None


def _train_graph(graph: LendingGraph, split: TimeSplit, registry: ModelRegistry, *,
                 load_s: float, source: dict[str, Any], pipeline_config: PipelineConfig | None,
                 train_config: RiskTrainConfig | None, promote: bool, margin: float,
                 force: bool, say: Callable[[str], None]) -> TrainedVersion:
    """Train on ``graph`` under ``split``, judge at the gate, register (and promote)."""
    tc = train_config or RiskTrainConfig()
    result = train_risk_model(graph, split, pipeline_config, tc, log=say)
    t0 = time.perf_counter()
    champion, champion_version, note = _champion(registry)
    gate = judge_promotion(graph, split, result.pipeline, margin=margin, champion=champion,
                           champion_version=champion_version, champion_note=note,
                           device=tc.device)
    gate_s = time.perf_counter() - t0
    say(f"{gate.reason} ({gate_s:.1f}s)")
    forced = promote and force and not gate.passed
    metrics: dict[str, Any] = {**result.metrics, "history": result.history,
                               "seconds": {**result.seconds, "load": load_s, "gate": gate_s},
                               "counts": result.counts}
    version = registry.save(
        result.pipeline, data_sha256=graph.fingerprint, metrics=metrics,
        extra={"split": split.to_dict(), "train_config": tc.to_dict(), "source": source,
               "promotion_gate": {**gate.to_dict(), "forced": forced}})
    t0 = time.perf_counter()
    train_apps = np.flatnonzero(application_targets(graph, split).train)
    reference = build_drift_reference(result.pipeline, graph, train_apps, seed=tc.seed)
    registry.write_extra(version, DRIFT_REFERENCE_FILE, reference.to_dict())
    say(f"drift reference of {min(train_apps.shape[0], 20_000)} training applications "
        f"({time.perf_counter() - t0:.1f}s)")
    promoted = promote and (gate.passed or force)
    if promoted:
        registry.promote(version)
    if forced:
        logger.warning("promoted %s although the gate refused it (--force): %s", version,
                       gate.reason)
    say(f"registered {version}" + (" (promoted despite the gate: forced)" if forced else
                                   " (promoted)" if promoted else
                                   " (not promoted: the gate refused it)" if promote else ""))
    return TrainedVersion(version, result, load_s, gate, promoted, forced)


def _champion(registry: ModelRegistry) -> tuple[ScoringPipeline | None, str | None, str | None]:
    """The promoted model, its version, and why it is not compared when it cannot be loaded
    (a model this code refuses cannot serve either, so it does not hold a candidate back)."""
    version = registry.promoted()
    if version is None:
        return None, None, None
    try:
        return registry.load(version), version, None
    except ModelError as e:
        logger.warning("promoted model %s cannot be loaded: %s", version, e)
        return None, version, (f"promoted model {version} not compared: this code refuses to "
                               "load it (riskgraph models list)")


def evaluate_registered(
    world_dir: str | Path,
    registry: ModelRegistry,
    *,
    version: str | None = None,
    doc: str | Path | None = None,
    img_dir: str | Path | None = None,
    command: str = "riskgraph evaluate",
    notes: Sequence[str] = (),
    pseudonymiser: Pseudonymiser | None = None,
    threads: int = 1,
    log: Callable[[str], None] | None = None,
) -> EvaluationReport:
    """Evaluate a registered model (default: the promoted one) on its own split's test period.

    Writes ``doc`` (Markdown) and the plots under ``img_dir`` when given, and the numbers as
    ``evaluation.json`` beside the model.

    Raises:
        gnn.registry.ModelNotFoundError: if the version does not exist.
        ValueError: if the world is not the one the model was trained on.
    """
    say = log or logger.info
    pipeline = registry.load(version)
    manifest = registry.manifest(pipeline.version)
    split = TimeSplit(**manifest["split"])
    graph = LendingGraph.from_world(world_dir, pseudonymiser=pseudonymiser)
    if graph.fingerprint != manifest["data_sha256"]:
        raise ValueError(f"{world_dir} is not the world {pipeline.version} was trained on "
                         "(data fingerprints differ)")
    report = evaluate_world(world_dir, graph, pipeline, split, threads=threads, log=say)
    _write_report(report, registry, pipeline.version, doc, img_dir, command, notes, say)
    return report


def evaluate_store(
    store: GraphStore,
    registry: ModelRegistry,
    *,
    version: str | None = None,
    label_maturity_days: int = 14,
    doc: str | Path | None = None,
    img_dir: str | Path | None = None,
    command: str = "riskgraph evaluate",
    notes: Sequence[str] = (),
    threads: int = 1,
    log: Callable[[str], None] | None = None,
) -> EvaluationReport:
    """Evaluate a registered model (default: the promoted one) on a store's labels.

    The test period is the model's own (applications from its ``T2``), judged against the
    labels the store holds now, on the applications at least ``label_maturity_days`` old at
    the store's latest event (an unlabelled younger one may be fraud not confirmed yet). The
    baselines train on the labels known before ``T2``, as the model did.

    Raises:
        gnn.registry.ModelNotFoundError: if the version does not exist.
        ValueError: if no test application is old enough to be judged.
    """
    say = log or logger.info
    pipeline = registry.load(version)
    manifest = registry.manifest(pipeline.version)
    split = TimeSplit(**manifest["split"])
    snapshot = GraphSnapshot.from_store(store)
    graph = LendingGraph.from_snapshot(snapshot)
    trained_on = manifest.get("source", {}).get("store", {}).get("instance_id")
    instance = _instance_id(store)
    if trained_on is not None and trained_on != instance:
        say(f"note: {pipeline.version} was trained on store {trained_on}, this is {instance}")
    truth = GroundTruth.from_labels(graph, maturity_days=label_maturity_days,
                                    source=f"store:{store.backend}:{instance}")
    report = evaluate_applications(graph, pipeline, split, truth, threads=threads, log=say)
    _write_report(report, registry, pipeline.version, doc, img_dir, command, notes, say)
    return report


def _write_report(report: EvaluationReport, registry: ModelRegistry, version: str,
                  doc: str | Path | None, img_dir: str | Path | None, command: str,
                  notes: Sequence[str], say: Callable[[str], None]) -> None:
    """``evaluation.json`` beside the model; the Markdown and plots where asked."""
    (registry.root / version / "evaluation.json").write_text(
        json.dumps(report_to_json(report), indent=2, sort_keys=True) + "\n")
    if img_dir is not None:
        plot_report(report, img_dir)
    if doc is not None:
        doc = Path(doc)
        prefix = "img/"
        if img_dir is not None:
            try:
                prefix = str(Path(img_dir).resolve().relative_to(doc.resolve().parent)) + "/"
            except ValueError:
                prefix = str(Path(img_dir).resolve()) + "/"
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(render_markdown(report, command=command, img_prefix=prefix,
                                       notes=notes))
        say(f"wrote {doc}")
