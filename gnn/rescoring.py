"""`rescore_store`: score every user and merchant with a pipeline, write the scores back, report
what changed.

The store is exported once (:meth:`GraphSnapshot.from_store`), every user and merchant is scored
as of the graph's latest event through the same :class:`ScoringPipeline` as online scoring, and
``fraud_score``, ``pd_score``, ``scored_at`` and ``model_version`` are written back with
``upsert_nodes`` (other properties untouched). The report compares with the scores the graph held
before: shifts, accounts crossing the high-risk threshold, and *high-risk clusters* — groups of
high-risk accounts joined by a shared device, phone or address that is not a hub — flagged new
when they hold an account that was not high-risk before. Embeddings (not a schema property) go
to a Parquet file when a directory is given.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnn.data.lending_graph import LendingGraph
from gnn.pipeline import Scores, ScoringPipeline
from graph.snapshot import GraphSnapshot
from graph.store import GraphStore
from graph.typing import NodeType

logger = logging.getLogger(__name__)

SCORED_TYPES = ("User", "Merchant")
_CLUSTER_RELATIONS = ("user_device", "user_phone", "user_home", "user_work")


@dataclass
class Cluster:
    """High-risk accounts linked through shared non-hub entities.

    Args:
        size (int): accounts in the cluster.
        new_high_risk (int): of which not high-risk before this run.
        known_fraud (int): of which already carry a fraud label.
        mean_fraud_score (float): mean score of its accounts.
        members (list[str]): up to 20 account ids, highest score first.
    """

    size: int
    new_high_risk: int
    known_fraud: int
    mean_fraud_score: float
    members: list[str]


@dataclass
class RescoreReport:
    """What a rescoring run did and found.

    Args:
        model_version (str): the model that scored.
        as_of (int): the graph time scored at (features see events strictly before it).
        scored_at (int): wall-clock time written as ``scored_at``.
        device (str): where the model ran.
        scored (dict[str, int]): nodes scored per label.
        seconds (dict[str, float]): wall time per stage.
        shifts (dict[str, dict[str, float]]): per label, statistics of the score changes.
        high_risk (dict[str, dict[str, float]]): per label, counts above the threshold.
        clusters (list[Cluster]): high-risk clusters, new ones first, largest first.
    """

    model_version: str
    as_of: int
    scored_at: int
    device: str
    scored: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    shifts: dict[str, dict[str, float]] = field(default_factory=dict)
    high_risk: dict[str, dict[str, float]] = field(default_factory=dict)
    clusters: list[Cluster] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_graph(pipeline: ScoringPipeline, graph: LendingGraph, *, as_of: int | None = None,
                device: torch.device | str = "cpu") -> dict[NodeType, Scores]:
    """Scores of every user and merchant of ``graph`` as of ``as_of`` (default: after the
    latest event)."""
    t = graph.as_of + 1 if as_of is None else int(as_of)
    out = {}
    for label in SCORED_TYPES:
        n = graph.num_nodes(label)
        out[label] = pipeline.score_nodes(graph, label, np.arange(n), np.full(n, t),
                                          device=device)
    return out


def _previous(snapshot: GraphSnapshot, label: NodeType) -> np.ndarray:
    col = snapshot.nodes[label].columns.get("fraud_score")
    n = len(snapshot.nodes[label])
    if col is None:
        return np.full(n, np.nan)
    return np.asarray([np.nan if v is None else float(v) for v in np.asarray(col).tolist()],
                      dtype=np.float64)


def high_risk_clusters(graph: LendingGraph, fraud: np.ndarray, before: np.ndarray,
                       threshold: float, hub_degree: int = 20) -> list[Cluster]:
    """Connected groups (>= 2) of users scoring ``>= threshold`` through shared entities with
    at most ``hub_degree`` users."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    risky = fraud >= threshold
    n_users = graph.num_nodes("User")
    rows, cols, offset = [], [], n_users
    for rel in _CLUSTER_RELATIONS:
        adj = graph.relations[rel]
        users, ent, _, _ = adj.edges()
        degree = np.bincount(ent, minlength=adj.num_children)
        keep = risky[users] & (degree[ent] <= hub_degree)
        rows.append(users[keep])
        cols.append(ent[keep] + offset)
        offset += adj.num_children
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    m = coo_matrix((np.ones(r.shape[0]), (r, c)), shape=(offset, offset))
    _, comp = connected_components(m, directed=False)
    uc = comp[:n_users]
    idx = np.flatnonzero(risky)
    size = np.bincount(uc[idx], minlength=comp.max() + 1)
    known = graph.fraud_at["User"] < graph.as_of + 1
    was = np.nan_to_num(before, nan=0.0) >= threshold
    out = []
    for cid in np.flatnonzero(size >= 2):
        members = idx[uc[idx] == cid]
        order = members[np.argsort(-fraud[members], kind="stable")]
        out.append(Cluster(int(members.size), int((~was[members]).sum()),
                           int(known[members].sum()), float(fraud[members].mean()),
                           [str(x) for x in graph.ids["User"][order[:20]].tolist()]))
    out.sort(key=lambda k: (k.new_high_risk == 0, -k.size, -k.mean_fraud_score))
    return out


def rescore_store(
    store: GraphStore,
    pipeline: ScoringPipeline,
    *,
    device: torch.device | str = "cpu",
    as_of: int | None = None,
    high_risk: float = 0.5,
    embeddings_dir: str | Path | None = None,
    write: bool = True,
    log: Callable[[str], None] | None = None,
) -> RescoreReport:
    """Rescore every user and merchant of ``store`` and write the scores back.

    Args:
        store (GraphStore): the graph (read once, written in batches).
        pipeline (ScoringPipeline): the model (usually the promoted one).
        device (torch.device or str, optional): where the model runs. (default: ``"cpu"``)
        as_of (int, optional): score as of this time. (default: after the latest event)
        high_risk (float, optional): fraud probability from which an account is high-risk.
            (default: ``0.5``)
        embeddings_dir (str or Path, optional): write ``<version>.parquet`` embeddings here.
            (default: none)
        write (bool, optional): write the scores to the store. (default: ``True``)
        log (Callable[[str], None], optional): progress lines. (default: module logger)
    """
    say = log or logger.info
    device = torch.device(device)
    t0 = time.perf_counter()
    snapshot = GraphSnapshot.from_store(store)
    graph = LendingGraph.from_snapshot(snapshot)
    t = graph.as_of + 1 if as_of is None else int(as_of)
    report = RescoreReport(pipeline.version, t, int(time.time()), str(device))
    report.seconds["export"] = time.perf_counter() - t0
    say(f"exported {graph!r} in {report.seconds['export']:.1f}s")
    t0 = time.perf_counter()
    pipeline.use_kernels(device)
    scores = score_graph(pipeline, graph, as_of=t, device=device)
    report.seconds["score"] = time.perf_counter() - t0
    say(f"scored in {report.seconds['score']:.1f}s on {device}")
    t0 = time.perf_counter()
    for label, s in scores.items():
        ids = graph.ids[label].tolist()
        report.scored[label] = len(ids)
        before = _previous(snapshot, label)
        diff = s.fraud - before
        seen = np.isfinite(diff)
        report.shifts[label] = {
            "previously_scored": float(seen.sum()),
            "mean_abs_shift": float(np.abs(diff[seen]).mean()) if seen.any() else float("nan"),
            "p99_abs_shift": float(np.quantile(np.abs(diff[seen]), 0.99)) if seen.any()
            else float("nan"),
            "up_by_0.1": float((diff[seen] >= 0.1).sum()),
            "down_by_0.1": float((diff[seen] <= -0.1).sum()),
        }
        was = np.nan_to_num(before, nan=0.0) >= high_risk
        now = s.fraud >= high_risk
        report.high_risk[label] = {"threshold": high_risk, "now": float(now.sum()),
                                   "before": float(was.sum()), "new": float((now & ~was).sum()),
                                   "cleared": float((was & ~now).sum())}
        if label == "User":
            report.clusters = high_risk_clusters(graph, s.fraud, before, high_risk)
        if write:
            rows = [{"id": i, "fraud_score": float(f), "pd_score": float(p),
                     "scored_at": report.scored_at, "model_version": pipeline.version}
                    for i, f, p in zip(ids, s.fraud.tolist(), s.pd.tolist(), strict=True)]
            store.upsert_nodes(label, rows)
        if embeddings_dir is not None:
            _write_embeddings(Path(embeddings_dir), pipeline.version, label, ids, s)
    report.seconds["write"] = time.perf_counter() - t0
    say(f"wrote scores in {report.seconds['write']:.1f}s")
    return report


def _write_embeddings(directory: Path, version: str, label: str, ids: list[str],
                      s: Scores) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    emb = pa.FixedSizeListArray.from_arrays(pa.array(s.embedding.reshape(-1), pa.float32()),
                                            s.embedding.shape[1])
    table = pa.table({"id": pa.array(ids, pa.string()), "embedding": emb,
                      "fraud_score": s.fraud, "pd_score": s.pd})
    pq.write_table(table, directory / f"{version}-{label}.parquet")


def compare_devices(pipeline: ScoringPipeline, graph: LendingGraph, devices: tuple[str, str],
                    *, limit: int | None = None) -> Mapping[str, float]:
    """Largest absolute difference between the scores on two devices (CPU vs CUDA check):
    features by the kernels on each device (CuPy on CUDA), then the model there."""
    t = graph.as_of + 1
    out: dict[str, float] = {}

    def on(device: str, label: NodeType, pos: np.ndarray, times: np.ndarray) -> Scores:
        pipeline.use_kernels(device)
        try:
            return pipeline.score_nodes(graph, label, pos, times, device=device)
        finally:
            pipeline.use_kernels("cpu")

    for label in SCORED_TYPES:
        n = graph.num_nodes(label) if limit is None else min(limit, graph.num_nodes(label))
        pos, times = np.arange(n), np.full(n, t)
        a = on(devices[0], label, pos, times)
        b = on(devices[1], label, pos, times)
        out[f"{label}.fraud"] = float(np.abs(a.fraud - b.fraud).max(initial=0.0))
        out[f"{label}.pd"] = float(np.abs(a.pd - b.pd).max(initial=0.0))
        out[f"{label}.embedding"] = float(np.abs(a.embedding - b.embedding).max(initial=0.0))
    return out
