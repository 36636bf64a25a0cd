"""Behaviour events posted to ``POST /v1/events``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from serving.schemas.common import (
    Amount,
    DueTime,
    EntityId,
    IpAddress,
    Latitude,
    Longitude,
    Money,
    PastDay,
    PastTime,
)

Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: EntityId = Field(
        description="Unique id of the event, across every kind; resending it with the same "
        "body is reported in `duplicates`, with another body in `conflicts` (the first "
        "stands).", examples=["ev-login-000001"])


class LoginEventCreate(_Event):
    """A login: who, from which device, IP and place."""

    type: Literal["login"] = Field(description="Event kind.", examples=["login"])
    user_id: EntityId = Field(description="Platform user id.", examples=["u000123"])
    ts: PastTime = Field(description="When, ISO 8601 with offset; not in the future.",
                         examples=["2025-11-29T08:00:00+08:00"])
    device_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="Device serial; keyed-hashed before storage.",
        examples=["a1b2c3d4-e5f6-4711-8899-aabbccddeeff"])
    ip: IpAddress = Field(
        description="IPv4 or IPv6 address; keyed-hashed before any use, only its network "
        "(/24 or /48) is stored in clear.", examples=["10.12.0.7"])
    lat: Latitude = Field(description="Latitude of the login.", examples=[31.23])
    lon: Longitude = Field(description="Longitude of the login.", examples=[121.47])


class OrderEventCreate(_Event):
    """An order at a merchant."""

    type: Literal["order"] = Field(description="Event kind.", examples=["order"])
    user_id: EntityId = Field(description="Buyer.", examples=["u000123"])
    merchant_id: EntityId = Field(description="Merchant.", examples=["m00042"])
    ts: PastTime = Field(description="When, ISO 8601 with offset; not in the future.",
                         examples=["2025-11-29T08:05:00+08:00"])
    amount: Amount = Field(description="Order value.", examples=[299.0])
    category: Category = Field(description="Product category.", examples=["electronics"])
    bnpl: bool = Field(False, strict=True, description="Paid with BNPL credit.",
                       examples=[True])
    returned: bool = Field(False, strict=True, description="Returned or refunded.",
                           examples=[False])


class RepaymentEventCreate(_Event):
    """A repayment (or a missed one) on a funded application."""

    type: Literal["repayment"] = Field(description="Event kind.", examples=["repayment"])
    user_id: EntityId = Field(description="Borrower.", examples=["u000123"])
    application_id: EntityId = Field(description="The funded application.",
                                     examples=["app-20251001-000042"])
    ts: PastTime = Field(description="When it was paid or recorded missed; not in the "
                         "future.", examples=["2025-11-29T09:00:00+08:00"])
    due_at: DueTime = Field(description="When it falls or fell due; in the future for an "
                            "early repayment (at most 5 years ahead).",
                            examples=["2025-11-28T23:59:59+08:00"])
    amount: Money = Field(description="Amount repaid (0 when missed).", examples=[400.0])
    status: Literal["on_time", "late", "missed"] = Field(
        description="Outcome: on_time (paid by the ledger's due date, early included), late "
        "or missed (both recorded after due_at).", examples=["on_time"])

    @field_validator("status")
    @classmethod
    def _status_after_due(cls, value: str, info: ValidationInfo) -> str:
        # NOTE: a payment is late, or an instalment missed, only once it was due; an
        # on-time payment may come before the due date (early repayment) or within the
        # ledger's grace period after it, which the ledger knows and we do not.
        ts, due = info.data.get("ts"), info.data.get("due_at")
        if (value != "on_time" and isinstance(ts, datetime) and isinstance(due, datetime)
                and ts <= due):
            raise ValueError(f"a {value} repayment is recorded after due_at, so ts must be "
                             "later than due_at")
        return value


class MerchantSalesEventCreate(_Event):
    """A merchant's sales for one day."""

    type: Literal["merchant_sales"] = Field(description="Event kind.",
                                            examples=["merchant_sales"])
    merchant_id: EntityId = Field(description="Merchant.", examples=["m00042"])
    day: PastDay = Field(description="The day reported (UTC), ISO 8601; not after today.",
                         examples=["2025-11-28"])
    gmv: Money = Field(description="Gross merchandise value sold that day.",
                       examples=[18250.0])
    orders: int = Field(strict=True, ge=0, le=10_000_000, description="Orders that day.",
                        examples=[97])
    refunds: Money = Field(description="Value refunded that day.", examples=[820.0])
    inventory: Money = Field(description="Inventory value at the end of the day.",
                             examples=[120000.0])


Event = Annotated[
    LoginEventCreate | OrderEventCreate | RepaymentEventCreate | MerchantSalesEventCreate,
    Field(discriminator="type"),
]


class EventBatchCreate(BaseModel):
    """A batch of events, applied in order."""

    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(min_length=1, max_length=1000, description="1 to 1000 "
                                "events (the server may set a lower maximum).")


class EventBatchPublic(BaseModel):
    """What happened to a batch."""

    accepted: int = Field(description="Events accepted: durably queued (fsynced) and written "
                          "to the graph store in order, within milliseconds while it is up.",
                          examples=[250])
    duplicates: list[str] = Field(description="Event ids already accepted with the same body "
                                  "(ignored).", examples=[["ev-login-000001"]])
    conflicts: list[str] = Field(description="Event ids already accepted with a different "
                                 "body (ignored; the first one stands).", examples=[[]])
    checked: bool = Field(description="True when the ids were checked against the events "
                          "the store holds; false when it could not be read in time: a "
                          "conflict with an event it holds is then refused when the batch "
                          "is written, and logged and counted, not answered here.",
                          examples=[True])
    spooled: bool = Field(description="True when the store is unavailable: the batch waits in "
                          "the local spool until it is back.", examples=[False])
