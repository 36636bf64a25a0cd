"""A small simulated lending world shared by the risk-model tests (built once per process)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from gnn import LendingGraph
from graph.world_files import world_snapshot
from gnn.data.lending_graph import NEVER
from graph.snapshot import GraphSnapshot, NodeTable
from simulator import WorldConfig, simulate_world, write_world

if TYPE_CHECKING:
    from gnn import RiskTrainConfig, RiskTrainResult
    from gnn.pipeline import ScoringPipeline


@functools.lru_cache(maxsize=None)
def world_dir(users: int = 600, seed: int = 11, fraud_rate: float = 0.08) -> Path:
    """A world directory with a high fraud rate, so that every split holds some fraud."""
    out = Path(tempfile.mkdtemp(prefix="rg-gnn-world-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    world = simulate_world(WorldConfig(users=users, seed=seed, fraud_rate=fraud_rate))
    write_world(world, out)
    return out


@functools.lru_cache(maxsize=None)
def lending_graph(users: int = 600, seed: int = 11, fraud_rate: float = 0.08) -> LendingGraph:
    """:func:`world_dir` read into a :class:`LendingGraph` (shared: do not mutate)."""
    return LendingGraph.from_world(world_dir(users, seed, fraud_rate))


def tiny_train_config(**overrides: object) -> RiskTrainConfig:
    """A few quick epochs: enough to exercise every stage, not to learn much."""
    from gnn import RiskTrainConfig

    base: dict[str, object] = {"epochs": 2, "patience": 2, "batch_size": 256, "user_seeds": 150,
                               "seed": 0, "threads": 1, "members": 2}
    base.update(overrides)
    return RiskTrainConfig(**base)  # type: ignore[arg-type]


def gnn_alone(pipe: ScoringPipeline) -> ScoringPipeline:
    """A copy of ``pipe`` without its fraud blend: the network's own logits decide (for the
    network's properties: attributions, occlusion)."""
    from gnn.pipeline import ScoringPipeline

    state = pipe.state()
    state["fraud_blend"] = None
    return ScoringPipeline.from_state(state, pipe.model.state_dict())


@functools.lru_cache(maxsize=None)
def trained() -> RiskTrainResult:
    """A pipeline trained on :func:`lending_graph` (shared: do not mutate)."""
    from gnn import TimeSplit, train_risk_model

    g = lending_graph()
    return train_risk_model(g, TimeSplit.from_fractions(g), train_config=tiny_train_config(),
                            log=lambda s: None)


def relabelled_graph(perturb: Callable[[np.ndarray], np.ndarray]) -> LendingGraph:
    """The test world's graph with every label time passed through ``perturb`` (an int64 array
    of visible-from times, :data:`NEVER` for none, in and out) before the graph is built:
    labels moved, dropped or invented as the world's export would carry them."""
    snap = world_snapshot(world_dir())
    nodes = dict(snap.nodes)
    for label in ("Application", "User", "Merchant"):
        table = nodes[label]
        cols = dict(table.columns)
        n = len(table)

        def at_of(name: str) -> np.ndarray:
            col = cols.get(name)
            if col is None:
                return np.full(n, NEVER, dtype=np.int64)
            v = np.asarray(col, dtype=np.float64)
            out = np.full(n, NEVER, dtype=np.int64)
            ok = np.isfinite(v)
            out[ok] = v[ok].astype(np.int64)
            return out

        # NOTE: one fraud-family label per node (fraud or cleared), as the stores keep it:
        # its time is perturbed, an invented one is "fraud".
        kind = np.asarray(cols.get("fraud_label", np.full(n, None)), dtype=object)
        has = np.array([k in ("fraud", "cleared") for k in kind.tolist()], dtype=bool)
        at = perturb(np.where(has, at_of("fraud_label_at"), NEVER))
        kind = np.where(at < NEVER, np.where(has, kind, "fraud"), None).astype(object)
        cols["fraud_label"] = kind
        cols["fraud_label_at"] = np.where(at < NEVER, at, np.nan)
        if label != "Merchant":
            flag = np.asarray(cols.get("default_label", np.zeros(n)), dtype=object)
            has = np.array([bool(x) and x == x for x in flag.tolist()], dtype=bool)
            default = perturb(np.where(has, at_of("default_label_at"), NEVER))
            cols["default_label"] = np.where(default < NEVER, True, None).astype(object)
            cols["default_label_at"] = np.where(default < NEVER, default, np.nan)
        nodes[label] = NodeTable(table.ids, cols)
    return LendingGraph.from_snapshot(GraphSnapshot(nodes, snap.relations, snap.schema))


ATO_MIX = {"fraud_ring": 0.1, "synthetic_identity": 0.05, "account_takeover": 0.6,
           "merchant_collusion": 0.05, "sales_inflation": 0.0, "intermediary_packaging": 0.1,
           "device_farm": 0.1}
"""A fraud mix where account takeover dominates, so that a small model learns its signals."""


@functools.lru_cache(maxsize=None)
def takeover_world() -> tuple[Path, LendingGraph]:
    """A 1,000-user world with 10 % fraud, most of it account takeover (shared: do not mutate)."""
    out = Path(tempfile.mkdtemp(prefix="rg-gnn-ato-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    write_world(simulate_world(WorldConfig(users=1000, seed=11, fraud_rate=0.1,
                                           pattern_mix=ATO_MIX)), out)
    return out, LendingGraph.from_world(out)


@functools.lru_cache(maxsize=None)
def takeover_trained() -> RiskTrainResult:
    """Two members trained for 20 epochs on :func:`takeover_world` (~15 s): a model that has
    learned something to explain (shared: do not mutate)."""
    from gnn import TimeSplit, train_risk_model

    _, g = takeover_world()
    return train_risk_model(g, TimeSplit.from_fractions(g), train_config=tiny_train_config(
        epochs=20, patience=20, node_epochs=1), log=lambda s: None)
