"""The policy backtest (`riskgraph policy backtest`, serving/backtest) on both stores: a small
simulated world loaded, a few stored verdicts beside it; the totals against a direct count over
the same applications, `--against` and its deltas, bad policy files, the reasons that rest on
location alone."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from serving_world import SECRET

from gnn import RULES, RulesModel
from graph import GraphStore
from graph.loader import load_world
from serving.backtest import (
    LOCATION_INPUTS,
    ReplayScores,
    Totals,
    load_history,
    location_only_reasons,
    model_scores,
    replay,
    stored_scores,
    totals_by,
)
from serving.cli import main
from serving.explanations import FAMILIES
from serving.policy import Policy, decide, load_policy
from serving.scorers import explain_batch, load_live_graph
from serving.settings import Settings, get_settings
from serving.stores import build_store
from simulator import CreditConfig, WorldConfig, simulate_world, write_world
from tests.utils.neo4j import neo4j_auth, neo4j_uri

pytestmark = pytest.mark.timeout(600)

DAY = 86_400
MATURITY = 75
POLICY_TEXT = resources.files("serving").joinpath("policy.toml").read_text("utf-8")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 400-user world (seed 7) where a quarter of the funded loans default, so that a
    small world has realised losses to count; written once per module."""
    out = tmp_path_factory.mktemp("backtest-world")
    write_world(simulate_world(WorldConfig(users=400, seed=7,
                                           credit=CreditConfig(default_rate=0.25))), out)
    return out


def _stricter(tmp: Path) -> Path:
    """The packaged policy with BNPL's review pd cut from 0.15 to 0.03 and its version bumped."""
    text = POLICY_TEXT.replace('version = "2026-01-15.1"', 'version = "stricter-bnpl"')
    text = text.replace("review_fraud = 0.30\ndecline_fraud = 0.85\nreview_pd = 0.15",
                        "review_fraud = 0.30\ndecline_fraud = 0.85\nreview_pd = 0.03")
    assert text.count("review_pd = 0.03") == 1
    path = tmp / "stricter.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _verdict_row(app_id: str, scores: ReplayScores, *, fraud: float,
                 main_reason_weight: float | None = None) -> dict[str, Any]:
    """A ``Verdict`` record as the service stores it (the fields the backtest reads)."""
    reasons = [] if main_reason_weight is None else [
        {"code": "FRAUD_MAIN_REASON", "message_en": "", "message_zh": "",
         "evidence": {"entity_type": "Application", "entity_id": app_id, "display": app_id,
                      "metric": "main_reason_weight", "value": main_reason_weight,
                      "reference": 1.0}}]
    return {"id": app_id, "request_hash": "0" * 64, "decision": "review",
            "fraud_probability": fraud, "pd": scores.pd, "grade": "A", "credit_limit": 0.0,
            "degraded": False, "model_version": "test-model", "graph_version": "test",
            "policy_version": "test", "decided_at": 1,
            "verdict_json": json.dumps({"reasons": reasons}),
            "features_json": json.dumps(dict(scores.features)), "request_json": "{}"}


@pytest.fixture
def loaded(graph_store: GraphStore, settings: Settings, world: Path) -> GraphStore:
    load_world(graph_store, world, settings.pseudonymiser(), progress=False)
    return graph_store


def _scores(store: GraphStore, settings: Settings) -> dict[str, ReplayScores]:
    """Every application's scores as `--scores stored` gives them: stored verdicts, the rules
    (no model is promoted in the test's data dir) for the rest."""
    history = load_history(store, maturity_days=MATURITY)
    scores = stored_scores(store)
    missing = [a for a in history.application_id.tolist() if a not in scores]
    graph = load_live_graph(settings, store).arrays()
    scores.update(model_scores(graph, RulesModel(), missing, currency="CNY",
                               explain_batch=explain_batch))
    return scores


def _direct_count(store: GraphStore, policy: Policy, scores: dict[str, ReplayScores]
                  ) -> dict[str, dict[str, float]]:
    """Per product: decisions, limits of approvals, and the realised loss of approved
    mature funded loans that defaulted, counted straight from the store's rows."""
    apps = store.export_nodes("Application").to_pylist()
    repayments = store.export_edges("REPAID").to_pylist()
    as_of = max([a["ts"] for a in apps] + [r["ts"] for r in repayments])
    funded = {r["dst"] for r in repayments}
    repaid: dict[str, float] = defaultdict(float)
    for r in repayments:
        if r["status"] in ("on_time", "late"):
            repaid[r["dst"]] += r["amount"]
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    keep = policy.reasons.min_weight
    for a in apps:
        s = scores[a["id"]]
        verdict = decide(policy, application_id=a["id"], product=a["product"],
                         amount=a["amount"], fraud_probability=s.fraud_probability, pd=s.pd,
                         features=s.features, degraded=s.degraded,
                         fraud_reasons=[r for r in s.fraud_reasons if abs(r.weight) >= keep],
                         credit_reasons=[r for r in s.credit_reasons if abs(r.weight) >= keep])
        for group in (a["product"], "all"):
            row = out[group]
            row[verdict.decision] += 1
            if verdict.decision == "approve":
                row["limits"] += verdict.credit_limit
                known = a["id"] in funded and a["ts"] <= as_of - MATURITY * DAY
                if known:
                    row["known"] += 1
                if known and a["default_label"]:
                    row["defaults"] += 1
                    row["realised_loss"] += max(a["amount"] - repaid[a["id"]], 0.0)
    return out


def test_the_totals_equal_a_direct_count_over_the_same_applications(
        loaded: GraphStore, settings: Settings) -> None:
    policy = load_policy()
    scores = _scores(loaded, settings)
    history = load_history(loaded, maturity_days=MATURITY)
    r = replay(policy, history, scores)
    assert len(r) == len(history) == loaded.counts()["Application"]
    direct = _direct_count(loaded, policy, scores)
    got = {"all": Totals.of(r), **totals_by(r, r.history.product)}
    assert set(got) == set(direct)
    for group, t in got.items():
        d = direct[group]
        assert (t.approve, t.review, t.decline) == (
            d["approve"], d["review"], d["decline"]), group
        assert t.applications == d["approve"] + d["review"] + d["decline"]
        assert t.limits == pytest.approx(d["limits"])
        assert (t.known, t.defaults) == (d["known"], d["defaults"]), group
        assert t.realised_loss == pytest.approx(d["realised_loss"])
    # the world has outcomes to count, or the comparison above says little
    assert got["all"].approve > 0 and got["all"].known > 0 and got["all"].defaults > 0
    assert got["all"].realised_loss > 0


def test_stored_verdicts_are_replayed_on_their_own_scores(
        loaded: GraphStore, settings: Settings) -> None:
    scores = _scores(loaded, settings)
    history = load_history(loaded, maturity_days=MATURITY)
    policy = load_policy()
    before = replay(policy, history, scores)
    approved = [a for a, d in zip(before.history.application_id.tolist(),
                                  before.decision.tolist(), strict=True) if d == "approve"]
    declined, main = approved[:2], approved[2]
    loaded.upsert_nodes("Verdict", [
        *(_verdict_row(a, scores[a], fraud=0.99) for a in declined),
        _verdict_row(main, scores[main], fraud=scores[main].fraud_probability,
                     main_reason_weight=2.0)])
    stored = stored_scores(loaded)
    assert set(stored) == {*declined, main}
    assert all(s.source == "verdict" for s in stored.values())
    after = replay(policy, history, {**scores, **stored})
    by_id = dict(zip(after.history.application_id.tolist(), after.decision.tolist(),
                     strict=True))
    assert [by_id[a] for a in declined] == ["decline", "decline"]
    # the recorded strongest fraud reason sends the approval to review, as it did ...
    assert by_id[main] == "review"
    # ... and a policy that asks more of that reason lets it through
    lenient = Policy.model_validate({
        **policy.model_dump(), "products": {
            p: {**spec.model_dump(), "review_fraud_reason": 5.0}
            for p, spec in policy.products.items()}})
    again = replay(lenient, history, {**scores, **stored})
    assert dict(zip(again.history.application_id.tolist(), again.decision.tolist(),
                    strict=True))[main] == "approve"


def test_outcomes_count_only_mature_funded_loans(loaded: GraphStore) -> None:
    history = load_history(loaded, maturity_days=MATURITY)
    young = history.ts > history.as_of - MATURITY * DAY
    assert young.any() and (~young).any()
    assert not (history.known & young).any()
    assert (history.known == (history.funded & ~young)).all()
    # every day later, every outcome known
    everything = load_history(loaded, maturity_days=0)
    assert (everything.known == everything.funded).all()
    assert (history.loss()[~history.defaulted] == 0).all()


@pytest.fixture
def cli_env(tmp_path: Path, graph_store: GraphStore, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[Path]:
    """The CLI's environment: an embedded store of its own under ``tmp_path``, or the test
    Neo4j server (emptied by the ``graph_store`` fixture)."""
    for key in list(os.environ):
        if key.startswith("RISKGRAPH_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RISKGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RISKGRAPH_PSEUDONYM_SECRET", SECRET)
    if graph_store.backend == "neo4j":
        monkeypatch.setenv("RISKGRAPH_NEO4J_URI", neo4j_uri())
        monkeypatch.setenv("RISKGRAPH_NEO4J_USER", neo4j_auth()[0])
        monkeypatch.setenv("RISKGRAPH_NEO4J_PASSWORD", neo4j_auth()[1])
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _row(markdown: str, header: str, first_cell: str) -> list[str]:
    """The cells of the first table row starting with ``first_cell`` after ``header``."""
    rest = markdown[markdown.index(header):]
    for line in rest.splitlines():
        if line.startswith(f"| {first_cell} |"):
            return [c.strip() for c in line.strip("|").split("|")]
    raise AssertionError(f"no row {first_cell!r} after {header!r}")


def test_the_command_writes_the_report_with_against_and_its_deltas(
        cli_env: Path, world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", str(world)]) == 0
    capsys.readouterr()
    stricter = _stricter(cli_env)
    out = cli_env / "report"
    assert main(["policy", "backtest", str(stricter), "--against",
                 str(resources.files("serving").joinpath("policy.toml")), "--out",
                 str(out)]) == 0
    printed = capsys.readouterr().out
    assert "stricter-bnpl" in printed and f"report: {out / 'backtest.md'}" in printed
    doc = (out / "backtest.md").read_text(encoding="utf-8")
    for png in ("decisions.png", "grades.png", "fairness.png"):
        assert (out / png).stat().st_size > 1000
        assert f"]({png})" in doc
    settings = get_settings()
    with build_store(settings, read_only=True) as store:
        scores = _scores(store, settings)
        history = load_history(store, maturity_days=MATURITY)
    a = replay(load_policy(stricter), history, scores)
    b = replay(load_policy(), history, scores)
    ta, tb = Totals.of(a), Totals.of(b)
    # the stricter BNPL policy approves less and reviews more, nowhere else changes
    assert ta.approve < tb.approve and ta.review > tb.review
    others = a.history.product != "bnpl"
    assert (a.decision[others] == b.decision[others]).all()
    row = _row(doc, "### stricter.toml against policy.toml", "all")
    assert row[1] == f"{ta.rate('approve'):.1%} / {tb.rate('approve'):.1%}"
    assert row[2] == f"{(ta.rate('approve') - tb.rate('approve')) * 100:+.1f} pp"
    assert row[7] == f"{ta.limits:,.0f} / {tb.limits:,.0f}"
    assert row[8] == f"{ta.limits - tb.limits:+,.0f}"
    assert row[12] == f"{ta.realised_loss - tb.realised_loss:+,.0f}"
    own = _row(doc, "## Decisions and money per product", "all")
    assert own[1] == f"{ta.applications:,}" and own[5] == f"{ta.limits:,.0f}"
    assert own[12] == f"{ta.realised_loss:,.0f}"
    moved = int(((a.decision == "review") & (b.decision == "approve")).sum())
    assert moved > 0
    assert _row(doc, "Decisions that change", "review")[1] == f"{moved:,}"
    for reason in location_only_reasons():
        assert f"`{reason.code}`" in doc


@pytest.mark.parametrize(("content", "says"), [
    (None, "policy file cannot be read"),
    ("version = [", "is not valid TOML"),
    (POLICY_TEXT.replace("review_fraud = 0.30", "review_fraud = 0.95"),
     "need 0 < review_fraud <= decline_fraud"),
])
def test_a_bad_policy_file_fails_in_one_line(
        tmp_path: Path, content: str | None, says: str,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKGRAPH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    path = tmp_path / "policy.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    good = str(resources.files("serving").joinpath("policy.toml"))
    for argv in (["policy", "backtest", str(path)],
                 ["policy", "backtest", good, "--against", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith("riskgraph policy: ") and says in err, err
    get_settings.cache_clear()


def test_the_reasons_that_rest_on_location_alone() -> None:
    flagged = {r.code for r in location_only_reasons()}
    assert flagged == {"ATO_FAR_LOCATION", "ATO_FAR_FROM_USUAL", "ATO_FAR_FROM_HOME",
                       "USUAL_LOCATION", "LOCATION_UNKNOWN"}
    # every location input is a feature the rules or the explanations read
    read = {n for r in RULES for n in r.needs} | {n for f in FAMILIES for n in f.features}
    assert LOCATION_INPUTS <= read
    # a reason reading one more input is not location-only (the takeover pattern)
    assert "ATO_PATTERN" not in flagged and "RISKY_IP" not in flagged


def test_maturity_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKGRAPH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    good = str(resources.files("serving").joinpath("policy.toml"))
    assert main(["policy", "backtest", good, "--maturity-days", "-1"]) == 2
    assert "--maturity-days must be >= 0" in capsys.readouterr().err
    get_settings.cache_clear()
