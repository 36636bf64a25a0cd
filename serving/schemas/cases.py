"""Investigators' cases and watchlists."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from serving.schemas.common import EntityId
from serving.schemas.verdict import VerdictPublic

CASE_ID_PATTERN = r"^(ring|user):[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}:[0-9]{1,9}$"
"""``ring:<ring id>:<n>`` or ``user:<user id>:<n>``: the n-th case of a ring or a user."""
Investigator = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@\-]{1,64}$")]


class CasePublic(BaseModel):
    """A case as the queue lists it."""

    case_id: str = Field(description="Case id: ring:<ring id>:<n> or user:<user id>:<n>.",
                         examples=["ring:r0007:1"])
    status: Literal["open", "closed"] = Field(description="open until disposed of.",
                                              examples=["open"])
    ring_id: str | None = Field(description="The ring whose review verdicts it gathers.",
                                examples=["r0007"])
    user_id: str | None = Field(description="The user of a user's own case (no ring).",
                                examples=[None])
    risk: float = Field(description="Highest fraud probability among its verdicts.",
                        examples=[0.41])
    amount: float = Field(description="Total amount applied for in its verdicts.",
                          examples=[60000.0])
    items: int = Field(description="How many review verdicts it holds.", examples=[5])
    products: list[str] = Field(description="Products of its verdicts.",
                                examples=[["cash_loan"]])
    reasons: list[str] = Field(description="Reason codes of its verdicts.",
                               examples=[["SHARED_ENTITY_FRAUD", "FRAUD_REVIEW"]])
    opened_at: datetime | None = Field(description="When its first verdict joined it.")
    assignee: str | None = Field(description="Investigator it is assigned to.",
                                 examples=["alice"])
    assigned_at: datetime | None = Field(description="When it was assigned.")
    disposition: Literal["confirmed_fraud", "cleared", "default_risk"] | None = Field(
        description="The outcome, once decided.", examples=[None])
    disposed_at: datetime | None = Field(description="When it was decided.")
    disposed_by: str | None = Field(description="Key id that decided it.", examples=[None])


class CaseItemPublic(BaseModel):
    """One review verdict of a case."""

    application_id: str = Field(examples=["app-000123"], description="The application.")
    user_id: str = Field(examples=["u000123"], description="The applicant.")
    product: str = Field(examples=["cash_loan"], description="Product applied for.")
    amount: float = Field(examples=[12000.0], description="Amount applied for.")
    risk: float = Field(examples=[0.41], description="The verdict's fraud probability.")
    decided_at: datetime = Field(description="When the verdict was made.")
    verdict: VerdictPublic | None = Field(description="The verdict as it was returned, with "
                                          "its reasons and evidence.")


class CaseNoteCreate(BaseModel):
    """A note on a case."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(min_length=1, max_length=4000,
                                           strip_whitespace=True)] = Field(
        description="1 to 4000 characters.", examples=["Same device as the ring's first four."])


class CaseNotePublic(BaseModel):
    """A note on a case: who, when, what."""

    note_id: str = Field(description="Note id.", examples=["ring:r0007:1/1764400000-3fa94b2c1d0e"])
    author: str = Field(description="Key id that wrote it.", examples=["k3fa94b2c"])
    author_name: str = Field(description="Name of that key's holder.", examples=["alice"])
    at: datetime = Field(description="When it was written.")
    text: str = Field(description="The note.", examples=["Same device as the ring's first four."])


class CaseDetailPublic(CasePublic):
    """A case with its verdicts and notes."""

    verdicts: list[CaseItemPublic] = Field(description="Its review verdicts, riskiest first.")
    notes: list[CaseNotePublic] = Field(description="Its notes, oldest first.")


class CaseQueuePublic(BaseModel):
    """Cases, highest risk first, then largest amount."""

    cases: list[CasePublic] = Field(description="The cases that pass the filters.")


class CaseAssign(BaseModel):
    """Who takes a case."""

    model_config = ConfigDict(extra="forbid")

    assignee: Investigator = Field(description="The investigator (name or key id).",
                                   examples=["alice"])


class CaseDispositionCreate(BaseModel):
    """The outcome of a case."""

    model_config = ConfigDict(extra="forbid")

    disposition: Literal["confirmed_fraud", "cleared", "default_risk"] = Field(
        description="confirmed_fraud labels its users and applications fraud, cleared labels "
        "them cleared, default_risk labels them default.", examples=["confirmed_fraud"])


WatchLabel = Literal["Device", "Phone", "Address", "IP", "Merchant"]


class WatchlistCreate(BaseModel):
    """An entity investigators want named whenever an application touches it: by the id the
    graph shows (``entity_id``), or by its value in clear (``value``, keyed-hashed here)."""

    model_config = ConfigDict(extra="forbid")

    entity_type: WatchLabel = Field(description="Kind of entity.", examples=["Device"])
    entity_id: EntityId | None = Field(None, description="Its id as the graph answers show it "
                                       "(a keyed hash for devices, phones, addresses and IPs).",
                                       examples=["dv_3fa94b2c1d0e4f5a6b7c8d9e0f1a2b3c"])
    value: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        None, description="Or its value in clear (a device serial, phone number, address, IP "
        "address, merchant id); never stored.", examples=[None])
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="Why it is watched.", examples=["device farm seen in case ring:r0007:1"])


class WatchlistEntryPublic(BaseModel):
    """An entity on the watchlist."""

    entity_type: WatchLabel = Field(description="Kind of entity.", examples=["Device"])
    entity_id: str = Field(description="Its id in the graph.",
                           examples=["dv_3fa94b2c1d0e4f5a6b7c8d9e0f1a2b3c"])
    masked: str | None = Field(description="What an investigator sees of it.",
                               examples=["********1234"])
    reason: str = Field(description="Why it is watched.", examples=["device farm"])
    active: bool = Field(description="False once taken off the list.", examples=[True])
    added_by: str = Field(description="Key id that added it.", examples=["k3fa94b2c"])
    added_at: datetime = Field(description="When it was added.")


class WatchlistPublic(BaseModel):
    """The entities on the watchlist."""

    entries: list[WatchlistEntryPublic] = Field(description="Active entries, newest first.")
