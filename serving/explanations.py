"""`explain`: a verdict's fraud and credit reasons from the deciding model's own attributions.

:func:`gnn.attribute` says how much each root feature and each relation group of the sampled
neighbourhood moved the fraud and the default logit. Here those shares become
:class:`serving.scoring.Signal` s with stable codes (:data:`serving.reasons.CATALOGUE`):

* features of one **family** fold into one reason whose weight is their summed attribution
  (``dist_usual_log_km`` and ``dist_usual_missing``; the 1 h / 24 h / 7 d velocities; the nine
  shared-entity columns of the device group), and a relation group adds its occlusion
  difference to the family it belongs to (the accounts behind the application's device to the
  device's sharing reason): the two concern disjoint inputs of the model, the root's own
  features and the neighbours' nodes;
* the fraud logit's shares make the fraud reasons, the default logit's the credit reasons;
* a reason is kept when its weight is at least ``min_weight`` logits either way; a negative
  weight is in the applicant's favour;
* the evidence is the entity the family is about (the application's device, IP, merchant,
  phone or address, the applicant, the application) and the number a person can check, with
  the feature's transform undone (``*_log`` counts are ``log1p``, ``*_log_km`` kilometres,
  ``*_log_h`` hours, ``*_log_d`` days, ``amount_ratio_log`` the log of a ratio);
* the code follows the fact where a fact decides what can be said (a device new to the
  account, or one it has used for 300 days; a confirmed-fraud neighbour or none) and the sign
  where the code is a judgement (``ATO_FAR_LOCATION`` when being where it is raised the score,
  ``USUAL_LOCATION`` when it lowered it). Labels the applicant does not carry give no reason.

The product applied for is context, not a reason (its caps are the policy's reasons), so the
``product_*`` columns give none; nor does ``term_months``: the term says when a loan can
default, not whether (the credit model spreads a loan's risk over it). Every name here must be a column the model was trained on or a
group of :data:`gnn.attribution.RELATION_GROUPS`; tests/serving/test_explanations.py checks both
ways, so a new feature without a family fails there, not in a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from gnn import RootAttribution
from serving.reasons import ENTITY_EN_PLURAL, ENTITY_ZH
from serving.scoring import ApplicationFacts, Evidence, FeatureValue, Signal

_SHARED_FIELDS: Final = ("shared_accounts", "fraud_neighbours", "default_neighbours",
                         "fraud_rate", "default_rate", "entities", "hub_entities",
                         "max_entity_degree", "shared_capped")
_DEVICE_OS: Final = ("android", "ios", "emulator", "unknown")
_IP_KINDS: Final = ("residential", "mobile", "office", "public_wifi", "datacenter", "unknown")
_MERCHANT_SIZES: Final = ("micro", "small", "medium", "large", "unknown")
_RISKY_IP_KIND: Final = "datacenter"

IGNORED: Final = frozenset(("product_bnpl", "product_cash_loan", "product_merchant_loan",
                            "product_sme_owner_loan", "term_months"))
"""Root features that give no reason (module docstring)."""


@dataclass(frozen=True)
class Explanation:
    """A verdict's reasons from the model, strongest first (by absolute weight).

    Args:
        fraud (tuple[Signal, ...]): from the fraud logit's attributions.
        credit (tuple[Signal, ...]): from the default logit's attributions.
    """

    fraud: tuple[Signal, ...]
    credit: tuple[Signal, ...]


@dataclass(frozen=True)
class _Values:
    """What a family's renderer reads: the raw root features and the application."""

    raw: Mapping[str, float]
    facts: ApplicationFacts
    displays: Mapping[tuple[str, str], str]
    places: Mapping[str, str]

    def get(self, name: str) -> float:
        v = self.raw.get(name, 0.0)
        return float(v) if math.isfinite(v) else 0.0

    def count(self, name: str) -> int:
        """A ``log1p``-transformed count, back as a count."""
        return max(int(round(math.expm1(self.get(name)))), 0)

    def amount(self, name: str) -> float:
        """A ``log1p``-transformed quantity (km, hours, days, currency), back as itself."""
        return max(math.expm1(self.get(name)), 0.0)

    def flag(self, name: str) -> bool:
        return self.get(name) >= 0.5

    def one_hot(self, prefix: str, values: tuple[str, ...]) -> str:
        return max(values, key=lambda v: self.get(f"{prefix}{v}"))

    def entity(self, kind: str, entity_id: str | None) -> tuple[str, str, str] | None:
        """``(type, id, display)`` of an entity the application names (``None``: it names
        none)."""
        if entity_id is None:
            return None
        if kind == "Device":
            return kind, entity_id, self.displays.get((kind, entity_id), self.facts.device_masked)
        if kind == "IP" and self.facts.ip_masked is not None:
            return kind, entity_id, self.displays.get((kind, entity_id), self.facts.ip_masked)
        default = entity_id if kind in ("User", "Merchant") else entity_id[:12]
        return kind, entity_id, self.displays.get((kind, entity_id), default)

    @property
    def user(self) -> tuple[str, str, str]:
        return "User", self.facts.user_id, self.facts.user_id

    @property
    def application(self) -> tuple[str, str, str]:
        f = self.facts
        return "Application", f.application_id, f.city or f"{f.lat:.2f}, {f.lon:.2f}"

    @property
    def place(self) -> str:
        f = self.facts
        return f.city or f"({f.lat:.2f}, {f.lon:.2f})"


Rendered = tuple[str, Evidence, dict[str, FeatureValue]]
Renderer = Callable[[_Values, float], Rendered | None]


@dataclass(frozen=True)
class _Family:
    """Root features and relation groups that make one reason, and how to say it."""

    name: str
    features: tuple[str, ...]
    relations: tuple[str, ...]
    render: Renderer


def explain(root: RootAttribution, facts: ApplicationFacts, *, min_weight: float,
            displays: Mapping[tuple[str, str], str] | None = None,
            places: Mapping[str, str] | None = None) -> Explanation:
    """The fraud and credit reasons of one scored application (module docstring).

    Args:
        root (RootAttribution): the application's attributions, ``gnn.attribute(...).root(i)``.
        facts (ApplicationFacts): the application as scored (its entities are the evidence).
        min_weight (float): smallest ``|weight|`` kept, in logits (the policy file's
            ``[reasons] min_weight``).
        displays (Mapping[tuple[str, str], str], optional): what an investigator reads for
            ``(label, id)`` entities (masked phone, address, merchant name); the hashed id,
            shortened, where absent. (default: none)
        places (Mapping[str, str], optional): ``usual_city`` (where the applicant usually
            logs in) and ``home_city``, which the location reasons name; the features know
            distances, not cities. (default: both ``"unknown"``)

    Returns:
        Explanation: signals sorted by absolute weight, strongest first.

    Raises:
        ValueError: if ``min_weight`` is negative or not finite.
    """
    if not (math.isfinite(min_weight) and min_weight >= 0):
        raise ValueError(f"min_weight must be a non-negative number, got {min_weight!r}")
    values = _Values(root.values, facts, displays or {}, places or {})
    out: dict[str, list[Signal]] = {"fraud": [], "credit": []}
    for head, feats, rels in (("fraud", root.fraud, root.fraud_relations),
                              ("credit", root.pd, root.pd_relations)):
        for fam in FAMILIES:
            weight = (sum(feats.get(n, 0.0) for n in fam.features)
                      + sum(rels.get(r, 0.0) for r in fam.relations))
            if not math.isfinite(weight) or abs(weight) < min_weight or weight == 0.0:
                continue
            rendered = fam.render(values, weight)
            if rendered is not None:
                code, evidence, params = rendered
                out[head].append(Signal(code, round(weight, 4), evidence, params))
    return Explanation(*(tuple(sorted(out[h], key=lambda s: -abs(s.weight)))
                         for h in ("fraud", "credit")))


# -- renderers ---------------------------------------------------------------------------------
def _ev(entity: tuple[str, str, str], metric: str, value: float,
        reference: float | None = None) -> Evidence:
    return Evidence(entity[0], entity[1], entity[2], metric, round(float(value), 4),
                    None if reference is None else round(float(reference), 4))


def _amount(v: _Values, w: float) -> Rendered:
    f = v.facts
    history = v.count("amount_history_log")
    if history == 0:
        return ("AMOUNT_NO_HISTORY", _ev(v.application, "amount", f.amount),
                {"amount": f.amount, "currency": f.currency})
    ratio = math.exp(v.get("amount_ratio_log"))
    median = f.amount / ratio
    return ("ATO_AMOUNT_SPIKE" if w > 0 else "AMOUNT_IN_LINE",
            _ev(v.application, "amount_to_median", ratio, median),
            {"amount": f.amount, "currency": f.currency, "ratio": ratio, "median": median,
             "history": history})


def _location(v: _Values, w: float) -> Rendered:
    usual = None if v.flag("dist_usual_missing") else v.amount("dist_usual_log_km")
    home = None if v.flag("dist_home_missing") else v.amount("dist_home_log_km")
    params: dict[str, FeatureValue] = {
        "city": v.place, "km_usual": usual, "km_home": home,
        "usual_city": v.places.get("usual_city", "unknown"),
        "home_city": v.places.get("home_city", "unknown")}
    if usual is None and home is None:
        return ("LOCATION_UNKNOWN", _ev(v.application, "login_history",
                                        v.count("login_history_log")), params)
    if w < 0:
        km = min(k for k in (usual, home) if k is not None)
        return ("USUAL_LOCATION", _ev(v.application, "km_from_usual_places", km),
                {**params, "km": km})
    if usual is not None and home is not None:
        code = "ATO_FAR_LOCATION"
    else:
        code = "ATO_FAR_FROM_USUAL" if usual is not None else "ATO_FAR_FROM_HOME"
    if usual is not None:
        return code, _ev(v.application, "km_from_usual_location", usual), params
    assert home is not None
    return code, _ev(v.application, "km_from_home", home), params


def _device_novelty(v: _Values, w: float) -> Rendered:
    device = v.entity("Device", v.facts.device_id)
    assert device is not None
    known = v.count("devices_log")
    if v.flag("new_device") or v.flag("device_new_to_platform"):
        return ("ATO_NEW_DEVICE", _ev(device, "known_devices", known),
                {"known": known, "new_devices_7d": v.count("user_new_devices_7d")})
    hours = v.amount("device_age_log_h")
    params: dict[str, FeatureValue] = {"days": hours / 24.0, "hours": hours,
                                       "new_devices_7d": v.count("user_new_devices_7d")}
    if v.flag("new_device_7d") and w > 0:
        # NOTE: first seen days or minutes ago (a takeover logs in before it applies)
        return "ATO_RECENT_DEVICE", _ev(device, "device_age_hours", hours), params
    return "DEVICE_KNOWN", _ev(device, "device_age_hours", hours), params


def _footprint(v: _Values, w: float) -> Rendered:
    counts: dict[str, FeatureValue] = {k: v.count(f"{k}_log")
                                       for k in ("devices", "phones", "ips")}
    return "ACCOUNT_FOOTPRINT", _ev(v.user, "devices", v.count("devices_log")), counts


def _application_velocity(v: _Values, w: float) -> Rendered:
    count = v.count("user_apps_24h")
    return ("APPLICATION_VELOCITY", _ev(v.user, "applications_24h", count),
            {"count": count, "count_1h": v.count("user_apps_1h"),
             "count_7d": v.count("user_apps_7d"), "earlier": v.count("prev_apps_log")})


def _login_velocity(v: _Values, w: float) -> Rendered:
    day, week = v.count("user_logins_24h"), v.count("user_logins_7d")
    return ("LOGIN_VELOCITY", _ev(v.user, "logins_24h", day),
            {"logins_24h": day, "logins_7d": week})


def _tenure(v: _Values, w: float) -> Rendered:
    days = 0.0 if v.flag("user_unknown") else v.amount("tenure_log_d")
    params: dict[str, FeatureValue] = {"tenure_days": days, "orders": v.count("orders_log")}
    return ("THIN_FILE" if w > 0 else "ESTABLISHED_CUSTOMER",
            _ev(v.user, "tenure_days", days), params)


def _purchases(v: _Values, w: float) -> Rendered:
    orders = v.count("orders_log")
    rate = v.get("return_rate")
    returned = int(round(rate * orders))
    params: dict[str, FeatureValue] = {
        "orders": orders, "returned": returned, "rate": rate,
        "value": v.amount("order_value_log"), "currency": v.facts.currency,
        "merchants": v.count("merchants_log"), "bnpl_share": v.get("bnpl_share")}
    if w > 0 and returned > 0:
        return "HIGH_RETURN_RATE", _ev(v.user, "return_rate", rate), params
    return "PURCHASE_HISTORY", _ev(v.user, "orders", orders), params


def _repayments(v: _Values, w: float) -> Rendered:
    on_time, late, missed = (v.count(f"repaid_{s}_log") for s in ("on_time", "late", "missed"))
    total = on_time + late + missed
    if late + missed:
        return ("LATE_REPAYMENTS", _ev(v.user, "late_repayments", late + missed, total),
                {"late": late + missed, "missed": missed, "total": total})
    if on_time:
        return ("GOOD_REPAYMENT_HISTORY", _ev(v.user, "on_time_repayments", on_time),
                {"on_time": on_time})
    return "NO_REPAYMENT_HISTORY", _ev(v.user, "repayments", 0), {}


def _contacts(v: _Values, w: float) -> Rendered:
    contacts = v.count("contacts_log")
    defaulted, fraud = v.count("contacts_default_log"), v.count("contacts_fraud_log")
    params: dict[str, FeatureValue] = {"contacts": contacts, "defaulted": defaulted,
                                       "fraud": fraud}
    if fraud:
        return "CONTACT_FRAUD", _ev(v.user, "contacts_fraud", fraud, contacts), params
    return "CONTACT_DEFAULT", _ev(v.user, "contacts_in_default", defaulted, contacts), params


def _self_fraud(v: _Values, w: float) -> Rendered | None:
    if not v.flag("self_fraud_known"):
        return None
    return ("SELF_CONFIRMED_FRAUD", _ev(v.user, "confirmed_fraud", 1.0),
            {"user": v.facts.user_id, "source": "unknown"})


def _self_default(v: _Values, w: float) -> Rendered | None:
    if not v.flag("self_default_known"):
        return None
    return "SELF_DEFAULT", _ev(v.user, "defaulted", 1.0), {"user": v.facts.user_id}


def _shared(group: str, kind: str, own: Callable[[ApplicationFacts], str | None],
            extra: bool) -> Renderer:
    """Sharing through the applicant's entities of one kind (the shared-entity kernel's
    group, the application's own entity included): evidence the application's entity, else
    the applicant."""

    def render(v: _Values, w: float) -> Rendered:
        accounts = v.count(f"{group}_shared_accounts")
        fraud = v.count(f"{group}_fraud_neighbours")
        params: dict[str, FeatureValue] = {
            "accounts": accounts, "fraud": fraud,
            "defaulted": v.count(f"{group}_default_neighbours"),
            "entities": v.count(f"{group}_entities"),
            "hub_entities": v.count(f"{group}_hub_entities")}
        if extra:
            params.update(users=v.count(f"{group}_users_log"),
                          fraud_applications=v.count(f"{group}_fraud_apps_log"))
        entity = v.entity(kind, own(v.facts))
        if entity is None:
            # NOTE: the application names no entity of this kind: the applicant's own ones are
            # what is shared, and the message says so (not "user U1 shared with ...")
            entity = v.user
            params.update(subject=f"{ENTITY_EN_PLURAL[kind]} of user {entity[2]}",
                          subject_zh=f"用户{entity[2]}的{ENTITY_ZH[kind]}")
        code = "SHARED_ENTITY_FRAUD" if fraud else "SHARED_ENTITY_DENSE"
        return code, _ev(entity, "shared_accounts", accounts), params

    return render


def _entity_velocity(group: str, kind: str, code: str,
                     own: Callable[[ApplicationFacts], str | None]) -> Renderer:
    def render(v: _Values, w: float) -> Rendered | None:
        entity = v.entity(kind, own(v.facts))
        if entity is None:
            return None
        day = v.count(f"{group}_apps_24h")
        return (code, _ev(entity, "applications_24h", day),
                {"apps_24h": day, "apps_7d": v.count(f"{group}_apps_7d"),
                 "apps": v.count(f"{group}_apps_log")})

    return render


def _device_os(v: _Values, w: float) -> Rendered:
    device = v.entity("Device", v.facts.device_id)
    assert device is not None
    os_name = v.one_hot("device_os_", _DEVICE_OS)
    if os_name == "emulator":
        return "EMULATOR_DEVICE", _ev(device, "emulator", 1.0), {}
    return "DEVICE_OS", _ev(device, "emulator", 0.0), {"os": os_name}


def _ip_kind(v: _Values, w: float) -> Rendered:
    ip = v.entity("IP", v.facts.ip)
    assert ip is not None
    kind = v.one_hot("ip_kind_", _IP_KINDS)
    code = "RISKY_IP" if w > 0 and kind != "unknown" else "IP_KIND"
    return code, _ev(ip, "ip_kind_datacenter", float(kind == _RISKY_IP_KIND)), {"ip_kind": kind}


def _merchant(v: _Values) -> tuple[str, str, str] | None:
    if not v.flag("has_merchant"):
        return None
    return v.entity("Merchant", v.facts.merchant_id)


def _merchant_fraud(v: _Values, w: float) -> Rendered | None:
    m = _merchant(v)
    if m is None or not v.flag("merchant_fraud_known"):
        return None
    return "MERCHANT_CONFIRMED_FRAUD", _ev(m, "confirmed_fraud", 1.0), {}


def _merchant_returns(v: _Values, w: float) -> Rendered | None:
    m = _merchant(v)
    if m is None:
        return None
    orders = v.count("merchant_orders_30d_log")
    rate = v.get("merchant_returned_share_30d")
    params: dict[str, FeatureValue] = {
        "orders": orders, "returned": int(round(rate * orders)), "rate": rate,
        "refund_rate": v.get("merchant_refund_rate"),
        "bnpl_share": v.get("merchant_bnpl_share_30d")}
    return ("MERCHANT_HIGH_REFUNDS" if w > 0 else "MERCHANT_RETURNS",
            _ev(m, "returned_share_30d", rate), params)


def _merchant_sales(v: _Values, w: float) -> Rendered | None:
    m = _merchant(v)
    if m is None:
        return None
    if v.flag("merchant_signals_missing"):
        return "MERCHANT_NO_SALES_DATA", _ev(m, "sales_reports", 0.0), {}
    ratio = v.get("merchant_sales_spike")
    params: dict[str, FeatureValue] = {
        "ratio": ratio, "growth": v.get("merchant_gmv_growth"),
        "turnover": v.get("merchant_inventory_turnover")}
    return ("MERCHANT_SALES_SPIKE" if w > 0 else "MERCHANT_SALES",
            _ev(m, "sales_spike", ratio), params)


def _merchant_profile(v: _Values, w: float) -> Rendered | None:
    m = _merchant(v)
    if m is None:
        return None
    buyers, apps = v.count("merchant_buyers_log"), v.count("merchant_apps_log")
    return ("MERCHANT_PROFILE", _ev(m, "buyers", buyers),
            {"size": v.one_hot("merchant_size_", _MERCHANT_SIZES),
             "age_days": v.amount("merchant_age_log_d"), "buyers": buyers, "apps": apps})


def _merchant_ownership(v: _Values, w: float) -> Rendered | None:
    m = _merchant(v)
    if m is None:
        return None
    if v.flag("owns_merchant"):
        return "MERCHANT_OWNED", _ev(m, "owned", 1.0), {}
    return "MERCHANT_NOT_OWNED", _ev(m, "owned", 0.0), {}


def _device_id(f: ApplicationFacts) -> str | None:
    return f.device_id


def _ip(f: ApplicationFacts) -> str | None:
    return f.ip


def _phone(f: ApplicationFacts) -> str | None:
    return f.phone_id


def _address(f: ApplicationFacts) -> str | None:
    return f.address_id


def _shared_columns(group: str) -> tuple[str, ...]:
    return tuple(f"{group}_{field}" for field in _SHARED_FIELDS)


FAMILIES: Final[tuple[_Family, ...]] = (
    _Family("amount", ("log_amount", "amount_ratio_log", "amount_robust_z",
                       "amount_history_log"), (), _amount),
    _Family("location", ("dist_usual_log_km", "dist_usual_missing", "dist_home_log_km",
                         "dist_home_missing", "login_history_log"), (), _location),
    _Family("device_novelty", ("device_age_log_h", "new_device_7d", "new_device",
                               "device_new_to_platform", "user_new_devices_7d"), (),
            _device_novelty),
    _Family("footprint", ("devices_log", "phones_log", "ips_log"), (), _footprint),
    _Family("application_velocity", ("user_apps_1h", "user_apps_24h", "user_apps_7d",
                                     "prev_apps_log"), ("user_applications",),
            _application_velocity),
    _Family("login_velocity", ("user_logins_24h", "user_logins_7d"), (), _login_velocity),
    _Family("tenure", ("user_unknown", "tenure_log_d"), (), _tenure),
    _Family("purchases", ("orders_log", "order_value_log", "spend_90d_log", "return_rate",
                          "bnpl_share", "merchants_log"), ("user_merchants",), _purchases),
    _Family("repayments", ("repaid_on_time_log", "repaid_late_log", "late_share",
                           "repaid_missed_log", "missed_share"), (), _repayments),
    _Family("contacts", ("contacts_log", "contacts_default_log", "contacts_default_share",
                         "contacts_fraud_log"), ("contacts",), _contacts),
    _Family("self_fraud", ("self_fraud_known",), (), _self_fraud),
    _Family("self_default", ("self_default_known",), (), _self_default),
    _Family("shared_device", (*_shared_columns("device"), "device_users_log",
                              "device_fraud_apps_log"), ("device", "user_devices"),
            _shared("device", "Device", _device_id, extra=True)),
    _Family("shared_phone", _shared_columns("phone"), ("user_phones",),
            _shared("phone", "Phone", _phone, extra=False)),
    _Family("shared_address", _shared_columns("address"), ("user_addresses",),
            _shared("address", "Address", _address, extra=False)),
    _Family("shared_ip", (*_shared_columns("ip"), "ip_users_log", "ip_fraud_apps_log"),
            ("ip", "user_ips"), _shared("ip", "IP", _ip, extra=True)),
    _Family("device_velocity", ("device_apps_24h", "device_apps_7d", "device_apps_log"), (),
            _entity_velocity("device", "Device", "DEVICE_APPLICATION_VELOCITY", _device_id)),
    _Family("ip_velocity", ("ip_apps_24h", "ip_apps_7d", "ip_apps_log"), (),
            _entity_velocity("ip", "IP", "IP_APPLICATION_VELOCITY", _ip)),
    _Family("device_os", tuple(f"device_os_{o}" for o in _DEVICE_OS), (), _device_os),
    _Family("ip_kind", tuple(f"ip_kind_{k}" for k in _IP_KINDS), (), _ip_kind),
    _Family("merchant_fraud", ("merchant_fraud_known",), (), _merchant_fraud),
    _Family("merchant_returns", ("merchant_orders_30d_log", "merchant_bnpl_share_30d",
                                 "merchant_returned_share_30d",
                                 "merchant_bnpl_returned_share_30d", "merchant_refund_rate"),
            (), _merchant_returns),
    _Family("merchant_sales", ("merchant_gmv_30d_log", "merchant_gmv_growth",
                               "merchant_inventory_turnover", "merchant_sales_spike",
                               "merchant_signals_missing"), (),
            _merchant_sales),
    _Family("merchant_profile", ("has_merchant", *(f"merchant_size_{s}" for s in
                                                   _MERCHANT_SIZES),
                                 "merchant_age_log_d", "merchant_buyers_log",
                                 "merchant_apps_log"),
            ("merchant", "merchant_applications", "merchant_buyers", "merchant_owner"),
            _merchant_profile),
    _Family("merchant_ownership", ("owns_merchant",), ("owned_merchants",),
            _merchant_ownership),
)
"""Every reason family: its root features, its relation groups and its renderer."""


def family_codes() -> dict[str, frozenset[str]]:
    """Per family of :data:`FAMILIES`, the reason codes its renderer can give.

    The renderers choose a code from the values they read; this finds the codes by rendering
    each family over its features' values (0, 1 and a large count on the ``log1p`` scale:
    every flag off and on, every count none, one and many; every combination for a family of
    up to six features, 729 seeded draws of them for a larger one), with either sign of
    weight; the application names a merchant unless the family's own ``has_merchant`` says
    not. What the fairness report reads to tell which reasons rest on location alone
    (:mod:`serving.backtest.location_reasons`).
    """
    import itertools
    import random

    facts = ApplicationFacts(
        application_id="a", product="merchant_loan", amount=1000.0, currency="CNY",
        user_id="u", device_id="dv", device_masked="****", ip="ip", lat=0.0, lon=0.0, ts=0,
        address_id="ad", phone_id="ph", merchant_id="m")
    grid = (0.0, 1.0, 6.5)
    out: dict[str, frozenset[str]] = {}
    for fam in FAMILIES:
        k = len(fam.features)
        if len(grid) ** k <= 729:
            points = list(itertools.product(grid, repeat=k))
        else:
            draw = random.Random(k)
            points = [tuple(draw.choice(grid) for _ in range(k)) for _ in range(729)]
        codes: set[str] = set()
        for point in points:
            # NOTE: a merchant family renders only for an application with a merchant
            raw = {"has_merchant": 1.0, **dict(zip(fam.features, point, strict=True))}
            values = _Values(raw, facts, {}, {})
            for weight in (1.0, -1.0):
                rendered = fam.render(values, weight)
                if rendered is not None:
                    codes.add(rendered[0])
        out[fam.name] = frozenset(codes)
    return out
