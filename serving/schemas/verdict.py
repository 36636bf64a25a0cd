"""The verdict (docs/PRODUCT.md §6) and its audit record."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from serving.schemas.common import Probability

FeatureValue = float | int | str | bool | None


class EvidencePublic(BaseModel):
    """The entity and the number behind a reason."""

    entity_type: str = Field(description="Node label of the entity.", examples=["Device"])
    entity_id: str = Field(description="Node id (keyed hash for people's identifiers).",
                           examples=["dv_3fa94b2c1d0e4f5a6b7c8d9e0f1a2b3c"])
    display: str = Field(description="What an investigator reads (masked).",
                         examples=["********1234"])
    metric: str = Field(description="What `value` measures.", examples=["shared_accounts"])
    value: float = Field(description="The number.", examples=[4.0])
    reference: float | None = Field(None, description="Threshold or baseline it was compared "
                                    "with.", examples=[3.0])


class ReasonPublic(BaseModel):
    """Why: a stable code, the sentence in English and Chinese, and the evidence."""

    code: str = Field(description="Stable reason code (docs/API.md lists them).",
                      examples=["SHARED_ENTITY_FRAUD"])
    message_en: str = Field(description="English message.", examples=[
        "device ********1234 shared with 4 other accounts, 2 confirmed fraud"])
    message_zh: str = Field(description="Chinese message.", examples=[
        "设备********1234与4个其他账户共用，其中2个已确认欺诈"])
    evidence: EvidencePublic = Field(description="Entity and number behind the reason.")
    weight: float | None = Field(None, description="What the reason added to the scorer's "
                                 "log-odds: above 0 it raised the risk, below 0 it lowered it "
                                 "(in the applicant's favour); null for a reason of the policy, "
                                 "the watchlist or the service itself.", examples=[0.8312])


class CreditPublic(BaseModel):
    """Credit risk and the recommended limit."""

    pd: Probability = Field(description="Probability of default if funded.", examples=[0.031])
    grade: str = Field(description="Credit grade from the policy's pd bands.", examples=["B"])
    recommended_limit: float = Field(
        description="Recommended credit limit for the product, in `currency`; 0 means no "
        "offer.", examples=[3000.0])
    currency: str = Field(description="Currency of the limit.", examples=["CNY"])


class VerdictPublic(BaseModel):
    """The verdict for one application."""

    model_config = ConfigDict(extra="forbid")

    application_id: str = Field(description="The application decided.",
                                examples=["app-20251129-000123"])
    decision: Literal["approve", "review", "decline"] = Field(
        description="approve, review (a person decides) or decline.", examples=["approve"])
    fraud_probability: Probability = Field(description="Probability the application is "
                                           "fraud.", examples=[0.012])
    credit: CreditPublic = Field(description="Credit risk and recommended limit.")
    reasons: list[ReasonPublic] = Field(description="Most important first.")
    model_version: str = Field(description="Model that scored.", examples=["rules-1.0"])
    graph_version: str = Field(description="State of the graph that was read.",
                               examples=["live:neo4j@20251129T081500Z"])
    policy_version: str = Field(description="Policy that decided.",
                                examples=["2025-11-29.1"])
    degraded: bool = Field(description="Decided without the full graph (store down or "
                           "slow): never approved above the degraded cap.", examples=[False])
    elapsed_ms: float = Field(description="Time taken to decide, in milliseconds.",
                              examples=[4.2])
    decided_at: datetime = Field(description="When the verdict was made (UTC).",
                                 examples=["2025-11-29T00:15:00.123000Z"])


class VerdictConflictPublic(BaseModel):
    """A verdict answered for an application id that lost to the stored one: replicas that
    could not read the store decided the id without each other (docs/API.md)."""

    application_id: str = Field(description="The application.",
                                examples=["app-20251129-000123"])
    kind: Literal["request", "verdict"] = Field(
        description="request: answered for another request body (its caller should have "
        "had 409); verdict: the same request answered with another verdict.",
        examples=["verdict"])
    verdict: VerdictPublic = Field(description="The verdict answered, exactly as its caller "
                                   "received it.")
    request_hash: str = Field(description="SHA-256 of the canonical request answered.",
                              examples=["9f2c…"])
    stored_request_hash: str = Field(description="SHA-256 of the request of the stored "
                                     "verdict, which stands.", examples=["9f2c…"])
    replica: str = Field(description="Host and spool file of the replica that answered it.",
                         examples=["api-2:spool-0.sqlite"])
    found_at: datetime = Field(description="When the replay found it (UTC).",
                               examples=["2025-11-29T00:20:00Z"])


class VerdictAuditPublic(BaseModel):
    """A stored verdict with what explains it later."""

    verdict: VerdictPublic = Field(description="The verdict exactly as returned.")
    request_hash: str = Field(description="SHA-256 of the canonical request (identifiers "
                              "keyed-hashed).", examples=["9f2c…"])
    request: dict[str, FeatureValue] = Field(description="The canonical request, identifiers "
                                             "keyed-hashed.")
    features: dict[str, FeatureValue] = Field(description="The features the verdict used.")
    stored_in: Literal["graph", "spool"] = Field(
        description="graph: in the shared store; spool: accepted here while the store was "
        "down, waiting for replay.", examples=["graph"])
    conflicts: list[VerdictConflictPublic] = Field(
        default_factory=list, description="Other verdicts answered for this application id "
        "while the store was down, which lost to this one at replay; oldest first.")
