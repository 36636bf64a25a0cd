"""The policy file: loaded and validated at start, and the pure decision it drives."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.policy import (
    PolicyError,
    decide,
    is_thin_file,
    load_policy,
    main_adverse_reason,
    recommended_limit,
)
from serving.reasons import render
from serving.scoring import Evidence, Signal

POLICY = load_policy()
ESTABLISHED = {"tenure_days": 400.0, "order_count": 40, "monthly_spend": 3000.0}
THIN = {"tenure_days": 10.0, "order_count": 1, "monthly_spend": 50.0}


def _decide(amount: float, fraud: float, pd: float, features: dict[str, float],
            degraded: bool = False, cap: float | None = None, product: str = "bnpl"):  # type: ignore[no-untyped-def]
    return decide(POLICY, application_id="a1", product=product, amount=amount,  # type: ignore[arg-type]
                  fraud_probability=fraud, pd=pd, features=features, degraded=degraded,
                  degraded_cap=cap)


def test_packaged_policy_is_valid_and_versioned() -> None:
    assert POLICY.version
    assert set(POLICY.products) == {"bnpl", "cash_loan", "merchant_loan", "sme_owner_loan"}
    assert [POLICY.grade(p) for p in (0.0, 0.03, 0.07, 0.15, 0.5)] == list("ABCDE")


@pytest.mark.parametrize(("edit", "message"), [
    (("review_fraud = 0.30", "review_fraud = 0.95"), "review_fraud <= decline_fraud"),
    (('volume = "monthly_spend"', 'volume = "income"'), "products.bnpl.limit.volume"),
    (("max_amount = 50000", "max_amount = -1"), "products.bnpl.max_amount"),
    (("[products.sme_owner_loan]", "[products.sme_owner_loan_x]"), "products"),
    (('version = "', 'versio = "'), "version"),
    (("review_fraud_reason = 1.0", "review_fraud_reason = 0"),
     "products.bnpl.review_fraud_reason"),
    (("min_weight = 0.05", "min_weight = -1"), "reasons.min_weight"),
    (("[reasons]\nmin_weight = 0.05", ""), "reasons"),
])
def test_invalid_policy_names_the_field(tmp_path: Path, edit: tuple[str, str],
                                        message: str) -> None:
    text = Path("serving/policy.toml").read_text("utf-8").replace(*edit, 1)
    path = tmp_path / "policy.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(PolicyError, match=message.replace(".", r"\.")):
        load_policy(path)


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("version = ", "utf-8")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(tmp_path / "bad.toml")
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(tmp_path / "missing.toml")


def test_limit_formula_and_thin_file_cap() -> None:
    # base 1000 + 2 x 3000 spend, cut by pd/decline_pd = 0.035/0.35 -> 6300
    assert recommended_limit(POLICY, "bnpl", 0.035, ESTABLISHED) == 6300
    assert is_thin_file(POLICY, THIN) and not is_thin_file(POLICY, ESTABLISHED)
    assert recommended_limit(POLICY, "bnpl", 0.0, {**THIN, "monthly_spend": 10_000.0}) == 2000
    assert is_thin_file(POLICY, {})  # unknown history counts as thin


def test_decisions() -> None:
    assert _decide(500, 0.01, 0.03, ESTABLISHED).decision == "approve"
    out = _decide(500, 0.5, 0.03, ESTABLISHED)
    assert out.decision == "review" and out.signals[0].code == "FRAUD_REVIEW"
    assert _decide(500, 0.9, 0.03, ESTABLISHED).decision == "decline"
    assert _decide(500, 0.01, 0.5, ESTABLISHED).decision == "decline"
    out = _decide(9000, 0.01, 0.03, ESTABLISHED)
    assert out.decision == "review" and "AMOUNT_ABOVE_LIMIT" in [s.code for s in out.signals]
    thin = _decide(300, 0.02, 0.06, THIN)
    assert thin.decision == "approve" and 0 < thin.credit_limit <= 2000


def test_degraded_never_approves_above_the_cap() -> None:
    assert _decide(1500, 0.01, 0.03, ESTABLISHED, degraded=True).decision == "approve"
    out = _decide(2500, 0.01, 0.03, ESTABLISHED, degraded=True)
    assert out.decision == "review" and out.credit_limit <= 2000
    assert "DEGRADED_AMOUNT_CAP" in [s.code for s in out.signals]
    assert _decide(500, 0.01, 0.03, ESTABLISHED, degraded=True, cap=400).decision == "review"
    # no history in degraded mode is not a reason to decline
    out = _decide(5000, 0.01, 0.05, {}, degraded=True, product="merchant_loan")
    assert out.decision == "review" and out.credit_limit == 0


def _signal(code: str, weight: float) -> Signal:
    return Signal(code, weight, Evidence("Device", "dv_1", "****1", "x", 1.0))


def test_an_approval_whose_main_reason_is_a_fraud_signal_goes_to_review() -> None:
    threshold = POLICY.product("bnpl").review_fraud_reason
    ring = _signal("SHARED_ENTITY_FRAUD", threshold + 0.5)
    calm = [_signal("ESTABLISHED_CUSTOMER", -3.0)]

    def decide_with(fraud: list[Signal], credit: list[Signal], fraud_p: float = 0.01
                    ) -> tuple[str, list[str]]:
        out = decide(POLICY, application_id="a1", product="bnpl", amount=500.0,
                     fraud_probability=fraud_p, pd=0.03, features=ESTABLISHED,
                     degraded=False, fraud_reasons=fraud, credit_reasons=credit)
        return out.decision, [sig.code for sig in out.signals]

    decision, codes = decide_with([ring, *calm], [_signal("LATE_REPAYMENTS", 0.2)])
    assert decision == "review" and codes == ["FRAUD_MAIN_REASON"]
    out = decide(POLICY, application_id="a1", product="bnpl", amount=500.0,
                 fraud_probability=0.01, pd=0.03, features=ESTABLISHED, degraded=False,
                 fraud_reasons=[ring])
    ev = out.signals[0].evidence
    assert (ev.value, ev.reference) == (ring.weight, threshold)
    assert "SHARED_ENTITY_FRAUD" in render(out.signals[0]).message_en
    # the main reason is a credit one, or the fraud one is too weak, or it is in favour
    assert decide_with([ring], [_signal("CONTACT_DEFAULT", threshold + 1.0)])[0] == "approve"
    assert decide_with([_signal("ATO_NEW_DEVICE", threshold - 0.01)], [])[0] == "approve"
    assert decide_with([_signal("USUAL_LOCATION", -5.0)], [])[0] == "approve"
    assert decide_with([], [])[0] == "approve"
    # at least review: a decline stays a decline
    assert decide_with([ring], [], fraud_p=0.9)[0] == "decline"


def test_the_main_adverse_reason() -> None:
    a, b = _signal("SHARED_ENTITY_FRAUD", 1.0), _signal("LATE_REPAYMENTS", 1.0)
    assert main_adverse_reason([a], [b]) == ("fraud", a)  # a tie goes to fraud
    assert main_adverse_reason([a], [_signal("SELF_DEFAULT", 2.0)])[1].code == "SELF_DEFAULT"  # type: ignore[index]
    assert main_adverse_reason([_signal("USUAL_LOCATION", -1.0)], []) is None
