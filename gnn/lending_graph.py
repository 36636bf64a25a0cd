"""`LendingGraph`: the lending graph as time-stamped integer arrays, what features and sampling read.

Built from a :class:`graph.snapshot.GraphSnapshot` (a store's export, or a simulated world
loaded through the same schema), so training, batch rescoring and online scoring all read one
representation. Per node type: string ids, a 64-bit key per id (stable across graph states, it
seeds the sampler), static attributes and label-visible-from times; per relation a
:class:`~gnn.temporal_adjacency.TemporalAdjacency` whose rows are sorted by edge time; per event
kind (applications, logins, orders, repayments, sales reports) typed columns.

Every time is int64 epoch seconds. An edge whose time the store does not know (a declared
address without ``since``) counts as existing from time 0; a label whose time is unknown is never
used as a feature (it cannot be placed in time) — :data:`NEVER`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

import numpy as np

from gnn.errors import GraphDataError
from gnn.temporal_adjacency import TemporalAdjacency
from graph.snapshot import GraphSnapshot
from graph.typing import NodeType

NEVER: Final[int] = int(np.iinfo(np.int64).max)
"""Label-visible-from time of an entity without that label (same as :data:`kernels.NEVER`)."""

NODE_TYPES: Final[tuple[NodeType, ...]] = (
    "Application", "User", "Device", "Phone", "Address", "IP", "Merchant",
)
PRODUCTS: Final[tuple[str, ...]] = ("bnpl", "cash_loan", "merchant_loan", "sme_owner_loan")
DEVICE_OS: Final[tuple[str, ...]] = ("android", "ios", "emulator")
IP_KINDS: Final[tuple[str, ...]] = ("residential", "mobile", "office", "public_wifi", "datacenter")
MERCHANT_SIZES: Final[tuple[str, ...]] = ("micro", "small", "medium", "large")
REPAYMENT_STATUS: Final[tuple[str, ...]] = ("on_time", "late", "missed")

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


def id_keys(ids: np.ndarray) -> np.ndarray:
    """Stable 64-bit keys of string ids (BLAKE2b), the identity the sampler hashes.

    Args:
        ids (np.ndarray): object array of strings, ``[N]``.

    Returns:
        np.ndarray: uint64 ``[N]``.
    """
    out = np.empty(len(ids), dtype=np.uint64)
    for i, s in enumerate(ids.tolist()):
        out[i] = int.from_bytes(hashlib.blake2b(str(s).encode(), digest_size=8).digest(), "little")
    return out


def _codes(values: np.ndarray | None, vocab: tuple[str, ...], n: int) -> np.ndarray:
    """int8 codes of strings in ``vocab``; ``len(vocab)`` for missing or unknown."""
    if values is None:
        return np.full(n, len(vocab), dtype=np.int8)
    lookup = {v: i for i, v in enumerate(vocab)}
    return np.fromiter((lookup.get(v, len(vocab)) for v in values.tolist()), np.int8, len(values))


def _times(values: np.ndarray | None, n: int, missing: int) -> np.ndarray:
    """int64 times from an int or NaN-float column; ``missing`` where absent."""
    if values is None:
        return np.full(n, missing, dtype=np.int64)
    v = np.asarray(values)
    if v.dtype.kind == "f":
        out = np.full(v.shape[0], missing, dtype=np.int64)
        ok = np.isfinite(v)
        out[ok] = v[ok].astype(np.int64)
        return out
    if v.dtype.kind == "O":
        return np.fromiter((missing if x is None else int(x) for x in v.tolist()), np.int64, n)
    return v.astype(np.int64)


def _floats(values: np.ndarray | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    v = np.asarray(values)
    if v.dtype.kind == "O":
        return np.fromiter((np.nan if x is None else float(x) for x in v.tolist()), np.float64, n)
    return v.astype(np.float64)


def _bools(values: np.ndarray | None, n: int) -> np.ndarray:
    if values is None:
        return np.zeros(n, dtype=bool)
    v = np.asarray(values)
    if v.dtype.kind == "f":
        return np.nan_to_num(v) > 0
    if v.dtype.kind == "O":
        return np.fromiter((bool(x) for x in v.tolist()), bool, n)
    return v.astype(bool)


@dataclass(frozen=True)
class LendingGraph:
    """The lending graph as arrays. Build it with :meth:`from_snapshot` or :meth:`from_world`.

    Args:
        ids (Mapping[NodeType, np.ndarray]): per node type, object array of string ids.
        attrs (Mapping[NodeType, Mapping[str, np.ndarray]]): static attributes per type
            (``Application``: ``ts, product, amount, lat, lon, user, device, ip, merchant``;
            ``User``: ``created_at, home_lat, home_lon``; ``Device``: ``os``; ``IP``: ``kind``;
            ``Merchant``: ``size, created_at``).
        relations (Mapping[str, TemporalAdjacency]): one per name of :data:`RELATIONS`.
        events (Mapping[str, Mapping[str, np.ndarray]]): ``logins`` (``user, ts, device, ip,
            lat, lon``), ``orders`` (``user, merchant, ts, amount, bnpl, returned``),
            ``repayments`` (``user, application, ts, status``) and ``sales`` (``merchant,
            day, gmv, refunds, inventory``); each sorted by its first column, then time.
        fraud_at (Mapping[NodeType, np.ndarray]): per ``User``, ``Application``, ``Merchant``,
            when a confirmed-fraud label became visible (:data:`NEVER` if never).
        default_at (Mapping[NodeType, np.ndarray]): per ``User`` and ``Application``.
        cleared_at (np.ndarray): per application, when a "cleared" label became visible.
    """

    ids: Mapping[NodeType, np.ndarray]
    attrs: Mapping[NodeType, Mapping[str, np.ndarray]]
    relations: Mapping[str, TemporalAdjacency]
    events: Mapping[str, Mapping[str, np.ndarray]]
    fraud_at: Mapping[NodeType, np.ndarray]
    default_at: Mapping[NodeType, np.ndarray]
    cleared_at: np.ndarray
    _index: dict[NodeType, dict[str, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _keys: dict[NodeType, np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, (p, c) in RELATIONS.items():
            rel = self.relations.get(name)
            if rel is None:
                raise GraphDataError(f"relation {name!r} is missing")
            if rel.num_parents != self.num_nodes(p) or rel.num_children != self.num_nodes(c):
                raise GraphDataError(f"relation {name!r} has shape {rel.num_parents} x "
                                     f"{rel.num_children}, expected {self.num_nodes(p)} x "
                                     f"{self.num_nodes(c)}")

    # -- lookups ----------------------------------------------------------------------------------
    def num_nodes(self, node_type: NodeType) -> int:
        return len(self.ids[node_type])

    def position(self, node_type: NodeType, node_id: str | None) -> int:
        """Position of ``node_id``, ``-1`` when the graph does not know it (or it is ``None``)."""
        if node_id is None:
            return -1
        index = self._index.get(node_type)
        if index is None:
            index = {v: i for i, v in enumerate(self.ids[node_type].tolist())}
            self._index[node_type] = index
        return index.get(node_id, -1)

    def positions(self, node_type: NodeType, node_ids: list[str]) -> np.ndarray:
        """Positions of many ids (``-1`` for unknown ones), int64."""
        return np.fromiter((self.position(node_type, i) for i in node_ids), np.int64,
                           len(node_ids))

    def keys(self, node_type: NodeType) -> np.ndarray:
        """uint64 key of every node of ``node_type`` (:func:`id_keys` of its id)."""
        keys = self._keys.get(node_type)
        if keys is None:
            keys = id_keys(self.ids[node_type])
            self._keys[node_type] = keys
        return keys

    @cached_property
    def as_of(self) -> int:
        """The latest event time in the graph: the state it describes."""
        times = [int(self.attrs["Application"]["ts"].max(initial=0))]
        for ev in ("logins", "orders", "repayments"):
            times.append(int(self.events[ev]["ts"].max(initial=0)))
        return max(times)

    @cached_property
    def event_index(self) -> dict[str, np.ndarray]:
        """CSR offsets of the sorted event tables over their first column's entity."""
        out: dict[str, np.ndarray] = {}
        for name, owner, col in (("logins", "User", "user"), ("orders", "User", "user"),
                                 ("repayments", "User", "user"),
                                 ("sales", "Merchant", "merchant")):
            n = self.num_nodes(owner)
            indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(self.events[name][col], minlength=n), out=indptr[1:])
            out[name] = indptr
        return out

    @cached_property
    def orders_by_user(self) -> TemporalAdjacency:
        """User -> order index, by order time."""
        o = self.events["orders"]
        return TemporalAdjacency.from_edges(o["user"], np.arange(len(o["ts"])), o["ts"],
                                            self.num_nodes("User"), len(o["ts"]))

    @cached_property
    def logins_by_user(self) -> TemporalAdjacency:
        """User -> login index, by login time."""
        lg = self.events["logins"]
        return TemporalAdjacency.from_edges(lg["user"], np.arange(len(lg["ts"])), lg["ts"],
                                            self.num_nodes("User"), len(lg["ts"]))

    @cached_property
    def merchant_orders(self) -> dict[str, np.ndarray]:
        """The orders sorted by ``(merchant, ts)`` with CSR offsets ``indptr`` over merchants."""
        o = self.events["orders"]
        order = np.lexsort((o["ts"], o["merchant"]))
        out = {k: v[order] for k, v in o.items()}
        n = self.num_nodes("Merchant")
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(out["merchant"], minlength=n), out=indptr[1:])
        out["indptr"] = indptr
        return out

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 over every array the features and the sampler read (backend-independent)."""
        h = hashlib.sha256()
        for t in NODE_TYPES:
            h.update(t.encode())
            h.update("\x1f".join(map(str, self.ids[t].tolist())).encode())
            for k in sorted(self.attrs[t]):
                h.update(k.encode())
                h.update(np.ascontiguousarray(self.attrs[t][k]).tobytes())
        for name in sorted(self.relations):
            rel = self.relations[name]
            h.update(name.encode())
            for a in (rel.indptr, rel.child, rel.time):
                h.update(a.tobytes())
        for name in sorted(self.events):
            for k in sorted(self.events[name]):
                h.update(f"{name}.{k}".encode())
                h.update(np.ascontiguousarray(self.events[name][k]).tobytes())
        for t in sorted(self.fraud_at):
            h.update(self.fraud_at[t].tobytes())
        for t in sorted(self.default_at):
            h.update(self.default_at[t].tobytes())
        h.update(self.cleared_at.tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        counts = ", ".join(f"{t}={self.num_nodes(t)}" for t in NODE_TYPES)
        return f"{self.__class__.__name__}({counts}, logins={len(self.events['logins']['ts'])})"

    # -- construction -----------------------------------------------------------------------------
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
        from gnn._world_tables import world_snapshot

        return cls.from_snapshot(world_snapshot(world_dir, pseudonymiser=pseudonymiser,
                                                as_of=as_of))

    @classmethod
    def from_snapshot(cls, snap: GraphSnapshot) -> LendingGraph:
        """Arrays of a :class:`GraphSnapshot` (every label and relationship of the schema).

        Raises:
            GraphDataError: if a relationship names nodes the snapshot lacks.
        """
        ids = {t: snap.nodes[t].ids for t in NODE_TYPES}
        n = {t: len(ids[t]) for t in NODE_TYPES}

        def col(label: str, name: str) -> np.ndarray | None:
            return snap.nodes[label].columns.get(name)

        def edges(rel: str) -> tuple[np.ndarray, np.ndarray, Mapping[str, np.ndarray]]:
            r = snap.relations[rel]
            return r.sources(), r.indices, r.columns

        # applications and their own facts
        na = n["Application"]
        a_user = np.full(na, -1, dtype=np.int64)
        s, d, c = edges("APPLIED")
        a_user[d] = s
        a_ts = _times(col("Application", "ts"), na, 0)
        a_attr: dict[str, np.ndarray] = {
            "ts": a_ts,
            "product": _codes(col("Application", "product"), PRODUCTS, na),
            "amount": _floats(col("Application", "amount"), na),
            "lat": _floats(col("Application", "lat"), na),
            "lon": _floats(col("Application", "lon"), na),
            "user": a_user,
        }
        for rel, key in (("APPLIED_ON", "device"), ("APPLIED_FROM", "ip"),
                         ("APPLIED_AT", "merchant")):
            pos = np.full(na, -1, dtype=np.int64)
            s, d, _ = edges(rel)
            pos[s] = d
            a_attr[key] = pos

        # logins (the device comes as a hashed id on the edge)
        s, d, c = edges("LOGGED_IN_FROM")
        dev_index = {v: i for i, v in enumerate(ids["Device"].tolist())}
        dev_col = c.get("device_id")
        l_dev = (np.fromiter((dev_index.get(v, -1) for v in dev_col.tolist()), np.int64, len(s))
                 if dev_col is not None else np.full(len(s), -1, dtype=np.int64))
        logins = {"user": s, "ts": _times(c.get("ts"), len(s), 0), "device": l_dev, "ip": d,
                  "lat": _floats(c.get("lat"), len(s)), "lon": _floats(c.get("lon"), len(s))}
        s, d, c = edges("ORDERED_AT")
        orders = {"user": s, "merchant": d, "ts": _times(c.get("ts"), len(s), 0),
                  "amount": _floats(c.get("amount"), len(s)),
                  "bnpl": _bools(c.get("bnpl"), len(s)),
                  "returned": _bools(c.get("returned"), len(s))}
        s, d, c = edges("REPAID")
        repayments = {"user": s, "application": d, "ts": _times(c.get("ts"), len(s), 0),
                      "status": _codes(c.get("status"), REPAYMENT_STATUS, len(s))}
        s, d, _ = edges("REPORTED")
        nr = len(ids_r := snap.nodes["SalesReport"].ids)
        del ids_r
        sales = {
            "merchant": s,
            "day": _times(col("SalesReport", "day"), nr, 0)[d],
            "gmv": _floats(col("SalesReport", "gmv"), nr)[d],
            "refunds": _floats(col("SalesReport", "refunds"), nr)[d],
            "inventory": _floats(col("SalesReport", "inventory"), nr)[d],
        }
        events = {
            "logins": _sorted(logins, "user"), "orders": _sorted(orders, "user"),
            "repayments": _sorted(repayments, "user"), "sales": _sorted(sales, "merchant", "day"),
        }

        # relations
        rels: dict[str, TemporalAdjacency] = {}

        def add(name: str, parent: np.ndarray, child: np.ndarray, time: np.ndarray,
                dedupe: bool = False) -> None:
            p, ch = RELATIONS[name]
            keep = (parent >= 0) & (child >= 0)
            rels[name] = TemporalAdjacency.from_edges(
                parent[keep], child[keep], time[keep], n[p], n[ch], dedupe=dedupe)

        app_pos = np.arange(na, dtype=np.int64)
        add("app_user", app_pos, a_user, a_ts)
        add("app_device", app_pos, a_attr["device"], a_ts)
        add("app_ip", app_pos, a_attr["ip"], a_ts)
        add("app_merchant", app_pos, a_attr["merchant"], a_ts)
        add("user_app", a_user, app_pos, a_ts)
        add("device_app", a_attr["device"], app_pos, a_ts)
        add("ip_app", a_attr["ip"], app_pos, a_ts)
        add("merchant_app", a_attr["merchant"], app_pos, a_ts)

        # a user's devices: declared USES edges, login devices and application devices
        s, d, c = edges("USES")
        t_uses = _times(c.get("first_seen"), len(s), 0)
        u_dev = np.concatenate([s, logins["user"], a_user])
        d_dev = np.concatenate([d, logins["device"], a_attr["device"]])
        t_dev = np.concatenate([t_uses, logins["ts"], a_ts])
        has_declared = c.get("first_seen") is not None
        if has_declared:
            # NOTE: a USES edge without first_seen (written by the API) must not date the pair
            # to time 0 when a login or an application dates it.
            known = np.isfinite(np.asarray(c["first_seen"], dtype=np.float64))
            t_dev[: len(s)] = np.where(known, t_uses, NEVER)
        else:
            t_dev[: len(s)] = NEVER
        ok = (u_dev >= 0) & (d_dev >= 0)
        u_dev, d_dev, t_dev = u_dev[ok], d_dev[ok], t_dev[ok]
        # pairs only known from an undated USES edge exist from time 0
        t_dev = _earliest_or_zero(u_dev, d_dev, t_dev, n["Device"])
        add("user_device", u_dev, d_dev, t_dev, dedupe=True)
        add("device_user", d_dev, u_dev, t_dev, dedupe=True)

        for rel, fwd, rev, prop in (("HAS_PHONE", "user_phone", "phone_user", "since"),
                                    ("LIVES_AT", "user_home", "home_user", "since"),
                                    ("WORKS_AT", "user_work", "work_user", "since"),
                                    ("CONTACT", "user_contact", "contact_of", "since"),
                                    ("OWNS", "user_owns", "merchant_owner", "since")):
            s, d, c = edges(rel)
            t = _times(c.get(prop), len(s), 0)
            add(fwd, s, d, t, dedupe=True)
            add(rev, d, s, t, dedupe=True)
        add("user_ip", logins["user"], logins["ip"], logins["ts"], dedupe=True)
        add("ip_user", logins["ip"], logins["user"], logins["ts"], dedupe=True)
        add("user_merchant", orders["user"], orders["merchant"], orders["ts"], dedupe=True)
        add("merchant_buyer", orders["merchant"], orders["user"], orders["ts"], dedupe=True)

        # static attributes
        nu, nm = n["User"], n["Merchant"]
        attrs: dict[NodeType, dict[str, np.ndarray]] = {t: {} for t in NODE_TYPES}
        attrs["Application"] = a_attr
        attrs["User"] = {
            "created_at": _times(col("User", "created_at"), nu, 0),
            "home_lat": _floats(col("User", "home_lat"), nu),
            "home_lon": _floats(col("User", "home_lon"), nu),
        }
        attrs["Device"] = {"os": _codes(col("Device", "os"), DEVICE_OS, n["Device"])}
        attrs["IP"] = {"kind": _codes(col("IP", "kind"), IP_KINDS, n["IP"])}
        attrs["Merchant"] = {
            "size": _codes(col("Merchant", "size"), MERCHANT_SIZES, nm),
            "created_at": _times(col("Merchant", "created_at"), nm, 0),
        }

        # labels: when each became visible
        def label_at(label: str, value: str | None, prop: str, at: str) -> np.ndarray:
            m = n[label]
            v = col(label, prop)
            if v is None:
                return np.full(m, NEVER, dtype=np.int64)
            hit = (np.asarray([x == value for x in v.tolist()], dtype=bool) if value is not None
                   else _bools(v, m))
            times = _times(col(label, at), m, NEVER)
            return np.where(hit, times, NEVER).astype(np.int64)

        app_fraud = label_at("Application", "fraud", "fraud_label", "fraud_label_at")
        app_cleared = label_at("Application", "cleared", "fraud_label", "fraud_label_at")
        app_default = label_at("Application", None, "default_label", "default_label_at")
        user_fraud = label_at("User", "fraud", "fraud_label", "fraud_label_at")
        user_default = label_at("User", None, "default_label", "default_label_at")
        # NOTE: an account's default shows as soon as any of its loans defaults; a fraud label on
        # an application does not make its account fraud-run (the victim of a takeover is not).
        has_user = a_user >= 0
        np.minimum.at(user_default, a_user[has_user], app_default[has_user])
        merchant_fraud = label_at("Merchant", "fraud", "fraud_label", "fraud_label_at")

        return cls(
            ids=ids, attrs=attrs, relations=rels, events=events,
            fraud_at={"Application": app_fraud, "User": user_fraud, "Merchant": merchant_fraud},
            default_at={"Application": app_default, "User": user_default},
            cleared_at=app_cleared,
        )


def _sorted(table: dict[str, np.ndarray], key: str, time: str = "ts") -> dict[str, np.ndarray]:
    order = np.lexsort((table[time], table[key]))
    return {k: np.ascontiguousarray(v[order]) for k, v in table.items()}


def _earliest_or_zero(u: np.ndarray, d: np.ndarray, t: np.ndarray, n_dev: int) -> np.ndarray:
    """Per edge the earliest known time of its ``(u, d)`` pair; 0 for pairs never dated."""
    if not u.size:
        return t
    key = u * max(n_dev, 1) + d
    uniq, inv = np.unique(key, return_inverse=True)
    first = np.full(uniq.shape[0], NEVER, dtype=np.int64)
    np.minimum.at(first, inv, t)
    first = np.where(first == NEVER, 0, first)
    return first[inv]
