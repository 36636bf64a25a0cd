"""The policy file: loaded and validated at start, and the pure decision it drives."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.policy import PolicyError, decide, is_thin_file, load_policy, recommended_limit

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
