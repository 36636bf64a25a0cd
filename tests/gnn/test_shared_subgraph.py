"""`RiskFeatures._shared_groups` builds a trimmed sub-graph (each entity's first users only) for the
shared-entity kernel; it must give exactly what the kernel gives on the whole sub-graph, and each
query of a batch what it gets alone."""

from __future__ import annotations

import numpy as np
import pytest
from gnn_lending_world import lending_graph, world_dir

import kernels as K
from gnn.data.lending_graph import LendingGraph
from gnn.features.risk_features import _REVERSE_REL, NEW, SHARED_GROUPS, RiskFeatures, _entries
from kernels import NEVER


def _whole_subgraph(feats: RiskFeatures, user: np.ndarray, t: np.ndarray,
                    rels: tuple[str, ...], extra: tuple[np.ndarray, np.ndarray] | None,
                    ) -> K.SharedEntityFeatures:
    """The reference: every user of every entity the queries touch, all their edges."""
    g = feats.graph
    q = user.shape[0]
    n_users = g.num_nodes("User")
    user = np.where(user >= 0, user, n_users + np.arange(q))
    known_rows = np.where(user < n_users, user, -1)
    ents = [g.relations[rel].child[_entries(g.relations[rel], known_rows)[1]]
            for rel in rels]
    q_users = q_ents = q_times = np.zeros(0, np.int64)
    if extra is not None:
        fresh = max(g.num_nodes(x) for x in ("Device", "Phone", "Address", "IP")) + np.arange(q)
        ent_q = np.where(extra[0] == NEW, fresh, extra[0])
        has = ent_q >= 0
        q_users, q_ents, q_times = user[has], ent_q[has], t[has]
        ents.append(q_ents[q_ents < fresh[0]] if q else q_ents)
    uniq_e = np.unique(np.concatenate(ents))
    e_users, e_ents, e_times = [], [], []
    for rel in rels:
        rev = g.relations[_REVERSE_REL[rel]]
        owner, idx = _entries(rev, uniq_e)
        e_users.append(rev.child[idx])
        e_ents.append(uniq_e[owner])
        e_times.append(rev.time[idx])
    users_all = np.concatenate([user, *e_users, q_users]).astype(np.int64)
    ents_all = np.concatenate([*e_ents, q_ents]).astype(np.int64)
    times_all = np.concatenate([*e_times, q_times]).astype(np.int64)
    u_uniq, u_local = np.unique(users_all, return_inverse=True)
    edge_u = u_local[q:]
    e_uniq, e_local = np.unique(ents_all, return_inverse=True)
    order = np.lexsort((times_all, e_local, edge_u))
    indptr = np.zeros(u_uniq.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(edge_u, minlength=u_uniq.shape[0]), out=indptr[1:])
    known = u_uniq < n_users
    gu = np.where(known, u_uniq, 0)
    return K.shared_entity_features_at(
        indptr, e_local[order], int(e_uniq.shape[0]), u_local[:q], t,
        edge_time=times_all[order],
        fraud_visible_from=np.where(known, g.fraud_at["User"][gu], NEVER),
        default_visible_from=np.where(known, g.default_at["User"][gu], NEVER),
        hub_degree=feats.hub_degree)


@pytest.fixture(scope="module")
def graph() -> LendingGraph:
    return lending_graph()


@pytest.mark.parametrize("hub_degree", [2, 5, 20])
def test_trimmed_subgraph_gives_the_whole_subgraphs_features(graph: LendingGraph,
                                                             hub_degree: int) -> None:
    feats = RiskFeatures(graph, hub_degree=hub_degree)
    rng = np.random.default_rng(hub_degree)
    n_users = graph.num_nodes("User")
    t_lo = int(graph.attrs["User"]["created_at"].min())
    checked = 0
    for group, rels in SHARED_GROUPS.items():
        ent_type = {"device": "Device", "phone": "Phone", "address": "Address", "ip": "IP"}[group]
        n_ent = graph.num_nodes(ent_type)
        # the busiest entities, so that hubs and trimmed rows are exercised
        degree = sum(graph.relations[_REVERSE_REL[r]].count_before(
            np.arange(n_ent), np.full(n_ent, np.iinfo(np.int64).max)) for r in rels)
        busy = np.argsort(-degree)[:5]
        for q in (1, 7, 60):
            user = rng.integers(-1, n_users, q)
            t = rng.integers(t_lo, graph.as_of + 86_400, q)
            extras = [None, (np.where(rng.random(q) < 0.5, rng.choice(busy, q),
                                      rng.integers(-1, n_ent, q)), None)]
            extras.append((np.full(q, NEW), None))
            # several queries naming one busy entity at different times
            extras.append((np.full(q, busy[0]), None))
            for extra in extras:
                want = _whole_subgraph(feats, user, t, rels, extra)  # type: ignore[arg-type]
                got = feats._shared_groups_at_once(  # type: ignore[list-item]
                    user, t, [(rels, extra)])[0]
                for name, a, b in zip(want._fields, want, got, strict=True):
                    np.testing.assert_array_equal(np.asarray(b), np.asarray(a),
                                                  err_msg=f"{group} {name} q={q}")
                checked += q
    assert checked > 1000


def _with_users_working_at_home(users: np.ndarray) -> LendingGraph:
    """A fresh copy of the test world's graph where ``users`` also work at their home address
    (from a day later), written as the service writes: through :meth:`LendingGraph.apply`."""
    graph = LendingGraph.from_world(world_dir())
    home = graph.relations["user_home"]
    rows = []
    for u in users.tolist():
        child, time, _ = home.row(u)
        for a, when in zip(child.tolist(), time.tolist(), strict=True):
            rows.append({"src": str(graph.ids["User"][u]), "dst": str(graph.ids["Address"][a]),
                         "since": when + 86_400})
    graph.apply(edges=[("WORKS_AT", rows)])
    return graph


def test_degree_counts_a_user_reaching_an_entity_twice_once() -> None:
    graph = _with_users_working_at_home(np.arange(0, 600, 7))
    feats = RiskFeatures(graph)
    rels = SHARED_GROUPS["address"]
    rng = np.random.default_rng(3)
    n = graph.num_nodes("Address")
    ent = rng.integers(0, n, 400)
    t = rng.integers(0, graph.as_of + 1, 400)
    want = []
    for e, tt in zip(ent.tolist(), t.tolist(), strict=True):
        first: dict[int, int] = {}
        for rel in rels:
            rev = graph.relations[_REVERSE_REL[rel]]
            lo, hi = (int(x[0]) for x in rev.bounds(np.array([e])))
            for u, when in zip(rev.child[lo:hi].tolist(), rev.time[lo:hi].tolist(),
                               strict=True):
                first[u] = min(first.get(u, when), when)
        want.append(sum(1 for when in first.values() if when <= tt))
    np.testing.assert_array_equal(feats._degree_at(rels, ent, t), np.array(want))
    assert graph.both_addresses.num_edges > 50
    # and the features of the batch still match the whole sub-graph's
    user = np.arange(0, 600, 5)
    t = np.full(user.shape[0], graph.as_of)
    want = _whole_subgraph(feats, user, t, rels, None)
    got = feats._shared_groups(user, t, [(rels, None)])[0]
    for name, a, b in zip(want._fields, want, got, strict=True):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a), err_msg=name)


@pytest.mark.parametrize("q", [1, 9, 80])
def test_all_groups_in_one_kernel_call_give_each_groups_own(graph: LendingGraph,
                                                            q: int) -> None:
    # One call for the four groups (disjoint id ranges per group) must give exactly what a
    # call per group gives, the application's own device and IP included.
    feats = RiskFeatures(graph, hub_degree=5)
    rng = np.random.default_rng(q)
    user = rng.integers(-1, graph.num_nodes("User"), q)
    t = rng.integers(int(graph.attrs["User"]["created_at"].min()), graph.as_of + 86_400, q)
    extra = {"device": (np.where(rng.random(q) < 0.3, NEW,
                                 rng.integers(-1, graph.num_nodes("Device"), q)), None),
             "ip": (rng.integers(-1, graph.num_nodes("IP"), q), None)}
    groups = [(rels, extra.get(group)) for group, rels in SHARED_GROUPS.items()]
    together = feats._shared_groups(user, t, groups)  # type: ignore[arg-type]
    assert len(together) == len(SHARED_GROUPS)
    for (group, rels), got in zip(SHARED_GROUPS.items(), together, strict=True):
        alone = feats._shared_groups(  # type: ignore[list-item]
            user, t, [(rels, extra.get(group))])[0]
        for name, a, b in zip(alone._fields, alone, got, strict=True):
            np.testing.assert_array_equal(np.asarray(b), np.asarray(a),
                                          err_msg=f"{group} {name} q={q}")
    if q > 1:  # not a vacuous comparison: some queries do share entities
        assert sum(int(np.asarray(f.shared_accounts).sum()) for f in together) > 0


@pytest.mark.parametrize("q", [2, 12, 60])
def test_each_query_of_a_batch_gets_what_it_gets_alone(graph: LendingGraph, q: int) -> None:
    # Batches where applicants repeat, name one busy or one new entity, or name an entity
    # another applicant of the batch holds: rounds keep apart the queries that would see each
    # other's application, so each gets exactly what a call of its own gives.
    feats = RiskFeatures(graph, hub_degree=5)
    rng = np.random.default_rng(100 + q)
    n_users = graph.num_nodes("User")
    user = rng.choice(rng.integers(-1, n_users, max(q // 3, 1)), q)
    t = rng.integers(graph.as_of - 30 * 86_400, graph.as_of + 86_400, q)
    held = graph.relations["user_device"]
    theirs = np.array([int(held.row(int(u))[0][0]) if u >= 0 and held.row(int(u))[0].size
                       else -1 for u in rng.choice(user, q)])
    device = np.where(rng.random(q) < 0.4, NEW, np.where(rng.random(q) < 0.5, theirs,
                                                          rng.integers(0, 50, q)))
    ip = rng.integers(-1, 30, q)
    groups = [(rels, {"device": (device, None), "ip": (ip, None)}.get(group))
              for group, rels in SHARED_GROUPS.items()]
    assert len(feats._rounds(user, t, groups)) > 1  # not vacuous: some queries do clash
    got = feats._shared_groups(user, t, groups)  # type: ignore[arg-type]
    for i in range(q):
        one = [(rels, None if extra is None else (extra[0][i:i + 1], None))
               for rels, extra in groups]
        alone = feats._shared_groups_at_once(user[i:i + 1], t[i:i + 1], one)
        for (group, _), a, b in zip(SHARED_GROUPS.items(), alone, got, strict=True):
            for name, x, y in zip(a._fields, a, b, strict=True):
                np.testing.assert_array_equal(np.asarray(y)[i], np.asarray(x)[0],
                                              err_msg=f"{group} {name} {i}")
