"""The reason catalogue: every code is given by some producer (the rules scorer, the model's
explanations, the policy), and every one renders in both languages."""

from __future__ import annotations

import pytest
from test_explanations import FACTS, explained_signals
from test_rules_scorer import _all_signals

from serving.policy import decide, load_policy
from serving.reasons import CATALOGUE, render
from serving.scoring import Evidence, Signal


def test_every_code_is_given_by_a_producer_and_renders(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    signals: list[Signal] = [*_all_signals(), *explained_signals()]  # type: ignore[list-item]
    strong = Signal("SHARED_ENTITY_FRAUD", 2.0,
                    Evidence("Device", FACTS.device_id, FACTS.device_masked, "x", 1.0))
    signals += decide(load_policy(), application_id="a", product="bnpl", amount=100.0,
                      fraud_probability=0.01, pd=0.01, degraded=False,
                      features={"tenure_days": 400, "order_count": 40, "monthly_spend": 5e3},
                      fraud_reasons=[strong]).signals
    signals.append(Signal("DEGRADED_MODE", 0.0, Evidence("Application", "a", "a", "x", 0.0)))
    produced = {s.code for s in signals}
    assert produced == set(CATALOGUE), set(CATALOGUE) ^ produced
    for s in signals:
        reason = render(s)
        assert reason.message_en and reason.message_zh
        assert "{" not in reason.message_en and "{" not in reason.message_zh
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
