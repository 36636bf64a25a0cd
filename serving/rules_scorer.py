"""`RulesScorer`: a transparent points model over live graph evidence.

This is a real scorer, not a stand-in: every point it adds comes from a fact read from the
store (who shares this device, phone or address and how many of them are confirmed fraud or in
default; where this user usually logs in, lives and how much it usually spends; whether this
device is new to the account), and every point is a reason with its evidence. It is what the
service runs until the GNN pipeline (``gnn/``: kernel features -> neighbourhood sampling ->
model) is promoted in the model registry, and it stays useful as the explainable baseline the
GNN is compared with. Its probabilities are log-odds sums through a logistic, not calibrated on
outcomes: the weights below are expert priors, documented here and in docs/API.md.

Fraud log-odds, starting from ``logit(0.01)``:

============================  =======  ================================================
signal                        points   when
============================  =======  ================================================
SELF_CONFIRMED_FRAUD          +8.0     the applicant is confirmed fraud
SHARED_ENTITY_FRAUD           +2.0     per confirmed-fraud account sharing a device, phone
                                       or address (at most 3 counted)
SHARED_ENTITY_DENSE           +1.0     a device or phone with >= 3 other accounts, an
                                       address with >= 5 (hubs above 30 ignored)
ATO_NEW_DEVICE                +0.8     device never used by an account with history
ATO_FAR_LOCATION (_FROM_*)    +1.5     >= 300 km from the usual login area and from home
                                       (or from the one of them that is known)
ATO_AMOUNT_SPIKE              +1.5/2   amount >= 5x / >= 10x the median of the user's past
                                       orders and applications (at least 2 of them)
ATO_PATTERN                   +1.5     all three at once on an account >= 90 days old
APPLICATION_VELOCITY          +0.8     per earlier application in the last 24 h (max 3)
THIN_FILE                     +0.5     account <= 30 days old with <= 2 orders
RISKY_IP / EMULATOR_DEVICE    +1.0/1.5 datacenter IP / emulator device
MERCHANT_CONFIRMED_FRAUD      +3.0     checkout or borrowing merchant confirmed fraud
MERCHANT_HIGH_REFUNDS         +1.0     >= 30 % of the merchant's sampled orders returned
MERCHANT_SALES_SPIKE          +1.5     merchant loan: last 7 days >= 3x earlier average
MERCHANT_NOT_OWNED            +2.0     merchant loan for a merchant the user does not own
============================  =======  ================================================

Default log-odds start from the product's base rate and add: SELF_DEFAULT +4, LATE_REPAYMENTS
+3 x late share + 0.5 per missed (max 3), CONTACT_DEFAULT +0.8 per contact in default (max 3),
HIGH_RETURN_RATE +0.5, THIN_FILE +0.4; GOOD_REPAYMENT_HISTORY -0.7 and ESTABLISHED_CUSTOMER
-0.3 in the applicant's favour. Only labels known at the application time count (no leakage
when historical applications are rescored).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from graph import (
    GraphError,
    GraphNode,
    GraphStore,
    SharedAccount,
    StoreError,
    StoreUnavailableError,
    Subgraph,
)
from graph.typing import NodeType
from serving.scoring import (
    ApplicationFacts,
    Evidence,
    FeatureValue,
    Product,
    ScoreResult,
    Signal,
)

if TYPE_CHECKING:
    from serving.live_graph import LiveGraph

MODEL_VERSION: Final = "rules-1.0"
DAY: Final = 86_400
EARTH_RADIUS_KM: Final = 6371.0088

FRAUD_BASE: Final = math.log(0.01 / 0.99)
PD_BASE: Final[dict[Product, float]] = {
    "bnpl": math.log(0.04 / 0.96),
    "cash_loan": math.log(0.05 / 0.95),
    "merchant_loan": math.log(0.05 / 0.95),
    "sme_owner_loan": math.log(0.06 / 0.94),
}
SHARED_MIN_ACCOUNTS: Final[dict[str, int]] = {"Device": 3, "Phone": 3, "Address": 5}
HUB_ACCOUNTS: Final = 30
FAR_KM: Final = 300.0
SPIKE_RATIO: Final = 5.0
BIG_SPIKE_RATIO: Final = 10.0
MIN_HISTORY: Final = 3
MIN_AMOUNTS: Final = 2
ATO_MIN_TENURE_DAYS: Final = 90
RISKY_IP_KINDS: Final = frozenset({"datacenter"})
SHARED_BY: Final[dict[str, str]] = {"USES": "Device", "HAS_PHONE": "Phone", "LIVES_AT": "Address"}
"""Relationships through which other accounts count as sharing an entity (IPs: hubs)."""


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _num(props: Mapping[str, Any], name: str) -> float | None:
    value = props.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _known_by(props: Mapping[str, Any], prefix: str, ts: int) -> bool:
    """Whether a label (``fraud`` / ``default``) was known at ``ts``; no time means known."""
    at = _num(props, f"{prefix}_label_at")
    return at is None or at <= ts


def _is_fraud(props: Mapping[str, Any], ts: int) -> bool:
    return props.get("fraud_label") == "fraud" and _known_by(props, "fraud", ts)


def _is_default(props: Mapping[str, Any], ts: int) -> bool:
    return props.get("default_label") is True and _known_by(props, "default", ts)


@dataclass
class UserContext:
    """What the store says about an applicant before this application (plain values)."""

    user: Mapping[str, Any] | None = None
    known_devices: set[str] = field(default_factory=set)
    logins: list[tuple[int, float, float, str]] = field(default_factory=list)
    ip_city: dict[str, str] = field(default_factory=dict)
    orders: list[tuple[int, float, bool]] = field(default_factory=list)
    applications: list[tuple[int, float]] = field(default_factory=list)
    repayments: list[str] = field(default_factory=list)
    contacts: list[Mapping[str, Any]] = field(default_factory=list)
    owned_merchants: list[str] = field(default_factory=list)
    device: GraphNode | None = None
    device_users: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    shared: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = field(default_factory=dict)
    display: dict[tuple[str, str], str] = field(default_factory=dict)
    ip: GraphNode | None = None
    merchant: GraphNode | None = None
    merchant_orders: list[bool] = field(default_factory=list)
    merchant_sales: list[tuple[int, float]] = field(default_factory=list)
    merchant_owner_ids: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class MerchantEvidence:
    """What a verdict reads about a merchant, as of the application time.

    Args:
        node (GraphNode): the merchant with its properties (labels, masked name).
        orders (list[bool]): for each sampled earlier order (newest first), returned or not.
        sales (list[tuple[int, float]]): ``(day, gmv)`` of the daily reports before the
            application (the last 60 days).
        owners (set[str]): users who own the merchant.
    """

    node: GraphNode
    orders: list[bool]
    sales: list[tuple[int, float]]
    owners: set[str]


def merchant_from_subgraph(sub: Subgraph, before_ts: int) -> MerchantEvidence:
    """:class:`MerchantEvidence` from a merchant's one-hop neighbourhood."""
    reports = {n.id: n.properties for n in sub.nodes if n.label == "SalesReport"}
    orders: list[tuple[float, bool]] = []
    sales: list[tuple[int, float]] = []
    owners: set[str] = set()
    for e in sub.edges:
        if e.type == "ORDERED_AT" and e.dst == sub.seed.id:
            ts = _num(e.properties, "ts")
            if ts is None or ts < before_ts:
                orders.append((ts or 0.0, e.properties.get("returned") is True))
        elif e.type == "REPORTED" and e.src == sub.seed.id:
            rep = reports.get(e.dst, {})
            day, gmv = _num(rep, "day"), _num(rep, "gmv")
            if day is not None and gmv is not None and before_ts - 60 * DAY <= day < before_ts:
                sales.append((int(day), gmv))
        elif e.type == "OWNS" and e.dst == sub.seed.id:
            owners.add(e.src)
    orders.sort(key=lambda o: -o[0])
    return MerchantEvidence(sub.seed, [r for _, r in orders], sales, owners)


class RulesScorer:
    """Scores an application from live graph evidence with documented points (see module).

    Args:
        live (LiveGraph, optional): the in-memory graph to read (milliseconds per verdict,
            available while the store is down); without it every verdict reads the store
            (exact across replicas, tens of milliseconds). (default: ``None``)
        fanout (int, optional): neighbours read per entity from the store; bounds the work
            per verdict. (default: ``200``)
        shared_limit (int, optional): accounts read through shared entities. (default: ``200``)
    """

    def __init__(self, live: LiveGraph | None = None, *, fanout: int = 200,
                 shared_limit: int = 200) -> None:
        if fanout <= 0 or shared_limit <= 0:
            raise ValueError(f"fanout and shared_limit must be positive, got "
                             f"{fanout}, {shared_limit}")
        self.live = live
        self.fanout = fanout
        self.shared_limit = shared_limit

    def __repr__(self) -> str:
        source = "memory" if self.live is not None else "store"
        return (f"RulesScorer(source={source!r}, fanout={self.fanout}, "
                f"shared_limit={self.shared_limit})")

    @property
    def model_version(self) -> str:
        return MODEL_VERSION

    def ready(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release: the in-memory graph belongs to the runtime."""

    def score(self, application: ApplicationFacts, store: GraphStore | None) -> ScoreResult:
        """Score from the in-memory graph when the scorer has one (whether or not the store
        answers), else from the store, else (degraded, no store) from the request alone."""
        if self.live is not None:
            ctx = self.gather(application, self.live)
            return self.evaluate(application, ctx, graph_version=self.live.version)
        if store is None:
            return self.evaluate(application, None, graph_version="none")
        ctx = self.gather(application, StoreEvidence(store, self.fanout, self.shared_limit))
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return self.evaluate(application, ctx, graph_version=f"live:{store.backend}@{stamp}")

    # -- reading the evidence -----------------------------------------------------------------
    def gather(self, app: ApplicationFacts, source: EvidenceSource) -> UserContext:
        """Read what the verdict needs: the user's one-hop neighbourhood, who else uses its
        devices, phones and addresses (and the application's), the IP and the merchant."""
        ctx = UserContext()
        user_sub = source.user_subgraph(app.user_id)
        linked: set[tuple[str, str]] = set()
        if user_sub is not None:
            self._read_user(app, user_sub, ctx)
            linked.update((SHARED_BY[e.type], e.dst) for e in user_sub.edges
                          if e.type in SHARED_BY and e.src == app.user_id)
        extra = {(label, entity) for label, entity in (
            ("Device", app.device_id), ("Phone", app.phone_id), ("Address", app.address_id))
            if entity is not None and (label, entity) not in linked}
        shared = source.shared_accounts(app.user_id, sorted(linked), sorted(extra))
        for acc in shared:
            props: dict[str, Any] = {}
            if acc.fraud_label is not None:
                props["fraud_label"] = acc.fraud_label
            if acc.default_label is not None:
                props["default_label"] = acc.default_label
            ctx.shared.setdefault((acc.via_label, acc.via_id), {}).setdefault(acc.user_id, props)
        ctx.device_users = dict(ctx.shared.get(("Device", app.device_id), {}))
        ctx.device = source.node("Device", app.device_id)
        for label, entity in ctx.shared:
            node = ctx.device if (label, entity) == ("Device", app.device_id) else \
                source.node(label, entity)
            masked = node.properties.get("masked") if node is not None else None
            if masked is None and (label, entity) == ("Device", app.device_id):
                masked = app.device_masked
            ctx.display[(label, entity)] = str(masked or entity[:12])
        ctx.ip = source.node("IP", app.ip)
        merchant_id = app.merchant_id
        if merchant_id is None and app.product == "sme_owner_loan" and ctx.owned_merchants:
            merchant_id = sorted(ctx.owned_merchants)[0]
        if merchant_id is not None:
            merchant = source.merchant_evidence(merchant_id, app.ts)
            if merchant is not None:
                ctx.merchant = merchant.node
                ctx.merchant_orders = merchant.orders
                ctx.merchant_sales = merchant.sales
                ctx.merchant_owner_ids = merchant.owners
        return ctx

    @staticmethod
    def _read_user(app: ApplicationFacts, sub: Subgraph, ctx: UserContext) -> None:
        ctx.user = sub.seed.properties
        nodes = {(n.label, n.id): n.properties for n in sub.nodes}
        for (label, node_id), props in nodes.items():
            if label == "IP" and isinstance(props.get("city"), str):
                ctx.ip_city[node_id] = props["city"]
        for e in sub.edges:
            p = e.properties
            ts = _num(p, "ts")
            if ts is not None and ts >= app.ts:
                continue  # after the application: not known when it was made
            if e.type == "USES" and e.src == app.user_id:
                ctx.known_devices.add(e.dst)
            elif e.type == "LOGGED_IN_FROM" and e.src == app.user_id:
                lat, lon = _num(p, "lat"), _num(p, "lon")
                if lat is None or lon is None:
                    ip = nodes.get(("IP", e.dst), {})
                    lat, lon = _num(ip, "lat"), _num(ip, "lon")
                if lat is not None and lon is not None and ts is not None:
                    ctx.logins.append((int(ts), lat, lon, e.dst))
                device = p.get("device_id")
                if isinstance(device, str) and device:
                    ctx.known_devices.add(device)
            elif e.type == "ORDERED_AT" and e.src == app.user_id:
                amount = _num(p, "amount")
                if amount is not None and ts is not None:
                    ctx.orders.append((int(ts), amount, p.get("returned") is True))
            elif e.type == "APPLIED" and e.src == app.user_id and e.dst != app.application_id:
                props = nodes.get(("Application", e.dst), {})
                at = _num(props, "ts") or ts
                amount = _num(props, "amount")
                if at is not None and at < app.ts and amount is not None:
                    ctx.applications.append((int(at), amount))
            elif e.type == "REPAID" and e.src == app.user_id:
                status = p.get("status")
                if isinstance(status, str):
                    ctx.repayments.append(status)
            elif e.type == "CONTACT":
                other = e.dst if e.src == app.user_id else e.src
                if other != app.user_id:
                    ctx.contacts.append(nodes.get(("User", other), {}))
            elif e.type == "OWNS" and e.src == app.user_id:
                ctx.owned_merchants.append(e.dst)

    # -- turning facts into scores ------------------------------------------------------------
    def evaluate(self, app: ApplicationFacts, ctx: UserContext | None, *,
                 graph_version: str) -> ScoreResult:
        """The points model on gathered facts; ``ctx`` ``None`` means no graph (degraded)."""
        fraud: list[Signal] = []
        credit: list[Signal] = []
        features: dict[str, FeatureValue] = {"degraded": ctx is None}
        if ctx is None:
            return ScoreResult(_sigmoid(FRAUD_BASE), _sigmoid(PD_BASE[app.product]), features,
                               (), MODEL_VERSION, graph_version)
        user = ctx.user or {}
        created = _num(user, "created_at")
        tenure_days = max(0.0, (app.ts - created) / DAY) if created is not None else 0.0
        features.update(
            known_user=ctx.user is not None,
            tenure_days=round(tenure_days, 2),
            order_count=len(ctx.orders),
            login_count=len(ctx.logins),
            application_count=len(ctx.applications),
            repayment_count=len(ctx.repayments),
            known_devices=len(ctx.known_devices),
        )
        user_ev = ("User", app.user_id, app.user_id)
        app_ev = ("Application", app.application_id, app.city or f"{app.lat:.2f},{app.lon:.2f}")

        # -- the applicant's own labels
        if _is_fraud(user, app.ts):
            fraud.append(Signal("SELF_CONFIRMED_FRAUD", 8.0,
                                Evidence(*user_ev, "confirmed_fraud", 1.0),
                                {"user": app.user_id,
                                 "source": str(user.get("fraud_label_source") or "unknown")}))
        if _is_default(user, app.ts):
            credit.append(Signal("SELF_DEFAULT", 4.0, Evidence(*user_ev, "defaulted", 1.0),
                                 {"user": app.user_id}))

        # -- shared entities
        shared_total: set[str] = set()
        shared_fraud = shared_default = 0
        fraud_points_left = 3
        for (label, node_id), users in sorted(ctx.shared.items()):
            n = len(users)
            frauds = sum(_is_fraud(p, app.ts) for p in users.values())
            defaults = sum(_is_default(p, app.ts) for p in users.values())
            shared_total.update(users)
            shared_fraud += frauds
            shared_default += defaults
            ev = Evidence(label, node_id, ctx.display.get((label, node_id), node_id[:12]),
                          "shared_accounts", float(n), float(SHARED_MIN_ACCOUNTS[label]))
            hub = n > HUB_ACCOUNTS
            if frauds and (not hub or frauds / n >= 0.05):
                counted = min(frauds, fraud_points_left)
                fraud_points_left -= counted
                fraud.append(Signal("SHARED_ENTITY_FRAUD", 2.0 * max(counted, 0.5), ev,
                                    {"accounts": n, "fraud": frauds}))
            elif not hub and n >= SHARED_MIN_ACCOUNTS[label]:
                fraud.append(Signal("SHARED_ENTITY_DENSE", 1.0, ev, {"accounts": n}))
        features.update(shared_accounts=len(shared_total), shared_fraud=shared_fraud,
                        shared_default=shared_default,
                        device_accounts=len(ctx.device_users))

        # -- account takeover: device, place, amount
        has_history = bool(ctx.logins or ctx.orders or ctx.known_devices)
        new_device = has_history and app.device_id not in ctx.known_devices
        features["new_device"] = new_device
        if new_device:
            fraud.append(Signal("ATO_NEW_DEVICE", 0.8,
                                Evidence("Device", app.device_id, app.device_masked,
                                         "known_devices", float(len(ctx.known_devices))),
                                {"known": len(ctx.known_devices)}))
        km_usual = km_home = None
        usual_city = "unknown"
        if len(ctx.logins) >= MIN_HISTORY:
            lat = statistics.median(x[1] for x in ctx.logins)
            lon = statistics.median(x[2] for x in ctx.logins)
            km_usual = haversine_km(app.lat, app.lon, lat, lon)
            cities = Counter(ctx.ip_city[x[3]] for x in ctx.logins if x[3] in ctx.ip_city)
            if cities:
                usual_city = cities.most_common(1)[0][0]
        home_lat, home_lon = _num(user, "home_lat"), _num(user, "home_lon")
        if home_lat is not None and home_lon is not None:
            km_home = haversine_km(app.lat, app.lon, home_lat, home_lon)
        features.update(km_from_usual_login=None if km_usual is None else round(km_usual, 1),
                        km_from_home=None if km_home is None else round(km_home, 1))
        far = (km_usual is not None or km_home is not None) and all(
            k is None or k >= FAR_KM for k in (km_usual, km_home))
        features["far_location"] = far
        if far:
            place = {"city": app.city or f"({app.lat:.2f}, {app.lon:.2f})",
                     "usual_city": usual_city, "km_usual": km_usual,
                     "home_city": str(user.get("home_city") or "unknown"), "km_home": km_home}
            if km_usual is not None and km_home is not None:
                code, km = "ATO_FAR_LOCATION", km_usual
            elif km_usual is not None:
                code, km = "ATO_FAR_FROM_USUAL", km_usual
            else:
                assert km_home is not None
                code, km = "ATO_FAR_FROM_HOME", km_home
            fraud.append(Signal(code, 1.5, Evidence(*app_ev, "km_from_usual_location",
                                                    round(km, 1), FAR_KM), place))
        history = [a for _, a, _ in ctx.orders] + [a for _, a in ctx.applications]
        ratio = None
        if len(history) >= MIN_AMOUNTS:
            median = statistics.median(history)
            if median > 0:
                ratio = app.amount / median
                if ratio >= SPIKE_RATIO:
                    fraud.append(Signal(
                        "ATO_AMOUNT_SPIKE", 2.0 if ratio >= BIG_SPIKE_RATIO else 1.5,
                        Evidence(*app_ev, "amount_to_median", round(ratio, 2), SPIKE_RATIO),
                        {"amount": app.amount, "currency": app.currency, "ratio": ratio,
                         "median": median, "history": len(history)}))
        features["amount_to_median"] = None if ratio is None else round(ratio, 3)
        spike = ratio is not None and ratio >= SPIKE_RATIO
        if new_device and far and spike and tenure_days >= ATO_MIN_TENURE_DAYS:
            fraud.append(Signal("ATO_PATTERN", 1.5,
                                Evidence(*user_ev, "tenure_days", round(tenure_days, 1)),
                                {"tenure_days": tenure_days}))

        # -- velocity, thin file, device and IP
        recent = sum(1 for t, _ in ctx.applications if app.ts - t <= DAY)
        features["applications_24h"] = recent
        if recent >= 1:
            fraud.append(Signal("APPLICATION_VELOCITY", 0.8 * min(recent, 3),
                                Evidence(*user_ev, "applications_24h", float(recent)),
                                {"count": recent}))
        very_thin = tenure_days <= 30 and len(ctx.orders) <= 2
        if very_thin:
            thin = Evidence(*user_ev, "tenure_days", round(tenure_days, 1), 30.0)
            params: dict[str, FeatureValue] = {"tenure_days": tenure_days,
                                               "orders": len(ctx.orders)}
            fraud.append(Signal("THIN_FILE", 0.5, thin, params))
            credit.append(Signal("THIN_FILE", 0.4, thin, params))
        if ctx.device is not None and ctx.device.properties.get("os") == "emulator":
            fraud.append(Signal("EMULATOR_DEVICE", 1.5,
                                Evidence("Device", app.device_id, app.device_masked, "emulator",
                                         1.0), {}))
        if ctx.ip is not None and ctx.ip.properties.get("kind") in RISKY_IP_KINDS:
            kind = str(ctx.ip.properties["kind"])
            fraud.append(Signal("RISKY_IP", 1.0, Evidence("IP", app.ip, app.ip, "ip_kind", 1.0),
                                {"ip_kind": kind}))

        # -- merchant
        self._merchant_signals(app, ctx, fraud, features)

        # -- credit behaviour
        late = sum(1 for s in ctx.repayments if s in ("late", "missed"))
        missed = sum(1 for s in ctx.repayments if s == "missed")
        total = len(ctx.repayments)
        features.update(late_repayments=late, missed_repayments=missed)
        if late:
            credit.append(Signal("LATE_REPAYMENTS", 3.0 * late / total + 0.5 * min(missed, 3),
                                 Evidence(*user_ev, "late_repayments", float(late),
                                          float(total)),
                                 {"late": late, "total": total}))
        elif total >= 3:
            credit.append(Signal("GOOD_REPAYMENT_HISTORY", -0.7,
                                 Evidence(*user_ev, "on_time_repayments", float(total)),
                                 {"on_time": total}))
        defaulted = sum(_is_default(c, app.ts) for c in ctx.contacts)
        features.update(contacts=len(ctx.contacts), contacts_in_default=defaulted)
        if defaulted:
            credit.append(Signal("CONTACT_DEFAULT", 0.8 * min(defaulted, 3),
                                 Evidence(*user_ev, "contacts_in_default", float(defaulted),
                                          float(len(ctx.contacts))),
                                 {"defaulted": defaulted, "contacts": len(ctx.contacts)}))
        returned = sum(1 for _, _, r in ctx.orders if r)
        if len(ctx.orders) >= 4 and returned / len(ctx.orders) >= 0.5:
            credit.append(Signal("HIGH_RETURN_RATE", 0.5,
                                 Evidence(*user_ev, "return_rate",
                                          round(returned / len(ctx.orders), 3), 0.5),
                                 {"returned": returned, "orders": len(ctx.orders),
                                  "rate": returned / len(ctx.orders)}))
        if tenure_days >= 365 and len(ctx.orders) >= 10:
            credit.append(Signal("ESTABLISHED_CUSTOMER", -0.3,
                                 Evidence(*user_ev, "tenure_days", round(tenure_days, 1)),
                                 {"tenure_days": tenure_days, "orders": len(ctx.orders)}))
        recent_spend = sum(a for t, a, _ in ctx.orders if app.ts - t <= 90 * DAY)
        features["monthly_spend"] = round(recent_spend / 3.0, 2)

        fraud_logit = FRAUD_BASE + sum(s.weight for s in fraud)
        pd_logit = PD_BASE[app.product] + sum(s.weight for s in credit)
        if not any(s.weight > 0 for s in fraud + credit):
            fraud.append(Signal("NO_ADVERSE_SIGNALS", -0.0,
                                Evidence(*user_ev, "shared_accounts_confirmed_fraud", 0.0),
                                {"shared": len(shared_total)}))
        signals = tuple(sorted(fraud + credit, key=lambda s: -abs(s.weight)))
        return ScoreResult(_sigmoid(fraud_logit), _sigmoid(pd_logit), features, signals,
                           MODEL_VERSION, graph_version)

    @staticmethod
    def _merchant_signals(app: ApplicationFacts, ctx: UserContext, fraud: list[Signal],
                          features: dict[str, FeatureValue]) -> None:
        if ctx.merchant is None:
            return
        m = ctx.merchant
        display = str(m.properties.get("name_masked") or m.id)
        ev = ("Merchant", m.id, display)
        if _is_fraud(m.properties, app.ts):
            fraud.append(Signal("MERCHANT_CONFIRMED_FRAUD", 3.0,
                                Evidence(*ev, "confirmed_fraud", 1.0), {}))
        orders = len(ctx.merchant_orders)
        returned = sum(ctx.merchant_orders)
        features.update(merchant_orders_sampled=orders, merchant_returned=returned)
        if orders >= 10 and returned / orders >= 0.3:
            fraud.append(Signal("MERCHANT_HIGH_REFUNDS", 1.0,
                                Evidence(*ev, "refund_rate", round(returned / orders, 3), 0.3),
                                {"returned": returned, "orders": orders,
                                 "rate": returned / orders}))
        last30 = [g for d, g in ctx.merchant_sales if app.ts - d <= 30 * DAY]
        features["monthly_gmv"] = round(sum(last30), 2)
        if app.product != "merchant_loan":
            return
        if app.user_id not in ctx.merchant_owner_ids:
            fraud.append(Signal("MERCHANT_NOT_OWNED", 2.0, Evidence(*ev, "owned", 0.0), {}))
        recent = [g for d, g in ctx.merchant_sales if app.ts - d <= 7 * DAY]
        earlier = [g for d, g in ctx.merchant_sales if 7 * DAY < app.ts - d <= 37 * DAY]
        if len(recent) >= 3 and len(earlier) >= 7:
            before = statistics.fmean(earlier)
            if before > 0:
                growth = statistics.fmean(recent) / before
                features["sales_growth_7d"] = round(growth, 3)
                if growth >= 3.0:
                    fraud.append(Signal("MERCHANT_SALES_SPIKE", 1.5,
                                        Evidence(*ev, "sales_growth_7d", round(growth, 2), 3.0),
                                        {"ratio": growth}))


class EvidenceSource(Protocol):
    """The reads :meth:`RulesScorer.gather` makes; a store or the in-memory graph."""

    def user_subgraph(self, user_id: str) -> Subgraph | None: ...

    def shared_accounts(self, user_id: str, linked: Sequence[tuple[NodeType, str]],
                        extra: Sequence[tuple[NodeType, str]]) -> list[SharedAccount]:
        """Other users of the entities the user is ``linked`` to and of ``extra`` ones."""
        ...

    def node(self, label: NodeType, node_id: str) -> GraphNode | None: ...

    def merchant_evidence(self, merchant_id: str, before_ts: int
                          ) -> MerchantEvidence | None: ...


class StoreEvidence:
    """:class:`EvidenceSource` over a :class:`graph.GraphStore` (one-hop neighbourhoods)."""

    def __init__(self, store: GraphStore, fanout: int, shared_limit: int) -> None:
        self.store = store
        self.fanout = fanout
        self.shared_limit = shared_limit

    def user_subgraph(self, user_id: str) -> Subgraph | None:
        return _try_neighbourhood(self.store, "User", user_id, self.fanout)

    def shared_accounts(self, user_id: str, linked: Sequence[tuple[NodeType, str]],
                        extra: Sequence[tuple[NodeType, str]]) -> list[SharedAccount]:
        rows = []
        if linked:
            wanted = set(linked)
            rows = [r for r in self.store.shared_accounts(
                user_id, via=tuple(SHARED_BY.values()), limit=self.shared_limit)
                if (r.via_label, r.via_id) in wanted]
        for label, node_id in extra:
            sub = _try_neighbourhood(self.store, label, node_id, self.fanout)
            if sub is None:
                continue
            for n in sub.nodes:
                if n.label == "User" and n.id != user_id:
                    rows.append(SharedAccount(label, node_id, n.id, n.properties.get(
                        "fraud_label"), n.properties.get("default_label")))
        return rows

    def node(self, label: NodeType, node_id: str) -> GraphNode | None:
        return self.store.get_node(label, node_id)

    def merchant_evidence(self, merchant_id: str, before_ts: int
                          ) -> MerchantEvidence | None:
        sub = _try_neighbourhood(self.store, "Merchant", merchant_id, self.fanout)
        return None if sub is None else merchant_from_subgraph(sub, before_ts)


def _try_neighbourhood(store: GraphStore, label: str, node_id: str,
                       fanout: int) -> Subgraph | None:
    """The 1-hop neighbourhood, or ``None`` when the node does not exist."""
    try:
        return store.neighbourhood(label, node_id, hops=1, fanout=fanout)
    except (StoreUnavailableError, StoreError):
        raise
    except GraphError:
        # NOTE: GraphStore.neighbourhood raises a plain GraphError for a missing seed.
        return None
