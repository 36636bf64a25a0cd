"""API key management (role admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from serving.keys import MAX_RATE_LIMIT_PER_S, MIN_RATE_LIMIT_PER_S

Role = Literal["scoring", "investigator", "admin"]


class ApiKeyBase(BaseModel):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 _.:@\-]{1,64}$")] = Field(
        description="Who holds the key.", examples=["approval-flow"])
    role: Role = Field(description="scoring: score and events; investigator: labels, "
                       "verdicts, neighbourhoods; admin: everything and keys.",
                       examples=["scoring"])
    rate_limit_per_s: float | None = Field(
        None, ge=MIN_RATE_LIMIT_PER_S, le=MAX_RATE_LIMIT_PER_S, allow_inf_nan=False,
        description=f"Requests per second for this key, {MIN_RATE_LIMIT_PER_S} (one request "
        f"every {1 / MIN_RATE_LIMIT_PER_S:.0f} s) to {MAX_RATE_LIMIT_PER_S:,.0f}; null: the "
        "server default.", examples=[500.0])


class ApiKeyCreate(ApiKeyBase):
    """A key to create."""

    model_config = ConfigDict(extra="forbid")


class ApiKeyPublic(ApiKeyBase):
    """A key as listed (never the secret)."""

    key_id: str = Field(description="Public id of the key.", examples=["4f9a0c1b2d3e"])
    created_at: datetime = Field(description="When it was created.",
                                 examples=["2025-11-29T00:00:00Z"])
    revoked_at: datetime | None = Field(None, description="When it was revoked.",
                                        examples=[None])


class ApiKeyCreatedPublic(ApiKeyPublic):
    """A new key: the only time the secret is shown."""

    key: str = Field(description="The key to send in X-API-Key; shown once, stored hashed.",
                     examples=["rgk_4f9a0c1b2d3e_2N9v…"])
