"""`create_app`: the FastAPI app, with everything it stands on injected."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import FastAPI

from gnn import ModelRegistry
from graph import GraphStore, Pseudonymiser
from serving.api.errors import install_error_handlers
from serving.api.middleware import RequestContextMiddleware
from serving.api.routes import cases, events, graph, health, investigation, keys, rings, score, ui
from serving.api.runtime import Runtime
from serving.cases import CaseService
from serving.champion_challenger import CHALLENGER_NICE, ChallengerScorer, ModelSlots
from serving.drift import DriftCollector, DriftMonitor, DriftThresholds, References
from serving.graph_scorer import ApplicationModel, GraphScorer
from serving.ingest_service import IngestService
from serving.live_graph import LiveGraph
from serving.keys import KeyRing
from serving.metrics import ServingMetrics
from serving.policy import Policy, load_policy
from serving.rate_limiter import RateLimiter
from serving.read_audit import ReadAudit
from serving.ring_refresher import RingRefresher
from serving.scoring import Scorer
from serving.scoring_service import ScoringService
from serving.settings import Settings
from serving.spool import Spool, claim_spool
from serving.store_guard import StoreGuard
from serving.watchlist import Watchlist
from serving.writer import DurableWriter

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 4 * 1024 * 1024
DESCRIPTION: Final = """\
Verdicts for loan applications (decision, fraud probability, probability of default, grade,
recommended limit, reasons with evidence) in milliseconds, safe when the graph store is down.

Every endpoint but `/healthz` and `/readyz` needs an API key in `X-API-Key`; roles:
`scoring` (score, events), `investigator` (labels, verdicts, neighbourhoods), `admin` (all,
keys, metrics). Invalid input is a 4xx whose `detail[].loc` names the field.
"""


def create_app(
    settings: Settings,
    store: GraphStore,
    scorer: Scorer,
    *,
    policy: Policy | None = None,
    keyring: KeyRing | None = None,
    pseudonymiser: Pseudonymiser | None = None,
    spool: Spool | None = None,
    live_graph: LiveGraph | None = None,
) -> FastAPI:
    """Build the API around an open store and a scorer.

    Args:
        settings (Settings): configuration (timeouts, spool, rate limits, policy file, keys).
        store (GraphStore): the graph; the caller opens and closes it.
        scorer (Scorer): the model.
        policy (Policy, optional): default: loaded from ``settings.POLICY_FILE``.
        keyring (KeyRing, optional): default: the store's keys plus ``ADMIN_API_KEY``.
        pseudonymiser (Pseudonymiser, optional): default: from the settings' secret.
        spool (Spool, optional): default: claimed in ``settings.spool_dir``.
        live_graph (LiveGraph, optional): the in-memory graph the scorer reads; every accepted
            write is applied to it, and it is refreshed from the store every
            ``settings.LIVE_GRAPH_REFRESH_S``. (default: ``None``)

    Raises:
        PolicyError: the policy file is invalid.
        ConfigurationError: the pseudonym secret is missing or a placeholder.
        SpoolError: no spool file can be claimed.
    """
    policy = policy or load_policy(settings.POLICY_FILE)
    pseudonymiser = pseudonymiser or settings.pseudonymiser()
    if keyring is None:
        static = []
        if settings.ADMIN_API_KEY is not None:
            static.append(("bootstrap-admin", "admin", settings.ADMIN_API_KEY.get_secret_value()))
        keyring = KeyRing(static)  # type: ignore[arg-type]
    spool = spool or claim_spool(settings.spool_dir)
    metrics = ServingMetrics()
    guard = StoreGuard(store, read_timeout_s=settings.STORE_TIMEOUT_S,
                       write_timeout_s=settings.STORE_WRITE_TIMEOUT_S,
                       probe_interval_s=settings.STORE_PROBE_INTERVAL_S,
                       threads=settings.STORE_THREADS,
                       investigation_timeout_s=settings.INVESTIGATOR_TIMEOUT_S,
                       investigation_threads=settings.INVESTIGATOR_THREADS)
    writer = DurableWriter(
        guard, spool, on_dead_letter=lambda entry, error: metrics.dead_letters.inc(),
        observers=[live_graph.apply] if live_graph is not None else [],
        on_event_conflict=lambda kind, event_id: metrics.event_conflicts.labels(
            kind=kind, found="written").inc(),
        on_verdict_conflict=lambda c: metrics.verdict_conflicts.labels(kind=c.kind).inc(),
        answers_keep_s=settings.ANSWERS_KEEP_S)
    metrics.bind(spool_depth=lambda: spool.depth, store_up=lambda: float(guard.up))
    watchlist = Watchlist()
    ingest = IngestService(writer=writer, pseudonymiser=pseudonymiser, metrics=metrics)
    runtime = Runtime(
        settings=settings, store=store, scorer=scorer, policy=policy, metrics=metrics,
        guard=guard, spool=spool, writer=writer, keyring=keyring,
        limiter=RateLimiter(settings.RATE_LIMIT_PER_S, settings.RATE_LIMIT_BURST),
        scoring=ScoringService(guard=guard, writer=writer, scorer=scorer, policy=policy,
                               pseudonymiser=pseudonymiser, metrics=metrics,
                               degraded_cap=settings.DEGRADED_MAX_APPROVE_AMOUNT,
                               watchlist=watchlist),
        ingest=ingest, cases=CaseService(guard=guard, ingest=ingest), watchlist=watchlist,
        read_audit=ReadAudit(writer), pseudonymiser=pseudonymiser,
        live_graph=live_graph,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        log.info("serving", extra={"backend": store.backend, "model": scorer.model_version,
                                   "policy": policy.version, "spool": str(spool.path),
                                   "spool_depth": spool.depth})
        try:
            yield
        finally:
            runtime.stop()

    if isinstance(scorer, GraphScorer):
        scorer.on_batch = functools.partial(metrics.observe_batch, "champion")
    if isinstance(scorer, GraphScorer) and live_graph is not None:
        runtime.models = _model_slots(settings, store, scorer, live_graph, policy, guard,
                                      metrics)
        runtime.scoring.verdict_observers.append(runtime.models.after_verdict)
    runtime.drift = DriftMonitor(
        References(ModelRegistry(settings.models_dir)), window=settings.DRIFT_WINDOW,
        thresholds=DriftThresholds(settings.DRIFT_PSI_WARN, settings.DRIFT_PSI_ALERT,
                                   settings.DRIFT_MIN_COUNT))
    runtime.scoring.verdict_observers.append(runtime.drift.observe)
    metrics.registry.register(DriftCollector(runtime.drift))
    app = _routes(FastAPI(
        title="RiskGraph", version="1", description=DESCRIPTION, lifespan=lifespan,
        docs_url="/docs" if settings.DOCS_ENABLED else None, redoc_url=None,
        openapi_url="/openapi.json" if settings.DOCS_ENABLED else None,
    ))
    runtime.rings = RingRefresher(store, hub_size=settings.RINGS_HUB_SIZE,
                                  min_size=settings.RINGS_MIN_SIZE, seed=settings.RINGS_SEED,
                                  interval_s=settings.RINGS_REFRESH_S or None)
    app.state.runtime = runtime
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, max_body_bytes=MAX_BODY_BYTES,
                       body_timeout_s=settings.API_BODY_TIMEOUT_S)
    return app


def _model_slots(settings: Settings, store: GraphStore, scorer: GraphScorer,
                 live_graph: LiveGraph, policy: Policy, guard: StoreGuard,
                 metrics: ServingMetrics) -> ModelSlots:
    """The champion, a challenger built on demand, and the registry watcher."""

    def make_challenger(model: ApplicationModel) -> ChallengerScorer:
        challenger = GraphScorer(model, device=scorer.device, process=scorer.process,
                                 nice=CHALLENGER_NICE,
                                 on_batch=functools.partial(metrics.observe_batch, "challenger"))
        return ChallengerScorer(challenger, policy=policy, guard=guard, metrics=metrics,
                                degraded_cap=settings.DEGRADED_MAX_APPROVE_AMOUNT)

    return ModelSlots(scorer, live_graph, ModelRegistry(settings.models_dir), make_challenger,
                      metrics=metrics, rebase_on_refresh=not store.exclusive_writer,
                      interval_s=settings.MODEL_WATCH_S)


def _routes(app: FastAPI) -> FastAPI:
    for module in (health, score, events, investigation, graph, rings, cases, keys, ui):
        app.include_router(module.router)
    return app


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, without a store or settings (docs, contract tests)."""
    return _routes(FastAPI(title="RiskGraph", version="1", description=DESCRIPTION)).openapi()
