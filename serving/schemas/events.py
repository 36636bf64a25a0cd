"""Behaviour events posted to ``POST /v1/events``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from serving.schemas.common import Amount, EntityId, Latitude, Longitude, Money, check_time

Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: EntityId = Field(description="Unique id of the event; resending it is a no-op.",
                               examples=["ev-login-000001"])


class LoginEventCreate(_Event):
    """A login: who, from which device, IP and place."""

    type: Literal["login"] = Field(description="Event kind.", examples=["login"])
    user_id: EntityId = Field(description="Platform user id.", examples=["u000123"])
    ts: AwareDatetime = Field(description="When, ISO 8601 with offset.",
                              examples=["2025-11-29T08:00:00+08:00"])
    device_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="Device serial; keyed-hashed before storage.",
        examples=["a1b2c3d4-e5f6-4711-8899-aabbccddeeff"])
    ip: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z.:_\-]{1,64}$")] = Field(
        description="IP address.", examples=["10.12.0.7"])
    lat: Latitude = Field(description="Latitude of the login.", examples=[31.23])
    lon: Longitude = Field(description="Longitude of the login.", examples=[121.47])

    _ts = field_validator("ts")(check_time)


class OrderEventCreate(_Event):
    """An order at a merchant."""

    type: Literal["order"] = Field(description="Event kind.", examples=["order"])
    user_id: EntityId = Field(description="Buyer.", examples=["u000123"])
    merchant_id: EntityId = Field(description="Merchant.", examples=["m00042"])
    ts: AwareDatetime = Field(description="When, ISO 8601 with offset.",
                              examples=["2025-11-29T08:05:00+08:00"])
    amount: Amount = Field(description="Order value.", examples=[299.0])
    category: Category = Field(description="Product category.", examples=["electronics"])
    bnpl: bool = Field(False, strict=True, description="Paid with BNPL credit.",
                       examples=[True])
    returned: bool = Field(False, strict=True, description="Returned or refunded.",
                           examples=[False])

    _ts = field_validator("ts")(check_time)


class RepaymentEventCreate(_Event):
    """A repayment (or a missed one) on a funded application."""

    type: Literal["repayment"] = Field(description="Event kind.", examples=["repayment"])
    user_id: EntityId = Field(description="Borrower.", examples=["u000123"])
    application_id: EntityId = Field(description="The funded application.",
                                     examples=["app-20251001-000042"])
    ts: AwareDatetime = Field(description="When it was paid or recorded missed.",
                              examples=["2025-11-29T09:00:00+08:00"])
    due_at: AwareDatetime = Field(description="When it was due.",
                                  examples=["2025-11-28T23:59:59+08:00"])
    amount: Money = Field(description="Amount repaid (0 when missed).", examples=[400.0])
    status: Literal["on_time", "late", "missed"] = Field(description="Outcome.",
                                                         examples=["on_time"])

    _ts = field_validator("ts", "due_at")(check_time)


class MerchantSalesEventCreate(_Event):
    """A merchant's sales for one day."""

    type: Literal["merchant_sales"] = Field(description="Event kind.",
                                            examples=["merchant_sales"])
    merchant_id: EntityId = Field(description="Merchant.", examples=["m00042"])
    day: date = Field(description="The day reported (UTC).", examples=["2025-11-28"])
    gmv: Money = Field(description="Gross merchandise value sold that day.",
                       examples=[18250.0])
    orders: int = Field(strict=True, ge=0, le=10_000_000, description="Orders that day.",
                        examples=[97])
    refunds: Money = Field(description="Value refunded that day.", examples=[820.0])
    inventory: Money = Field(description="Inventory value at the end of the day.",
                             examples=[120000.0])

    @field_validator("day")
    @classmethod
    def _day_in_range(cls, value: date) -> date:
        if value < date(2000, 1, 1) or value > date.today().replace(year=date.today().year + 1):
            raise ValueError("must be a day between 2000-01-01 and a year from now")
        return value


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
    spooled: bool = Field(description="True when the store is unavailable: the batch waits in "
                          "the local spool until it is back.", examples=[False])
