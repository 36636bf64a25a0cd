"""Pure functions from accepted requests to the graph writes they cause (:data:`Op` lists).

Rows are checked against the schema here, before anything is written or spooled, so a spooled
write can never be rejected by the store for its shape. Identifiers of people (device serials,
IP addresses, addresses, phone numbers) are keyed-hashed here and nowhere later, and
coordinates coarsened (:func:`graph.privacy.coarsen`) as the bulk loader coarsens them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from graph import SCHEMA, Pseudonymiser, mask
from graph.privacy import coarsen
from graph.ingest import sales_report_id
from serving.schemas.application import ApplicationCreate
from serving.schemas.events import (
    LoginEventCreate,
    MerchantSalesEventCreate,
    OrderEventCreate,
    RepaymentEventCreate,
)
from serving.schemas.labels import LabelCreate
from serving.scoring import ApplicationFacts
from serving.writer import Op

AnyEvent = LoginEventCreate | OrderEventCreate | RepaymentEventCreate | MerchantSalesEventCreate


def epoch(value: datetime) -> int:
    """Epoch seconds of an aware datetime."""
    return int(value.timestamp())


def canonical_json(value: Mapping[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8: the same content always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def to_facts(app: ApplicationCreate, pseudonymiser: Pseudonymiser) -> ApplicationFacts:
    """The application as the scorer sees it: people's identifiers keyed-hashed."""
    return ApplicationFacts(
        application_id=app.application_id,
        product=app.product,
        amount=float(app.amount),
        currency=app.currency,
        user_id=app.user_id,
        device_id=pseudonymiser.hash("device", app.device_id),
        device_masked=mask("device", app.device_id),
        ip=pseudonymiser.hash("ip", app.ip),
        ip_masked=mask("ip", app.ip),
        lat=coarsen(app.geo.lat),
        lon=coarsen(app.geo.lon),
        ts=epoch(app.applied_at),
        city=app.geo.city,
        address_id=None if app.address is None else pseudonymiser.hash("address", app.address),
        phone_id=None if app.phone is None else pseudonymiser.hash("phone", app.phone),
        merchant_id=app.merchant_id,
        term_months=app.term_months,
    )


def canonical_request(facts: ApplicationFacts) -> dict[str, Any]:
    """The request in canonical form (hashed identifiers, epoch time); hashed for
    idempotency and kept in the audit trail."""
    return {
        "application_id": facts.application_id,
        "product": facts.product,
        "amount": facts.amount,
        "currency": facts.currency,
        "user_id": facts.user_id,
        "device_id": facts.device_id,
        "ip": facts.ip,
        "lat": facts.lat,
        "lon": facts.lon,
        "city": facts.city,
        "address_id": facts.address_id,
        "phone_id": facts.phone_id,
        "merchant_id": facts.merchant_id,
        "ts": facts.ts,
        # NOTE: only when stated, so a request without it hashes as it did before terms
        **({} if facts.term_months is None else {"term_months": facts.term_months}),
    }


def application_ops(facts: ApplicationFacts, verdict_row: Mapping[str, Any],
                    pseudonymiser: Pseudonymiser, app: ApplicationCreate) -> list[Op]:
    """Claim the verdict record, then write the application and its edges.

    The application's own writes run only once the ``Verdict`` record is this request's
    (see :func:`serving.writer.apply_ops`).
    """
    then: list[Op] = [
        _nodes("Application", [{
            "id": facts.application_id, "product": facts.product, "amount": facts.amount,
            "currency": facts.currency, "term_months": facts.term, "ts": facts.ts,
            "lat": facts.lat, "lon": facts.lon, "decision": str(verdict_row["decision"]),
        }]),
        _nodes("Device", [{"id": facts.device_id, "masked": facts.device_masked}]),
        _nodes("IP", [_ip_row(facts.ip, facts.ip_masked)]),
        _edges("APPLIED", [{"src": facts.user_id, "dst": facts.application_id,
                            "ts": facts.ts}]),
        _edges("APPLIED_ON", [{"src": facts.application_id, "dst": facts.device_id}]),
        _edges("APPLIED_FROM", [{"src": facts.application_id, "dst": facts.ip}]),
        _edges("USES", [{"src": facts.user_id, "dst": facts.device_id,
                         "last_seen": facts.ts}]),
    ]
    if facts.merchant_id is not None:
        # NOTE: the checkout merchant (BNPL) or the borrowing one, as the bulk loader writes it.
        then.append(_edges("APPLIED_AT", [{"src": facts.application_id,
                                           "dst": facts.merchant_id}]))
    # NOTE: a declared phone or address is known from the application on, not from always: a
    # ring member's must not reach the features of those who applied before it.
    if facts.address_id is not None and app.address is not None:
        then.append(_nodes("Address", [{"id": facts.address_id,
                                        "masked": mask("address", app.address)}]))
        then.append(_edges("LIVES_AT", [{"src": facts.user_id, "dst": facts.address_id,
                                         "since": facts.ts}]))
    if facts.phone_id is not None and app.phone is not None:
        then.append(_nodes("Phone", [{"id": facts.phone_id, "masked": mask("phone", app.phone)}]))
        then.append(_edges("HAS_PHONE", [{"src": facts.user_id, "dst": facts.phone_id,
                                          "since": facts.ts}]))
    if verdict_row["decision"] == "review":
        # NOTE: a review opens (or joins) a case: the item rides the verdict's durable write,
        # so it is stored exactly when the verdict's rows are; serving/cases.py puts it in
        # its ring's or user's case when investigators next read the queue.
        then.append(_nodes("CaseItem", [{
            "id": facts.application_id, "user_id": facts.user_id, "product": facts.product,
            "amount": facts.amount, "risk": float(verdict_row["fraud_probability"]),
            "decided_at": int(verdict_row["decided_at"])}]))
    SCHEMA.check_node_row("Verdict", verdict_row)
    return [{"op": "verdict", "row": dict(verdict_row), "then": then}]


def event_ops(events: Sequence[AnyEvent], pseudonymiser: Pseudonymiser,
              received_at: int) -> list[Op]:
    """One ``event`` op per behaviour event, in batch order: the ``EventRecord`` that claims
    its event id (with the hash of its body), then the writes it causes.

    The body hash is taken over those writes (identifiers already keyed-hashed, times as
    epoch seconds), so one event sent twice with its time written in two offsets is the same
    event, and nothing in the hash needs the identifiers in clear.
    """
    ops: list[Op] = []
    for ev in events:
        then = _event_writes(ev, pseudonymiser)
        row = {"id": ev.event_id, "type": ev.type, "received_at": received_at,
               "body_hash": sha256_hex(canonical_json({"type": ev.type, "writes": then}))}
        SCHEMA.check_node_row("EventRecord", row)
        ops.append({"op": "event", "row": row, "then": then})
    return ops


def _event_writes(ev: AnyEvent, pseudonymiser: Pseudonymiser) -> list[Op]:
    if isinstance(ev, LoginEventCreate):
        device = pseudonymiser.hash("device", ev.device_id)
        ip = pseudonymiser.hash("ip", ev.ip)
        return [
            _nodes("Device", [{"id": device, "masked": mask("device", ev.device_id)}]),
            _nodes("IP", [_ip_row(ip, mask("ip", ev.ip))]),
            _edges("LOGGED_IN_FROM", [{
                "src": ev.user_id, "dst": ip, "event_id": ev.event_id, "ts": epoch(ev.ts),
                "lat": coarsen(ev.lat), "lon": coarsen(ev.lon), "device_id": device}]),
            _edges("USES", [{"src": ev.user_id, "dst": device, "last_seen": epoch(ev.ts)}]),
        ]
    if isinstance(ev, OrderEventCreate):
        return [_edges("ORDERED_AT", [{
            "src": ev.user_id, "dst": ev.merchant_id, "event_id": ev.event_id,
            "ts": epoch(ev.ts), "amount": float(ev.amount), "category": ev.category,
            "bnpl": ev.bnpl, "returned": ev.returned}])]
    if isinstance(ev, RepaymentEventCreate):
        return [_edges("REPAID", [{
            "src": ev.user_id, "dst": ev.application_id, "event_id": ev.event_id,
            "ts": epoch(ev.ts), "due_ts": epoch(ev.due_at), "amount": float(ev.amount),
            "status": ev.status}])]
    day = int(datetime(ev.day.year, ev.day.month, ev.day.day, tzinfo=UTC).timestamp())
    # NOTE: one report per merchant and day, named as the bulk loader names it, so a
    # corrected report (another event id) replaces the first.
    report = sales_report_id(ev.merchant_id, day)
    return [
        _nodes("SalesReport", [{
            "id": report, "day": day, "gmv": float(ev.gmv), "orders": ev.orders,
            "refunds": float(ev.refunds), "inventory": float(ev.inventory)}]),
        _edges("REPORTED", [{"src": ev.merchant_id, "dst": report}]),
    ]


def label_ops(labels: Sequence[LabelCreate], received_at: int) -> list[Op]:
    """One idempotent ``label`` op per label event."""
    ops: list[Op] = []
    for lab in labels:
        body = lab.model_dump(mode="json")
        event = {
            "id": lab.event_id, "target_label": lab.entity_type, "target_id": lab.entity_id,
            "kind": lab.kind, "at": epoch(lab.at), "source": lab.source,
            "body_hash": sha256_hex(canonical_json(body)), "received_at": received_at,
        }
        SCHEMA.check_node_row("LabelEvent", event)
        ops.append({"op": "label", "event": event, "label": {
            "label": lab.entity_type, "id": lab.entity_id, "kind": lab.kind,
            "at": epoch(lab.at), "source": lab.source}})
    return ops


def _ip_row(ip_id: str, masked: str | None) -> dict[str, Any]:
    return {"id": ip_id} if masked is None else {"id": ip_id, "masked": masked}


def _nodes(label: str, rows: list[dict[str, Any]]) -> Op:
    for row in rows:
        SCHEMA.check_node_row(label, row)
    return {"op": "nodes", "label": label, "rows": rows}


def _edges(rel: str, rows: list[dict[str, Any]]) -> Op:
    for row in rows:
        SCHEMA.check_rel_row(rel, row)
    return {"op": "edges", "rel": rel, "rows": rows}
