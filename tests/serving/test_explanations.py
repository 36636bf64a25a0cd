"""`explain`: the model's attributions as reasons — families folded, fraud apart from credit,
evidence numbers with the feature transforms undone — and end to end on a trained model."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gnn"))

from gnn_lending_world import lending_graph, takeover_trained, takeover_world  # noqa: E402

from gnn import ApplicationQueries, RiskFeatures, RootAttribution, attribute  # noqa: E402
from gnn.attribution import RELATION_GROUPS  # noqa: E402
from serving.explanations import FAMILIES, IGNORED, Explanation  # noqa: E402
from serving.explanations import explain as _explain  # noqa: E402
from serving.policy import decide, load_policy  # noqa: E402
from serving.reasons import CATALOGUE, render  # noqa: E402
from kernels import haversine_km  # noqa: E402
from serving.scoring import ApplicationFacts, Signal  # noqa: E402

FACTS = ApplicationFacts(
    application_id="app-1", product="cash_loan", amount=20_000.0, currency="CNY",
    user_id="u-1", device_id="dv_abc", device_masked="****9f2c", ip="10.1.2.3", lat=43.83,
    lon=87.62, ts=1_760_000_000, city="Urumqi", address_id="ad_0123456789abcdef",
    phone_id="ph_fedcba9876543210", merchant_id="m-7")

RAW = {
    "log_amount": math.log1p(20_000.0), "amount_ratio_log": math.log(25.0),
    "amount_robust_z": 40.0, "amount_history_log": math.log1p(12),
    "dist_usual_log_km": math.log1p(3270.0), "dist_usual_missing": 0.0,
    "dist_home_log_km": math.log1p(3268.0), "dist_home_missing": 0.0,
    "login_history_log": math.log1p(15),
    "device_age_log_h": 0.0, "new_device_7d": 1.0, "new_device": 1.0,
    "device_new_to_platform": 0.0, "user_new_devices_7d": math.log1p(1),
    "devices_log": math.log1p(2), "phones_log": math.log1p(1), "ips_log": math.log1p(3),
    "user_apps_1h": math.log1p(1), "user_apps_24h": math.log1p(3), "user_apps_7d": math.log1p(4),
    "user_unknown": 0.0, "tenure_log_d": math.log1p(400.0), "orders_log": math.log1p(20),
    "order_value_log": math.log1p(4321.0), "return_rate": 0.25, "merchants_log": math.log1p(6),
    "repaid_on_time_log": math.log1p(5), "repaid_late_log": math.log1p(2),
    "repaid_missed_log": math.log1p(1), "contacts_log": math.log1p(4),
    "contacts_default_log": math.log1p(2), "contacts_default_share": 0.5,
    "self_fraud_known": 0.0, "self_default_known": 1.0,
    "device_shared_accounts": math.log1p(6), "device_fraud_neighbours": math.log1p(2),
    "device_users_log": math.log1p(5), "device_fraud_apps_log": math.log1p(3),
    "phone_shared_accounts": math.log1p(3), "ip_kind_datacenter": 1.0,
    "device_os_android": 1.0, "has_merchant": 1.0, "merchant_size_small": 1.0,
    "merchant_age_log_d": math.log1p(90.0), "merchant_buyers_log": math.log1p(40),
    "merchant_apps_log": math.log1p(7), "merchant_orders_30d_log": math.log1p(50),
    "merchant_returned_share_30d": 0.4, "merchant_sales_spike": 4.5, "owns_merchant": 0.0,
    "device_apps_24h": math.log1p(6), "device_apps_7d": math.log1p(9),
}


MIN_WEIGHT = load_policy().reasons.min_weight


def explain(root: RootAttribution, facts: ApplicationFacts, *, min_weight: float = MIN_WEIGHT,
            displays: dict[tuple[str, str], str] | None = None,
            places: dict[str, str] | None = None) -> Explanation:
    """:func:`serving.explanations.explain` with the packaged policy's minimum weight."""
    return _explain(root, facts, min_weight=min_weight, displays=displays, places=places)


def _root(fraud: dict[str, float], pd: dict[str, float] | None = None,
          fraud_rel: dict[str, float] | None = None, pd_rel: dict[str, float] | None = None,
          **raw: float) -> RootAttribution:
    return RootAttribution({**RAW, **raw}, fraud, pd or {}, fraud_rel or {}, pd_rel or {},
                           0.0, 0.0, 0.0, 0.0)


def _one(signals: tuple[Signal, ...], code: str) -> Signal:
    found = [s for s in signals if s.code == code]
    assert len(found) == 1, (code, [s.code for s in signals])
    return found[0]


def test_a_family_folds_into_one_reason_with_its_summed_weight() -> None:
    e = explain(_root({"dist_usual_log_km": 0.9, "dist_usual_missing": 0.2,
                       "dist_home_log_km": 0.4, "user_apps_1h": 0.2, "user_apps_24h": 0.3,
                       "user_apps_7d": 0.1}), FACTS)
    far = _one(e.fraud, "ATO_FAR_LOCATION")
    assert far.weight == pytest.approx(1.5)
    assert render(far).message_en == ("Applied from Urumqi, 3,270 km from the usual login area "
                                      "(unknown) and 3,268 km from home (unknown)")
    named = explain(_root({"dist_usual_log_km": 0.9}), FACTS,
                    places={"usual_city": "Shanghai", "home_city": "Suzhou"}).fraud[0]
    assert render(named).message_en == ("Applied from Urumqi, 3,270 km from the usual login "
                                        "area (Shanghai) and 3,268 km from home (Suzhou)")
    assert far.evidence.entity_type == "Application" and far.evidence.display == "Urumqi"
    assert far.evidence.value == pytest.approx(3270.0) and far.params["km_home"] == (
        pytest.approx(3268.0))
    velocity = _one(e.fraud, "APPLICATION_VELOCITY")
    assert velocity.weight == pytest.approx(0.6)
    assert velocity.params["count"] == 3 and velocity.evidence.value == 3
    assert velocity.evidence.entity_id == "u-1"
    assert [s.code for s in e.fraud] == ["ATO_FAR_LOCATION", "APPLICATION_VELOCITY"]
    assert e.credit == ()


def test_relations_join_the_family_of_their_entity() -> None:
    e = explain(_root({"device_shared_accounts": 0.3, "device_fraud_apps_log": 0.2},
                      fraud_rel={"device": 0.4, "user_devices": -0.1, "contacts": 0.02}),
                FACTS)
    shared = _one(e.fraud, "SHARED_ENTITY_FRAUD")
    assert shared.weight == pytest.approx(0.8)
    assert (shared.evidence.entity_type, shared.evidence.entity_id,
            shared.evidence.display) == ("Device", "dv_abc", "****9f2c")
    assert shared.params["accounts"] == 6 and shared.params["fraud"] == 2
    assert shared.params["fraud_applications"] == 3
    assert render(shared).message_en == "device ****9f2c shared with 6 other accounts, " \
                                        "2 confirmed fraud"
    assert len(e.fraud) == 1  # the contacts' 0.02 is below the minimum weight


def test_fraud_and_credit_reasons_come_from_their_own_logit() -> None:
    e = explain(_root({"repaid_late_log": 0.7}, pd={"repaid_late_log": 1.2,
                                                    "contacts_default_log": 0.5,
                                                    "self_default_known": 2.0}), FACTS)
    assert [s.code for s in e.fraud] == ["LATE_REPAYMENTS"]
    assert [s.code for s in e.credit] == ["SELF_DEFAULT", "LATE_REPAYMENTS", "CONTACT_DEFAULT"]
    late = _one(e.credit, "LATE_REPAYMENTS")
    assert late.weight == pytest.approx(1.2) and late.params == {"late": 3, "missed": 1,
                                                                 "total": 8}
    assert render(late).message_en == "3 of 8 past repayments late or missed"
    contacts = _one(e.credit, "CONTACT_DEFAULT")
    assert (contacts.params["defaulted"], contacts.params["contacts"]) == (2, 4)


def test_favourable_contributors_come_back_with_negative_weights() -> None:
    e = explain(_root({"tenure_log_d": -0.8, "dist_usual_log_km": -0.3, "log_amount": -0.04},
                      dist_usual_log_km=math.log1p(4.0), dist_home_log_km=math.log1p(9.0)),
                FACTS, min_weight=0.05)
    assert [(s.code, s.weight) for s in e.fraud] == [("ESTABLISHED_CUSTOMER", -0.8),
                                                     ("USUAL_LOCATION", -0.3)]
    usual = _one(e.fraud, "USUAL_LOCATION")
    assert usual.params["km"] == pytest.approx(4.0)
    assert render(usual).message_en == ("Applied from Urumqi, 4 km from the account's usual "
                                        "login area or home")
    assert _one(e.fraud, "ESTABLISHED_CUSTOMER").params["tenure_days"] == pytest.approx(400.0)
    # the same attribution above zero is an adverse reason with the adverse code
    assert explain(_root({"tenure_log_d": 0.8}), FACTS).fraud[0].code == "THIN_FILE"
    assert explain(_root({"dist_usual_log_km": 0.3}, dist_home_missing=1.0),
                   FACTS).fraud[0].code == "ATO_FAR_FROM_USUAL"


def test_evidence_numbers_undo_the_transforms() -> None:
    e = explain(_root({"amount_ratio_log": 1.0, "device_age_log_h": 0.3,
                       "merchant_returned_share_30d": 0.5, "merchant_sales_spike": 0.4,
                       "merchant_buyers_log": 0.2, "owns_merchant": 0.6,
                       "ip_kind_datacenter": 0.7, "device_apps_24h": 0.5, "orders_log": 0.3},
                      new_device=0.0, new_device_7d=0.0, device_age_log_h=math.log1p(72.0)),
                FACTS)
    spike = _one(e.fraud, "ATO_AMOUNT_SPIKE")
    assert spike.params["ratio"] == pytest.approx(25.0) and spike.params["history"] == 12
    assert spike.params["median"] == pytest.approx(800.0)
    assert spike.evidence.value == pytest.approx(25.0)
    known = _one(e.fraud, "DEVICE_KNOWN")  # the device is not new: the fact picks the code
    assert known.params["days"] == pytest.approx(3.0) and known.evidence.value == 72.0
    refunds = _one(e.fraud, "MERCHANT_HIGH_REFUNDS")
    assert (refunds.params["returned"], refunds.params["orders"]) == (20, 50)
    assert refunds.evidence.entity_type == "Merchant" and refunds.evidence.entity_id == "m-7"
    assert _one(e.fraud, "MERCHANT_SALES_SPIKE").params["ratio"] == 4.5
    profile = _one(e.fraud, "MERCHANT_PROFILE")
    assert profile.params == {"size": "small", "age_days": pytest.approx(90.0), "buyers": 40,
                              "apps": 7}
    assert _one(e.fraud, "MERCHANT_NOT_OWNED").weight == pytest.approx(0.6)
    assert _one(e.fraud, "RISKY_IP").params["ip_kind"] == "datacenter"
    velocity = _one(e.fraud, "DEVICE_APPLICATION_VELOCITY")
    assert (velocity.params["apps_24h"], velocity.params["apps_7d"]) == (6, 9)
    returns = _one(e.fraud, "HIGH_RETURN_RATE")
    assert (returns.params["returned"], returns.params["orders"]) == (5, 20)


def test_facts_decide_what_can_be_said() -> None:
    e = explain(_root({"self_fraud_known": 0.4, "product_cash_loan": 1.5, "new_device": 0.6,
                       "has_merchant": 0.3}, has_merchant=0.0), FACTS)
    # no fraud label, so no SELF_CONFIRMED_FRAUD; no merchant, so no merchant reason; the
    # product is no reason at all
    assert [s.code for s in e.fraud] == ["ATO_NEW_DEVICE"]
    assert _one(e.fraud, "ATO_NEW_DEVICE").params["known"] == 2
    labelled = explain(_root({"self_fraud_known": 3.0}, self_fraud_known=1.0), FACTS)
    assert labelled.fraud[0].code == "SELF_CONFIRMED_FRAUD"
    no_phone = explain(_root({"phone_shared_accounts": 0.5}),
                       ApplicationFacts(**{**FACTS.__dict__, "phone_id": None}))
    assert no_phone.fraud[0].evidence.entity_type == "User"
    # the message names what is shared, the applicant's phones, not the applicant
    said = render(no_phone.fraud[0])
    assert said.message_en.startswith(f"phones of user {FACTS.user_id} shared with "), said
    assert said.message_zh.startswith(f"用户{FACTS.user_id}的手机号与"), said
    masked = explain(_root({"phone_shared_accounts": 0.5}), FACTS,
                     displays={("Phone", FACTS.phone_id): "138****0000"})  # type: ignore[dict-item]
    assert masked.fraud[0].evidence.display == "138****0000"
    assert masked.fraud[0].code == "SHARED_ENTITY_DENSE"
    said = render(masked.fraud[0])
    assert said.message_en.startswith("phone 138****0000 shared with "), said
    assert said.message_zh.startswith("手机号138****0000与"), said


def test_min_weight_must_be_a_number_at_least_zero() -> None:
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="min_weight"):
            explain(_root({}), FACTS, min_weight=bad)


def test_every_feature_and_relation_has_a_family_and_no_family_names_a_ghost() -> None:
    g = lending_graph()
    feats = RiskFeatures(g)
    _, app_names, _ = feats.application_features(ApplicationQueries.from_graph(g, np.arange(2)))
    _, user_names, _ = feats.user_features(np.arange(2), np.full(2, g.as_of))
    _, merchant_names, _ = feats.merchant_features(np.arange(2), np.full(2, g.as_of))
    folded = [n for f in FAMILIES for n in f.features]
    assert len(folded) == len(set(folded))  # one family per feature
    for names in (app_names, user_names, merchant_names):
        assert set(names) - set(folded) - IGNORED == set()
    assert set(folded) | IGNORED <= set(app_names) | set(merchant_names)
    groups = {name for per_root in RELATION_GROUPS.values() for name in per_root}
    related = [r for f in FAMILIES for r in f.relations]
    assert len(related) == len(set(related)) and set(related) == groups


def explained_signals() -> list[Signal]:
    """A signal of every code the explainer can give (for the catalogue test)."""
    every = {n: 0.3 for f in FAMILIES for n in f.features}
    out: list[Signal] = []
    for sign in (1.0, -1.0):
        weights = {n: sign * w for n, w in every.items()}
        for raw in ({}, {"new_device": 0.0, "self_fraud_known": 1.0, "merchant_signals_missing":
                         1.0, "owns_merchant": 1.0, "amount_history_log": 0.0,
                         "dist_usual_missing": 1.0, "device_os_emulator": 1.0,
                         "contacts_fraud_log": math.log1p(1), "repaid_late_log": 0.0,
                         "repaid_missed_log": 0.0, "return_rate": 0.0},
                    {"dist_usual_missing": 1.0, "dist_home_missing": 1.0,
                     "repaid_on_time_log": 0.0, "repaid_late_log": 0.0,
                     "repaid_missed_log": 0.0}, {"dist_home_missing": 1.0},
                    {**{f"device_os_{o}": 0.0 for o in ("android", "ios", "unknown")},
                     "device_os_emulator": 1.0, "merchant_fraud_known": 1.0}):
            e = explain(_root(weights, pd=weights, **raw), FACTS)
            out += [*e.fraud, *e.credit]
    return out


def test_every_explained_reason_renders_in_both_languages(
        caplog: pytest.LogCaptureFixture) -> None:
    signals = explained_signals()
    assert {s.code for s in signals} <= set(CATALOGUE)
    for s in signals:
        r = render(s)
        assert "{" not in r.message_en and "{" not in r.message_zh, r
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_takeover_on_the_trained_model_is_explained_by_place_and_amount() -> None:
    """An old account applies on a new device ~3,000 km from home for 30,000 CNY: the model's
    strongest fraud reasons name the place and the amount, with the distance a person can
    check, and the policy does not approve."""
    pipe, g = takeover_trained().pipeline, takeover_world()[1]
    u = g.attrs["User"]
    p = int(np.flatnonzero((g.as_of - u["created_at"]) > 200 * 86_400)[0])
    lat, lon = float(u["home_lat"][p]) - 20.0, float(u["home_lon"][p]) + 15.0
    facts = ApplicationFacts(
        application_id="ato-1", product="cash_loan", amount=30_000.0, currency="CNY",
        user_id=str(g.ids["User"][p]), device_id="dv-brand-new", device_masked="****new1",
        ip="10.250.0.1", lat=lat, lon=lon, ts=int(g.as_of) + 3600, city="Far City")
    q = ApplicationQueries.from_facts(
        g, application_id=facts.application_id, user_id=facts.user_id, product=facts.product,
        amount=facts.amount, ts=facts.ts, lat=lat, lon=lon, device_id=facts.device_id,
        ip=facts.ip, merchant_id=None)
    a = attribute(pipe, pipe.prepare_applications(g, q))
    e = explain(a.root(0), facts)
    assert isinstance(e, Explanation)
    codes = [s.code for s in e.fraud if s.weight > 0]
    assert codes[0] in ("ATO_FAR_LOCATION", "ATO_FAR_FROM_HOME", "ATO_FAR_FROM_USUAL",
                        "ATO_AMOUNT_SPIKE")
    assert {"ATO_FAR_LOCATION", "ATO_AMOUNT_SPIKE"} <= set(codes), codes
    far = _one(e.fraud, "ATO_FAR_LOCATION")
    home_km = float(haversine_km(np.array([lat]), np.array([lon]), np.array([float(u["home_lat"][p])]),
                                 np.array([float(u["home_lon"][p])]))[0])
    assert far.params["km_home"] == pytest.approx(home_km, rel=1e-3)
    assert "Far City" in render(far).message_en
    # the reasons are shares of the logit explained: folding loses nothing but the product
    # and the families with nothing to say (no merchant on a cash loan, no label)
    root = a.root(0)
    unsaid = [f for f in FAMILIES if f.name.startswith(("merchant", "self_"))]
    dropped = (sum(root.fraud[n] for n in IGNORED)
               + sum(root.fraud[n] for f in unsaid for n in f.features)
               + sum(root.fraud_relations.get(r, 0.0) for f in unsaid for r in f.relations))
    total = sum(s.weight for s in explain(root, facts, min_weight=0.0).fraud)
    assert total + dropped == pytest.approx(a.fraud_logit[0] - a.fraud_baseline[0]
                                            + a.fraud_relations[0].sum(), abs=0.2)
    outcome = decide(load_policy(), application_id=facts.application_id, product="cash_loan",
                     amount=facts.amount, fraud_probability=float(a.scores.fraud[0]),
                     pd=float(a.scores.pd[0]), features={"tenure_days": 400, "order_count": 20,
                                                         "monthly_spend": 1e5},
                     degraded=False, fraud_reasons=e.fraud, credit_reasons=e.credit)
    assert outcome.decision != "approve"
    assert {"FRAUD_MAIN_REASON", "FRAUD_REVIEW", "FRAUD_DECLINE"} & {
        s.code for s in outcome.signals}
