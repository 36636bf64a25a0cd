"""Liveness and readiness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthPublic(BaseModel):
    status: Literal["ok"] = Field(description="The process serves requests.", examples=["ok"])


class ReadinessPublic(BaseModel):
    status: Literal["ready", "not_ready"] = Field(description="ready when the store answers "
                                                  "and the model is loaded.",
                                                  examples=["ready"])
    store: Literal["up", "down"] = Field(description="Graph store reachable.", examples=["up"])
    model: Literal["loaded", "missing"] = Field(description="Scorer ready.",
                                                examples=["loaded"])
    model_version: str = Field(description="Scorer in use.", examples=["rules-1.0"])
    policy_version: str = Field(description="Policy in use.", examples=["2025-11-29.1"])
    spool_depth: int = Field(description="Writes waiting for the store.", examples=[0])
