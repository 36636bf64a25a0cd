"""`ServingMetrics`: the Prometheus series of one app, in its own registry.

A registry per app (not the process-global one) keeps several apps in one process, as in the
tests, from colliding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from serving.graph_scorer import BatchStats

LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
                          0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_SIZES: Final = (1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128, 256)


class ServingMetrics:
    """Latency per route and per decision, degraded verdicts, spool depth, store state, and
    what the model's batches cost."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_latency = Histogram(
            "riskgraph_http_request_duration_seconds", "HTTP request latency by route.",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.score_latency = Histogram(
            "riskgraph_score_duration_seconds", "Time to decide a verdict, by decision.",
            ["product", "decision", "degraded"], buckets=LATENCY_BUCKETS, registry=r)
        self.score_stage = Histogram(
            "riskgraph_score_stage_duration_seconds", "Time a verdict spends in each stage: "
            "lookup (stored verdict), model (GNN, explainer, policy, reasons), claim (durable "
            "write).",
            ["stage"], buckets=LATENCY_BUCKETS, registry=r)
        self.verdicts = Counter(
            "riskgraph_verdicts_total", "Verdicts decided (replays of stored ones excluded).",
            ["product", "decision", "degraded"], registry=r)
        self.degraded = Counter(
            "riskgraph_degraded_verdicts_total", "Verdicts decided in degraded mode.",
            registry=r)
        self.idempotent_replays = Counter(
            "riskgraph_idempotent_replays_total", "Requests answered with a stored verdict.",
            registry=r)
        self.conflicts = Counter(
            "riskgraph_idempotency_conflicts_total", "Same application id, different body.",
            registry=r)
        self.unverified = Counter(
            "riskgraph_unverified_verdicts_total", "Verdicts decided while neither the store "
            "nor this host's recorded answers could say whether the id was decided before.",
            registry=r)
        self.verdict_conflicts = Counter(
            "riskgraph_verdict_conflicts_total", "Verdicts answered here that lost at replay "
            "to another verdict of the id already stored (VerdictConflict records).",
            ["kind"], registry=r)
        self.events = Counter(
            "riskgraph_events_accepted_total", "Events and labels accepted.", ["kind"],
            registry=r)
        self.event_conflicts = Counter(
            "riskgraph_event_conflicts_total", "Events and labels refused because their id "
            "was already stored with another body; found when accepted (answered in "
            "`conflicts`) or when a spooled write reached the store (logged).",
            ["kind", "found"], registry=r)
        self.rate_limited = Counter(
            "riskgraph_rate_limited_total", "Requests refused by the rate limit.", registry=r)
        self.scorer_errors = Counter(
            "riskgraph_scorer_errors_total", "Scorer failures answered in degraded mode.",
            registry=r)
        self.dead_letters = Counter(
            "riskgraph_spool_dead_letters_total", "Spooled writes the store kept rejecting.",
            registry=r)
        self.challenger = Counter(
            "riskgraph_challenger_scores_total", "Answered applications the challenger scored "
            "after the verdict (stored) or did not (dropped_queue_full, dropped_no_state, "
            "dropped_store, failed).", ["outcome"], registry=r)
        self.model_changes = Counter(
            "riskgraph_model_changes_total", "Champion or challenger changes taken from the "
            "registry without a restart.", ["slot"], registry=r)
        self.model_batch_applications = Histogram(
            "riskgraph_model_batch_applications", "Applications per batch the model scored "
            "(requests that arrive while a batch is scored form the next), by slot.",
            ["slot"], buckets=BATCH_SIZES, registry=r)
        self.model_batch_duration = Histogram(
            "riskgraph_model_batch_duration_seconds", "Wall time of a batch where the model "
            "runs, by step: apply (the writes accepted since the batch before), score "
            "(features, sampling, forward pass, attributions).",
            ["slot", "step"], buckets=LATENCY_BUCKETS, registry=r)
        self.model_busy = Counter(
            "riskgraph_model_busy_seconds", "Wall seconds the model spent on batches; its "
            "rate is the share of the time the model is busy (near 1: saturated, requests "
            "queue for it).", ["slot"], registry=r)
        self.model_cpu = Counter(
            "riskgraph_model_cpu_seconds", "CPU seconds of the model's batches; below the "
            "busy seconds by the time it waited for a core.", ["slot"], registry=r)
        self.spool_depth = Gauge(
            "riskgraph_spool_depth", "Writes waiting in the local spool for the store.",
            registry=r)
        self.store_up = Gauge(
            "riskgraph_store_up", "1 when the graph store is taking calls, else 0.",
            registry=r)

    def bind(self, *, spool_depth: Callable[[], float], store_up: Callable[[], float]) -> None:
        """Read the gauges from live state at scrape time."""
        self.spool_depth.set_function(spool_depth)
        self.store_up.set_function(store_up)

    def observe_batch(self, slot: str, stats: BatchStats) -> None:
        """One batch of the ``slot``'s model (``champion``, ``challenger``)."""
        self.model_batch_applications.labels(slot=slot).observe(stats.applications)
        self.model_batch_duration.labels(slot=slot, step="apply").observe(stats.apply_s)
        self.model_batch_duration.labels(slot=slot, step="score").observe(stats.score_s)
        self.model_busy.labels(slot=slot).inc(stats.apply_s + stats.score_s)
        self.model_cpu.labels(slot=slot).inc(stats.cpu_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
