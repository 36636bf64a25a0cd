"""`RiskFeatures`: node and root feature matrices of a :class:`LendingGraph`, as of a time.

Two kinds of features, both leak-free by construction — every event counted lies strictly before
the as-of time ``t`` and every label counted became visible strictly before ``t``:

* **root features** of the node being scored (an application, a user, a merchant), rich and
  computed by :mod:`kernels`: velocity windows, location and amount anomaly, shared-entity counts
  with labelled-neighbour rates, merchant signals, plus the behaviour counts the kernels do not
  offer yet (orders, returns, repayments: a small prefix-count wrapper here);
* **node features** of every node of a sampled tree, cheap and typed: degrees as of ``t``, labels
  known before ``t``, kinds, ages, how long ago the edge to the parent appeared.

Every root feature belongs to a group — ``own`` (the application and its applicant's own
history), ``lookup`` (attributes of the directly linked device, IP and merchant) or ``graph``
(aggregates over other accounts: shared-entity counts, other applications on the same device or
IP, contacts in default) — so that the baselines can leave the graph out (docs/EVALUATION.md).

Computation touches only the events of the entities involved (CSR slices), so scoring one
application reads a few hundred rows and gives exactly what scoring all of them gives for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

import kernels as K
from gnn.data.lending_graph import (
    RELATIONS,
    DEVICE_OS,
    IP_KINDS,
    MERCHANT_SIZES,
    NEVER,
    PRODUCTS,
    LendingGraph,
    id_keys,
)
from gnn.data.neighbour_sampler import SampledTrees, Seeds
from gnn.data.temporal_adjacency import TemporalAdjacency
from graph.typing import NodeType

HOUR: Final = 3600
DAY: Final = 86_400
SPEND_WINDOW: Final = 90 * DAY
"""Orders counted in ``spend_90d_log`` (the limit's spending volume: a third of it a month)."""
NEW: Final = -2
"""Position of an entity the application names but the graph does not know yet."""

SHARED_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "device": ("user_device",),
    "phone": ("user_phone",),
    "address": ("user_home", "user_work"),
    "ip": ("user_ip",),
}
"""Entity groups of the shared-entity kernel and the user -> entity relations behind them."""

_REVERSE_REL: Final[dict[str, str]] = {
    "user_device": "device_user", "user_phone": "phone_user", "user_home": "home_user",
    "user_work": "work_user", "user_ip": "ip_user",
}

_SHARED_FIELDS: Final = ("shared_accounts", "fraud_neighbours", "default_neighbours",
                         "fraud_rate", "default_rate", "entities", "hub_entities",
                         "max_entity_degree", "shared_capped")

_MERCHANT_AGGREGATES: Final = frozenset({
    "fraud_known", "buyers_log", "apps_log", "orders_30d_log", "bnpl_share_30d",
    "returned_share_30d", "bnpl_returned_share_30d"})
"""Merchant columns that count other accounts' orders, applications or labels (graph group);
the rest (size, age, its own sales reports) are attributes of the merchant (lookup group)."""

NODE_FEATURES: Final[dict[NodeType, tuple[str, ...]]] = {
    "Application": (*(f"product_{p}" for p in PRODUCTS), "log_amount", "fraud_known",
                    "cleared_known", "default_known", "age_log_h", "recency_log_h"),
    "User": ("tenure_log_d", "fraud_known", "default_known", "apps_log", "devices_log",
             "phones_log", "orders_log", "contacts_log", "unknown", "recency_log_h"),
    "Device": (*(f"os_{o}" for o in (*DEVICE_OS, "unknown")), "users_log", "apps_log",
               "age_log_d", "unknown", "recency_log_h"),
    "Phone": ("users_log", "unknown", "recency_log_h"),
    "Address": ("residents_log", "workers_log", "unknown", "recency_log_h"),
    "IP": (*(f"kind_{k}" for k in (*IP_KINDS, "unknown")), "users_log", "apps_log",
           "recency_log_h"),
    "Merchant": (*(f"size_{s}" for s in (*MERCHANT_SIZES, "unknown")), "age_log_d",
                 "fraud_known", "buyers_log", "apps_log", "orders_30d_log", "bnpl_share_30d",
                 "returned_share_30d", "bnpl_returned_share_30d", "gmv_30d_log", "gmv_growth",
                 "refund_rate", "inventory_turnover", "sales_spike", "signals_missing",
                 "recency_log_h"),
}
"""Column names of the node feature matrix of each type."""


def _log1p(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(np.asarray(x, dtype=np.float64), 0.0))


def edge_recency(seen_at: np.ndarray, edge_time: np.ndarray) -> np.ndarray:
    """The last column of :data:`NODE_FEATURES`: hours (log1p) from the edge that reached a
    node to the time it is seen at (a root has none and takes 0).

    Shapes:
        - **output:** ``[E]``, float64
    """
    return _log1p((np.asarray(seen_at) - np.asarray(edge_time)) / HOUR)


def _share(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), 0.0)


def _entries(adj: TemporalAdjacency, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner (index into ``rows``) and entry index of every entry of the given rows
    (``-1``: none)."""
    return _expand_ranges(*adj.bounds(np.asarray(rows, dtype=np.int64)))


def _event_rows(adj: TemporalAdjacency, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner (index into ``rows``) and event row of every event of the owners ``rows``, each
    owner's in time order (``adj`` is an owner -> event adjacency)."""
    owner, idx = _entries(adj, rows)
    return owner, adj.child[idx]


def _expand_ranges(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner ``i`` and index of every element of the ranges ``[start_i, end_i)``."""
    start = np.asarray(start, dtype=np.int64)
    lengths = np.maximum(np.asarray(end, dtype=np.int64) - start, 0)
    owner = np.repeat(np.arange(start.shape[0], dtype=np.int64), lengths)
    offsets = np.zeros(start.shape[0], dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    return owner, start[owner] + (np.arange(owner.shape[0], dtype=np.int64) - offsets[owner])


def _events_of(adj: TemporalAdjacency, entities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entity and entry index of every entry of the distinct known ``entities``' rows
    (each row once, however many queries name it)."""
    uniq = np.unique(entities[entities >= 0]) if entities.size else np.zeros(0, np.int64)
    owner, idx = _entries(adj, uniq)
    return uniq[owner], idx


def _local(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique ids and the local index of each input (negative ids map to a shared dummy)."""
    ids = np.asarray(ids, dtype=np.int64)
    uniq, inv = np.unique(np.where(ids >= 0, ids, -1), return_inverse=True)
    return uniq, inv.astype(np.int64)


def on_backend(backend: K.Backend, kernel: Callable[..., Any], *args: Any, **kwargs: Any
               ) -> Any:
    """Run ``kernel`` on ``backend``: NumPy arguments go to the device and the results come
    back to the host (the only host<->device copies of the feature code)."""
    if not backend.is_gpu:
        return kernel(*args, **kwargs)

    def there(a: Any) -> Any:
        return backend.asarray(a) if isinstance(a, np.ndarray) else a

    out = kernel(*(there(a) for a in args), **{k: there(v) for k, v in kwargs.items()})
    if isinstance(out, tuple) and hasattr(out, "_fields"):
        return type(out)(*(backend.asnumpy(x) for x in out))
    return backend.asnumpy(out)


def window_counts(
    event_entity: np.ndarray,
    event_ts: np.ndarray,
    query_entity: np.ndarray,
    query_ts: np.ndarray,
    windows: Sequence[int],
    counted: np.ndarray | None = None,
    backend: K.Backend = K.CPU,
) -> np.ndarray:
    """Counted events of each query's entity in ``(t - w, t)``, strictly before ``t``.

    One :func:`kernels.compute_velocity` pass with the queries as uncounted events placed
    first in input order, so that of several events in the query's second none is seen.

    Returns:
        np.ndarray: int64 ``[Q, len(windows)]``.
    """
    q = int(query_entity.shape[0])
    if q == 0:
        return np.zeros((0, len(windows)), dtype=np.int64)
    ent = np.concatenate([query_entity, event_entity]).astype(np.int64)
    uniq, local = _local(ent)
    ts = np.concatenate([query_ts, event_ts]).astype(np.int64)
    c = np.concatenate([np.zeros(q, dtype=bool),
                        np.ones(event_entity.shape[0], dtype=bool) if counted is None
                        else np.asarray(counted, dtype=bool)])
    out = on_backend(backend, K.compute_velocity, local, ts, tuple(windows), counted=c)[:q]
    out[query_entity < 0] = 0
    return np.asarray(out, dtype=np.int64)


_OPTIONAL_FACTS: Final = {"phone": -1, "address": -1, "term_months": 0}
"""The facts an :class:`ApplicationQueries` may leave out (``None``), and what stands for
each when it is left out."""


@dataclass(frozen=True)
class ApplicationQueries:
    """Applications to score, by their facts (from the graph, or from a request).

    Args:
        key (np.ndarray): uint64 ``[Q]`` keys of the application ids.
        ts (np.ndarray): int64 application times.
        product (np.ndarray): int8 codes into :data:`gnn.data.lending_graph.PRODUCTS`.
        amount, lat, lon (np.ndarray): float64.
        user, device, ip, merchant (np.ndarray): int64 positions; ``-1`` none, ``-2``
            (:data:`NEW`) an entity the graph does not know yet.
        user_key, device_key, ip_key, merchant_key (np.ndarray): uint64 keys of those ids.
        phone, address (np.ndarray, optional): int64 positions of the phone and address the
            application declares (``-1`` none: an application of the graph, whose applicant's
            phones and addresses are its edges already; ``-2`` new). (default: none)
        term_months (np.ndarray, optional): int64 loan term in monthly instalments, ``0``
            not stated. (default: none stated)
    """

    key: np.ndarray
    ts: np.ndarray
    product: np.ndarray
    amount: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    user: np.ndarray
    device: np.ndarray
    ip: np.ndarray
    merchant: np.ndarray
    user_key: np.ndarray
    device_key: np.ndarray
    ip_key: np.ndarray
    merchant_key: np.ndarray
    phone: np.ndarray | None = None
    address: np.ndarray | None = None
    term_months: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @classmethod
    def from_graph(cls, graph: LendingGraph, positions: np.ndarray) -> ApplicationQueries:
        """The applications at ``positions`` of ``graph``, as their facts."""
        p = np.asarray(positions, dtype=np.int64)
        a = graph.attrs["Application"]

        def keys(t: NodeType, pos: np.ndarray) -> np.ndarray:
            k = graph.keys(t)
            return np.where(pos >= 0, k[np.maximum(pos, 0)], np.uint64(0)).astype(np.uint64)

        return cls(
            key=graph.keys("Application")[p], ts=a["ts"][p], product=a["product"][p],
            amount=a["amount"][p], lat=a["lat"][p], lon=a["lon"][p], user=a["user"][p],
            device=a["device"][p], ip=a["ip"][p], merchant=a["merchant"][p],
            user_key=keys("User", a["user"][p]), device_key=keys("Device", a["device"][p]),
            ip_key=keys("IP", a["ip"][p]), merchant_key=keys("Merchant", a["merchant"][p]),
            term_months=a["term_months"][p],
        )

    @classmethod
    def from_facts(
        cls, graph: LendingGraph, *, application_id: str, user_id: str, product: str,
        amount: float, ts: int, lat: float, lon: float, device_id: str | None,
        ip: str | None, merchant_id: str | None, phone_id: str | None = None,
        address_id: str | None = None, term_months: int | None = None,
    ) -> ApplicationQueries:
        """One application as a request states it; unknown entities become :data:`NEW`."""

        def pos(t: NodeType, node_id: str | None) -> int:
            if node_id is None:
                return -1
            p = graph.position(t, node_id)
            return p if p >= 0 else NEW

        def key(node_id: str | None) -> np.ndarray:
            return id_keys(np.asarray(["" if node_id is None else node_id], dtype=object))

        code = PRODUCTS.index(product) if product in PRODUCTS else len(PRODUCTS)
        return cls(
            key=key(application_id), ts=np.array([ts], dtype=np.int64),
            product=np.array([code], dtype=np.int8), amount=np.array([amount], dtype=np.float64),
            lat=np.array([lat], dtype=np.float64), lon=np.array([lon], dtype=np.float64),
            user=np.array([pos("User", user_id)]), device=np.array([pos("Device", device_id)]),
            ip=np.array([pos("IP", ip)]), merchant=np.array([pos("Merchant", merchant_id)]),
            user_key=key(user_id), device_key=key(device_id), ip_key=key(ip),
            merchant_key=key(merchant_id), phone=np.array([pos("Phone", phone_id)]),
            address=np.array([pos("Address", address_id)]),
            term_months=np.array([term_months or 0], dtype=np.int64),
        )

    def _declared(self, name: str) -> np.ndarray:
        value = getattr(self, name)
        return (np.full(len(self), _OPTIONAL_FACTS[name], dtype=np.int64) if value is None
                else value)

    def take(self, index: np.ndarray) -> ApplicationQueries:
        return ApplicationQueries(**{
            k: (getattr(self, k) if getattr(self, k) is None else getattr(self, k)[index])
            for k in self.__dataclass_fields__})

    @classmethod
    def concat(cls, parts: Sequence[ApplicationQueries]) -> ApplicationQueries:
        """The applications of ``parts``, in order (online requests scored as one batch)."""
        if not parts:
            raise ValueError("concat needs at least one ApplicationQueries")
        out = {k: np.concatenate([getattr(p, k) for p in parts])
               for k in cls.__dataclass_fields__ if k not in _OPTIONAL_FACTS}
        for k in _OPTIONAL_FACTS:
            out[k] = np.concatenate([p._declared(k) for p in parts])
        return cls(**out)

    def seeds(self) -> Seeds:
        """The sampler seeds of these applications (first hop stated, not looked up)."""
        q = len(self)
        return Seeds(
            "Application", np.full(q, -1, dtype=np.int64), self.ts, self.key,
            children={"app_user": self.user, "app_device": self.device, "app_ip": self.ip,
                      "app_merchant": self.merchant},
            child_keys={"app_user": self.user_key, "app_device": self.device_key,
                        "app_ip": self.ip_key, "app_merchant": self.merchant_key},
        )


@dataclass(frozen=True)
class _SharedGraph:
    """One entity group's sub-graph for the shared-entity kernel (local user and entity ids)
    and what the largest-degree count needs (:meth:`RiskFeatures._max_degree`)."""

    indptr: np.ndarray
    indices: np.ndarray
    n_ents: int
    query: np.ndarray
    edge_time: np.ndarray
    fraud_from: np.ndarray
    default_from: np.ndarray
    rels: tuple[str, ...]
    user: np.ndarray
    own_q: np.ndarray
    own_e: np.ndarray
    own_t: np.ndarray
    q_idx: np.ndarray
    q_ents: np.ndarray
    fresh0: int


class RiskFeatures:
    """Computes node and root features of a graph state through :mod:`kernels`.

    Args:
        graph (LendingGraph): the graph state.
        hub_degree (int, optional): hub cap of the shared-entity kernel.
            (default: :data:`kernels.DEFAULT_HUB_DEGREE`)
        location_k (int, optional): logins that make the usual location. (default: ``15``)
        amount_k (int, optional): amounts that make the usual amount. (default: ``32``)
    """

    def __init__(self, graph: LendingGraph, *, hub_degree: int = K.DEFAULT_HUB_DEGREE,
                 location_k: int = 15, amount_k: int = 32, kernels: K.Backend = K.CPU) -> None:
        self.graph = graph
        self.hub_degree = int(hub_degree)
        self.location_k = int(location_k)
        self.amount_k = int(amount_k)
        self.kernels = kernels

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(hub_degree={self.hub_degree}, "
                f"location_k={self.location_k}, amount_k={self.amount_k}, "
                f"kernels={self.kernels.name!r})")

    # -- node features of sampled trees ---------------------------------------------------------
    def seed_features(self, trees: SampledTrees, apps: ApplicationQueries
                      ) -> tuple[dict[NodeType, np.ndarray], np.ndarray, list[str], list[str]]:
        """:meth:`node_features` of ``trees`` and :meth:`application_features` of ``apps``,
        the applications the trees are sampled from, with the merchant block computed once
        for both: the trees' merchants and the applications' own, each as of its seed's time,
        in one call instead of two (a row's columns do not depend on the other rows'; ~0.7 ms
        of an online batch of one).

        Returns:
            the node features, then the root features, their names and groups.
        """
        pos, time = trees.pos["Merchant"], trees.time("Merchant")
        own = np.flatnonzero(apps.merchant >= 0)
        n = pos.shape[0]
        block = (self.merchant_block(np.concatenate([pos, apps.merchant[own]]),
                                     np.concatenate([time, apps.ts[own]]))
                 if n + own.shape[0] else
                 [np.zeros(0)] * (len(NODE_FEATURES["Merchant"]) - 1))
        app_cols = []
        for col in block:
            values = np.zeros(len(apps))
            values[own] = col[n:]
            app_cols.append(values)
        x = self.node_features(trees, merchant_columns=[col[:n] for col in block])
        return (x, *self.application_features(apps, merchant_columns=app_cols))

    def node_features(self, trees: SampledTrees, *,
                      merchant_columns: list[np.ndarray] | None = None
                      ) -> dict[NodeType, np.ndarray]:
        """Features of every tree node as of its seed's time (columns: :data:`NODE_FEATURES`).

        ``merchant_columns``: the trees' merchants' :meth:`merchant_block`, where the caller
        has it (:meth:`seed_features`).

        Shapes:
            - **output:** ``{type: [num_nodes(type), len(NODE_FEATURES[type])]}``, float32
        """
        out: dict[NodeType, np.ndarray] = {}
        for t, names in NODE_FEATURES.items():
            pos = trees.pos[t]
            time = trees.time(t)
            if pos.shape[0] == 0:
                out[t] = np.zeros((0, len(names)), dtype=np.float32)
                continue
            if t == "Merchant" and merchant_columns is not None:
                cols = list(merchant_columns)
            else:
                cols = self._node_columns(t, pos, time)
            cols.append(np.where(trees.depth[t] > 0, edge_recency(time, trees.edge_time[t]),
                                 0.0))
            x = np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1)
            assert x.shape[1] == len(names), (t, x.shape, len(names))
            out[t] = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        return out

    def node_columns(self, node_type: NodeType, pos: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The columns of :data:`NODE_FEATURES` but the last (the edge's recency, which
        :func:`edge_recency` gives per edge) of nodes seen as of ``t``: what full-graph
        inference computes once per node (:mod:`gnn.full_graph_inference`).

        Shapes:
            - **output:** ``[Q, len(NODE_FEATURES[node_type]) - 1]``, float64
        """
        pos = np.asarray(pos, dtype=np.int64)
        t = np.asarray(t, dtype=np.int64)
        n = len(NODE_FEATURES[node_type]) - 1
        if pos.shape[0] == 0:
            return np.zeros((0, n), dtype=np.float64)
        x = np.stack([np.asarray(c, dtype=np.float64)
                      for c in self._node_columns(node_type, pos, t)], axis=1)
        return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)

    def _node_columns(self, node_type: NodeType, pos: np.ndarray, t: np.ndarray
                      ) -> list[np.ndarray]:
        return list(getattr(self, f"_node_{node_type.lower()}")(pos, t))

    def _count(self, rel: str, pos: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self.graph.relations[rel].count_before(pos, t)

    def _node_application(self, pos: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
        g = self.graph
        a = g.attrs["Application"]
        ok = pos >= 0
        p = np.maximum(pos, 0)
        product = np.where(ok, a["product"][p], len(PRODUCTS))
        cols = [(product == i).astype(np.float64) for i in range(len(PRODUCTS))]
        cols.append(np.where(ok, _log1p(a["amount"][p]), 0.0))
        for at in (g.fraud_at["Application"], g.cleared_at, g.default_at["Application"]):
            cols.append((ok & (at[p] < t)).astype(np.float64))
        cols.append(np.where(ok, _log1p((t - a["ts"][p]) / HOUR), 0.0))
        return cols

    def _node_user(self, pos: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
        g = self.graph
        ok = pos >= 0
        p = np.maximum(pos, 0)
        created = g.attrs["User"]["created_at"][p]
        return [
            np.where(ok, _log1p((t - created) / DAY), 0.0),
            (ok & (g.fraud_at["User"][p] < t)).astype(np.float64),
            (ok & (g.default_at["User"][p] < t)).astype(np.float64),
            _log1p(self._count("user_app", pos, t)),
            _log1p(self._count("user_device", pos, t)),
            _log1p(self._count("user_phone", pos, t)),
            _log1p(g.event_adjacency("orders").count_before(pos, t)),
            _log1p(self._count("user_contact", pos, t)),
            # NOTE: unknown as of t: no node, or one first seen at t or later (a brand-new
            # account is unknown when it applies, whether or not the graph holds it yet).
            (~ok | (created >= t)).astype(np.float64),
        ]

    def _node_device(self, pos: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
        g = self.graph
        ok = pos >= 0
        os_ = np.where(ok, g.attrs["Device"]["os"][np.maximum(pos, 0)], len(DEVICE_OS))
        first = g.relations["device_user"].first_time(pos)
        age = np.where(first < t, (t - np.minimum(first, t)) / DAY, 0.0)
        return [*((os_ == i).astype(np.float64) for i in range(len(DEVICE_OS) + 1)),
                _log1p(self._count("device_user", pos, t)),
                _log1p(self._count("device_app", pos, t)), _log1p(age),
                (~ok | (first >= t)).astype(np.float64)]

    def _node_phone(self, pos: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
        return [_log1p(self._count("phone_user", pos, t)), (pos < 0).astype(np.float64)]

    def _node_address(self, pos: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
        return [_log1p(self._count("home_user", pos, t)), _log1p(self._count("work_user", pos, t)),
                (pos < 0).astype(np.float64)]

    def _node_ip(self, pos: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
        ok = pos >= 0
        kind = np.where(ok, self.graph.attrs["IP"]["kind"][np.maximum(pos, 0)], len(IP_KINDS))
        return [*((kind == i).astype(np.float64) for i in range(len(IP_KINDS) + 1)),
                _log1p(self._count("ip_user", pos, t)), _log1p(self._count("ip_app", pos, t))]

    def _node_merchant(self, pos: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
        return self.merchant_block(pos, t)

    # -- merchant block (node features and merchant roots) ----------------------------------------
    def merchant_block(self, pos: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
        """The merchant columns of :data:`NODE_FEATURES` (without recency)."""
        g = self.graph
        ok = pos >= 0
        p = np.maximum(pos, 0)
        size = np.where(ok, g.attrs["Merchant"]["size"][p], len(MERCHANT_SIZES))
        created = g.attrs["Merchant"]["created_at"][p]
        cols = [*((size == i).astype(np.float64) for i in range(len(MERCHANT_SIZES) + 1)),
                np.where(ok, _log1p((t - created) / DAY), 0.0),
                (ok & (g.fraud_at["Merchant"][p] < t)).astype(np.float64),
                _log1p(self._count("merchant_buyer", pos, t)),
                _log1p(self._count("merchant_app", pos, t))]
        n30, b30, r30, br30 = (self._merchant_window(kind, pos, t, 30 * DAY)
                               for kind in ("all", "bnpl", "returned", "bnpl_returned"))
        cols += [_log1p(n30), _share(b30, n30), _share(r30, n30), _share(br30, n30)]
        sig = self._merchant_signals(pos, t)
        missing = ~np.isfinite(sig.sales_spike) & ~np.isfinite(sig.gmv_growth)
        cols += [_log1p(np.nan_to_num(sig.gmv_recent)),
                 np.clip(np.nan_to_num(sig.gmv_growth), -1.0, 10.0),
                 np.clip(np.nan_to_num(sig.refund_rate), 0.0, 1.0),
                 np.clip(np.nan_to_num(sig.inventory_turnover), 0.0, 50.0),
                 np.clip(np.nan_to_num(sig.sales_spike), 0.0, 20.0),
                 missing.astype(np.float64)]
        return cols

    def _merchant_window(self, kind: str, pos: np.ndarray, t: np.ndarray, w: int) -> np.ndarray:
        """Orders of a kind at each merchant in ``(t - w, t)``.

        The same counts as :func:`window_counts`, by two binary searches in the merchant's
        time-sorted orders: a national merchant has tens of thousands of orders, and an online
        score must not run a velocity pass over all of them.
        """
        adj = self.graph.merchant_orders(kind)
        return adj.count_before(pos, t) - adj.count_before(pos, t - w + 1)

    def _merchant_signals(self, pos: np.ndarray, t: np.ndarray) -> K.MerchantSignals:
        s = self.graph.events["sales"]
        adj = self.graph.event_adjacency("sales")
        ev_ent, j = _events_of(adj, pos)
        idx = adj.child[j]
        uniq, local = _local(np.concatenate([pos, ev_ent]))
        q = pos.shape[0]
        return on_backend(  # type: ignore[no-any-return]
            self.kernels, K.merchant_signals, local[q:], s["day"][idx], s["gmv"][idx], s["refunds"][idx], s["inventory"][idx],
            local[:q], t)

    # -- root features ----------------------------------------------------------------------------
    def user_block(self, user: np.ndarray, t: np.ndarray,
                   extra_edges: dict[str, tuple[np.ndarray, np.ndarray | None]] | None = None,
                   ) -> tuple[list[np.ndarray], list[str], list[str]]:
        """The applicant's (or a scored user's) features as of ``t``: columns, names, groups.

        ``extra_edges`` adds an application's own device, IP, phone and address to the user's
        entities at ``t`` (``{"device": (positions, keys)}``) so that a new application counts
        the same whether or not the graph holds it yet.
        """
        g = self.graph
        ok = user >= 0
        p = np.maximum(user, 0)
        cols: list[np.ndarray] = []
        names: list[str] = []
        groups: list[str] = []

        def add(name: str, col: np.ndarray, group: str) -> None:
            cols.append(np.asarray(col, dtype=np.float64))
            names.append(name)
            groups.append(group)

        created = g.attrs["User"]["created_at"][p]
        add("user_unknown", ~ok | (created >= t), "own")
        add("tenure_log_d", np.where(ok, _log1p((t - created) / DAY), 0.0), "own")
        add("self_fraud_known", ok & (g.fraud_at["User"][p] < t), "own")
        add("self_default_known", ok & (g.default_at["User"][p] < t), "own")
        # behaviour: orders, returns, BNPL, repayments strictly before t
        o = g.events["orders"]
        owner, idx = _event_rows(g.event_adjacency("orders"), user)
        before = o["ts"][idx] < t[owner]
        q = user.shape[0]

        def per_query(values: np.ndarray) -> np.ndarray:
            return np.bincount(owner[before], weights=values[before], minlength=q)

        n_orders = per_query(np.ones(idx.shape[0]))
        add("orders_log", _log1p(n_orders), "own")
        amount = np.nan_to_num(o["amount"][idx])
        add("order_value_log", _log1p(per_query(amount)), "own")
        recent = o["ts"][idx] > t[owner] - SPEND_WINDOW
        add("spend_90d_log", _log1p(per_query(np.where(recent, amount, 0.0))), "own")
        add("return_rate", _share(per_query(o["returned"][idx].astype(float)), n_orders), "own")
        add("bnpl_share", _share(per_query(o["bnpl"][idx].astype(float)), n_orders), "own")
        add("merchants_log", _log1p(self._count("user_merchant", user, t)), "own")
        r = g.events["repayments"]
        owner, idx = _event_rows(g.event_adjacency("repayments"), user)
        before = r["ts"][idx] < t[owner]
        n_rep = per_query(np.ones(idx.shape[0]))
        for code, name in enumerate(("on_time", "late", "missed")):
            k = per_query((r["status"][idx] == code).astype(float))
            add(f"repaid_{name}_log", _log1p(k), "own")
            if name != "on_time":
                add(f"{name}_share", _share(k, n_rep), "own")
        add("prev_apps_log", _log1p(self._count("user_app", user, t)), "own")
        add("devices_log", _log1p(self._count("user_device", user, t)), "own")
        add("phones_log", _log1p(self._count("user_phone", user, t)), "own")
        add("ips_log", _log1p(self._count("user_ip", user, t)), "own")
        # velocity: applications, logins, new devices per user
        ua = g.relations["user_app"]
        ev_u, idx = _events_of(ua, user)
        v = window_counts(ev_u, ua.time[idx], user, t, (HOUR, DAY, 7 * DAY),
                          backend=self.kernels)
        for j, w in enumerate(("1h", "24h", "7d")):
            add(f"user_apps_{w}", _log1p(v[:, j]), "own")
        lg = g.events["logins"]
        la = g.event_adjacency("logins")
        ev_u, j = _events_of(la, user)
        idx = la.child[j]
        v = window_counts(ev_u, lg["ts"][idx], user, t, (DAY, 7 * DAY), backend=self.kernels)
        add("user_logins_24h", _log1p(v[:, 0]), "own")
        add("user_logins_7d", _log1p(v[:, 1]), "own")
        new_dev = on_backend(self.kernels, K.mark_first_seen, lg["user"][idx],
                             lg["device"][idx], lg["ts"][idx])
        v = window_counts(ev_u, lg["ts"][idx], user, t, (7 * DAY,), counted=new_dev,
                          backend=self.kernels)
        add("user_new_devices_7d", _log1p(v[:, 0]), "own")
        # contacts known to be in default / fraud (credit network, second-degree contact)
        uc = g.relations["user_contact"]
        start, end = uc.ranges(user, t)
        c_owner, c_idx = _expand_ranges(start, end)
        contact = uc.child[c_idx]
        n_contacts = end - start
        c_def = np.bincount(c_owner, weights=(g.default_at["User"][contact]
                                              < t[c_owner]).astype(float), minlength=q)
        c_fr = np.bincount(c_owner, weights=(g.fraud_at["User"][contact]
                                             < t[c_owner]).astype(float), minlength=q)
        add("contacts_log", _log1p(n_contacts), "own")
        add("contacts_default_log", _log1p(c_def), "graph")
        add("contacts_default_share", _share(c_def, n_contacts), "graph")
        add("contacts_fraud_log", _log1p(c_fr), "graph")
        # shared entities with labelled-neighbour counts (the shared-entity kernel)
        every = self._shared_groups(user, t, [
            (rels, None if extra_edges is None else extra_edges.get(group))
            for group, rels in SHARED_GROUPS.items()])
        for group, feats in zip(SHARED_GROUPS, every, strict=True):
            for fname, values in zip(_SHARED_FIELDS, feats, strict=True):
                val = np.asarray(values, dtype=np.float64)
                if fname.endswith("_rate"):
                    val = np.nan_to_num(val)
                else:
                    val = _log1p(val)
                add(f"{group}_{fname}", val, "graph")
        return cols, names, groups

    def _shared_groups(self, user: np.ndarray, t: np.ndarray,
                       groups: Sequence[tuple[tuple[str, ...],
                                              tuple[np.ndarray, np.ndarray | None] | None]],
                       ) -> list[K.SharedEntityFeatures]:
        """The shared-entity features of each group ``(relations, the application's own
        entities)``, each query's as it gets them alone.

        An online batch's applications are not written yet, so none may see another: the
        queries go in rounds (:meth:`_rounds`) such that no query of a round adds an edge
        that another query of the round would read (one round, as good as always, unless a
        user applies twice at once or two applicants name one entity), one kernel call each.
        """
        rounds = self._rounds(user, t, groups)
        if len(rounds) == 1:
            return self._shared_groups_at_once(user, t, groups)
        parts = [self._shared_groups_at_once(user[r], t[r], [
                     (rels, None if extra is None
                      else (extra[0][r], None if extra[1] is None else extra[1][r]))
                     for rels, extra in groups]) for r in rounds]
        out: list[K.SharedEntityFeatures] = []
        for k in range(len(groups)):
            fields = []
            for f in range(len(parts[0][k])):
                col = np.empty(user.shape[0], dtype=np.asarray(parts[0][k][f]).dtype)
                for r, part in zip(rounds, parts, strict=True):
                    col[r] = np.asarray(part[k][f])
                fields.append(col)
            out.append(K.SharedEntityFeatures(*fields))
        return out

    def _rounds(self, user: np.ndarray, t: np.ndarray,
                groups: Sequence[tuple[tuple[str, ...],
                                       tuple[np.ndarray, np.ndarray | None] | None]],
                ) -> list[np.ndarray]:
        """The queries in rounds (index arrays, in order) such that no query of a round adds
        an edge another query of the round reads.

        What a query adds to the kernel's sub-graph beyond the graph is its application's
        entities that are not already its applicant's edges as of ``t`` (a new device, a
        known one used for the first time); those edges hang off its applicant's row. Another
        query reads them if it is by the same applicant, or if one of those entities is among
        its own (its applicant's edges or its application's entities). Two such queries go
        in different rounds (greedy colouring in query order). A batch of stored
        applications adds nothing (their entities are their applicants' edges already), so
        training and rescoring keep one round.
        """
        q = user.shape[0]
        everyone = [np.arange(q)]
        if q < 2:
            return everyone
        g = self.graph
        span = np.int64(1) << 40  # NOTE: token ranges: users, then one per group
        rows = np.where(user >= 0, user, -1)
        adds = np.zeros(q, dtype=bool)
        read_q: list[np.ndarray] = []
        read_tok: list[np.ndarray] = []
        add_q: list[np.ndarray] = []
        add_tok: list[np.ndarray] = []
        for k, (rels, extra) in enumerate(groups):
            base = (k + 1) * span
            owner_l, ent_l, time_l = [], [], []
            for rel in rels:
                adj = g.relations[rel]
                owner, idx = _entries(adj, rows)
                owner_l.append(owner)
                ent_l.append(adj.child[idx].astype(np.int64))
                time_l.append(adj.time[idx])
            s_owner = np.concatenate(owner_l)
            s_ent = np.concatenate(ent_l)
            read_q.append(s_owner)
            read_tok.append(base + s_ent)
            if extra is None:
                continue
            e = np.asarray(extra[0], dtype=np.int64)
            adds |= e == NEW
            has = np.flatnonzero(e >= 0)
            read_q.append(has)
            read_tok.append(base + e[has])
            by_t = np.concatenate(time_l) <= t[s_owner]
            held = s_ent[by_t] * q + s_owner[by_t]  # (entity, query) pairs held as of t
            new = has[~np.isin(e[has] * q + has, held)]
            adds[new] = True
            add_q.append(new)
            add_tok.append(base + e[new])
        if not adds.any():
            return everyone
        known = np.flatnonzero(user >= 0)
        read_q.append(known)
        read_tok.append(user[known])
        by_user = known[adds[known]]
        add_q.append(by_user)
        add_tok.append(user[by_user])
        rq, rt = np.concatenate(read_q), np.concatenate(read_tok)
        order = np.argsort(rt, kind="stable")
        rt, rq = rt[order], rq[order]
        aq, at = np.concatenate(add_q), np.concatenate(add_tok)
        owner, j = _expand_ranges(np.searchsorted(rt, at, side="left"),
                                  np.searchsorted(rt, at, side="right"))
        a, b = aq[owner], rq[j]
        clash = a != b
        if not clash.any():
            return everyone
        others: dict[int, set[int]] = {}
        for x, y in zip(a[clash].tolist(), b[clash].tolist(), strict=True):
            others.setdefault(x, set()).add(y)
            others.setdefault(y, set()).add(x)
        colour = np.zeros(q, dtype=np.int64)
        for i in sorted(others):
            taken = {int(colour[j]) for j in others[i] if j < i}
            c = 0
            while c in taken:
                c += 1
            colour[i] = c
        return [np.flatnonzero(colour == c) for c in range(int(colour.max()) + 1)]

    def _shared_groups_at_once(self, user: np.ndarray, t: np.ndarray,
                               groups: Sequence[tuple[tuple[str, ...],
                                                      tuple[np.ndarray, np.ndarray | None]
                                                      | None]],
                               ) -> list[K.SharedEntityFeatures]:
        """The shared-entity kernel on the sub-graph the queries need (exact for them), for
        each group ``(relations, the application's own entities)``, in one kernel call: each
        group's sub-graph gets its own range of user and entity ids, so no pair crosses
        groups and each query of each group gets what a call of its own gives (an online
        batch: one call instead of four, ~0.6 ms less), the queries' own entities visible to
        each other (:meth:`_rounds` keeps apart those that must not be).
        """
        graphs = [self._shared_graph(user, t, rels, extra) for rels, extra in groups]
        q = user.shape[0]
        u_off = e_off = edge_off = 0
        indptr: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
        indices, query, edge_time, fraud_from, default_from = [], [], [], [], []
        for gr in graphs:
            indptr.append(gr.indptr[1:] + edge_off)
            indices.append(gr.indices + e_off)
            query.append(gr.query + u_off)
            edge_time.append(gr.edge_time)
            fraud_from.append(gr.fraud_from)
            default_from.append(gr.default_from)
            u_off += gr.indptr.shape[0] - 1
            e_off += gr.n_ents
            edge_off += gr.indices.shape[0]
        feats = on_backend(
            self.kernels, K.shared_entity_features_at, np.concatenate(indptr), np.concatenate(indices), e_off, np.concatenate(query),
            np.tile(t, len(graphs)), edge_time=np.concatenate(edge_time),
            fraud_visible_from=np.concatenate(fraud_from),
            default_visible_from=np.concatenate(default_from), hub_degree=self.hub_degree)
        return [K.SharedEntityFeatures(*(f[k * q:(k + 1) * q] for f in feats))._replace(
                    max_entity_degree=self._max_degree(gr, t))
                for k, gr in enumerate(graphs)]

    def _shared_graph(self, user: np.ndarray, t: np.ndarray, rels: tuple[str, ...],
                      extra: tuple[np.ndarray, np.ndarray | None] | None) -> _SharedGraph:
        """One group's sub-graph for the shared-entity kernel, local ids.

        The sub-graph holds the queries' own edges and, of every entity they touch, its first
        ``hub_degree + 1`` users: the kernel's pairs only ever involve an entity's first
        ``hub_degree`` users (later joiners of a hub are never counted as sharing it), and the
        ``+ 1`` dates the moment it became a hub. Degrees past that are counted on the full
        reverse relations (:meth:`_degree_at`). A public Wi-Fi IP with thousands of users so
        costs what a family router costs, which is what online scoring of a batch needs.
        """
        g = self.graph
        q = user.shape[0]
        n_users = g.num_nodes("User")
        # NOTE: users the graph does not know are distinct strangers, never one shared row.
        user = np.where(user >= 0, user, n_users + np.arange(q))
        known_rows = np.where(user < n_users, user, -1)
        own_q: list[np.ndarray] = []
        own_e: list[np.ndarray] = []
        own_t: list[np.ndarray] = []
        for rel in rels:
            adj = g.relations[rel]
            owner, idx = _entries(adj, known_rows)
            own_q.append(owner)
            own_e.append(adj.child[idx])
            own_t.append(adj.time[idx])
        q_idx = np.zeros(0, np.int64)
        q_ents = np.zeros(0, np.int64)
        fresh0 = max(g.num_nodes(x) for x in ("Device", "Phone", "Address", "IP"))
        if extra is not None:
            # the application's own entity at t; a NEW one gets a fresh id (no other user)
            e_pos = extra[0]
            ent_q = np.where(e_pos == NEW, fresh0 + np.arange(q), e_pos)
            q_idx = np.flatnonzero(ent_q >= 0).astype(np.int64)
            q_ents = ent_q[q_idx]
        own_ents = np.concatenate(own_e) if own_e else np.zeros(0, np.int64)
        uniq_e = np.unique(np.concatenate([own_ents, q_ents[q_ents < fresh0]]))
        e_users, e_ents, e_times = [], [], []
        cap = self.hub_degree + 1
        for rel in rels:
            rev = g.relations[_REVERSE_REL[rel]]
            lo, hi = rev.bounds(uniq_e)
            owner, idx = _expand_ranges(lo, np.minimum(hi, lo + cap))
            e_users.append(rev.child[idx])
            e_ents.append(uniq_e[owner])
            e_times.append(rev.time[idx])
        own_q_all = np.concatenate(own_q) if own_q else np.zeros(0, np.int64)
        own_t_all = np.concatenate(own_t) if own_t else np.zeros(0, np.int64)
        users_all = np.concatenate([user, user[own_q_all], *e_users, user[q_idx]])
        ents_all = np.concatenate([own_ents, *e_ents, q_ents]).astype(np.int64)
        times_all = np.concatenate([own_t_all, *e_times, t[q_idx]]).astype(np.int64)
        u_uniq, u_local = np.unique(users_all.astype(np.int64), return_inverse=True)
        edge_u = u_local[q:].astype(np.int64)
        e_uniq, e_local = np.unique(ents_all, return_inverse=True)
        n_u = int(u_uniq.shape[0])
        order = np.lexsort((times_all, e_local, edge_u))
        indptr = np.zeros(n_u + 1, dtype=np.int64)
        np.cumsum(np.bincount(edge_u, minlength=n_u), out=indptr[1:])
        known_u = u_uniq < n_users
        gu = np.where(known_u, u_uniq, 0)
        fraud_from = np.where(known_u, g.fraud_at["User"][gu], NEVER).astype(np.int64)
        default_from = np.where(known_u, g.default_at["User"][gu], NEVER).astype(np.int64)
        return _SharedGraph(
            indptr, e_local[order].astype(np.int64), int(e_uniq.shape[0]),
            u_local[:q].astype(np.int64), times_all[order], fraud_from, default_from,
            rels, user, own_q_all, own_ents, own_t_all, q_idx, q_ents, fresh0)

    def _max_degree(self, gr: _SharedGraph, t: np.ndarray) -> np.ndarray:
        """The largest entity degree per query, exact: the graph's users of each present
        entity as of t, plus the users whose application names it at or before t (as the
        kernel counts the applications' own edges)."""
        rels, user, own_q_all, own_ents, own_t_all = (gr.rels, gr.user, gr.own_q, gr.own_e,
                                                      gr.own_t)
        q_idx, q_ents, fresh0 = gr.q_idx, gr.q_ents, gr.fresh0
        q = t.shape[0]
        present = own_t_all <= t[own_q_all]
        # an applicant's entities include those its other applications of the batch named
        xu_order = np.argsort(user[q_idx], kind="stable")
        xu_sorted = user[q_idx][xu_order]
        lo = np.searchsorted(xu_sorted, user, side="left")
        hi = np.searchsorted(xu_sorted, user, side="right")
        mine_q, mine_x = _expand_ranges(lo, hi)
        mine_x = xu_order[mine_x]
        keep = t[q_idx][mine_x] <= t[mine_q]
        pq = np.concatenate([own_q_all[present], mine_q[keep]])
        pe = np.concatenate([own_ents[present], q_ents[mine_x[keep]]])
        deg = np.ones(pq.shape[0], dtype=np.int64)  # a NEW entity: the applicant alone
        known = pe < fresh0
        deg[known] = self._degree_at(rels, pe[known], t[pq[known]])
        if q_idx.size:
            deg[known] += self._applicants_not_in_graph(
                pq[known], pe[known], t, user, q_idx, q_ents, own_q_all, own_ents, own_t_all,
                fresh0)
        max_deg = np.zeros(q, dtype=np.int64)
        np.maximum.at(max_deg, pq, deg)
        return max_deg

    @staticmethod
    def _applicants_not_in_graph(pq: np.ndarray, pe: np.ndarray, t: np.ndarray,
                                 user: np.ndarray, q_idx: np.ndarray, q_ents: np.ndarray,
                                 own_q: np.ndarray, own_e: np.ndarray, own_t: np.ndarray,
                                 fresh0: int) -> np.ndarray:
        """For each present ``(query, entity)``: distinct applicants of the batch naming the
        entity at or before the query's time whose graph edge to it is later or missing."""
        ok = q_ents < fresh0
        xq, xe = q_idx[ok], q_ents[ok]
        xu, xt = user[xq], t[xq]
        # the applicant's earliest graph edge to the entity (int64 max: none)
        span = np.int64(fresh0 + 1)
        g_key = user[own_q] * span + own_e
        order = np.lexsort((own_t, g_key))
        g_key, g_t = g_key[order], own_t[order]
        first = np.ones(g_key.shape[0], dtype=bool)
        first[1:] = g_key[1:] != g_key[:-1]
        # a sentinel above every key, so that each search lands on an element
        none = np.iinfo(np.int64).max
        g_key = np.append(g_key[first], none)
        g_t = np.append(g_t[first], none)
        x_key = xu * span + xe
        at = np.searchsorted(g_key, x_key)
        xg = np.where(g_key[at] == x_key, g_t[at], none)
        # one row per (entity, applicant): its earliest application time
        order = np.lexsort((xt, xu, xe))
        xe, xu, xt, xg = xe[order], xu[order], xt[order], xg[order]
        first = np.ones(xe.shape[0], dtype=bool)
        first[1:] = (xe[1:] != xe[:-1]) | (xu[1:] != xu[:-1])
        xe, xt, xg = xe[first], xt[first], xg[first]
        lo = np.searchsorted(xe, pe, side="left")
        hi = np.searchsorted(xe, pe, side="right")
        owner, idx = _expand_ranges(lo, hi)
        tp = t[pq][owner]
        counts = (xt[idx] <= tp) & (xg[idx] > tp)
        return np.bincount(owner[counts], minlength=pq.shape[0]).astype(np.int64)

    def _degree_at(self, rels: tuple[str, ...], ent: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Distinct users of entities ``ent`` as of ``t`` (inclusive) over ``rels``."""
        g = self.graph
        deg = np.zeros(ent.shape[0], dtype=np.int64)
        for rel in rels:
            deg += g.relations[_REVERSE_REL[rel]].count_before(ent, t, inclusive=True)
        if len(rels) > 1:
            # NOTE: a user both living and working at one address is one user, from the later
            # time (the graph keeps those users per address; the group is home + work).
            assert set(rels) == {"user_home", "user_work"}, rels
            deg -= g.both_addresses.count_before(ent, t, inclusive=True)
        return deg

    def application_features(self, apps: ApplicationQueries, *,
                             merchant_columns: list[np.ndarray] | None = None
                             ) -> tuple[np.ndarray, list[str], list[str]]:
        """Root features of applications: columns, names and groups.

        ``merchant_columns``: the applications' merchants' :meth:`merchant_block`, 0 where an
        application has none, where the caller has it (:meth:`seed_features`).

        Shapes:
            - **output:** ``[Q, F]`` float32
        """
        g = self.graph
        t = apps.ts
        q = len(apps)
        cols: list[np.ndarray] = []
        names: list[str] = []
        groups: list[str] = []

        def add(name: str, col: np.ndarray, group: str) -> None:
            cols.append(np.asarray(col, dtype=np.float64))
            names.append(name)
            groups.append(group)

        for i, p in enumerate(PRODUCTS):
            add(f"product_{p}", apps.product == i, "own")
        add("log_amount", _log1p(apps.amount), "own")
        add("term_months", apps._declared("term_months"), "own")
        user = apps.user
        # amount against the applicant's own orders and earlier applications
        o = g.events["orders"]
        ua = g.relations["user_app"]
        ow_o, ix_o = _event_rows(g.event_adjacency("orders"), user)
        ow_a, ix_a = _entries(ua, user)
        h_q = np.concatenate([ow_o, ow_a])
        h_ts = np.concatenate([o["ts"][ix_o], ua.time[ix_a]])
        h_amt = np.concatenate([o["amount"][ix_o],
                                g.attrs["Application"]["amount"][ua.child[ix_a]]])
        # NOTE: the history is keyed by query, not by user, so that two queries of one user
        # each see their own history (identical anyway: the same user's rows).
        amo = on_backend(self.kernels, K.amount_anomaly, h_q, h_ts, h_amt, np.arange(q), t,
                         apps.amount, k=self.amount_k)
        add("amount_ratio_log", np.log(np.clip(np.nan_to_num(amo.ratio_to_median, nan=1.0),
                                               1e-3, 1e3)), "own")
        add("amount_robust_z", np.clip(np.nan_to_num(amo.robust_z), -50, 50), "own")
        add("amount_history_log", _log1p(amo.n_history), "own")
        # location against the usual login place and home
        lg = g.events["logins"]
        ow_l, ix_l = _event_rows(g.event_adjacency("logins"), user)
        ok_u = user >= 0
        pu = np.maximum(user, 0)
        home_lat = np.where(ok_u, g.attrs["User"]["home_lat"][pu], np.nan)
        home_lon = np.where(ok_u, g.attrs["User"]["home_lon"][pu], np.nan)
        loc = on_backend(self.kernels, K.location_anomaly, ow_l, lg["ts"][ix_l], lg["lat"][ix_l],
                                 lg["lon"][ix_l], np.arange(q), t, apps.lat, apps.lon,
                                 home_lat=home_lat, home_lon=home_lon, k=self.location_k)
        for name, d in (("usual", loc.dist_usual_km), ("home", loc.dist_home_km)):
            add(f"dist_{name}_log_km", _log1p(np.nan_to_num(d)), "own")
            add(f"dist_{name}_missing", ~np.isfinite(d), "own")
        add("login_history_log", _log1p(loc.n_history), "own")
        # the device: new to the account? new to the platform?
        ud = g.relations["user_device"]
        start, end = ud.ranges(user, t)
        dev = apps.device
        ow_d, ix_d = _expand_ranges(start, end)
        first_use = np.full(q, NEVER, dtype=np.int64)
        hit = ud.child[ix_d] == dev[ow_d]
        np.minimum.at(first_use, ow_d[hit], ud.time[ix_d[hit]])
        seen = first_use < NEVER
        age_h = np.where(seen, (t - np.minimum(first_use, t)) / HOUR, 0.0)
        add("device_age_log_h", _log1p(age_h), "own")
        add("new_device_7d", ~seen | (age_h < 7 * 24), "own")
        add("new_device", ~seen, "own")
        # NOTE: new to the platform as of t: unknown to the graph, or first seen at t or later
        # (the same answer online, before the application is written, and in batch, after).
        pdev = np.maximum(dev, 0)
        earlier = (g.relations["device_user"].count_before(pdev, t)
                   + g.relations["device_app"].count_before(pdev, t))
        add("device_new_to_platform", (dev == NEW) | ((dev >= 0) & (earlier == 0)), "own")
        # user block (behaviour, velocity, contacts, shared entities)
        ucols, unames, ugroups = self.user_block(
            user, t, extra_edges={"device": (dev, apps.device_key), "ip": (apps.ip, apps.ip_key),
                                  "phone": (apps._declared("phone"), None),
                                  "address": (apps._declared("address"), None)})
        cols += ucols
        names += unames
        groups += ugroups
        # lookups: the device, the IP, the merchant
        pd = np.maximum(dev, 0)
        os_ = np.where(dev >= 0, g.attrs["Device"]["os"][pd], len(DEVICE_OS))
        for i, o_name in enumerate((*DEVICE_OS, "unknown")):
            add(f"device_os_{o_name}", os_ == i, "lookup")
        pip = np.maximum(apps.ip, 0)
        kind = np.where(apps.ip >= 0, g.attrs["IP"]["kind"][pip], len(IP_KINDS))
        for i, k_name in enumerate((*IP_KINDS, "unknown")):
            add(f"ip_kind_{k_name}", kind == i, "lookup")
        m = apps.merchant
        add("has_merchant", m != -1, "lookup")
        mcols = (self.merchant_block(m, t) if merchant_columns is None
                 else merchant_columns)
        for name, col in zip(NODE_FEATURES["Merchant"][:-1], mcols, strict=True):
            add(f"merchant_{name}", np.where(m >= 0, col, 0.0),
                "graph" if name in _MERCHANT_AGGREGATES else "lookup")
        own = g.relations["user_owns"]
        start, end = own.ranges(user, t)
        ow_m, ix_m = _expand_ranges(start, end)
        owns = np.zeros(q, dtype=bool)
        owns[ow_m[own.child[ix_m] == m[ow_m]]] = True
        add("owns_merchant", owns, "lookup")
        # graph: other applications and users behind this device and IP
        for ent, rel_app, rel_user, label in ((dev, "device_app", "device_user", "device"),
                                              (apps.ip, "ip_app", "ip_user", "ip")):
            adj = g.relations[rel_app]
            ev_e, idx = _events_of(adj, ent)
            v = window_counts(ev_e, adj.time[idx], ent, t, (DAY, 7 * DAY), backend=self.kernels)
            add(f"{label}_apps_24h", _log1p(v[:, 0]), "graph")
            add(f"{label}_apps_7d", _log1p(v[:, 1]), "graph")
            add(f"{label}_apps_log", _log1p(adj.count_before(ent, t)), "graph")
            add(f"{label}_users_log", _log1p(g.relations[rel_user].count_before(ent, t)), "graph")
            add(f"{label}_fraud_apps_log",
                _log1p(g.labelled(rel_app, "fraud").count_before(ent, t)), "graph")
        x = np.stack(cols, axis=1) if cols else np.zeros((q, 0))
        return (np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32),
                names, groups)

    def user_features(self, user: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, list[str],
                                                                        list[str]]:
        """Root features of users scored as of ``t`` (batch rescoring, user seeds)."""
        cols, names, groups = self.user_block(np.asarray(user, np.int64), np.asarray(t, np.int64))
        x = np.stack(cols, axis=1)
        return (np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32),
                names, groups)

    def merchant_features(self, merchant: np.ndarray, t: np.ndarray) -> tuple[np.ndarray,
                                                                              list[str], list[str]]:
        """Root features of merchants scored as of ``t``."""
        merchant = np.asarray(merchant, np.int64)
        t = np.asarray(t, np.int64)
        cols = self.merchant_block(merchant, t)
        names = [f"merchant_{n}" for n in NODE_FEATURES["Merchant"][:-1]]
        x = np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1)
        return (np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32), names,
                ["own"] * len(names))

