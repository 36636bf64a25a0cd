"""What investigators see: neighbourhoods and shared accounts (identifiers hashed or masked)."""

from __future__ import annotations

from pydantic import BaseModel, Field

PropertyValue = float | int | str | bool | None


class NodePublic(BaseModel):
    """A node with its stored properties (hashes and masked forms only)."""

    label: str = Field(description="Node label.", examples=["Device"])
    id: str = Field(description="Node id.", examples=["dv_3fa94b2c1d0e4f5a6b7c8d9e0f1a2b3c"])
    properties: dict[str, PropertyValue] = Field(description="Stored properties.",
                                                 examples=[{"masked": "********1234"}])


class EdgePublic(BaseModel):
    """A relationship between two nodes of the answer."""

    type: str = Field(description="Relationship type.", examples=["USES"])
    src: str = Field(description="Source node id.", examples=["u000123"])
    dst: str = Field(description="Target node id.",
                     examples=["dv_3fa94b2c1d0e4f5a6b7c8d9e0f1a2b3c"])
    properties: dict[str, PropertyValue] = Field(description="Relationship properties.",
                                                 examples=[{"first_seen": 1732838400}])


class SubgraphPublic(BaseModel):
    """The neighbourhood of an entity."""

    seed: NodePublic = Field(description="The entity asked about.")
    nodes: list[NodePublic] = Field(description="Nodes within the hop limit (fan-out capped).")
    edges: list[EdgePublic] = Field(description="Relationships among them.")


class SharedAccountPublic(BaseModel):
    """Another account reachable through one shared device, phone, address or IP."""

    via_label: str = Field(description="Kind of shared entity.", examples=["Device"])
    via_id: str = Field(description="Id of the shared entity.",
                        examples=["dv_3fa94b2c1d0e4f5a6b7c8d9e0f1a2b3c"])
    user_id: str = Field(description="The other account.", examples=["u000777"])
    fraud_label: str | None = Field(description="fraud, cleared or null.", examples=["fraud"])
    default_label: bool | None = Field(description="True when in default.", examples=[None])


class SharedAccountsPublic(BaseModel):
    """Accounts sharing entities with a user."""

    user_id: str = Field(description="The user asked about.", examples=["u000123"])
    accounts: list[SharedAccountPublic] = Field(description="One row per (entity, account).")
