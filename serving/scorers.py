"""Builds the process's live graph and the scorer that decides; the only place that picks a
model."""

from __future__ import annotations

import logging
from typing import Any

from gnn import RootAttribution
from graph import GraphStore
from serving.explanations import explain
from serving.graph_scorer import ApplicationModel, GraphScorer
from serving.live_graph import LiveGraph
from serving.policy import load_policy
from serving.scoring import ApplicationFacts, Signal
from serving.settings import Settings

log = logging.getLogger(__name__)


def load_live_graph(settings: Settings, store: GraphStore) -> LiveGraph:
    """The live graph from the store.

    Raises:
        BufferPoolFullError: the embedded store's page cache is too small to export the graph.
        GraphError: the store did not give its graph; the caller starts without graph state
            (:func:`serving.commands.serve.build_app`) rather than scoring against an empty
            graph, which would decide every applicant as unknown and say nothing of it.
    """
    del settings
    return LiveGraph.from_store(store)


def load_model(settings: Settings) -> ApplicationModel:
    """The promoted model of the registry (``DATA_DIR/models``), else the transparent rules
    over the same features.

    Raises:
        gnn.FeatureSetMismatchError: the promoted model was trained on another feature set.
    """
    from gnn import ModelNotFoundError, ModelRegistry, RulesModel

    registry_dir = settings.models_dir
    if registry_dir.exists():
        try:
            return ModelRegistry(registry_dir).load()
        except ModelNotFoundError:
            log.info("no promoted model in %s", registry_dir)
    return RulesModel()


def explain_batch(model: Any, prepared: Any, device: str) -> Any:
    """A batch's scores with their attributions, from the model that decides (the rules'
    points, or :func:`gnn.attribute` of the network): what a verdict's reasons come from
    (:data:`serving.graph_scorer.Explain`)."""
    from gnn import RulesModel, attribute

    if isinstance(model, RulesModel):
        return model.attribute(prepared, device=device)
    return attribute(model, prepared, device=device)


def load_scorer(settings: Settings, live: LiveGraph, store: GraphStore, *,
                with_state: bool = True) -> GraphScorer:
    """The scorer to serve with, holding the live graph's arrays and connected to it.

    Args:
        settings (Settings): where the registry is, which device, the model's process.
        live (LiveGraph): the process's live graph (its arrays become the scorer's state).
        store (GraphStore): whether other processes write it (then every refresh rebuilds
            the arrays).
        with_state (bool, optional): build the state from the live graph now; ``False`` when
            the store did not answer at start (the state comes with the first rebuild,
            :meth:`LiveGraph.request_rebuild`). (default: ``True``)
    """
    model = load_model(settings)
    min_weight = load_policy(settings.POLICY_FILE).reasons.min_weight

    def reasons(facts: ApplicationFacts, root: RootAttribution
                ) -> tuple[tuple[Signal, ...], tuple[Signal, ...]]:
        displays = {(label, i): shown for label, i in (
            ("Phone", facts.phone_id), ("Address", facts.address_id),
            ("Merchant", facts.merchant_id)) if i is not None
            and (shown := live.display(label, i)) is not None}
        out = explain(root, facts, min_weight=min_weight, displays=displays,
                      places=live.places(facts.user_id))
        return out.fraud, out.credit

    scorer = GraphScorer(model, device=settings.torch_device(), process=settings.GNN_PROCESS,
                         explain=explain_batch, reasons=reasons, on_lost=live.request_rebuild)
    if with_state:
        scorer.set_graph(live.arrays())
    live.connect(scorer.accept, scorer.set_graph, on_refresh=not store.exclusive_writer)
    log.info("scorer: %r", scorer)
    return scorer
