"""The application the approval flow sends to ``POST /v1/score``."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from serving.schemas.common import Amount, EntityId, IpAddress, Latitude, Longitude, PastTime
from graph.typing import PRODUCT_TERMS, Product


_LONGEST_TERM: Final = max(max(terms) for terms in PRODUCT_TERMS.values())


class Geo(BaseModel):
    """Where the application was made (device GPS or IP geolocation)."""

    model_config = ConfigDict(extra="forbid")

    lat: Latitude = Field(description="Latitude in degrees, -90 to 90.", examples=[31.2304])
    lon: Longitude = Field(description="Longitude in degrees, -180 to 180.",
                           examples=[121.4737])
    city: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None, description="City the client reports, for messages.", examples=["Shanghai"])


class ApplicationBase(BaseModel):
    """Fields of a loan application."""

    application_id: EntityId = Field(
        description="The caller's application id; the idempotency key: the same id with the "
        "same body returns the stored verdict, with a different body is a 409.",
        examples=["app-20251129-000123"])
    product: Product = Field(description="Credit product applied for.", examples=["bnpl"])
    amount: Amount = Field(
        description="Amount applied for, at least 0.01 and at most the product's maximum in "
                    "the policy.",
        examples=[1200.0])
    term_months: Annotated[int, Field(strict=True, ge=1, le=_LONGEST_TERM)] | None = Field(
        None, description="Loan term in monthly instalments, one of the product's: "
        + "; ".join(f"{p} {', '.join(map(str, t))}" for p, t in PRODUCT_TERMS.items())
        + ". When absent the product's longest term is assumed (scored and stored).",
        examples=[3])
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(
        description="ISO 4217 currency; must be the policy's currency.", examples=["CNY"])
    user_id: EntityId = Field(description="Platform user id of the applicant.",
                              examples=["u000123"])
    device_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="Device serial as the app reports it; keyed-hashed before any use.",
        examples=["a1b2c3d4-e5f6-4711-8899-aabbccddeeff"])
    ip: IpAddress = Field(
        description="IPv4 or IPv6 address; keyed-hashed before any use, only its network "
        "(/24 or /48) is stored in clear.", examples=["10.12.0.7"])
    geo: Geo = Field(description="Where the application was made.")
    address: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        None, description="Declared home address; keyed-hashed, never stored in clear.",
        examples=["上海市浦东新区世纪大道100号"])
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()\-]{5,24}$")] | None = Field(
        None, description="Contact phone number; keyed-hashed, never stored in clear.",
        examples=["+86 138 0013 8000"])
    merchant_id: EntityId | None = Field(
        None, description="Checkout merchant (required for bnpl) or the borrowing merchant "
        "(required for merchant_loan).", examples=["m00042"])
    applied_at: PastTime = Field(
        description="When the applicant submitted, ISO 8601 with offset; not before 2000, "
        "not more than 5 minutes in the future.", examples=["2025-11-29T08:15:00+08:00"])


class ApplicationCreate(ApplicationBase):
    """A loan application to score. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
