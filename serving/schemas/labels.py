"""Investigation outcomes posted to ``POST /v1/labels``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from serving.schemas.common import EntityId, PastTime


class LabelBase(BaseModel):
    """A confirmed-fraud, cleared or default label on a user, merchant or application."""

    event_id: EntityId = Field(description="Unique id of this label event; resending it is a "
                               "no-op.", examples=["lab-000017"])
    entity_type: Literal["User", "Merchant", "Application"] = Field(
        description="What is labelled.", examples=["User"])
    entity_id: EntityId = Field(description="Id of the entity.", examples=["u000123"])
    kind: Literal["fraud", "cleared", "default"] = Field(
        description="fraud (confirmed), cleared (not fraud) or default.", examples=["fraud"])
    at: PastTime = Field(description="When the outcome became known.",
                              examples=["2025-11-29T10:00:00+08:00"])
    source: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@\-]{1,64}$")] = Field(
        description="Who or what decided.", examples=["investigator:alice"])


class LabelCreate(LabelBase):
    model_config = ConfigDict(extra="forbid")


class LabelBatchCreate(BaseModel):
    """A batch of labels, applied in order."""

    model_config = ConfigDict(extra="forbid")

    labels: list[LabelCreate] = Field(min_length=1, max_length=1000,
                                      description="1 to 1000 labels.")


class LabelBatchPublic(BaseModel):
    """What happened to a batch of labels."""

    accepted: int = Field(description="Labels accepted (stored or spooled).", examples=[3])
    duplicates: list[str] = Field(description="Event ids already recorded with the same body "
                                  "(ignored).", examples=[["lab-000011"]])
    conflicts: list[str] = Field(description="Event ids already recorded with a different "
                                 "body (ignored; the first one stands).", examples=[[]])
    spooled: bool = Field(description="True when the batch waits in the local spool.",
                          examples=[False])
