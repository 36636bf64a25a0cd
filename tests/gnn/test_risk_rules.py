"""`RiskRules`: the points model over the application root features."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gnn_lending_world import lending_graph, world_dir

from gnn import ApplicationQueries, RiskFeatures, RiskRules, binary_metrics
from gnn.features.feature_set import current_feature_names
from gnn.rules import FRAUD_BASE, PD_BASE, RULES

NAMES = current_feature_names()["root"]["Application"]


def _row(**values: float) -> np.ndarray:
    """One application's features: zeros but for ``values`` (counts given as counts)."""
    x = np.zeros((1, len(NAMES)), dtype=np.float32)
    x[0, NAMES.index("product_bnpl")] = 1.0
    for name, v in values.items():
        logged = name != "amount_ratio_log" and name.endswith(
            ("_log", "_log_d", "_log_km", "_neighbours", "_accounts", "_24h"))
        x[0, NAMES.index(name)] = math.log1p(v) if logged else v
    return x


def _points(x: np.ndarray) -> dict[str, float]:
    s = RiskRules(NAMES).score(x)
    return dict(s.reasons(0)) | {f"pd:{c}": p for c, p in s.reasons(0, "pd")}


def test_the_rule_names_are_the_reason_codes_and_an_empty_row_is_the_base() -> None:
    rules = RiskRules(NAMES)
    assert rules.fraud_rules[0] == "SELF_CONFIRMED_FRAUD" and "THIN_FILE" in rules.pd_rules
    assert all(r.code.isupper() for r in RULES)
    s = rules.score(_row(tenure_log_d=400, orders_log=3))
    assert s.fraud_logit[0] == pytest.approx(FRAUD_BASE)
    assert s.pd_logit[0] == pytest.approx(PD_BASE["bnpl"])
    assert s.fraud[0] == pytest.approx(0.01) and s.reasons(0) == []


def test_the_textbook_takeover_adds_its_documented_points() -> None:
    x = _row(tenure_log_d=700, orders_log=20, login_history_log=15, devices_log=1,
             new_device_7d=1, dist_usual_log_km=1500, dist_home_log_km=1500,
             amount_history_log=20, amount_ratio_log=math.log(12.0))
    p = _points(x)
    assert p == {"ATO_NEW_DEVICE": 0.8, "ATO_FAR_LOCATION": 1.5, "ATO_AMOUNT_SPIKE": 2.0,
                 "ATO_PATTERN": 1.5, "pd:ESTABLISHED_CUSTOMER": -0.3}
    s = RiskRules(NAMES).score(x)
    assert s.fraud_logit[0] == pytest.approx(FRAUD_BASE + 5.8)
    assert [c for c, _ in s.reasons(0)][0] == "ATO_AMOUNT_SPIKE"
    # 5x (not 10x) and only the home known: the smaller spike and the home-only code
    y = _row(tenure_log_d=700, orders_log=20, login_history_log=1, new_device_7d=1,
             dist_usual_missing=1, dist_home_log_km=800, amount_history_log=3,
             amount_ratio_log=math.log(6.0))
    assert _points(y) == {"ATO_NEW_DEVICE": 0.8, "ATO_FAR_FROM_HOME": 1.5,
                          "ATO_AMOUNT_SPIKE": 1.5, "ATO_PATTERN": 1.5,
                          "pd:ESTABLISHED_CUSTOMER": -0.3}
    # near home, or a history of one amount: nothing about place or amount
    z = _row(tenure_log_d=700, orders_log=1, login_history_log=15, dist_usual_log_km=20,
             dist_home_log_km=20, amount_history_log=1, amount_ratio_log=math.log(50.0))
    assert _points(z) == {}


def test_graph_merchant_and_credit_rules() -> None:
    p = _points(_row(tenure_log_d=3, orders_log=1, self_fraud_known=1,
                     device_fraud_neighbours=2, phone_fraud_neighbours=2,
                     address_shared_accounts=6, user_apps_24h=5, ip_kind_datacenter=1,
                     device_os_emulator=1, merchant_fraud_known=1))
    assert p == pytest.approx({
        "SELF_CONFIRMED_FRAUD": 8.0, "SHARED_ENTITY_FRAUD": 6.0, "SHARED_ENTITY_DENSE": 1.0,
        "APPLICATION_VELOCITY": 2.4, "THIN_FILE": 0.5, "RISKY_IP": 1.0, "EMULATOR_DEVICE": 1.5,
        "MERCHANT_CONFIRMED_FRAUD": 3.0, "pd:THIN_FILE": 0.4})
    x = _row(tenure_log_d=400, orders_log=12, has_merchant=1, merchant_sales_spike=4.0,
             merchant_orders_30d_log=40, merchant_returned_share_30d=0.4)
    x[0, NAMES.index("product_bnpl")] = 0.0
    x[0, NAMES.index("product_merchant_loan")] = 1.0
    p = _points(x)
    assert p == {"MERCHANT_NOT_OWNED": 2.0, "MERCHANT_SALES_SPIKE": 1.5,
                 "MERCHANT_HIGH_REFUNDS": 1.0, "pd:ESTABLISHED_CUSTOMER": -0.3}
    assert RiskRules(NAMES).score(x).pd_logit[0] == pytest.approx(
        PD_BASE["merchant_loan"] - 0.3)
    x[0, NAMES.index("owns_merchant")] = 1.0
    assert "MERCHANT_NOT_OWNED" not in _points(x)
    p = _points(_row(tenure_log_d=400, orders_log=8, self_default_known=1,
                     repaid_on_time_log=6, repaid_late_log=1, repaid_missed_log=1,
                     contacts_default_log=4, return_rate=0.6))
    assert p == pytest.approx({"pd:SELF_DEFAULT": 4.0, "pd:LATE_REPAYMENTS": 3.0 * 2 / 8 + 0.5,
                               "pd:CONTACT_DEFAULT": 2.4, "pd:HIGH_RETURN_RATE": 0.5})
    assert _points(_row(tenure_log_d=400, orders_log=3, repaid_on_time_log=4)) == {
        "pd:GOOD_REPAYMENT_HISTORY": -0.7}


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="self_fraud_known"):
        RiskRules([n for n in NAMES if n != "self_fraud_known"])
    with pytest.raises(ValueError, match=r"\[Q, "):
        RiskRules(NAMES).score(np.zeros((2, 3)))
    assert RiskRules(NAMES).score(np.zeros((0, len(NAMES)))).fraud_points.shape == (
        0, len(RiskRules(NAMES).fraud_rules))


def test_on_a_world_batch_equals_one_by_one_and_the_rules_rank_fraud() -> None:
    import pyarrow.parquet as pq

    g = lending_graph()
    n = g.num_nodes("Application")
    x, names, _ = RiskFeatures(g).application_features(
        ApplicationQueries.from_graph(g, np.arange(n)))
    rules = RiskRules(names)
    batch = rules.score(x)
    for i in range(0, n, 97):
        one = rules.score(x[i:i + 1])
        np.testing.assert_array_equal(one.fraud_points[0], batch.fraud_points[i])
        assert one.pd_logit[0] == batch.pd_logit[i]
    # SELF_CONFIRMED_FRAUD fires exactly where the applicant's fraud label was known before
    a = g.attrs["Application"]
    known = g.fraud_at["User"][a["user"]] < a["ts"]
    col = batch.fraud_rules.index("SELF_CONFIRMED_FRAUD")
    np.testing.assert_array_equal(batch.fraud_points[:, col] == 8.0, known)
    truth = pq.read_table(world_dir() / "truth_applications.parquet").to_pandas()
    y = np.zeros(n, bool)
    y[g.positions("Application", truth["application_id"].tolist())] = truth["fraud"]
    assert binary_metrics(y, batch.fraud_logit)["auroc"] > 0.8
