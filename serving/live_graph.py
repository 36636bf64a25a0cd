"""`LiveGraph`: the one live graph state of a serving process: the store's snapshot plus every
write this process accepted since, for verdicts in milliseconds.

Two views of one state, fed by one write path (:meth:`LiveGraph.apply`, the same idempotent
:data:`serving.writer.Op` lists the store receives, at once, before the store has them):

* the **model's arrays** (:class:`gnn.LendingGraph`, built from the same snapshot), which the
  scorer that decides holds and keeps current: every accepted write is passed on to it
  (:meth:`connect`), so the features, the sampled neighbourhood, the reasons and the credit
  limit's inputs of the next verdict see it — also while the write waits behind in the spool
  or the store is down;
* the **properties** investigators read (masked identifiers, cities, labels): the snapshot
  with an overlay of the accepted writes. Event relationships are keyed by event id and
  structural ones by their end points, so a write both in the snapshot and in the overlay
  counts once.

Several replicas (Neo4j) each see their own writes at once and the others' at the next
:meth:`refresh` (a new snapshot from the shared store; ``RISKGRAPH_LIVE_GRAPH_REFRESH_S``),
which then also rebuilds the model's arrays and hands them to the scorer with the writes
accepted since the refresh began (:meth:`refresh`, ``rebase``): another replica's write is seen
within one refresh interval plus the export. A store only this process writes (LadybugDB) has
no other writer: its arrays are never rebuilt, the scorer keeps them current and compact.

A refresh also empties the overlay of what the new base holds, so that the overlay stays the
size of the writes of one refresh interval rather than of the process's life (about 14 Python
objects a verdict, each walked by every full garbage collection). Which entries those are:
the ones laid before the refresh began, unchanged since, once the writer has put every write
accepted before the refresh into the store (``settle``). They are dropped a grace period after
the new base is in place, so that a reader holding the old base still finds them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np

from gnn import GraphWrites, LendingGraph
from graph import SCHEMA, GraphEdge, GraphNode, GraphStore, LabelWrite, SharedAccount, Subgraph
from graph.snapshot import GraphSnapshot, Relation
from graph.typing import NodeType, RelType
from serving.writer import Op

log = logging.getLogger(__name__)

TRIM_GRACE_S: Final = 5.0
"""Seconds between a refresh's new base and dropping what it holds from the overlay."""
SHARED_VIA: Final[dict[NodeType, RelType]] = {
    "Device": "USES", "Phone": "HAS_PHONE", "Address": "LIVES_AT"}
"""Entities whose other users count as shared accounts (IPs are hubs: left out)."""
_REVERSED: Final = ("USES", "HAS_PHONE", "LIVES_AT", "ORDERED_AT", "OWNS", "CONTACT",
                    "APPLIED")


K = TypeVar("K")
V = TypeVar("V")
WriteSink = Callable[[GraphWrites], None]
"""Where the model's copy of every accepted write goes (the scorer's graph state)."""
Rebase = Callable[[LendingGraph, list[GraphWrites]], None]
"""Takes new arrays and the writes accepted since they were exported (replayed over them)."""


def graph_writes(ops: Sequence[Op]) -> GraphWrites:
    """The graph writes of accepted operations, as the model's arrays take them (a verdict's
    own record left out, its application's rows in)."""
    nodes: list[tuple[str, list[dict[str, Any]]]] = []
    edges: list[tuple[RelType, list[dict[str, Any]]]] = []
    labels: list[LabelWrite] = []
    for op in ops:
        kind = op["op"]
        if kind == "nodes":
            nodes.append((op["label"], op["rows"]))
        elif kind == "edges":
            edges.append((op["rel"], op["rows"]))
        elif kind in ("verdict", "event"):
            # NOTE: the record that claims the id is the service's; its writes are the graph's
            inner = graph_writes(op["then"])
            nodes.extend(inner.nodes)
            edges.extend(inner.edges)
            labels.extend(inner.labels)
        elif kind == "label":
            lab = op["label"]
            labels.append(LabelWrite(lab["label"], lab["id"], lab["kind"], lab["at"],
                                     lab["source"]))
    return GraphWrites(nodes, edges, labels)


def _drop_unchanged(laid: Mapping[K, V], current: dict[K, V]) -> int:
    """Delete from ``current`` the keys whose value is still the object ``laid`` holds."""
    dropped = 0
    for key, value in laid.items():
        if current.get(key) is value:
            del current[key]
            dropped += 1
    return dropped


@dataclass(frozen=True)
class _Base:
    """The snapshot with the reverse relations the lookups need."""

    snapshot: GraphSnapshot
    reverse: Mapping[RelType, Relation]
    taken_at: float


def _typed(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    if kind == "BOOL":
        return bool(value)
    if kind == "INT64":
        return int(value)
    if kind == "DOUBLE":
        return float(value)
    return value


def _column_values(column: np.ndarray, lo: int, hi: int, kind: str) -> list[Any]:
    """A column slice as plain Python values of the schema type (NaN -> ``None``)."""
    values = column[lo:hi].tolist()
    if column.dtype.kind == "f":
        if kind == "INT64":
            return [None if v != v else int(v) for v in values]
        if kind == "BOOL":
            return [None if v != v else bool(v) for v in values]
        return [None if v != v else v for v in values]
    return values


def _rows(relation: Relation, kinds: Mapping[str, str], lo: int, hi: int
          ) -> list[dict[str, Any]]:
    """The properties of edges ``lo:hi`` of ``relation``, nulls left out."""
    if hi <= lo:
        return []
    columns = {name: _column_values(col, lo, hi, kinds[name])
               for name, col in relation.columns.items()}
    names = list(columns)
    return [{n: v for n, v in zip(names, vals, strict=True) if v is not None}
            for vals in zip(*columns.values(), strict=True)] if names else [{}
                                                                           for _ in range(hi - lo)]


class LiveGraph:
    """A snapshot plus an overlay of accepted writes (see the module docstring).

    Args:
        snapshot (GraphSnapshot): the base graph.
        fanout (int, optional): edges read per relationship and node (a busy merchant's
            newest orders). (default: ``200``)
    """

    def __init__(self, snapshot: GraphSnapshot, *, fanout: int = 200) -> None:
        if fanout <= 0:
            raise ValueError(f"fanout must be positive, got {fanout}")
        self.fanout = fanout
        self._lock = threading.RLock()
        self._base = self._make_base(snapshot)
        self._props: dict[tuple[NodeType, str], dict[str, Any]] = {}
        # (rel, src) -> {edge key -> (dst, props)}; (rel, dst) -> {src}
        self._out: dict[tuple[RelType, str], dict[str, tuple[str, dict[str, Any]]]] = {}
        self._in: dict[tuple[RelType, str], frozenset[str]] = {}
        self.applied = 0
        self.refreshes = 0
        """Refreshes from the store completed (each one a whole export)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sink: WriteSink | None = None
        self._rebase: Rebase | None = None
        self._rebase_on_refresh = False
        self._recording: list[GraphWrites] | None = None
        self._wake = threading.Event()
        self._rebuild_requested = threading.Event()

    @classmethod
    def from_store(cls, store: GraphStore, **kwargs: Any) -> LiveGraph:
        """Export the store into a snapshot and start from it (seconds for a large graph)."""
        t0 = time.perf_counter()
        live = cls(GraphSnapshot.from_store(store), **kwargs)
        log.info("live graph loaded in %.1fs: %s", time.perf_counter() - t0, live)
        return live

    def __repr__(self) -> str:
        snap = self._base.snapshot
        users = snap.num_nodes("User")
        edges = sum(r.num_edges for r in snap.relations.values())
        return f"LiveGraph(users={users}, edges={edges}, overlay_writes={self.applied})"

    @property
    def version(self) -> str:
        """When the base was taken and how many writes sit on it."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._base.taken_at))
        return f"memory:{stamp}+{self.applied}"

    @staticmethod
    def _make_base(snapshot: GraphSnapshot) -> _Base:
        reverse = {}
        for rel in _REVERSED:
            relation = snapshot.relations[rel]
            reverse[rel] = relation.reverse(snapshot.num_nodes(relation.edge_type[2]))
        return _Base(snapshot, reverse, time.time())

    # -- the model's arrays ----------------------------------------------------------------------
    def arrays(self) -> LendingGraph:
        """The base snapshot as the model's arrays (seconds for a large graph): what the scorer
        starts from before :meth:`connect`."""
        t0 = time.perf_counter()
        graph = LendingGraph.from_snapshot(self._base.snapshot)
        log.info("model arrays built in %.1fs: %r", time.perf_counter() - t0, graph)
        return graph

    def connect(self, sink: WriteSink, rebase: Rebase, *, on_refresh: bool) -> None:
        """Pass every write accepted from now on to ``sink`` (in acceptance order), and arrays
        rebuilt from the store to ``rebase``.

        Args:
            sink (WriteSink): takes each accepted write.
            rebase (Rebase): takes arrays rebuilt from the store and the writes accepted since
                their export began (at every refresh with ``on_refresh``, else only when
                asked: :meth:`request_rebuild`).
            on_refresh (bool): rebuild the arrays at every refresh (a store other processes
                write too).
        """
        with self._lock:
            self._sink = sink
            self._rebase = rebase
            self._rebase_on_refresh = on_refresh

    # -- keeping it current ---------------------------------------------------------------------
    def apply(self, ops: Sequence[Op]) -> None:
        """Lay accepted writes over the base (idempotent, as in the store) and pass them on to
        the model's arrays."""
        writes = graph_writes(ops)
        with self._lock:
            if self._recording is not None:
                self._recording.append(writes)
            if self._sink is not None:
                self._sink(writes)
            self._lay(ops)

    def _lay(self, ops: Sequence[Op]) -> None:
        with self._lock:
            for op in ops:
                kind = op["op"]
                if kind == "nodes":
                    if SCHEMA.node(op["label"]).record:
                        continue  # NOTE: the service's records (a case item) are no graph
                    for row in op["rows"]:
                        self._set_props(op["label"], row["id"],
                                        {k: v for k, v in row.items() if k != "id"})
                elif kind == "edges":
                    spec = SCHEMA.rel(op["rel"])
                    for row in op["rows"]:
                        props = {k: v for k, v in row.items() if k not in ("src", "dst")}
                        key = str(row[spec.key]) if spec.key is not None else row["dst"]
                        # NOTE: copy on write: readers take no lock and iterate whatever
                        # bucket they got, which nobody mutates afterwards.
                        out_key, in_key = (spec.type, row["src"]), (spec.type, row["dst"])
                        bucket = dict(self._out.get(out_key, {}))
                        old = bucket.get(key)
                        bucket[key] = (row["dst"], {**(old[1] if old else {}), **props})
                        self._out[out_key] = bucket
                        self._in[in_key] = self._in.get(in_key, frozenset()) | {row["src"]}
                elif kind in ("verdict", "event"):
                    self._lay(op["then"])
                elif kind == "label":
                    lab = op["label"]
                    write = LabelWrite(lab["label"], lab["id"], lab["kind"], lab["at"],
                                       lab["source"])
                    family = "default" if write.kind == "default" else "fraud"
                    known = self.node(write.label, write.id)
                    at = None if known is None else known.properties.get(f"{family}_label_at")
                    if not isinstance(at, int) or at <= write.at:
                        self._set_props(write.label, write.id, write.properties())
                self.applied += 1

    def _set_props(self, label: NodeType, node_id: str, props: Mapping[str, Any]) -> None:
        self._props[(label, node_id)] = {**self._props.get((label, node_id), {}), **props}

    def refresh(self, store: GraphStore, *, settle: Callable[[], bool] | None = None,
                grace_s: float = TRIM_GRACE_S, rebuild: bool | None = None) -> None:
        """Take a new base from the store, then drop from the overlay what it holds; with a
        ``rebase`` connected (a store other processes write), also rebuild the model's arrays.

        Args:
            store (GraphStore): where the base comes from.
            settle (Callable[[], bool], optional): blocks until every write accepted so far
                is in the store; ``False`` if it could not (the overlay is then kept whole and
                the arrays are not rebuilt). (default: none: the overlay is kept, counted once
                either way; no rebuild)
            grace_s (float, optional): how long entries the new base holds stay in the
                overlay after the swap, for readers still on the old base.
                (default: :data:`TRIM_GRACE_S`)
            rebuild (bool, optional): rebuild the model's arrays (or not) whatever
                :meth:`connect` said. (default: as connected)
        """
        t0 = time.perf_counter()
        with self._lock:
            laid = (dict(self._props), dict(self._out), dict(self._in))
            wanted = self._rebase_on_refresh if rebuild is None else rebuild
            rebase = self._rebase if wanted else None
            if rebase is not None:
                # NOTE: every write from here on reaches the new arrays too: the export may
                # or may not hold it, and applying a write twice changes nothing.
                self._recording = []
        try:
            settled = settle is not None and settle()
            snapshot = GraphSnapshot.from_store(store)
            base = self._make_base(snapshot)
            arrays = (LendingGraph.from_snapshot(snapshot)
                      if rebase is not None and settled else None)
        except BaseException:
            with self._lock:
                self._recording = None
            raise
        with self._lock:
            self._base = base
            if arrays is not None and rebase is not None:
                rebase(arrays, self._recording or [])
            self._recording = None
            self.refreshes += 1
        log.info("live graph refreshed in %.1fs (model arrays %s): %s",
                 time.perf_counter() - t0, "rebuilt" if arrays is not None else "kept", self)
        if settled and not self._stop.wait(grace_s):
            self._trim(*laid)

    def _trim(self, props: Mapping[tuple[NodeType, str], dict[str, Any]],
              out: Mapping[tuple[RelType, str], dict[str, tuple[str, dict[str, Any]]]],
              into: Mapping[tuple[RelType, str], frozenset[str]]) -> None:
        """Drop the overlay entries still as they were when the refresh began (a write
        replaces an entry's value, never changes it in place)."""
        with self._lock:
            dropped = (_drop_unchanged(props, self._props) + _drop_unchanged(out, self._out)
                       + _drop_unchanged(into, self._in))
        log.info("live graph overlay: %d entries the base now holds dropped, %d kept",
                 dropped, self.overlay_size)

    @property
    def overlay_size(self) -> int:
        """Entries in the overlay (nodes' properties, edge buckets, reverse buckets)."""
        return len(self._props) + len(self._out) + len(self._in)

    def start_refresh(self, store: GraphStore, interval_s: float | None, *,
                      settle: Callable[[], bool] | None = None) -> None:
        """Refresh from ``store`` every ``interval_s`` seconds (``None``: only when asked,
        :meth:`request_rebuild`) in a background thread (``settle`` as for :meth:`refresh`)."""
        def run() -> None:
            while True:
                self._wake.wait(interval_s)
                if self._stop.is_set():
                    return
                rebuild = self._rebuild_requested.is_set()
                self._wake.clear()
                self._rebuild_requested.clear()
                try:
                    self.refresh(store, settle=settle, rebuild=rebuild or None)
                except Exception as e:  # noqa: BLE001 - keep serving from the current base
                    log.warning("live graph not refreshed: %s", e)
                    if rebuild:
                        # NOTE: the model has no state: try again soon.
                        self._stop.wait(5.0)
                        self.request_rebuild()

        self._thread = threading.Thread(target=run, name="live-graph-refresh", daemon=True)
        self._thread.start()

    def request_rebuild(self) -> None:
        """Have the refresh thread rebuild the model's arrays now (the scorer lost them)."""
        self._rebuild_requested.set()
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()

    # -- reads ----------------------------------------------------------------------------------
    def node(self, label: NodeType, node_id: str) -> GraphNode | None:
        """A node with its properties, base and overlay merged; ``None`` if unknown."""
        base = self._base
        table = base.snapshot.nodes[label]
        pos = table.position(node_id)
        overlay = self._props.get((label, node_id))
        if pos is None and overlay is None and not self._out_keys(label, node_id):
            return None
        props: dict[str, Any] = {}
        if pos is not None:
            spec = SCHEMA.node(label)
            for name, column in table.columns.items():
                value = _typed(column[pos], spec.property(name).type)
                if value is not None:
                    props[name] = value
        if overlay:
            props.update(overlay)
        return GraphNode(label, node_id, props)

    def _out_keys(self, label: NodeType, node_id: str) -> bool:
        return any((rel.type, node_id) in self._out or (rel.type, node_id) in self._in
                   for rel in SCHEMA.rels if label in (rel.src, rel.dst))

    def edges_from(self, rel_type: RelType, src: str) -> list[GraphEdge]:
        """Relationships of ``rel_type`` leaving ``src`` (base, then overlay, deduplicated)."""
        base = self._base
        snap = base.snapshot
        rel = snap.relations[rel_type]
        spec = SCHEMA.rel(rel_type)
        pos = snap.nodes[spec.src].position(src)
        edges: dict[str, GraphEdge] = {}
        if pos is not None:
            lo, hi = int(rel.indptr[pos]), int(rel.indptr[pos + 1])
            hi = min(hi, lo + self.fanout)
            dst_ids = snap.nodes[spec.dst].ids[rel.indices[lo:hi]].tolist()
            for dst, props in zip(dst_ids, _rows(rel, _kinds(rel_type), lo, hi), strict=True):
                key = str(props.get(spec.key)) if spec.key is not None else dst
                edges[key] = GraphEdge(rel_type, src, dst, props)
        for key, (dst, props) in self._out.get((rel_type, src), {}).items():
            old = edges.get(key)
            edges[key] = GraphEdge(rel_type, src, dst,
                                   {**(old.properties if old else {}), **props})
        return list(edges.values())

    def edges_into(self, rel_type: RelType, dst: str) -> list[GraphEdge]:
        """Relationships of ``rel_type`` into ``dst``, newest first when they carry a time
        (at most ``fanout`` from the base), overlay included."""
        base = self._base
        snap = base.snapshot
        spec = SCHEMA.rel(rel_type)
        edges: dict[tuple[str, str], GraphEdge] = {}
        pos = snap.nodes[spec.dst].position(dst)
        if pos is not None:
            rev = base.reverse[rel_type]
            lo, hi = int(rev.indptr[pos]), int(rev.indptr[pos + 1])
            if hi - lo > self.fanout and "ts" in rev.columns:
                # NOTE: a busy merchant has thousands of orders; the newest say most.
                order = np.argsort(rev.columns["ts"][lo:hi])[::-1][: self.fanout] + lo
                picked = np.sort(order)
            else:
                picked = np.arange(lo, min(hi, lo + self.fanout))
            sub = Relation(rev.edge_type, np.array([0, len(picked)]), rev.indices[picked],
                           {k: v[picked] for k, v in rev.columns.items()})
            src_ids = snap.nodes[spec.src].ids[sub.indices].tolist()
            for src, props in zip(src_ids, _rows(sub, _kinds(rel_type), 0, len(picked)),
                                  strict=True):
                key = str(props.get(spec.key)) if spec.key is not None else src
                edges[(src, key)] = GraphEdge(rel_type, src, dst, props)
        for src in self._in.get((rel_type, dst), ()):
            for key, (to, props) in self._out.get((rel_type, src), {}).items():
                if to == dst:
                    old = edges.get((src, key))
                    edges[(src, key)] = GraphEdge(rel_type, src, dst, {
                        **(old.properties if old else {}), **props})
        return list(edges.values())

    def nodes_of(self, label: NodeType, node_ids: Sequence[str]) -> list[GraphNode]:
        """Many nodes of one label at once (unknown ids left out)."""
        table = self._base.snapshot.nodes[label]
        spec = SCHEMA.node(label)
        known = [(i, table.position(i)) for i in node_ids]
        in_base = [(i, p) for i, p in known if p is not None]
        found: dict[str, dict[str, Any]] = {}
        if in_base:
            positions = np.fromiter((p for _, p in in_base), dtype=np.int64,
                                    count=len(in_base))
            columns = {name: _column_values(col[positions], 0, len(in_base),
                                            spec.property(name).type)
                       for name, col in table.columns.items()}
            for j, (node_id, _) in enumerate(in_base):
                found[node_id] = {n: c[j] for n, c in columns.items() if c[j] is not None}
        out = []
        for node_id in node_ids:
            overlay = self._props.get((label, node_id))
            if node_id in found or overlay:
                out.append(GraphNode(label, node_id, {**found.get(node_id, {}),
                                                      **(overlay or {})}))
        return out

    def sources_of(self, rel_type: RelType, dst: str) -> set[str]:
        """Ids of the nodes with a ``rel_type`` relationship into ``dst``."""
        base = self._base
        snap = base.snapshot
        spec = SCHEMA.rel(rel_type)
        found: set[str] = set()
        pos = snap.nodes[spec.dst].position(dst)
        if pos is not None:
            rev = base.reverse[rel_type]
            lo, hi = int(rev.indptr[pos]), int(rev.indptr[pos + 1])
            src_ids = snap.nodes[spec.src].ids
            found.update(str(src_ids[j]) for j in rev.indices[lo:min(hi, lo + self.fanout)])
        found.update(self._in.get((rel_type, dst), ()))
        return found

    def display(self, label: NodeType, node_id: str | None) -> str | None:
        """What an investigator reads for an entity (its masked form), if the graph has it."""
        if node_id is None:
            return None
        node = self.node(label, node_id)
        if node is None:
            return None
        value = node.properties.get("masked") or node.properties.get("name_masked")
        return None if value is None else str(value)

    def places(self, user_id: str) -> dict[str, str]:
        """The cities a user's location reasons name: ``home_city`` (declared) and
        ``usual_city`` (the most frequent city of its recent logins' IPs)."""
        out: dict[str, str] = {}
        user = self.node("User", user_id)
        if user is not None and isinstance(user.properties.get("home_city"), str):
            out["home_city"] = user.properties["home_city"]
        logins = self.edges_from("LOGGED_IN_FROM", user_id)
        counts: dict[str, int] = {}
        for ip in (e.dst for e in logins):
            node = self.node("IP", ip)
            city = None if node is None else node.properties.get("city")
            if isinstance(city, str):
                counts[city] = counts.get(city, 0) + 1
        if counts:
            out["usual_city"] = max(sorted(counts), key=lambda c: counts[c])
        return out

    # NOTE: reads take no lock: the base is immutable (a refresh swaps it whole) and the
    # overlay is copy-on-write, so a reader sees every write that finished before it read.
    def user_subgraph(self, user_id: str) -> Subgraph | None:
        """The user, its relationships and the nodes at their other end (one hop)."""
        seed = self.node("User", user_id)
        if seed is None:
            return None
        edges: list[GraphEdge] = []
        for rel in SCHEMA.rels:
            if rel.src == "User":
                edges.extend(self.edges_from(rel.type, user_id))
        for other in self.sources_of("CONTACT", user_id):
            edges.append(GraphEdge("CONTACT", other, user_id, {}))
        wanted = {(SCHEMA.rel(e.type).dst if e.src == user_id else "User",
                   e.dst if e.src == user_id else e.src) for e in edges}
        nodes = [seed]
        for label, node_id in sorted(wanted):
            # NOTE: only what the verdict reads: IP cities, past applications, contacts.
            if label in ("IP", "Application", "User"):
                node = self.node(label, node_id)
                if node is not None:
                    nodes.append(node)
        return Subgraph(seed, tuple(nodes), tuple(edges))

    def shared_accounts(self, user_id: str, linked: Sequence[tuple[NodeType, str]],
                        extra: Sequence[tuple[NodeType, str]]) -> list[SharedAccount]:
        """Other users of each ``(label, id)`` entity, with their labels."""
        rows: list[SharedAccount] = []
        for label, entity in [*linked, *extra]:
            rel = SHARED_VIA.get(label)
            if rel is None:
                continue
            for other in sorted(self.sources_of(rel, entity) - {user_id}):
                props = (self.node("User", other) or GraphNode("User", other)).properties
                rows.append(SharedAccount(label, entity, other, props.get("fraud_label"),
                                          props.get("default_label")))
        return rows


def _kinds(rel_type: RelType) -> dict[str, str]:
    return _KINDS.setdefault(rel_type, {p.name: p.type for p in SCHEMA.rel(rel_type).properties})


_KINDS: dict[RelType, dict[str, str]] = {}
