"""Builds the configured :class:`serving.scoring.Scorer`; the only place that picks a model."""

from __future__ import annotations

import logging

from serving.rules_scorer import RulesScorer
from serving.scoring import Scorer
from serving.settings import Settings

log = logging.getLogger(__name__)


def load_scorer(settings: Settings) -> Scorer:
    """The scorer to serve with.

    TODO(gnn): load the promoted model of the registry (gnn/) when it exists: kernel features
    -> neighbourhood sampling -> GNN, the same pipeline as batch rescoring. Until then the
    transparent :class:`serving.rules_scorer.RulesScorer` serves; it reads real evidence from
    the store and its reasons name it.
    """
    scorer = RulesScorer()
    log.info("scorer: %r (%s)", scorer, scorer.model_version)
    return scorer
