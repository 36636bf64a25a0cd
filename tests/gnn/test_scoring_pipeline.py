"""`ScoringPipeline`: one path for batch and online scoring — the same user or application at
the same graph state gets the same score both ways."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from gnn_lending_world import lending_graph, trained, world_dir
from test_risk_features import facts

from gnn import ApplicationQueries, LendingGraph, ModelError


def test_an_application_scored_online_gets_its_batch_score() -> None:
    pipe = trained().pipeline
    g = lending_graph()
    d = world_dir()
    table = pq.read_table(d / "applications.parquet").to_pydict()
    batch = pipe.score_applications(g, ApplicationQueries.from_graph(
        g, g.positions("Application", [str(x) for x in table["application_id"]])))
    checked = 0
    for row in np.random.default_rng(5).permutation(len(table["ts"]))[:30]:
        a = g.position("Application", str(table["application_id"][row]))
        t = int(table["ts"][row])
        dev = g.attrs["Application"]["device"][a]
        if g.relations["device_user"].count_before(np.array([dev]), np.array([t]))[0] == 0:
            continue
        before = LendingGraph.from_world(d, as_of=t - 1)
        online = pipe.score_applications(before, facts(before, str(g.ids["Device"][dev]),
                                                       table, row))
        np.testing.assert_allclose(online.fraud, batch.fraud[[row]], rtol=0, atol=1e-6)
        np.testing.assert_allclose(online.pd, batch.pd[[row]], rtol=0, atol=1e-6)
        np.testing.assert_allclose(online.embedding, batch.embedding[[row]], atol=1e-5)
        checked += 1
        if checked == 3:
            break
    assert checked >= 2


def test_a_user_scored_alone_gets_its_batch_score() -> None:
    pipe = trained().pipeline
    g = lending_graph()
    t = g.as_of + 1
    users = np.arange(g.num_nodes("User"))
    batch = pipe.score_nodes(g, "User", users, t)
    for u in (0, 7, len(users) - 1):
        one = pipe.score_nodes(g, "User", np.array([u]), t)
        np.testing.assert_allclose(one.fraud, batch.fraud[[u]], rtol=0, atol=1e-6)
        np.testing.assert_allclose(one.pd, batch.pd[[u]], rtol=0, atol=1e-6)
    assert ((batch.fraud >= 0) & (batch.fraud <= 1)).all()
    merchants = pipe.score_nodes(g, "Merchant", np.arange(g.num_nodes("Merchant")), t)
    assert merchants.embedding.shape == (g.num_nodes("Merchant"), 64)


def test_chunking_does_not_change_scores() -> None:
    pipe = trained().pipeline
    g = lending_graph()
    apps = ApplicationQueries.from_graph(g, np.arange(g.num_nodes("Application")))
    a = pipe.score_applications(g, apps)
    b = pipe.score_applications(g, apps, chunk_size=97)
    np.testing.assert_allclose(a.fraud, b.fraud, rtol=0, atol=1e-6)


def test_a_new_user_and_device_can_be_scored_online() -> None:
    pipe = trained().pipeline
    g = lending_graph()
    q = ApplicationQueries.from_facts(
        g, application_id="new-app", user_id="never-seen", product="cash_loan", amount=5000.0,
        ts=g.as_of + 10, lat=31.2, lon=121.5, device_id="dv_new", ip="10.9.9.9",
        merchant_id=None)
    s = pipe.score_applications(g, q)
    assert s.fraud.shape == (1,) and 0 <= s.fraud[0] <= 1


def test_features_must_match_the_model() -> None:
    pipe = trained().pipeline
    g = lending_graph()
    prepared = pipe.prepare_applications(g, ApplicationQueries.from_graph(g, np.arange(3)))
    prepared.root_names = prepared.root_names[::-1]
    with pytest.raises(ModelError, match="differ"):
        pipe.predict(prepared)
