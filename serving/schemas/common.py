"""Bounded field types shared by the schemas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

from pydantic import AwareDatetime, Field, StringConstraints

EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"

EntityId = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]
"""An id the platform assigns (user, application, merchant, event): 1-64 safe characters."""

Amount = Annotated[float, Field(strict=True, gt=0, le=1e9, allow_inf_nan=False)]
Money = Annotated[float, Field(strict=True, ge=0, le=1e12, allow_inf_nan=False)]
Latitude = Annotated[float, Field(strict=True, ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(strict=True, ge=-180, le=180, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, le=1)]


def check_time(value: datetime) -> datetime:
    """Reject times before 2000 or more than five minutes in the future (clock skew)."""
    if value < EARLIEST:
        raise ValueError("must not be before 2000-01-01T00:00:00Z")
    if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise ValueError("must not be in the future (more than 5 minutes ahead)")
    return value


EventTime = AwareDatetime
"""An ISO 8601 time with a UTC offset (``2025-11-29T08:15:00+08:00``)."""
