"""The promoted model and the world it learned, as the model-cost benchmarks load them
(``bench_verdict_cost``, ``bench_blend_cost``, ``bench_tree_shap``): ``--models`` and
``--world``, torch on one thread as in the scorer's child process, the world's identifiers
hashed as the model saw them (needs RISKGRAPH_PSEUDONYM_SECRET)."""

from __future__ import annotations

import argparse

import torch

from gnn import ModelRegistry
from gnn.data.lending_graph import LendingGraph
from gnn.pipeline import ScoringPipeline
from serving.commands.train import _pseudonymiser


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """``--models`` and ``--world``."""
    ap.add_argument("--models", required=True, help="a model registry directory")
    ap.add_argument("--world", required=True, help="the world the promoted model learned")


def load(args: argparse.Namespace) -> tuple[str, ScoringPipeline, LendingGraph]:
    """The promoted model's version, the model and its world's graph."""
    torch.set_num_threads(1)
    registry = ModelRegistry(args.models)
    version = registry.promoted()
    return (version, registry.load(version),
            LendingGraph.from_world(args.world, pseudonymiser=_pseudonymiser()))
