"""The reason catalogue: every code is given by some producer (the model's explanations, which
the rules' points go through too, and the policy), every one renders in both languages and is
documented."""

from __future__ import annotations

import pytest
from test_explanations import FACTS, explained_signals

from serving.policy import decide, load_policy
from serving.reasons import CATALOGUE, render
from serving.scoring import Evidence, Signal
from serving.watchlist import WatchEntry, Watchlist


def test_every_code_is_given_by_a_producer_and_renders(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    signals: list[Signal] = explained_signals()
    strong = Signal("SHARED_ENTITY_FRAUD", 2.0,
                    Evidence("Device", FACTS.device_id, FACTS.device_masked, "x", 1.0))
    policy = load_policy()
    signals += decide(policy, application_id="a", product="bnpl", amount=100.0,
                      fraud_probability=0.01, pd=0.01, degraded=False,
                      features={"tenure_days": 400, "order_count": 40, "monthly_spend": 5e3},
                      fraud_reasons=[strong]).signals
    for kwargs in ({"fraud_probability": 0.9, "pd": 0.9, "amount": 100.0},
                   {"fraud_probability": 0.5, "pd": 0.9, "amount": 60_000.0},
                   {"fraud_probability": 0.0, "pd": 0.9, "amount": 100.0},
                   {"fraud_probability": 0.0, "pd": 0.34, "amount": 100.0}):
        signals += decide(policy, application_id="a", product="bnpl", features={},
                          degraded=True, **kwargs).signals  # type: ignore[arg-type]
    signals += decide(policy, application_id="a", product="bnpl", degraded=True,
                      features={"tenure_days": 400, "order_count": 40, "monthly_spend": 5e3},
                      fraud_probability=0.0, pd=0.01, amount=2500.0).signals
    signals += decide(policy, application_id="a", product="bnpl", degraded=False,
                      features={"tenure_days": 400, "order_count": 40, "monthly_spend": 5e3},
                      fraud_probability=0.0, pd=0.01, amount=45_000.0).signals
    signals += decide(policy, application_id="a", product="merchant_loan", features={},
                      degraded=False, fraud_probability=0.0, pd=0.0, amount=10.0).signals
    signals.append(Signal("DEGRADED_MODE", 0.0, Evidence("Application", "a", "a", "x", 0.0)))
    watchlist = Watchlist()
    for label, entity_id in (("Device", FACTS.device_id), ("IP", FACTS.ip),
                             ("Phone", FACTS.phone_id), ("Address", FACTS.address_id),
                             ("Merchant", FACTS.merchant_id)):
        assert entity_id is not None
        watchlist.put(WatchEntry(label, entity_id, None, "seen in a ring",  # type: ignore[arg-type]
                                 True, "k1", 1))
    signals += watchlist.signals(FACTS)
    produced = {s.code for s in signals}
    assert produced == set(CATALOGUE), set(CATALOGUE) ^ produced
    for s in signals:
        reason = render(s)
        assert reason.message_en and reason.message_zh
        assert "{" not in reason.message_en and "{" not in reason.message_zh
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_every_reason_code_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "API.md").read_text("utf-8")
    assert [c for c in CATALOGUE if f"| `{c}` |" not in doc] == []
