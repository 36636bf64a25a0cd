"""`LendingGraph`: the lending graph as time-stamped integer arrays, what features and sampling
read — built in one pass, then kept current one accepted write at a time.

Per node type: string ids, a 64-bit key per id (stable across graph states: it seeds the sampler
and breaks ties), attributes and label-visible-from times; per relation a
:class:`~gnn.data.temporal_adjacency.TemporalAdjacency` whose rows are sorted by edge time; per event
kind (logins, orders, repayments, sales reports) append-only columns with an adjacency from the
owner to its events by time.

**One definition, two modes.** Every rule that turns the store's writes into these arrays is
written once, vectorised, in the ``_add_*`` / ``_set_*`` methods below. :meth:`from_snapshot`
(training, evaluation, rescoring) feeds them a whole export at once; :meth:`apply` (serving)
feeds them the few rows of one accepted write, the same node and relationship rows and label
writes the store receives. The two give identical arrays whatever the order the writes came in
(tests/gnn/test_live_lending_graph.py replays a world one write at a time against the one-pass
build), because rows are ordered by ``(time, tie key)`` and every rule is order-free:

* an event relationship (login, order, repayment) is one row per event id, the first one seen;
* a structural pair (a user's device, phone, address, IP, merchant, contact) exists from its
  earliest dated evidence; a device pair known only from an undated ``USES`` edge (the API
  writes one with every application) counts from time 0 until something dates it;
* an application's facts (user, device, IP, merchant) are edges at the application's time, and
  its device and IP count among the applicant's from then on;
* a label write replaces the node's label of its family (fraud / cleared, or default) unless the
  node holds a newer one (as the stores do); labels in node properties are taken as they are;
* an account's default shows as soon as any of its loans defaults;
* an account or merchant without a declared creation time dates from its first application,
  login or order (a brand-new account is new, not 56 years old).

Every time is int64 epoch seconds. A label whose time is unknown is never used as a feature
(:data:`NEVER`). Writes and reads happen on one thread (see :mod:`gnn.data.temporal_adjacency`).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

import numpy as np

from gnn.errors import GraphDataError
from gnn.data.temporal_adjacency import NEVER as _NEVER
from gnn.data.temporal_adjacency import TemporalAdjacency
from graph.snapshot import GraphSnapshot
from graph.store import LabelWrite
from graph.typing import PRODUCTS, NodeType, RelType, Row

log = logging.getLogger(__name__)

NEVER: Final[int] = _NEVER
"""Label-visible-from time of an entity without that label (same as :data:`kernels.NEVER`)."""

NODE_TYPES: Final[tuple[NodeType, ...]] = (
    "Application", "User", "Device", "Phone", "Address", "IP", "Merchant",
)
DEVICE_OS: Final[tuple[str, ...]] = ("android", "ios", "emulator")
IP_KINDS: Final[tuple[str, ...]] = ("residential", "mobile", "office", "public_wifi", "datacenter")
MERCHANT_SIZES: Final[tuple[str, ...]] = ("micro", "small", "medium", "large")
REPAYMENT_STATUS: Final[tuple[str, ...]] = ("on_time", "late", "missed")
ORDER_KINDS: Final[tuple[str, ...]] = ("all", "bnpl", "returned", "bnpl_returned")
"""The merchant -> order adjacencies (:meth:`LendingGraph.merchant_orders`)."""

RELATIONS: Final[dict[str, tuple[NodeType, NodeType]]] = {
    # an application's own facts (edge time = application time)
    "app_user": ("Application", "User"),
    "app_device": ("Application", "Device"),
    "app_ip": ("Application", "IP"),
    "app_merchant": ("Application", "Merchant"),
    # a user's entities and relations
    "user_app": ("User", "Application"),
    "user_device": ("User", "Device"),
    "user_phone": ("User", "Phone"),
    "user_home": ("User", "Address"),
    "user_work": ("User", "Address"),
    "user_ip": ("User", "IP"),
    "user_contact": ("User", "User"),
    "contact_of": ("User", "User"),
    "user_merchant": ("User", "Merchant"),
    "user_owns": ("User", "Merchant"),
    # who else is behind an entity
    "device_user": ("Device", "User"),
    "device_app": ("Device", "Application"),
    "phone_user": ("Phone", "User"),
    "home_user": ("Address", "User"),
    "work_user": ("Address", "User"),
    "ip_user": ("IP", "User"),
    "ip_app": ("IP", "Application"),
    "merchant_app": ("Merchant", "Application"),
    "merchant_buyer": ("Merchant", "User"),
    "merchant_owner": ("Merchant", "User"),
}
"""Relation name -> (parent type, child type); the sampler expands parents into children."""

INCLUSIVE_RELATIONS: Final[frozenset[str]] = frozenset(
    {"app_user", "app_device", "app_ip", "app_merchant"})
"""Relations whose edges exist *at* their time: an application's own facts."""

_APP_FACTS: Final[dict[str, tuple[str, str, str]]] = {
    # APPLIED_* type -> (attribute, app -> entity relation, entity -> app relation)
    "APPLIED_ON": ("device", "app_device", "device_app"),
    "APPLIED_FROM": ("ip", "app_ip", "ip_app"),
    "APPLIED_AT": ("merchant", "app_merchant", "merchant_app"),
}
_STRUCTURAL: Final[dict[str, tuple[str, str]]] = {
    # relationship type -> (forward relation, reverse relation); dated by ``since``
    "HAS_PHONE": ("user_phone", "phone_user"),
    "LIVES_AT": ("user_home", "home_user"),
    "WORKS_AT": ("user_work", "work_user"),
    "CONTACT": ("user_contact", "contact_of"),
    "OWNS": ("user_owns", "merchant_owner"),
}
_EVENT_OWNER: Final[dict[str, NodeType]] = {
    "logins": "User", "orders": "User", "repayments": "User", "sales": "Merchant"}
_EVENT_COLUMNS: Final[dict[str, dict[str, Any]]] = {
    # column -> (dtype, missing value)
    "logins": {"user": (np.int64, -1), "ts": (np.int64, 0), "device": (np.int64, -1),
               "ip": (np.int64, -1), "lat": (np.float64, np.nan), "lon": (np.float64, np.nan)},
    "orders": {"user": (np.int64, -1), "merchant": (np.int64, -1), "ts": (np.int64, 0),
               "amount": (np.float64, np.nan), "bnpl": (np.bool_, False),
               "returned": (np.bool_, False)},
    "repayments": {"user": (np.int64, -1), "application": (np.int64, -1), "ts": (np.int64, 0),
                   "status": (np.int8, len(REPAYMENT_STATUS))},
    "sales": {"merchant": (np.int64, -1), "day": (np.int64, 0), "gmv": (np.float64, np.nan),
              "refunds": (np.float64, np.nan), "inventory": (np.float64, np.nan)},
}
_ATTRS: Final[dict[NodeType, dict[str, tuple[Any, Any]]]] = {
    # attribute -> (dtype, default)
    "Application": {"ts": (np.int64, 0), "product": (np.int8, len(PRODUCTS)),
                    "amount": (np.float64, np.nan), "term_months": (np.int64, 0),
                    "lat": (np.float64, np.nan),
                    "lon": (np.float64, np.nan), "user": (np.int64, -1),
                    "device": (np.int64, -1), "ip": (np.int64, -1), "merchant": (np.int64, -1)},
    "User": {"created_at": (np.int64, NEVER), "home_lat": (np.float64, np.nan),
             "home_lon": (np.float64, np.nan), "declared_at": (np.int64, NEVER),
             "first_seen": (np.int64, NEVER)},
    "Device": {"os": (np.int8, len(DEVICE_OS))},
    "Phone": {},
    "Address": {},
    "IP": {"kind": (np.int8, len(IP_KINDS))},
    "Merchant": {"size": (np.int8, len(MERCHANT_SIZES)), "created_at": (np.int64, NEVER),
                 "declared_at": (np.int64, NEVER), "first_seen": (np.int64, NEVER)},
}
_HIDDEN_ATTRS: Final = frozenset({"declared_at", "first_seen"})
_VOCAB: Final[dict[tuple[NodeType, str], tuple[str, ...]]] = {
    ("Application", "product"): PRODUCTS, ("Device", "os"): DEVICE_OS,
    ("IP", "kind"): IP_KINDS, ("Merchant", "size"): MERCHANT_SIZES,
}
_LABELLED: Final[dict[str, frozenset[NodeType]]] = {
    "fraud": frozenset({"Application", "User", "Merchant"}),
    "default": frozenset({"Application", "User"}),
}
_FRAUD_APP_RELATIONS: Final = ("device_app", "ip_app")
"""Relations whose fraud-labelled children are counted as of a time (:meth:`labelled`)."""
_COMPACT_GARBAGE: Final = 0.5
"""A relation is laid out again once its garbage exceeds this share of its edges."""


class GraphWrites(NamedTuple):
    """One accepted write as the arrays take it (:meth:`LendingGraph.apply`).

    Args:
        nodes (Sequence[tuple[str, Sequence[Row]]]): ``(label, rows)`` node upserts.
        edges (Sequence[tuple[RelType, Sequence[Row]]]): ``(type, rows)`` relationship rows.
        labels (Sequence[LabelWrite]): label writes.
    """

    nodes: Sequence[tuple[str, Sequence[Row]]]
    edges: Sequence[tuple[RelType, Sequence[Row]]]
    labels: Sequence[LabelWrite]


def id_keys(ids: np.ndarray | Sequence[str]) -> np.ndarray:
    """Stable 64-bit keys of string ids (BLAKE2b), the identity the sampler hashes.

    Args:
        ids (np.ndarray): object array of strings, ``[N]``.

    Returns:
        np.ndarray: uint64 ``[N]``.
    """
    values = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(str(s).encode(), digest_size=8).digest() for s in values])
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


_NODE_ROOM: Final = 8
"""Per-node arrays grow to at least ``need + need // _NODE_ROOM``: a state built in one pass so
has room for the nodes written online, whose first one otherwise copied every per-node array (a
0.5 s stall of the scorer on the 100k-user world; docs/BENCHMARKS.md)."""


def _grow(buf: np.ndarray, need: int, fill: Any) -> np.ndarray:
    """``buf`` with room for at least ``need`` items (contents kept): twice its size, or
    ``need`` plus :data:`_NODE_ROOM` when that is more."""
    if need <= buf.shape[0]:
        return buf
    out = np.full(max(need + need // _NODE_ROOM, 2 * buf.shape[0], 16), fill, dtype=buf.dtype)
    out[: buf.shape[0]] = buf
    return out


def _used(n: int) -> int:
    """Length of a per-node view: the nodes, or the one default slot of a type without any."""
    return max(n, 1)


def _last_per(pos: np.ndarray) -> np.ndarray:
    """Index of the last occurrence of each distinct value of ``pos`` (a later write wins)."""
    if pos.shape[0] == 1:
        return np.zeros(1, dtype=np.int64)  # NOTE: an online write's one row: no np.unique
    rev = pos[::-1]
    _, first = np.unique(rev, return_index=True)
    return np.sort(pos.shape[0] - 1 - first)


class _Nodes:
    """Ids, keys and attributes of one node type, growing as writes name new ids."""

    def __init__(self, node_type: NodeType) -> None:
        self.type = node_type
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        # NOTE: buffers hold at least one slot of defaults, and the views of an empty type
        # show it (:func:`_used`): readers index with ``max(pos, 0)`` under a mask, which must
        # not fail on a young store without, say, any merchant yet.
        self.keys = np.zeros(1, dtype=np.uint64)
        self.attrs = {k: np.full(1, d, dtype=dt) for k, (dt, d) in _ATTRS[node_type].items()}
        self._ids_array: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.ids)

    def ensure(self, ids: Sequence[str]) -> tuple[np.ndarray, int]:
        """Positions of ``ids``, adding the unknown ones; and how many there were before."""
        before = self.n
        index = self.index
        fresh: list[str] = []
        for node_id in ids:
            if node_id not in index:
                index[node_id] = before + len(fresh)
                fresh.append(node_id)
        if fresh:
            self.ids.extend(fresh)
            n = self.n
            keys = id_keys(fresh)
            self.keys = _grow(self.keys, n, 0)
            self.keys[before:n] = keys
            for name, (_, default) in _ATTRS[self.type].items():
                self.attrs[name] = _grow(self.attrs[name], n, default)
            self._ids_array = None
        pos = np.fromiter(map(index.__getitem__, ids), dtype=np.int64, count=len(ids))
        return pos, before

    def ids_array(self) -> np.ndarray:
        if self._ids_array is None or self._ids_array.shape[0] != self.n:
            self._ids_array = np.asarray(self.ids, dtype=object)
        return self._ids_array


class _EventKeys:
    """Which event ids a table holds: a sorted array for the bulk part, a dict after it."""

    def __init__(self) -> None:
        self._sorted = np.zeros(0, dtype=np.uint64)
        self._extra: set[int] = set()

    def __len__(self) -> int:
        return int(self._sorted.shape[0]) + len(self._extra)

    def new(self, keys: np.ndarray) -> np.ndarray:
        """Mask of ``keys`` not seen before (the first of repeats within ``keys`` counts)."""
        keys = np.asarray(keys, dtype=np.uint64)
        _, first = np.unique(keys, return_index=True)
        fresh = np.zeros(keys.shape[0], dtype=bool)
        fresh[first] = True
        if self._sorted.size:
            at = np.minimum(self._sorted.searchsorted(keys), self._sorted.shape[0] - 1)
            fresh &= self._sorted[at] != keys
        if self._extra:
            fresh &= np.fromiter((int(k) not in self._extra for k in keys.tolist()), bool,
                                 keys.shape[0])
        return fresh

    def add(self, keys: np.ndarray) -> None:
        # NOTE: the set is folded into the sorted array once it holds an eighth as many
        # (a Python int in a set costs ~70 bytes; the array, 8).
        if (keys.shape[0] > 64 and keys.shape[0] * 8 > len(self)) or (
                len(self._extra) > max(4096, self._sorted.shape[0] // 8)):
            extra = np.fromiter(self._extra, dtype=np.uint64, count=len(self._extra))
            self._sorted = np.sort(np.concatenate([self._sorted, extra, keys]))
            self._extra = set()
        else:
            self._extra.update(int(k) for k in keys.tolist())


class _Events:
    """One append-only event table and its owner -> event adjacency (by time)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.n = 0
        self.columns = {k: np.full(0, d, dtype=dt) for k, (dt, d) in _EVENT_COLUMNS[name].items()}
        self.key = np.zeros(0, dtype=np.uint64)
        self.keys = _EventKeys()
        self.by_owner = TemporalAdjacency.empty(0, 0)

    def append(self, columns: Mapping[str, np.ndarray], key: np.ndarray) -> np.ndarray:
        """Append rows; their row numbers."""
        k = int(key.shape[0])
        lo, hi = self.n, self.n + k
        for name, (_, default) in _EVENT_COLUMNS[self.name].items():
            buf = _grow(self.columns[name], hi, default)
            buf[lo:hi] = columns[name]
            self.columns[name] = buf
        self.key = _grow(self.key, hi, 0)
        self.key[lo:hi] = key
        self.n = hi
        self.by_owner.resize(num_children=hi)
        return np.arange(lo, hi, dtype=np.int64)

    def view(self) -> dict[str, np.ndarray]:
        return {k: v[: self.n] for k, v in self.columns.items()}


class _TypedView(Mapping[NodeType, Any]):
    """``graph.attrs[type][name]`` and friends: views of the used part of growing buffers."""

    def __init__(self, get: Any, keys: Iterable[NodeType]) -> None:
        self._get = get
        self._keys = tuple(keys)

    def __getitem__(self, key: NodeType) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        return self._get(key)

    def __iter__(self) -> Any:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class LendingGraph:
    """The lending graph as arrays (see the module docstring).

    Build it with :meth:`from_snapshot`, :meth:`from_world` or :meth:`empty`; keep it current
    with :meth:`apply`.

    Attributes (read-only views):
        ids (Mapping[NodeType, np.ndarray]): per node type, object array of string ids.
        attrs (Mapping[NodeType, Mapping[str, np.ndarray]]): per type (``Application``: ``ts,
            product, amount, lat, lon, user, device, ip, merchant``; ``User``: ``created_at,
            home_lat, home_lon``; ``Device``: ``os``; ``IP``: ``kind``; ``Merchant``: ``size,
            created_at``).
        relations (Mapping[str, TemporalAdjacency]): one per name of :data:`RELATIONS`.
        events (Mapping[str, Mapping[str, np.ndarray]]): ``logins`` (``user, ts, device, ip,
            lat, lon``), ``orders`` (``user, merchant, ts, amount, bnpl, returned``),
            ``repayments`` (``user, application, ts, status``), ``sales`` (``merchant, day,
            gmv, refunds, inventory``), in the order they arrived; :meth:`event_adjacency`
            orders each owner's events by time.
        fraud_at (Mapping[NodeType, np.ndarray]): per ``User``, ``Application``, ``Merchant``,
            when a confirmed-fraud label became visible (:data:`NEVER` if never).
        default_at (Mapping[NodeType, np.ndarray]): per ``User`` and ``Application``.
        cleared_at (np.ndarray): per application, when a "cleared" label became visible.
    """

    def __init__(self) -> None:
        self._nodes = {t: _Nodes(t) for t in NODE_TYPES}
        self._reports = _Nodes("Phone")  # NOTE: SalesReport ids only (no attributes)
        self._report_row = np.zeros(0, dtype=np.int64)
        self._rel = {name: TemporalAdjacency.empty(0, 0) for name in RELATIONS}
        self._events = {name: _Events(name) for name in _EVENT_COLUMNS}
        self._orders = {k: TemporalAdjacency.empty(0, 0) for k in ORDER_KINDS}
        self._fraud_apps = {r: TemporalAdjacency.empty(0, 0) for r in _FRAUD_APP_RELATIONS}
        self._both_addresses = TemporalAdjacency.empty(0, 0)
        labelled = _LABELLED["fraud"] | _LABELLED["default"]
        self._label = {f: {t: np.full(1, NEVER, np.int64) for t in labelled}
                       for f in ("fraud", "cleared", "family", "default", "own_default")}
        self._as_of = 0
        self.writes_applied = 0
        self.ids: Mapping[NodeType, np.ndarray] = _TypedView(
            lambda t: self._nodes[t].ids_array(), NODE_TYPES)
        self.attrs: Mapping[NodeType, Mapping[str, np.ndarray]] = _TypedView(
            self._attr_view, NODE_TYPES)
        self.relations: Mapping[str, TemporalAdjacency] = self._rel
        self.events: Mapping[str, Mapping[str, np.ndarray]] = _TypedView(  # type: ignore[assignment]
            lambda name: self._events[name].view(), tuple(_EVENT_COLUMNS))
        self.fraud_at: Mapping[NodeType, np.ndarray] = _TypedView(
            lambda t: self._label["fraud"][t][: _used(self._nodes[t].n)],
            sorted(_LABELLED["fraud"]))
        self.default_at: Mapping[NodeType, np.ndarray] = _TypedView(
            lambda t: self._label["default"][t][: _used(self._nodes[t].n)],
            sorted(_LABELLED["default"]))

    def _attr_view(self, t: NodeType) -> dict[str, np.ndarray]:
        n = _used(self._nodes[t].n)
        return {k: v[:n] for k, v in self._nodes[t].attrs.items() if k not in _HIDDEN_ATTRS}

    @property
    def cleared_at(self) -> np.ndarray:
        return self._label["cleared"]["Application"][: _used(self._nodes["Application"].n)]

    # -- lookups ----------------------------------------------------------------------------------
    def num_nodes(self, node_type: NodeType) -> int:
        return self._nodes[node_type].n

    def position(self, node_type: NodeType, node_id: str | None) -> int:
        """Position of ``node_id``, ``-1`` when the graph does not know it (or it is ``None``)."""
        if node_id is None:
            return -1
        return self._nodes[node_type].index.get(node_id, -1)

    def positions(self, node_type: NodeType, node_ids: list[str]) -> np.ndarray:
        """Positions of many ids (``-1`` for unknown ones), int64."""
        index = self._nodes[node_type].index
        return np.fromiter((index.get(i, -1) for i in node_ids), np.int64, len(node_ids))

    def keys(self, node_type: NodeType) -> np.ndarray:
        """uint64 key of every node of ``node_type`` (:func:`id_keys` of its id)."""
        nodes = self._nodes[node_type]
        return nodes.keys[: _used(nodes.n)]

    def event_adjacency(self, name: str) -> TemporalAdjacency:
        """Owner -> row of the ``name`` event table (``events[name]``), by event time."""
        return self._events[name].by_owner

    def merchant_orders(self, kind: str) -> TemporalAdjacency:
        """Merchant -> order row (``events["orders"]``) by time, for one of :data:`ORDER_KINDS`."""
        return self._orders[kind]

    def labelled(self, relation: str, kind: str = "fraud") -> TemporalAdjacency:
        """``relation`` (``device_app`` or ``ip_app``) restricted to applications with a fraud
        label, keyed by the time the label became visible: ``count_before(parent, t)`` counts
        the parent's applications known to be fraud before ``t``.

        Raises:
            ValueError: for another relation or kind.
        """
        if kind != "fraud" or relation not in self._fraud_apps:
            raise ValueError(f"labelled adjacency of {relation!r}/{kind!r} is not kept")
        return self._fraud_apps[relation]

    @property
    def both_addresses(self) -> TemporalAdjacency:
        """Address -> user living and working there, from the later of the two edges' times."""
        return self._both_addresses

    @property
    def as_of(self) -> int:
        """The latest event time in the graph: the state it describes."""
        return self._as_of

    @property
    def fingerprint(self) -> str:
        """SHA-256 over every array the features and the sampler read (the identity of a
        training set; positions are part of it)."""
        h = hashlib.sha256()
        for t in NODE_TYPES:
            h.update(t.encode())
            h.update("\x1f".join(self._nodes[t].ids).encode())
            for k, v in sorted(self.attrs[t].items()):
                h.update(k.encode())
                h.update(np.ascontiguousarray(v).tobytes())
        for name in sorted(self._rel):
            h.update(name.encode())
            for a in self._rel[name].edges():
                h.update(np.ascontiguousarray(a).tobytes())
        for name in sorted(self._events):
            for k, v in sorted(self.events[name].items()):
                h.update(f"{name}.{k}".encode())
                h.update(np.ascontiguousarray(v).tobytes())
        for family in ("fraud", "default"):
            for t in sorted(self._label[family]):
                h.update(self._label[family][t][: self._nodes[t].n].tobytes())
        h.update(self.cleared_at.tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        counts = ", ".join(f"{t}={self.num_nodes(t)}" for t in NODE_TYPES)
        return (f"{self.__class__.__name__}({counts}, logins={self._events['logins'].n}, "
                f"writes_applied={self.writes_applied})")

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def empty(cls) -> LendingGraph:
        """A graph with nothing in it yet (a new store)."""
        return cls()

    @classmethod
    def from_world(cls, world_dir: Any, *, pseudonymiser: Any = None,
                   as_of: int | None = None) -> LendingGraph:
        """Load a simulated world directory through the loader's plan and the graph schema.

        Args:
            world_dir (str or os.PathLike): the directory ``riskgraph simulate`` wrote.
            pseudonymiser (graph.Pseudonymiser, optional): identifier hasher; the service's
                gives the ids of a store loaded from the same world. (default: offline key)
            as_of (int, optional): the graph as known at this time. (default: everything)
        """
        from graph.world_files import world_snapshot

        return cls.from_snapshot(world_snapshot(world_dir, pseudonymiser=pseudonymiser,
                                                as_of=as_of))

    @classmethod
    def from_snapshot(cls, snap: GraphSnapshot) -> LendingGraph:
        """The arrays of a :class:`GraphSnapshot` (every label and relationship of the schema),
        through the same rules :meth:`apply` runs, all rows at once.

        Raises:
            GraphDataError: if a relationship names nodes the snapshot lacks.
        """
        g = cls()
        pos: dict[str, np.ndarray] = {}
        for t in NODE_TYPES:
            table = snap.nodes[t]
            pos[t], _ = g._nodes[t].ensure(table.ids.tolist())
        g._grow_arrays()
        reports = snap.nodes["SalesReport"]
        pos["SalesReport"] = g._ensure_reports(reports.ids.tolist())
        for t in NODE_TYPES:
            g._set_node_columns(t, pos[t], dict(snap.nodes[t].columns))
        g._set_report_columns(pos["SalesReport"], dict(reports.columns))
        for rel in _EDGE_ORDER:
            r = snap.relations[rel]
            spec_src, _, spec_dst = r.edge_type
            src = pos[spec_src][r.sources()]
            dst = pos[spec_dst][r.indices]
            g._add_edges(rel, src, dst, dict(r.columns))
        g.compact()
        return g

    # -- keeping it current -----------------------------------------------------------------------
    def apply(self, nodes: Sequence[tuple[str, Sequence[Row]]] = (),
              edges: Sequence[tuple[RelType, Sequence[Row]]] = (),
              labels: Sequence[LabelWrite] = ()) -> None:
        """Apply accepted writes: node rows, relationship rows (``src``, ``dst`` and properties)
        and label writes, as a store receives them (``GraphStore.write_batch``,
        ``GraphStore.write_labels``). Idempotent: a write applied twice changes nothing more.
        Records (verdicts, keys, label events) and unknown labels are ignored.

        Nodes are applied first, then relationships, then labels; a relationship to a node the
        graph does not know creates it (as the stores' MERGE does).
        """
        for label, rows in nodes:
            if not rows:
                continue
            if label in self._nodes:
                t: NodeType = label  # type: ignore[assignment]
                p, _ = self._ensure(t, [str(r["id"]) for r in rows])
                self._set_node_columns(t, p, _columns(rows))
            elif label == "SalesReport":
                p = self._ensure_reports([str(r["id"]) for r in rows])
                self._set_report_columns(p, _columns(rows))
        for rel, rows in edges:
            if not rows or rel not in _ENDPOINTS:
                continue
            src_t, dst_t = _ENDPOINTS[rel]
            src = self._ensure_any(src_t, [str(r["src"]) for r in rows])
            dst = self._ensure_any(dst_t, [str(r["dst"]) for r in rows])
            self._add_edges(rel, src, dst, _columns(rows, skip=("src", "dst")))
        if labels:
            self._write_labels(labels)
        self.writes_applied += 1

    def apply_writes(self, writes: GraphWrites) -> None:
        """:meth:`apply` of a :class:`GraphWrites`."""
        self.apply(writes.nodes, writes.edges, writes.labels)

    def compact(self) -> None:
        """Lay out every adjacency again (no moved rows, no garbage)."""
        for adj in self._all_adjacencies():
            adj.compact()

    def maybe_compact(self) -> int:
        """Lay out the adjacencies whose garbage passed :data:`_COMPACT_GARBAGE`; how many."""
        done = 0
        for adj in self._all_adjacencies():
            if adj.garbage > 4096 and adj.garbage > _COMPACT_GARBAGE * max(adj.num_edges, 1):
                adj.compact()
                done += 1
        return done

    @property
    def garbage(self) -> int:
        """Buffer entries no row owns any more, over every adjacency."""
        return sum(a.garbage for a in self._all_adjacencies())

    def _all_adjacencies(self) -> list[TemporalAdjacency]:
        return [*self._rel.values(), *(e.by_owner for e in self._events.values()),
                *self._orders.values(), *self._fraud_apps.values(), self._both_addresses]

    # -- nodes ------------------------------------------------------------------------------------
    def _ensure(self, t: NodeType, ids: Sequence[str]) -> tuple[np.ndarray, int]:
        p, before = self._nodes[t].ensure(ids)
        if self._nodes[t].n != before:
            self._grow_arrays()
        return p, before

    def _ensure_any(self, t: str, ids: Sequence[str]) -> np.ndarray:
        if t == "SalesReport":
            return self._ensure_reports(ids)
        return self._ensure(t, ids)[0]  # type: ignore[arg-type]

    def _ensure_reports(self, ids: Sequence[str]) -> np.ndarray:
        p, _ = self._reports.ensure(ids)
        n = self._reports.n
        if self._report_row.shape[0] < n:
            self._report_row = _grow(self._report_row, n, -1)
        fresh = np.flatnonzero(self._report_row[p] < 0)
        if fresh.size:
            rp = np.unique(p[fresh])
            ev = self._events["sales"]
            rows = ev.append({k: np.full(rp.shape[0], d, dtype=dt)
                              for k, (dt, d) in _EVENT_COLUMNS["sales"].items()},
                             self._reports.keys[rp])
            self._report_row[rp] = rows
        return p

    def _grow_arrays(self) -> None:
        """Size every per-node array and adjacency to the node counts."""
        n = {t: self._nodes[t].n for t in NODE_TYPES}
        for family, per in self._label.items():
            for t, buf in per.items():
                per[t] = _grow(buf, n[t], NEVER)
        for name, (p, c) in RELATIONS.items():
            self._rel[name].resize(n[p], n[c])
        for name, ev in self._events.items():
            ev.by_owner.resize(num_parents=n[_EVENT_OWNER[name]])
        for adj in self._orders.values():
            adj.resize(n["Merchant"], self._events["orders"].n)
        for rel, adj in self._fraud_apps.items():
            adj.resize(n[RELATIONS[rel][0]], n["Application"])
        self._both_addresses.resize(n["Address"], n["User"])

    def _set_node_columns(self, t: NodeType, pos: np.ndarray,
                          cols: Mapping[str, np.ndarray]) -> None:
        """Node properties as written (a missing value leaves the attribute as it was)."""
        if pos.size == 0:
            return
        a = self._nodes[t].attrs
        for name in _ATTRS[t]:
            if name in _HIDDEN_ATTRS or name in ("user", "device", "ip", "merchant"):
                continue
            col = cols.get(name)
            if col is None:
                continue
            vocab = _VOCAB.get((t, name))
            values, ok = _typed(col, a[name].dtype, vocab)
            if name == "created_at":
                sel = _last_per(pos[ok])
                p, v = pos[ok][sel], values[ok][sel]
                a["declared_at"][p] = v
                a["created_at"][p] = v
                continue
            if name == "ts" and t == "Application":
                sel = _last_per(pos[ok])
                p, v = pos[ok][sel], values[ok][sel]
                moved = (a["ts"][p] != v) & self._has_facts(p)
                if moved.any():
                    # NOTE: an application's facts never change once written (its verdict
                    # claim guards the id); a store that says otherwise is not followed here.
                    log.warning("%d applications' times changed after their edges; kept",
                                int(moved.sum()))
                    p, v = p[~moved], v[~moved]
                a["ts"][p] = v
                self._seen(p, v, application=True)
                continue
            sel = _last_per(pos[ok])
            a[name][pos[ok][sel]] = values[ok][sel]
        if t in _LABELLED["fraud"]:
            self._set_label_columns(t, pos, cols)

    def _has_facts(self, app: np.ndarray) -> np.ndarray:
        a = self._nodes["Application"].attrs
        return (a["user"][app] >= 0) | (a["device"][app] >= 0) | (a["ip"][app] >= 0) | (
            a["merchant"][app] >= 0)

    def _set_label_columns(self, t: NodeType, pos: np.ndarray,
                           cols: Mapping[str, np.ndarray]) -> None:
        """Labels held as node properties (an export): taken as they are."""
        if "fraud_label" in cols:
            value, has = _typed(cols["fraud_label"], np.dtype(object), None)
            at, has_at = _typed(cols.get("fraud_label_at", np.full(pos.shape[0], None)),
                                np.dtype(np.int64), None)
            ok = has & has_at
            kind = np.where(ok, value, None)
            self._set_fraud_family(t, pos[ok], kind[ok], at[ok], newer_only=False)
        if "default_label" in cols and t in _LABELLED["default"]:
            value, has = _typed(cols["default_label"], np.dtype(bool), None)
            at, has_at = _typed(cols.get("default_label_at", np.full(pos.shape[0], None)),
                                np.dtype(np.int64), None)
            ok = has & has_at & value.astype(bool)
            self._set_default(t, pos[ok], at[ok], newer_only=False)

    def _set_report_columns(self, rp: np.ndarray, cols: Mapping[str, np.ndarray]) -> None:
        if rp.size == 0:
            return
        ev = self._events["sales"]
        rows = self._report_row[rp]
        for name in ("day", "gmv", "refunds", "inventory"):
            col = cols.get(name)
            if col is None:
                continue
            values, ok = _typed(col, ev.columns[name].dtype, None)
            sel = _last_per(rows[ok])
            r, v = rows[ok][sel], values[ok][sel]
            if name == "day":
                merchant = ev.columns["merchant"][r]
                changed = (ev.columns["day"][r] != v) & (merchant >= 0)
                for row in r[changed].tolist():
                    self._events["sales"].by_owner.remove(
                        int(ev.columns["merchant"][row]), row)
                ev.columns["day"][r] = v
                relink = r[changed]
                if relink.size:
                    self._link_sales(ev.columns["merchant"][relink], relink)
                self._seen_merchants(merchant[merchant >= 0], v[merchant >= 0])
            else:
                ev.columns[name][r] = v

    def _seen(self, app: np.ndarray, ts: np.ndarray, *, application: bool = False) -> None:
        """Date the applicants and merchants of applications ``app`` at ``ts`` (first seen)."""
        if not application:
            return
        a = self._nodes["Application"].attrs
        users = a["user"][app]
        ok = users >= 0
        self._seen_users(users[ok], ts[ok])
        merchants = a["merchant"][app]
        ok = merchants >= 0
        self._seen_merchants(merchants[ok], ts[ok])
        self._as_of = max(self._as_of, int(ts.max(initial=0)))

    def _seen_users(self, users: np.ndarray, ts: np.ndarray) -> None:
        self._first_seen("User", users, ts)

    def _seen_merchants(self, merchants: np.ndarray, ts: np.ndarray) -> None:
        self._first_seen("Merchant", merchants, ts)

    def _first_seen(self, t: NodeType, pos: np.ndarray, ts: np.ndarray) -> None:
        if pos.size == 0:
            return
        a = self._nodes[t].attrs
        np.minimum.at(a["first_seen"], pos, ts)
        undeclared = a["declared_at"][pos] == NEVER
        p = pos[undeclared]
        a["created_at"][p] = a["first_seen"][p]

    # -- relationships ----------------------------------------------------------------------------
    def _add_edges(self, rel: str, src: np.ndarray, dst: np.ndarray,
                   cols: Mapping[str, np.ndarray]) -> None:
        """One relationship type's rows, by the rules of the module docstring."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        if src.size == 0:
            return
        if (src < 0).any() or (dst < 0).any():
            raise GraphDataError(f"{rel} rows name nodes the graph does not hold")
        n = src.shape[0]
        if rel == "APPLIED":
            self._set_app_user(dst, src)
        elif rel in _APP_FACTS:
            self._set_app_fact(rel, src, dst)
        elif rel == "LOGGED_IN_FROM":
            key = _event_keys(rel, cols)
            ts, _ = _typed(cols.get("ts", np.full(n, None)), np.dtype(np.int64), None)
            lat, _ = _typed(cols.get("lat", np.full(n, None)), np.dtype(np.float64), None)
            lon, _ = _typed(cols.get("lon", np.full(n, None)), np.dtype(np.float64), None)
            device = self._device_positions(cols.get("device_id"), n)
            self._add_logins(src, dst, key, ts, lat, lon, device)
        elif rel == "ORDERED_AT":
            key = _event_keys(rel, cols)
            ts, _ = _typed(cols.get("ts", np.full(n, None)), np.dtype(np.int64), None)
            amount, _ = _typed(cols.get("amount", np.full(n, None)), np.dtype(np.float64), None)
            bnpl, _ = _typed(cols.get("bnpl", np.full(n, None)), np.dtype(bool), None)
            returned, _ = _typed(cols.get("returned", np.full(n, None)), np.dtype(bool), None)
            self._add_orders(src, dst, key, ts, amount, bnpl, returned)
        elif rel == "REPAID":
            key = _event_keys(rel, cols)
            ts, _ = _typed(cols.get("ts", np.full(n, None)), np.dtype(np.int64), None)
            status, _ = _typed(cols.get("status", np.full(n, None)), np.dtype(np.int8),
                               REPAYMENT_STATUS)
            self._add_repayments(src, dst, key, ts, status)
        elif rel == "USES":
            first, dated = _typed(cols.get("first_seen", np.full(n, None)),
                                  np.dtype(np.int64), None)
            self._add_device_evidence(src, dst, np.where(dated, first, NEVER))
        elif rel in _STRUCTURAL:
            since, _ = _typed(cols.get("since", np.full(n, None)), np.dtype(np.int64), None)
            self._add_structural(rel, src, dst, since)
        elif rel == "REPORTED":
            self._add_reported(src, dst)

    def _device_positions(self, col: np.ndarray | None, n: int) -> np.ndarray:
        """Device positions named by a login's ``device_id`` (-1: none, or not a device)."""
        if col is None:
            return np.full(n, -1, dtype=np.int64)
        index = self._nodes["Device"].index
        # NOTE: a null (None, NaN) or any other non-id finds no device: ids are strings.
        return np.fromiter(map(index.get, np.asarray(col, dtype=object).tolist(),
                               itertools.repeat(-1)), np.int64, n)

    def _set_app_user(self, app: np.ndarray, user: np.ndarray) -> None:
        a = self._nodes["Application"].attrs
        sel = _last_per(app)
        app, user = app[sel], user[sel]
        new = a["user"][app] != user
        app, user = app[new], user[new]
        if app.size == 0:
            return
        old = a["user"][app]
        if (old >= 0).any():
            log.warning("%d applications moved to another applicant; kept", int((old >= 0).sum()))
            keep = old < 0
            app, user = app[keep], user[keep]
        a["user"][app] = user
        ts = a["ts"][app]
        ukeys, akeys = self.keys("User"), self.keys("Application")
        self._rel["app_user"].insert(app, user, ts, ukeys[user])
        self._rel["user_app"].insert(user, app, ts, akeys[app])
        dev = a["device"][app]
        ok = dev >= 0
        self._add_device_evidence(user[ok], dev[ok], ts[ok])
        ip = a["ip"][app]
        ok = ip >= 0
        self._add_ip_evidence(user[ok], ip[ok], ts[ok])
        self._seen(app, ts, application=True)
        self._recompute_default(np.unique(user))

    def _set_app_fact(self, rel: str, app: np.ndarray, ent: np.ndarray) -> None:
        attr, fwd, rev = _APP_FACTS[rel]
        a = self._nodes["Application"].attrs
        sel = _last_per(app)
        app, ent = app[sel], ent[sel]
        new = a[attr][app] != ent
        app, ent = app[new], ent[new]
        if app.size == 0:
            return
        if (a[attr][app] >= 0).any():
            log.warning("%d applications' %s changed; kept", int((a[attr][app] >= 0).sum()), attr)
            keep = a[attr][app] < 0
            app, ent = app[keep], ent[keep]
        a[attr][app] = ent
        ts = a["ts"][app]
        ctype = RELATIONS[fwd][1]
        self._rel[fwd].insert(app, ent, ts, self.keys(ctype)[ent])
        self._rel[rev].insert(ent, app, ts, self.keys("Application")[app])
        if attr in ("device", "ip"):
            user = a["user"][app]
            ok = user >= 0
            add = self._add_device_evidence if attr == "device" else self._add_ip_evidence
            add(user[ok], ent[ok], ts[ok])
        if attr in ("device", "ip"):
            fraud = self._label["fraud"]["Application"][app]
            hit = fraud < NEVER
            if hit.any():
                self._fraud_apps[rev].insert(ent[hit], app[hit], np.maximum(fraud[hit], ts[hit]),
                                             self.keys("Application")[app[hit]])
        if attr == "merchant":
            self._seen_merchants(ent, ts)

    def _add_device_evidence(self, user: np.ndarray, device: np.ndarray,
                             ts: np.ndarray) -> None:
        ukeys, dkeys = self.keys("User"), self.keys("Device")
        self._rel["user_device"].insert_earliest(user, device, ts, dkeys[device],
                                                 zero_is_undated=True)
        self._rel["device_user"].insert_earliest(device, user, ts, ukeys[user],
                                                 zero_is_undated=True)

    def _add_ip_evidence(self, user: np.ndarray, ip: np.ndarray, ts: np.ndarray) -> None:
        """A user seen on an IP (a login, or an application made from it)."""
        self._rel["user_ip"].insert_earliest(user, ip, ts, self.keys("IP")[ip])
        self._rel["ip_user"].insert_earliest(ip, user, ts, self.keys("User")[user])

    def _add_structural(self, rel: str, src: np.ndarray, dst: np.ndarray,
                        since: np.ndarray) -> None:
        fwd, rev = _STRUCTURAL[rel]
        st, dt = RELATIONS[fwd]
        self._rel[fwd].insert_earliest(src, dst, since, self.keys(dt)[dst])
        self._rel[rev].insert_earliest(dst, src, since, self.keys(st)[src])
        if rel in ("LIVES_AT", "WORKS_AT"):
            self._update_both_addresses(src, dst)

    def _update_both_addresses(self, user: np.ndarray, address: np.ndarray) -> None:
        """Users living and working at one address count once there, from the later time."""
        both = self._both_addresses
        if user.shape[0] > 64 and user.shape[0] * 8 > both.num_edges:
            hp, hc, ht, _ = self._rel["user_home"].edges()
            wp, wc, wt, _ = self._rel["user_work"].edges()
            n_a = max(self.num_nodes("Address"), 1)
            _, i0, i1 = np.intersect1d(hp * n_a + hc, wp * n_a + wc, assume_unique=True,
                                       return_indices=True)
            users, addrs = hp[i0], hc[i0]
            fresh = TemporalAdjacency.from_edges(
                addrs, users, np.maximum(ht[i0], wt[i1]), self.num_nodes("Address"),
                self.num_nodes("User"), tie=self.keys("User")[users])
            self._both_addresses = fresh
            return
        for u, ad in set(zip(user.tolist(), address.tolist(), strict=True)):
            h = self._rel["user_home"].find(u, ad)
            w = self._rel["user_work"].find(u, ad)
            if h < 0 or w < 0:
                continue
            when = max(int(self._rel["user_home"].time[h]), int(self._rel["user_work"].time[w]))
            at = both.find(ad, u)
            if at >= 0 and int(both.time[at]) == when:
                continue
            both.remove(ad, u)
            both.insert(np.array([ad]), np.array([u]), np.array([when]),
                        self.keys("User")[np.array([u])])

    def _add_logins(self, user: np.ndarray, ip: np.ndarray, key: np.ndarray, ts: np.ndarray,
                    lat: np.ndarray, lon: np.ndarray, device: np.ndarray) -> None:
        ev = self._events["logins"]
        fresh = ev.keys.new(key)
        if not fresh.any():
            return
        user, ip, key, ts = user[fresh], ip[fresh], key[fresh], ts[fresh]
        lat, lon, device = lat[fresh], lon[fresh], device[fresh]
        ev.keys.add(key)
        rows = ev.append({"user": user, "ts": ts, "device": device, "ip": ip, "lat": lat,
                          "lon": lon}, key)
        ev.by_owner.insert(user, rows, ts, key)
        self._add_ip_evidence(user, ip, ts)
        ok = device >= 0
        self._add_device_evidence(user[ok], device[ok], ts[ok])
        self._seen_users(user, ts)
        self._as_of = max(self._as_of, int(ts.max(initial=0)))

    def _add_orders(self, user: np.ndarray, merchant: np.ndarray, key: np.ndarray,
                    ts: np.ndarray, amount: np.ndarray, bnpl: np.ndarray,
                    returned: np.ndarray) -> None:
        ev = self._events["orders"]
        fresh = ev.keys.new(key)
        if not fresh.any():
            return
        user, merchant, key, ts = user[fresh], merchant[fresh], key[fresh], ts[fresh]
        amount, bnpl, returned = amount[fresh], bnpl[fresh], returned[fresh]
        ev.keys.add(key)
        rows = ev.append({"user": user, "merchant": merchant, "ts": ts, "amount": amount,
                          "bnpl": bnpl, "returned": returned}, key)
        ev.by_owner.insert(user, rows, ts, key)
        for kind in ORDER_KINDS:
            adj = self._orders[kind]
            adj.resize(num_children=ev.n)
            keep = {"all": np.ones(rows.shape[0], bool), "bnpl": bnpl, "returned": returned,
                    "bnpl_returned": bnpl & returned}[kind]
            adj.insert(merchant[keep], rows[keep], ts[keep], key[keep])
        ukeys, mkeys = self.keys("User"), self.keys("Merchant")
        self._rel["user_merchant"].insert_earliest(user, merchant, ts, mkeys[merchant])
        self._rel["merchant_buyer"].insert_earliest(merchant, user, ts, ukeys[user])
        self._seen_users(user, ts)
        self._seen_merchants(merchant, ts)
        self._as_of = max(self._as_of, int(ts.max(initial=0)))

    def _add_repayments(self, user: np.ndarray, app: np.ndarray, key: np.ndarray,
                        ts: np.ndarray, status: np.ndarray) -> None:
        ev = self._events["repayments"]
        fresh = ev.keys.new(key)
        if not fresh.any():
            return
        user, app, key, ts, status = user[fresh], app[fresh], key[fresh], ts[fresh], status[fresh]
        ev.keys.add(key)
        rows = ev.append({"user": user, "application": app, "ts": ts, "status": status}, key)
        ev.by_owner.insert(user, rows, ts, key)
        self._as_of = max(self._as_of, int(ts.max(initial=0)))

    def _add_reported(self, merchant: np.ndarray, report: np.ndarray) -> None:
        ev = self._events["sales"]
        rows = self._report_row[report]
        sel = _last_per(rows)
        rows, merchant = rows[sel], merchant[sel]
        current = ev.columns["merchant"][rows]
        new = current != merchant
        rows, merchant = rows[new], merchant[new]
        if rows.size == 0:
            return
        if (current[new] >= 0).any():
            log.warning("sales reports moved to another merchant; kept")
            keep = current[new] < 0
            rows, merchant = rows[keep], merchant[keep]
        ev.columns["merchant"][rows] = merchant
        self._link_sales(merchant, rows)
        self._seen_merchants(merchant, ev.columns["day"][rows])

    def _link_sales(self, merchant: np.ndarray, rows: np.ndarray) -> None:
        ev = self._events["sales"]
        ev.by_owner.insert(merchant, rows, ev.columns["day"][rows], ev.key[rows])

    # -- labels -----------------------------------------------------------------------------------
    def _write_labels(self, labels: Sequence[LabelWrite]) -> None:
        """Label writes: the newer label of a family wins (ties: the later write)."""
        by: dict[tuple[NodeType, str], list[LabelWrite]] = {}
        for lab in labels:
            if lab.label not in self._nodes:
                continue
            family = "default" if lab.kind == "default" else "fraud"
            if lab.label not in _LABELLED[family]:
                continue
            by.setdefault((lab.label, family), []).append(lab)
        for (t, family), labs in by.items():
            pos, _ = self._ensure(t, [lab.id for lab in labs])
            at = np.array([lab.at for lab in labs], dtype=np.int64)
            if family == "default":
                self._set_default(t, pos, at, newer_only=True)
            else:
                kind = np.array([lab.kind for lab in labs], dtype=object)
                self._set_fraud_family(t, pos, kind, at, newer_only=True)

    def _newest(self, pos: np.ndarray, at: np.ndarray, current: np.ndarray,
                newer_only: bool) -> np.ndarray:
        """Index of the write that stands per position: the latest ``at`` (ties: the last
        given), and only if not older than ``current`` when ``newer_only``."""
        order = np.lexsort((np.arange(pos.shape[0]), at, pos))
        last = np.ones(order.shape[0], dtype=bool)
        last[:-1] = pos[order][1:] != pos[order][:-1]
        idx = order[last]
        if newer_only:
            cur = current[pos[idx]]
            idx = idx[(cur == NEVER) | (cur <= at[idx])]
        return idx

    def _set_fraud_family(self, t: NodeType, pos: np.ndarray, kind: np.ndarray, at: np.ndarray,
                          *, newer_only: bool) -> None:
        if pos.size == 0:
            return
        lab = self._label
        idx = self._newest(pos, at, lab["family"][t], newer_only)
        p, k, a = pos[idx], kind[idx], at[idx]
        old_fraud = lab["fraud"][t][p].copy()
        lab["family"][t][p] = a
        is_fraud = np.asarray([x == "fraud" for x in k.tolist()], dtype=bool)
        is_cleared = np.asarray([x == "cleared" for x in k.tolist()], dtype=bool)
        lab["fraud"][t][p] = np.where(is_fraud, a, NEVER)
        lab["cleared"][t][p] = np.where(is_cleared, a, NEVER)
        if t == "Application":
            self._relabel_fraud_apps(p, old_fraud, lab["fraud"][t][p])

    def _relabel_fraud_apps(self, app: np.ndarray, old: np.ndarray, new: np.ndarray) -> None:
        changed = old != new
        app, old, new = app[changed], old[changed], new[changed]
        if app.size == 0:
            return
        a = self._nodes["Application"].attrs
        akeys = self.keys("Application")
        for rel, attr in (("device_app", "device"), ("ip_app", "ip")):
            adj = self._fraud_apps[rel]
            ent = a[attr][app]
            has = ent >= 0
            for e, x in zip(ent[has & (old < NEVER)].tolist(),
                            app[has & (old < NEVER)].tolist(), strict=True):
                adj.remove(e, x)
            put = has & (new < NEVER)
            adj.insert(ent[put], app[put], np.maximum(new[put], a["ts"][app[put]]),
                       akeys[app[put]])

    def _set_default(self, t: NodeType, pos: np.ndarray, at: np.ndarray, *,
                     newer_only: bool) -> None:
        if pos.size == 0:
            return
        lab = self._label
        own = lab["own_default"] if t == "User" else lab["default"]
        idx = self._newest(pos, at, own[t], newer_only)
        p, a = pos[idx], at[idx]
        own[t][p] = a
        if t == "User":
            self._recompute_default(np.unique(p))
        else:
            user = self._nodes["Application"].attrs["user"][p]
            self._recompute_default(np.unique(user[user >= 0]))

    def _recompute_default(self, users: np.ndarray) -> None:
        """An account's default shows from its own label or its first loan default."""
        if users.size == 0:
            return
        lab = self._label
        value = lab["own_default"]["User"][users].copy()
        ua = self._rel["user_app"]
        start, end = ua.bounds(users)
        owner, idx = _expand(start, end)
        if owner.size:
            np.minimum.at(value, owner, lab["default"]["Application"][ua.child[idx]])
        lab["default"]["User"][users] = value


def _expand(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.maximum(end - start, 0)
    owner = np.repeat(np.arange(start.shape[0], dtype=np.int64), lengths)
    offsets = np.zeros(start.shape[0], dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    return owner, start[owner] + (np.arange(owner.shape[0], dtype=np.int64) - offsets[owner])


_ENDPOINTS: Final[dict[str, tuple[str, str]]] = {
    "USES": ("User", "Device"), "HAS_PHONE": ("User", "Phone"), "LIVES_AT": ("User", "Address"),
    "WORKS_AT": ("User", "Address"), "LOGGED_IN_FROM": ("User", "IP"),
    "ORDERED_AT": ("User", "Merchant"), "APPLIED": ("User", "Application"),
    "APPLIED_ON": ("Application", "Device"), "APPLIED_FROM": ("Application", "IP"),
    "APPLIED_AT": ("Application", "Merchant"), "REPAID": ("User", "Application"),
    "CONTACT": ("User", "User"), "OWNS": ("User", "Merchant"),
    "REPORTED": ("Merchant", "SalesReport"),
}
"""The relationship types the arrays read, with their end labels (as in the schema)."""
_EDGE_ORDER: Final[tuple[str, ...]] = (
    "APPLIED", "APPLIED_ON", "APPLIED_FROM", "APPLIED_AT", "LOGGED_IN_FROM", "ORDERED_AT",
    "REPAID", "USES", "HAS_PHONE", "LIVES_AT", "WORKS_AT", "CONTACT", "OWNS", "REPORTED")


def _columns(rows: Sequence[Row], skip: tuple[str, ...] = ("id",)) -> dict[str, np.ndarray]:
    """Row dicts as object columns, ``None`` where a row lacks the property."""
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    return {k: np.array([r.get(k) for r in rows], dtype=object)
            for k in names if k not in skip}


def _typed(col: np.ndarray, dtype: np.dtype[Any] | type, vocab: tuple[str, ...] | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """A column as ``dtype`` values and the mask of rows that hold one (not null / NaN).

    Strings in ``vocab`` become their int8 code (``len(vocab)`` for one outside it).
    """
    col = np.asarray(col)
    n = col.shape[0]
    dtype = np.dtype(dtype)
    if vocab is not None:
        lookup = {v: i for i, v in enumerate(vocab)}
        values = col.tolist()
        has = np.fromiter((v is not None and v == v for v in values), bool, n)
        codes = np.fromiter((lookup.get(v, len(vocab)) if isinstance(v, str) else len(vocab)
                             for v in values), np.int8, n)
        return codes, has
    if col.dtype.kind == "O":
        # NOTE: not None and equal to itself (a NaN is not), compared in numpy's loops
        has = np.asarray(np.not_equal(col, None) & (col == col), dtype=bool)
        if dtype.kind == "O":
            return col, has
        values = col.tolist()
        cast: Any = {"i": int, "u": int, "f": float, "b": bool}[dtype.kind]
        fill: Any = cast(0)
        out = np.fromiter((cast(v) if h else fill for v, h in zip(values, has.tolist(),
                                                                   strict=True)), dtype, n)
        return out, has
    if col.dtype.kind == "f":
        has = np.isfinite(col)
        if dtype.kind in "iub":
            return np.where(has, col, 0).astype(dtype), has
        return col.astype(dtype), has
    return col.astype(dtype), np.ones(n, dtype=bool)


def _event_keys(rel: str, cols: Mapping[str, np.ndarray]) -> np.ndarray:
    """Event identity: the key of each row's ``event_id``.

    Raises:
        GraphDataError: if a row has none (the schema keys event relationships by it).
    """
    ids = cols.get("event_id")
    values, has = (np.zeros(0, dtype=object), np.zeros(0, dtype=bool)) if ids is None else \
        _typed(ids, np.dtype(object), None)
    if ids is None or not has.all():
        raise GraphDataError(f"{rel} rows without an event_id")
    return id_keys(values)
