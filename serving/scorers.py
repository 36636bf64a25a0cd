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


def load_scorer(settings: Settings, live: LiveGraph | None = None) -> Scorer:
    """The scorer to serve with.

    TODO(gnn): load the promoted model of the registry (gnn/) when it exists: kernel features
    -> neighbourhood sampling -> GNN, the same pipeline as batch rescoring. Until then the
    transparent :class:`serving.rules_scorer.RulesScorer` serves; it reads real evidence from
    the store and its reasons name it.
    """
    scorer = RulesScorer(live)
    log.info("scorer: %r (%s)", scorer, scorer.model_version)
    return scorer
