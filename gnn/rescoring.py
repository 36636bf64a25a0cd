"""`rescore_store`: score every user and merchant with a pipeline, write the scores back in
chunks that a restarted run skips, report what changed.

The store is exported once (:meth:`GraphSnapshot.from_store`; on Neo4j in read transactions, so
a cluster's replicas serve it), every user and merchant is scored as of one graph time by
full-graph layer-wise inference of the pipeline's network
(:class:`~gnn.full_graph_inference.FullGraphInference`: the features by the kernels, CuPy on a
CUDA device, the network on ``device``), and ``fraud_score``, ``pd_score``, ``scored_at`` and
``model_version`` are written back chunk by chunk (one transaction a chunk, one statement per
label on LadybugDB).

A run lives in the store: a ``RescoreRun`` record (model, graph time, ``scored_at``, chunking,
state) and one ``RescoreChunk`` record per chunk written, in the chunk's transaction. A run
killed at any point and started again resumes the newest unfinished run of the same model (same
graph time, same ``scored_at``, same chunks): it skips the chunks recorded and writes the
others. The final state equals one clean run's, nothing duplicated (upserts by id). With a run
directory each chunk's scores and embeddings also go to a Parquet part file, so the report of a
resumed run reads the chunks it skipped instead of scoring them again.

The report compares with the scores the graph held before the run (kept in the run directory at
its start): the distribution and its shift, the accounts that moved most, accounts crossing the
high-risk threshold, and *high-risk clusters* — groups of high-risk accounts joined by a shared
device, phone or address that is not a hub — flagged new when they hold an account that was not
high-risk before (:mod:`gnn.rescore_report` writes it as Markdown and PNG).

Several processes share a run through :class:`Ranks` (``torch.distributed``:
:mod:`gnn.distributed_rescoring`): chunk ``i`` belongs to rank ``i % world_size``, each rank
writes its own chunks, rank 0 opens and closes the run and writes the report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from gnn.data.lending_graph import LendingGraph
from gnn.errors import ModelError
from gnn.full_graph_inference import (
    PREFETCHED,
    FullGraphInference,
    RootChunk,
    build_table,
    concat_scores,
    root_chunks,
)
from gnn.pipeline import Scores, ScoringPipeline
from graph.schema import RESCORE_CHUNK, RESCORE_RUN
from graph.snapshot import GraphSnapshot
from graph.store import GraphStore
from graph.typing import NodeType, Row

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
class Mover:
    """An account whose fraud score moved.

    Args:
        id (str): the node id.
        before (float): its previous fraud score (NaN: never scored).
        after (float): its fraud score now.
    """

    id: str
    before: float
    after: float


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
        shifts (dict[str, dict[str, float | None]]): per label, statistics of the score
            changes (``None`` where no score was held before).
        high_risk (dict[str, dict[str, float]]): per label, counts above the threshold.
        run_id (str): the run's id (its ``RescoreRun`` record). (default: ``""``)
        previous_run (str, optional): the last run done before it. (default: ``None``)
        world_size (int): processes that scored (the last attempt). (default: ``1``)
        chunks (dict[str, int]): ``total``, ``written`` by this attempt and ``skipped`` (done
            by an earlier attempt).
        distribution (dict[str, dict[str, list[float]]]): per label, ``edges`` and the counts
            ``now`` and ``before`` of the fraud scores' histogram.
        movers (dict[str, list[Mover]]): per label, the accounts whose fraud score moved most.
        clusters (list[Cluster]): high-risk clusters, new ones first, largest first.
        peak_rss_mib (float): this process's peak resident memory.
        files (dict[str, str]): the report's files (``markdown``, ``png``).
    """

    model_version: str
    as_of: int
    scored_at: int
    device: str
    run_id: str = ""
    previous_run: str | None = None
    world_size: int = 1
    chunks: dict[str, int] = field(default_factory=dict)
    scored: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    shifts: dict[str, dict[str, float | None]] = field(default_factory=dict)
    high_risk: dict[str, dict[str, float]] = field(default_factory=dict)
    distribution: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    movers: dict[str, list[Mover]] = field(default_factory=dict)
    clusters: list[Cluster] = field(default_factory=list)
    peak_rss_mib: float = 0.0
    files: dict[str, str] = field(default_factory=dict)

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


def previous_scores(snapshot: GraphSnapshot, label: NodeType) -> np.ndarray:
    """The ``fraud_score`` each node of ``label`` held in ``snapshot`` (NaN: none)."""
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


ProgressHook = Callable[[str, int, int], None]
"""Progress of a stage: ``(stage, done, total)``, e.g. ``("write User", 32768, 1000000)``."""


class Ranks(Protocol):
    """The processes that share a run (one by default; ``torch.distributed`` in
    :class:`gnn.distributed_rescoring.TorchRanks`)."""

    rank: int
    world_size: int

    def build_table(self, rows: Callable[[RootChunk], Tensor], n: int,
                    node_type: NodeType) -> Tensor:
        """An ``[n, C]`` table from its row chunks, the same in every process."""
        ...

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` in every process."""
        ...

    def gather(self, value: Any) -> list[Any] | None:
        """Every rank's ``value`` on rank 0, by rank; ``None`` elsewhere."""
        ...

    def close(self) -> None:
        """Leave the group."""
        ...


class SingleProcess:
    """:class:`Ranks` of a run in one process."""

    rank = 0
    world_size = 1

    def build_table(self, rows: Callable[[RootChunk], Tensor], n: int,
                    node_type: NodeType) -> Tensor:
        return build_table(rows, n, node_type)

    def broadcast(self, value: Any) -> Any:
        return value

    def gather(self, value: Any) -> list[Any] | None:
        return [value]

    def close(self) -> None:
        pass



@dataclass
class RescoreRun:
    """A rescoring run as its ``RescoreRun`` record holds it.

    Args:
        id (str): ``rescore-<started, UTC>-<model version>``.
        model_version (str): the model.
        as_of (int): the graph time scored at.
        scored_at (int): written as every node's ``scored_at``.
        chunk_size (int): roots per chunk.
        users (int): users scored.
        merchants (int): merchants scored.
        previous_run (str, optional): the last run done before it.
        resumed (bool): an earlier attempt of it exists.
    """

    id: str
    model_version: str
    as_of: int
    scored_at: int
    chunk_size: int
    users: int
    merchants: int
    previous_run: str | None = None
    resumed: bool = False

    def roots(self, label: NodeType) -> int:
        return self.users if label == "User" else self.merchants

    def chunk_id(self, label: NodeType, index: int) -> str:
        return f"{self.id}/{label}/{index}"


def open_run(store: GraphStore, version: str, as_of: int, counts: Mapping[str, int], *,
             chunk_size: int, world_size: int = 1, now: int | None = None,
             as_of_given: bool = False,
             say: Callable[[str], None] = logger.info) -> RescoreRun:
    """Resume the newest unfinished run of model ``version`` on a graph of the same size, or
    start a new one (recorded in the store before anything is written).

    Args:
        store (GraphStore): where runs are recorded.
        version (str): the model version.
        as_of (int): the graph time a new run scores at (a resumed run keeps its own).
        counts (Mapping[str, int]): users and merchants of the graph exported.
        chunk_size (int): roots per chunk of a new run.
        world_size (int, optional): processes of this attempt. (default: ``1``)
        now (int, optional): the wall-clock time. (default: now)
        as_of_given (bool, optional): ``as_of`` was asked for: an unfinished run at another
            time is abandoned rather than resumed. (default: ``False``: resume at its time)
        say (Callable[[str], None], optional): what it decided. (default: the module logger)
    """
    now = int(time.time()) if now is None else int(now)
    runs = store.get_nodes(RESCORE_RUN, store.node_ids(RESCORE_RUN))
    props = sorted((dict(n.properties, id=i) for i, n in runs.items()),
                   key=lambda p: (int(p.get("started_at") or 0), str(p["id"])))
    done = [p for p in props if p.get("state") == "done"]
    previous = str(done[-1]["id"]) if done else None
    for p in reversed(props):
        if p.get("state") != "running" or p.get("model_version") != version:
            continue
        if (int(p.get("users") or -1), int(p.get("merchants") or -1)) != (
                counts["User"], counts["Merchant"]):
            # NOTE: chunks are ranges of positions in id order; with other nodes in the graph
            # they are other nodes, so the chunks recorded say nothing about this graph.
            say(f"run {p['id']} was interrupted on a graph of {p.get('users')} users and "
                f"{p.get('merchants')} merchants; this one differs: starting a new run")
            store.upsert_nodes(RESCORE_RUN, [{"id": p["id"], "state": "abandoned"}])
            break
        if as_of_given and int(p["as_of"]) != int(as_of):
            say(f"run {p['id']} was interrupted scoring as of {p['as_of']}; {as_of} was asked "
                "for: starting a new run")
            store.upsert_nodes(RESCORE_RUN, [{"id": p["id"], "state": "abandoned"}])
            break
        store.upsert_nodes(RESCORE_RUN, [{"id": p["id"], "world_size": world_size}])
        run = RescoreRun(str(p["id"]), version, int(p["as_of"]), int(p["scored_at"]),
                         int(p["chunk_size"]), int(p["users"]), int(p["merchants"]),
                         p.get("previous_run"), resumed=True)
        say(f"resuming run {run.id} (as of {run.as_of})")
        return run
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    run = RescoreRun(f"rescore-{stamp}-{version}", version, int(as_of), now, int(chunk_size),
                     int(counts["User"]), int(counts["Merchant"]), previous)
    n_chunks = sum(len(root_chunks(run.roots(t), chunk_size)) for t in SCORED_TYPES)
    store.upsert_nodes(RESCORE_RUN, [{
        "id": run.id, "model_version": version, "as_of": run.as_of, "scored_at": run.scored_at,
        "state": "running", "chunk_size": run.chunk_size, "chunks": n_chunks,
        "world_size": world_size, "users": run.users, "merchants": run.merchants,
        "started_at": now, "previous_run": previous}])
    say(f"started run {run.id}")
    return run


def done_chunks(store: GraphStore, run: RescoreRun, label: NodeType) -> set[int]:
    """The chunks of ``label`` that ``run`` has recorded as written."""
    n = len(root_chunks(run.roots(label), run.chunk_size))
    ids = [run.chunk_id(label, i) for i in range(n)]
    found: set[int] = set()
    for lo in range(0, n, 5000):
        found.update(int(node.properties["chunk"]) for node in
                     store.get_nodes(RESCORE_CHUNK, ids[lo:lo + 5000]).values())
    return found


def write_chunk(store: GraphStore, label: NodeType, ids: list[str], fraud: np.ndarray,
                pd: np.ndarray, *, scored_at: int, model_version: str, record: Row) -> None:
    """Write a chunk's scores onto its nodes and its ``RescoreChunk`` record, in one
    transaction: a kill leaves the chunk written and recorded, or neither.

    Args:
        store (GraphStore): the graph.
        label (NodeType): the chunk's nodes' label.
        ids (list[str]): the chunk's node ids.
        fraud, pd (np.ndarray): their fraud and default probabilities, in the same order.
        scored_at (int): the run's scoring time.
        model_version (str): the model that scored them.
        record (Row): the chunk's ``RescoreChunk`` row.
    """
    store.write_batch([(label, [
        {"id": i, "fraud_score": float(f), "pd_score": float(p), "scored_at": scored_at,
         "model_version": model_version}
        for i, f, p in zip(ids, fraud.tolist(), pd.tolist(), strict=True)]),
        (RESCORE_CHUNK, [record])], [], one_transaction=True)


def rescore_store(
    store: GraphStore,
    pipeline: ScoringPipeline,
    *,
    device: torch.device | str = "cpu",
    as_of: int | None = None,
    high_risk: float = 0.5,
    run_dir: str | Path | None = None,
    write: bool = True,
    chunk_size: int = 16384,
    max_edges: int = 262144,
    ranks: Ranks | None = None,
    log: Callable[[str], None] | None = None,
    on_progress: ProgressHook | None = None,
) -> RescoreReport:
    """Rescore every user and merchant of ``store`` and write the scores back in chunks.

    Args:
        store (GraphStore): the graph (read once, written chunk by chunk).
        pipeline (ScoringPipeline): the model (usually the promoted one).
        device (torch.device or str, optional): where features and model run (a CUDA device:
            CuPy kernels and the model there). (default: ``"cpu"``)
        as_of (int, optional): score as of this time; a resumed run keeps its own.
            (default: after the latest event)
        high_risk (float, optional): fraud probability from which an account is high-risk.
            (default: ``0.5``)
        run_dir (str or Path, optional): the runs' directory: ``<run id>/`` gets each chunk's
            scores and embeddings (Parquet), the scores held before and the report.
            (default: none: nothing on disk, no report files)
        write (bool, optional): write the scores to the store; ``False`` scores and reports
            only, records no run. (default: ``True``)
        chunk_size (int, optional): roots per chunk (scored, written, recorded at once).
            (default: ``16384``)
        max_edges (int, optional): edges whose states inference holds at once (bounds its
            memory). (default: ``262144``)
        ranks (Ranks, optional): the processes sharing the run. (default: this one)
        log (Callable[[str], None], optional): progress lines. (default: module logger)
        on_progress (ProgressHook, optional): progress of each stage, for a progress bar.
            (default: none)

    Raises:
        ValueError: if ``chunk_size`` or ``max_edges`` is not positive.
        ModelError: if the model cannot score users or merchants.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if max_edges < 1:
        raise ValueError(f"max_edges must be positive, got {max_edges}")
    say = log or logger.info
    ranks = ranks or SingleProcess()
    tick = on_progress or (lambda stage, done, total: None)
    device = torch.device(device)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    snapshot = GraphSnapshot.from_store(store)
    graph = LendingGraph.from_snapshot(snapshot)
    before_now = {label: previous_scores(snapshot, label) for label in SCORED_TYPES}
    del snapshot
    seconds["export"] = time.perf_counter() - t0
    say(f"exported {graph!r} in {seconds['export']:.1f}s")
    counts = {t: graph.num_nodes(t) for t in SCORED_TYPES}
    t = graph.as_of + 1 if as_of is None else int(as_of)
    if not write:
        run = RescoreRun("dry-run", pipeline.version, t, int(time.time()), chunk_size,
                         counts["User"], counts["Merchant"])
    elif ranks.rank == 0:
        run = open_run(store, pipeline.version, t, counts, chunk_size=chunk_size,
                       world_size=ranks.world_size, as_of_given=as_of is not None, say=say)
    else:
        run = None
    run = ranks.broadcast(run)
    assert run is not None
    if (run.users, run.merchants) != (counts["User"], counts["Merchant"]):
        raise ModelError(f"rank {ranks.rank} exported {counts}, rank 0 another graph")
    out_dir = None if run_dir is None or not write else Path(run_dir) / run.id
    if out_dir is not None and ranks.rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        for label in SCORED_TYPES:
            kept = out_dir / f"before-{label}.npy"
            if not kept.exists():
                # NOTE: taken once, at the first attempt: a resumed run's export holds some of
                # its own scores already.
                np.save(kept, before_now[label])
    ranks.broadcast(None)  # NOTE: the directory exists before any rank writes a part file.

    pipeline.use_kernels(device)
    inference = FullGraphInference(pipeline, graph, as_of=run.as_of, device=device,
                                   chunk_size=run.chunk_size, max_edges=max_edges)
    report = RescoreReport(pipeline.version, run.as_of, run.scored_at, str(device), run.id,
                           run.previous_run, ranks.world_size)
    written = skipped = 0
    scores: dict[NodeType, Scores] = {}
    seconds["write"] = 0.0
    for label in SCORED_TYPES:
        ids = graph.ids[label]
        chunks = inference.chunks(label)
        if ranks.rank == 0:
            done = done_chunks(store, run, label) if write else set()
            # NOTE: the tables are built by every rank together, so whether to build them is
            # decided once, by rank 0, before any rank writes a chunk of this label.
            need = len(done) < len(chunks) or out_dir is None or not all(
                _part(out_dir, label, c.index).exists() for c in chunks)
            decided = ranks.broadcast((done, need))
        else:
            decided = ranks.broadcast(None)
        done, need = decided
        mine = [c for c in chunks if c.index % ranks.world_size == ranks.rank]
        todo = [c for c in mine if c.index not in done]
        skipped += len(mine) - len(todo)
        say(f"{label}: {len(chunks)} chunks of {run.chunk_size}, {len(done)} written before"
            + (f", {len(todo)} for rank {ranks.rank} of {ranks.world_size}"
               if ranks.world_size > 1 else ""))
        parts: dict[int, Scores] = {}
        if need:
            t1 = time.perf_counter()
            inference.prepare(label, share=ranks.build_table)
            say(f"{label}: features and per-node tables in {time.perf_counter() - t1:.1f}s")
        total = sum(c.stop - c.start for c in mine)
        progressed = 0
        kept = {c.index for c in mine if c.index in done and out_dir is not None
                and _part(out_dir, label, c.index).exists()}
        # NOTE: the next chunk's features are computed while this one is scored and written
        scored = inference.score_chunks(label, [c for c in mine if c.index not in kept])
        for chunk in mine:
            part_file = None if out_dir is None else _part(out_dir, label, chunk.index)
            if chunk.index in kept:
                assert part_file is not None
                parts[chunk.index] = _read_part(part_file)
            else:
                same, parts[chunk.index] = next(scored)
                assert same.index == chunk.index
            if chunk.index not in done:
                s = parts[chunk.index]
                chunk_ids = ids[chunk.start:chunk.stop].tolist()
                if part_file is not None:
                    _write_part(part_file, chunk_ids, s)
                if write:
                    t1 = time.perf_counter()
                    write_chunk(store, label, chunk_ids, s.fraud, s.pd, scored_at=run.scored_at,
                                model_version=run.model_version, record={
                                    "id": run.chunk_id(label, chunk.index), "run_id": run.id,
                                    "label": label, "chunk": chunk.index,
                                    "rows": len(chunk_ids), "written_at": int(time.time()),
                                    "rank": ranks.rank})
                    seconds["write"] += time.perf_counter() - t1
                    written += 1
            progressed += chunk.stop - chunk.start
            tick(f"{label}", progressed, total)
        inference.release(label)
        gathered = ranks.gather(parts)
        if gathered is not None:
            merged: dict[int, Scores] = {}
            for g in gathered:
                merged.update(g)
            scores[label] = concat_scores([merged[c.index] for c in chunks],
                                          pipeline.model.embedding_dim)
    inference.release()
    seconds.update(inference.times.seconds)
    seconds[PREFETCHED] = inference.times.prefetched
    report.chunks = {"total": sum(len(inference.chunks(x)) for x in SCORED_TYPES),
                     "written": written, "skipped": skipped}
    report.seconds = seconds
    all_stats = ranks.gather((report.chunks, seconds, _peak_rss_mib()))
    if ranks.rank != 0 or all_stats is None:
        return report
    report.chunks = {k: sum(s[0][k] for s in all_stats) if k != "total" else all_stats[0][0][k]
                     for k in all_stats[0][0]}
    report.peak_rss_mib = max(s[2] for s in all_stats)
    say(f"scored in {seconds['features'] + seconds['inference']:.1f}s on {device}, wrote "
        f"{report.chunks['written']} chunks in {seconds['write']:.1f}s"
        + (f", {report.chunks['skipped']} were written before" if report.chunks["skipped"]
           else ""))
    t0 = time.perf_counter()
    for label in SCORED_TYPES:
        s = scores[label]
        kept = None if out_dir is None else out_dir / f"before-{label}.npy"
        before = np.load(kept) if kept is not None and kept.exists() else before_now[label]
        _summarise(report, graph, label, s, before, high_risk)
    report.seconds["report"] = time.perf_counter() - t0
    if out_dir is not None:
        from gnn.rescore_report import write_report

        report.files = write_report(report, out_dir)
    if write:
        store.upsert_nodes(RESCORE_RUN, [{"id": run.id, "state": "done",
                                          "finished_at": int(time.time())}])
    return report


def _summarise(report: RescoreReport, graph: LendingGraph, label: NodeType, s: Scores,
               before: np.ndarray, high_risk: float) -> None:
    ids = graph.ids[label]
    report.scored[label] = int(ids.shape[0])
    diff = s.fraud - before
    seen = np.isfinite(diff)
    report.shifts[label] = {
        "previously_scored": float(seen.sum()),
        # NOTE: None, not NaN, where nothing was scored before: the report is strict JSON
        "mean_abs_shift": float(np.abs(diff[seen]).mean()) if seen.any() else None,
        "p99_abs_shift": float(np.quantile(np.abs(diff[seen]), 0.99)) if seen.any() else None,
        "up_by_0.1": float((diff[seen] >= 0.1).sum()),
        "down_by_0.1": float((diff[seen] <= -0.1).sum()),
    }
    was = np.nan_to_num(before, nan=0.0) >= high_risk
    now = s.fraud >= high_risk
    report.high_risk[label] = {"threshold": high_risk, "now": float(now.sum()),
                               "before": float(was.sum()), "new": float((now & ~was).sum()),
                               "cleared": float((was & ~now).sum())}
    edges = np.linspace(0.0, 1.0, 21)
    report.distribution[label] = {
        "edges": edges.tolist(),
        "now": np.histogram(s.fraud, edges)[0].astype(float).tolist(),
        "before": np.histogram(before[np.isfinite(before)], edges)[0].astype(float).tolist()}
    moved = np.where(seen, np.abs(diff), -1.0)
    top = np.argsort(-moved, kind="stable")[:20]
    # NOTE: a move below 1e-6 is float summation order (another chunk size), not a change.
    report.movers[label] = [Mover(str(ids[i]), float(before[i]), float(s.fraud[i]))
                            for i in top if moved[i] > 1e-6]
    if label == "User":
        report.clusters = high_risk_clusters(graph, s.fraud, before, high_risk)


def _part(out_dir: Path, label: NodeType, index: int) -> Path:
    return out_dir / f"{label}-{index:06d}.parquet"


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _write_part(path: Path, ids: list[str], s: Scores) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    emb = pa.FixedSizeListArray.from_arrays(pa.array(s.embedding.reshape(-1), pa.float32()),
                                            s.embedding.shape[1])
    table = pa.table({"id": pa.array(ids, pa.string()), "embedding": emb,
                      "fraud_score": s.fraud, "pd_score": s.pd,
                      "fraud_logit": s.fraud_logit, "pd_logit": s.pd_logit})
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    # NOTE: renamed into place, so a kill leaves no half-written part for a resume to read.
    tmp.replace(path)


def _read_part(path: Path) -> Scores:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    emb = table.column("embedding").combine_chunks()
    dim = emb.type.list_size
    return Scores(table.column("fraud_score").to_numpy(), table.column("pd_score").to_numpy(),
                  table.column("fraud_logit").to_numpy(), table.column("pd_logit").to_numpy(),
                  emb.flatten().to_numpy().reshape(-1, dim).astype(np.float32))

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
