"""`riskgraph serve`: the scoring API under uvicorn."""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn
from fastapi import FastAPI

from graph import BufferPoolFullError, GraphError, GraphStore, StoreUnavailableError
from graph.privacy import IP_ID_PREFIX
from graph.snapshot import GraphSnapshot
from serving.api import create_app
from serving.key_rotation import cached_pseudonymiser, pseudonymiser_for
from serving.live_graph import LiveGraph
from serving.logs import configure_logging
from serving.scorers import load_live_graph, load_scorer
from serving.settings import ConfigurationError, Settings, get_settings
from serving.stores import build_store

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve", help="run the scoring API (FastAPI under uvicorn)",
        description="Run the scoring API (FastAPI under uvicorn). Needs "
                    "RISKGRAPH_PSEUDONYM_SECRET (or RISKGRAPH_PSEUDONYM_SECRET_FILE): the HMAC key "
                    "that hashes people's identifiers, the same one `riskgraph load` used. The "
                    "store is RISKGRAPH_NEO4J_URI (unset: the embedded store under "
                    "RISKGRAPH_DATA_DIR); a store that is down at start is waited for, degraded. "
                    "See docs/API.md.")
    p.add_argument("--host", help="interface to bind (default RISKGRAPH_API_HOST)")
    p.add_argument("--port", type=int, help="port to bind (default RISKGRAPH_API_PORT)")
    p.add_argument("--workers", type=int,
                   help="worker processes, Neo4j only (default RISKGRAPH_API_WORKERS)")
    p.set_defaults(func=_serve)


def _settings(args: argparse.Namespace) -> Settings:
    update = {name: value for name, value in (
        ("API_HOST", args.host), ("API_PORT", args.port), ("API_WORKERS", args.workers),
    ) if value is not None}
    return get_settings().model_copy(update=update)


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    settings.pseudonymiser()  # NOTE: fail on a missing secret before the model is loaded.
    configure_logging(settings.LOG_LEVEL)
    # NOTE: before any thread starts: threads and processes made later inherit the policy
    use_batch_policy(settings.API_SCHED_BATCH)
    check_promoted_model(settings)
    if settings.API_WORKERS > 1:
        if settings.backend != "neo4j":
            raise SystemExit("riskgraph serve: --workers > 1 needs Neo4j; the embedded "
                             "store allows one process")
        uvicorn.run("serving.commands.serve:app_from_env", factory=True,
                    host=settings.API_HOST, port=settings.API_PORT,
                    workers=settings.API_WORKERS, log_config=None, access_log=False)
        return 0
    store = build_store(settings)
    try:
        app = build_app(settings, store)
        uvicorn.run(app, host=settings.API_HOST, port=settings.API_PORT, log_config=None,
                    access_log=False, timeout_graceful_shutdown=10)
    finally:
        store.close()
    return 0


def use_batch_policy(enabled: bool) -> bool:
    """Put the calling thread under SCHED_BATCH (what threads and processes it starts later
    inherit); whether it now runs under it.

    Why: on a few cores the API's threads hand each request on (to the batcher, to the
    model's process, back to the request's thread, to the claim). Under the default policy the
    thread woken preempts the one that woke it, which often still holds the interpreter lock:
    both then wait for the scheduler. A SCHED_BATCH thread woken waits for the next tick or
    a free core instead (docs/BENCHMARKS.md, "SCHED_BATCH").
    """
    if not enabled or not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError as e:  # NOTE: a sandbox that forbids it; the default policy serves too
        log.warning("SCHED_BATCH refused (%s); serving under the default policy", e)
        return False
    return True


def check_promoted_model(settings: Settings) -> None:
    """Refuse to start on a promoted model this code cannot load, before anything starts.

    Raises:
        gnn.FeatureSetMismatchError: if the promoted model was trained on another feature set
            (the CLI prints its one-line message and exits 1).
    """
    registry_dir = settings.models_dir
    if not registry_dir.exists():
        return
    # NOTE: imported here so that serving without a model never imports torch.
    from gnn import ModelNotFoundError, ModelRegistry

    try:
        ModelRegistry(registry_dir).check()
    except ModelNotFoundError:
        return


def build_app(settings: Settings, store: GraphStore) -> FastAPI:
    """The app on ``store`` with the configured scorer; the store may be down (degraded).

    NOTE: the store is pinged once (no retries) before anything reads it. A store that does
    not answer is not tried again here: every read would wait out the driver's retries (a
    minute in all); the app starts at once, degraded, and builds its graph state when the
    store answers.
    """
    try:
        store.ping()
        store.apply_schema()
    except StoreUnavailableError as e:
        log.warning("graph store unavailable at start (%s); serving in degraded mode until it "
                    "answers", e)
        pseudonymiser = cached_pseudonymiser(settings)
        live = LiveGraph(GraphSnapshot.from_tables({}, {}))
        # NOTE: no graph state until the store answers: verdicts are the prior, degraded,
        # rather than scores against an empty graph.
        app = create_app(settings, store, load_scorer(settings, live, store, with_state=False),
                         live_graph=live, pseudonymiser=pseudonymiser)
        app.state.runtime.start_without_store(str(e).splitlines()[0])
        return app
    check_pseudonymised(store)
    # NOTE: the store's key chain before anything is hashed: a key that is not the store's
    # would hash every served identifier away from its nodes (links lost, silently).
    pseudonymiser = pseudonymiser_for(settings, store, claim=True)
    try:
        live = load_live_graph(settings, store)
    except BufferPoolFullError:
        # NOTE: a page cache too small now stays too small: `riskgraph serve` stops with one
        # line naming the setting.
        raise
    except GraphError as e:
        # NOTE: the store answered but did not give its graph (seen: Neo4j ending the export
        # at its transaction timeout on a busy host). Scored against an empty graph, every
        # applicant would look new and no verdict would say so; instead verdicts are the
        # prior, flagged degraded, until the refresh thread has built the graph (it retries).
        log.warning("graph store did not give its graph at start (%s); serving degraded until "
                    "the live graph is built", str(e).splitlines()[0])
        live = LiveGraph(GraphSnapshot.from_tables({}, {}))
        app = create_app(settings, store, load_scorer(settings, live, store, with_state=False),
                         live_graph=live, pseudonymiser=pseudonymiser)
        live.request_rebuild()
        return app
    return create_app(settings, store, load_scorer(settings, live, store), live_graph=live,
                      pseudonymiser=pseudonymiser)


def check_pseudonymised(store: GraphStore) -> None:
    """Refuse a store that holds IP addresses in clear (written before IPs were keyed-hashed):
    served IPs would never meet its IP nodes, and it holds what must not be stored.

    Raises:
        ConfigurationError: naming how many and what to do (the CLI prints it in one line).
    """
    clear = sum(1 for i in store.node_ids("IP") if not i.startswith(IP_ID_PREFIX))
    if clear:
        raise ConfigurationError(
            f"the store holds {clear} IP nodes whose ids are clear addresses (written before "
            "IPs were keyed-hashed); load the world again into an empty store with "
            "`riskgraph load DIR` (docs/ARCHITECTURE.md, Privacy)")


def app_from_env() -> FastAPI:
    """App factory for uvicorn worker processes (one store connection pool per process)."""
    settings = get_settings()
    configure_logging(settings.LOG_LEVEL)
    return build_app(settings, build_store(settings))
