"""Bounded field types shared by the schemas."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Final

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints

EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)
MAX_DUE_AHEAD: Final = timedelta(days=5 * 366)
"""How far ahead a repayment may fall due: the longest loan term the products offer."""
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
_ISO_TIME: Final = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_ISO_DAY: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")

EntityId = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]
"""An id the platform assigns (user, application, merchant, event): 1-64 safe characters."""

Amount = Annotated[float, Field(strict=True, ge=0.01, le=1e9, allow_inf_nan=False)]
"""An amount applied for or paid: at least 0.01, the least a payment carries (a value below it
is a client's unit or rounding error, not an amount)."""
Money = Annotated[float, Field(strict=True, ge=0, le=1e12, allow_inf_nan=False)]
Latitude = Annotated[float, Field(strict=True, ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(strict=True, ge=-180, le=180, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, le=1)]


def _iso_time_text(value: object) -> object:
    # NOTE: pydantic also reads epoch numbers ("1732838400", 1732838400) as times; a lending
    # event's time is sent as ISO 8601 with an offset, and a number is far more often a
    # bug (milliseconds for seconds, a local epoch) than a time.
    if not isinstance(value, str) or not _ISO_TIME.match(value):
        raise ValueError("must be an ISO 8601 time with a UTC offset, "
                         "e.g. 2025-11-29T08:15:00+08:00")
    return value


def _iso_day_text(value: object) -> object:
    if not isinstance(value, str) or not _ISO_DAY.match(value):
        raise ValueError("must be an ISO 8601 day, e.g. 2025-11-28")
    return value


def check_time(value: datetime) -> datetime:
    """Reject times before 2000 or more than five minutes in the future (clock skew)."""
    if value < EARLIEST:
        raise ValueError("must not be before 2000-01-01T00:00:00Z")
    if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise ValueError("must not be in the future (more than 5 minutes ahead)")
    return value


def check_due(value: datetime) -> datetime:
    """Reject due dates before 2000 or further ahead than the longest loan term."""
    if value < EARLIEST:
        raise ValueError("must not be before 2000-01-01T00:00:00Z")
    if value > datetime.now(UTC) + MAX_DUE_AHEAD:
        raise ValueError("must not be more than 5 years ahead")
    return value


def check_ip(value: str) -> str:
    """Reject what is not an IPv4 or IPv6 address (it is keyed-hashed as one)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address, e.g. 10.12.0.7") from None
    return value


def check_past_day(value: date) -> date:
    """Reject days before 2000 or after today (UTC): a day's sales are reported once sold."""
    if value < EARLIEST.date():
        raise ValueError("must not be before 2000-01-01")
    if value > datetime.now(UTC).date():
        raise ValueError("must not be after today (UTC)")
    return value


PastTime = Annotated[AwareDatetime, BeforeValidator(_iso_time_text), AfterValidator(check_time)]
"""When something happened: ISO 8601 with a UTC offset (``2025-11-29T08:15:00+08:00``), not
before 2000, not more than 5 minutes ahead."""

DueTime = Annotated[AwareDatetime, BeforeValidator(_iso_time_text), AfterValidator(check_due)]
"""When something falls due: ISO 8601 with a UTC offset, not before 2000, at most the longest
loan term ahead."""

PastDay = Annotated[date, BeforeValidator(_iso_day_text), AfterValidator(check_past_day)]
"""A day (``2025-11-28``, UTC), not before 2000, not after today."""

IpAddress = Annotated[str, StringConstraints(min_length=2, max_length=45),
                      AfterValidator(check_ip)]
"""An IPv4 or IPv6 address as written (``10.12.0.7``, ``2001:db8::1``); keyed-hashed before any
use, its /24 (IPv4) or /48 (IPv6) network kept for display."""
