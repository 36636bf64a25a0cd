"""Builds the configured :class:`serving.scoring.Scorer`; the only place that picks a model."""

from __future__ import annotations

import logging

from graph import GraphError, GraphStore
from graph.snapshot import GraphSnapshot
from serving.live_graph import LiveGraph
from serving.rules_scorer import RulesScorer
from serving.scoring import Scorer
from serving.settings import Settings

log = logging.getLogger(__name__)


def load_live_graph(settings: Settings, store: GraphStore) -> LiveGraph | None:
    """The in-memory graph when ``SCORER_SOURCE`` is ``memory`` (an empty one, filled by the
    first refresh, when the store cannot be read now)."""
    if settings.SCORER_SOURCE != "memory":
        return None
    try:
        return LiveGraph.from_store(store)
    except GraphError as e:
        log.warning("graph store unreadable at start (%s); in-memory graph starts empty", e)
        return LiveGraph(GraphSnapshot.from_tables({}, {}))


def load_scorer(settings: Settings, live: LiveGraph | None = None,
                store: GraphStore | None = None) -> Scorer:
    """The scorer to serve with: the promoted GNN of the model registry
    (``DATA_DIR/models``) when there is one, explained by the rules scorer's evidence; else the
    transparent :class:`serving.rules_scorer.RulesScorer` alone.

    Args:
        settings (Settings): where the registry is, which device to use.
        live (LiveGraph, optional): the in-memory graph the rules scorer reads.
            (default: ``None``: it reads the store)
        store (GraphStore, optional): to build the GNN's graph state now rather than at the
            first verdict. (default: ``None``)
    """
    rules = RulesScorer(live)
    registry_dir = settings.DATA_DIR / "models"
    scorer: Scorer = rules
    if registry_dir.exists():
        # NOTE: imported here so that serving without a model never imports torch.
        from gnn import ModelNotFoundError, ModelRegistry
        from serving.gnn_scorer import GnnScorer

        try:
            gnn = GnnScorer.from_registry(ModelRegistry(registry_dir), explainer=rules,
                                          device=_torch_device(settings),
                                          process=settings.GNN_PROCESS)
        except ModelNotFoundError:
            log.info("no promoted model in %s", registry_dir)
        else:
            if store is not None:
                try:
                    gnn.refresh(store)
                except GraphError as e:
                    log.warning("GNN graph state not built at start (%s)", e)
            scorer = gnn
    log.info("scorer: %r (%s)", scorer, scorer.model_version)
    return scorer


def _torch_device(settings: Settings) -> str:
    if settings.DEVICE == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if settings.DEVICE == "cuda":
        raise RuntimeError("RISKGRAPH_DEVICE=cuda but no CUDA device is usable")
    return "cpu"
