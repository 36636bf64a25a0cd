"""What investigators see of the graph: any entity's neighbourhood, paths, rings (identifiers
hashed or masked, as stored)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from serving.schemas.investigation import PropertyValue


class GraphNodePublic(BaseModel):
    """A node with its latest scores and labels."""

    label: str = Field(description="Node label.", examples=["User"])
    id: str = Field(description="Node id (unique per label).", examples=["U00000042"])
    properties: dict[str, PropertyValue] = Field(description="Stored properties.",
                                                 examples=[{"home_city": "Hangzhou"}])
    fraud_score: float | None = Field(description="Latest fraud probability from rescoring; "
                                      "null when never scored.", examples=[0.83])
    pd_score: float | None = Field(description="Latest probability of default from "
                                   "rescoring; null when never scored.", examples=[0.12])
    scored_at: int | None = Field(None, description="When the scores were written, epoch "
                                  "seconds.", examples=[1733097600])
    model_version: str | None = Field(None, description="Model that wrote the scores.",
                                      examples=["gnn-20261201-1"])
    fraud_label: int | None = Field(description="1 confirmed fraud, 0 cleared, null "
                                    "unlabelled.", examples=[1])
    default_label: int | None = Field(description="1 in default, null otherwise.",
                                      examples=[None])
    ring_id: str | None = Field(None, description="The ring a user was last found in.",
                                examples=["ring_3fa94b2c1d0e4f5a"])
    hub_size: int | None = Field(description="Set when the node has more distinct neighbours "
                                 "than the hub size asked for (returned but not expanded): its "
                                 "degree, its relationships with each event counted.",
                                 examples=[None])


class GraphEdgePublic(BaseModel):
    """A relationship between two nodes of the answer; events between the same two nodes are
    one edge with their count and the latest one's properties."""

    type: str = Field(description="Relationship type.", examples=["USES"])
    src: str = Field(description="Source node id.", examples=["U00000042"])
    dst: str = Field(description="Target node id.",
                     examples=["dv_3fa94b2c1d0e4f5a6b7c8d9e0f1a2b3c"])
    src_label: str = Field(description="Source node label.", examples=["User"])
    dst_label: str = Field(description="Target node label.", examples=["Device"])
    properties: dict[str, PropertyValue] = Field(description="Relationship properties.",
                                                 examples=[{"first_seen": 1732838400}])
    count: int = Field(1, description="Events it stands for (logins, orders).", examples=[1])


class NeighbourhoodPublic(BaseModel):
    """The neighbourhood of an entity, hubs collapsed."""

    seed: GraphNodePublic = Field(description="The entity asked about.")
    nodes: list[GraphNodePublic] = Field(description="Nodes within the hop limit, the seed "
                                         "first, then by hop.")
    edges: list[GraphEdgePublic] = Field(description="Relationships among them.")


class PathPublic(BaseModel):
    """One path: ``nodes[i]`` and ``nodes[i + 1]`` joined by ``edges[i]``."""

    nodes: list[GraphNodePublic] = Field(description="From the first entity to the second.")
    edges: list[GraphEdgePublic] = Field(description="One per step.")


class PathsPublic(BaseModel):
    """Shortest paths between two entities."""

    paths: list[PathPublic] = Field(description="Shortest first (all of the shortest length); "
                                    "empty when none is within max_hops.")


class RingSummaryPublic(BaseModel):
    """A ring: a community of accounts sharing devices, phones, addresses or IPs."""

    ring_id: str = Field(description="Ring id (kept across refreshes while most members "
                         "stay).", examples=["ring_3fa94b2c1d0e4f5a"])
    size: int = Field(description="Member accounts.", examples=[12])
    risk: float = Field(description="Mean member risk: 1 confirmed fraud, 0 cleared, else the "
                        "latest fraud_score, else 0.", examples=[0.74])
    confirmed_fraud_share: float = Field(description="Share of members labelled fraud.",
                                         examples=[0.5])
    money_at_stake: float = Field(description="Sum of the members' application amounts not "
                                  "declined.", examples=[96000.0])
    shared_entities: int = Field(description="Devices, phones, addresses and IPs two or more "
                                 "members share.", examples=[7])
    refreshed_at: int = Field(description="When the refresh that found it ran, epoch "
                              "seconds.", examples=[1733097600])


class RingsPublic(BaseModel):
    """Rings, highest risk first."""

    rings: list[RingSummaryPublic] = Field(description="Live rings, by risk, then money at "
                                           "stake, then size.")


class RingMemberPublic(BaseModel):
    """A member account of a ring."""

    user_id: str = Field(description="The member account.", examples=["U00000042"])
    fraud_score: float | None = Field(description="Latest fraud probability; null when never "
                                      "scored.", examples=[0.83])
    fraud_label: int | None = Field(description="1 confirmed fraud, 0 cleared, null "
                                    "unlabelled.", examples=[1])


class RingEntityPublic(BaseModel):
    """An entity two or more members share."""

    label: str = Field(description="Device, Phone, Address or IP.", examples=["Device"])
    id: str = Field(description="Its id.", examples=["dv_3fa94b2c1d0e4f5a6b7c8d9e0f1a2b3c"])
    members: int = Field(description="Members sharing it.", examples=[5])


class RingPublic(RingSummaryPublic):
    """A ring with its members, what they share, and its subgraph for drawing."""

    members: list[RingMemberPublic] = Field(description="Member accounts, by id.")
    entities: list[RingEntityPublic] = Field(description="What two or more members share, "
                                             "most shared first.")
    nodes: list[GraphNodePublic] = Field(description="Members and shared entities, at most "
                                         "max_nodes: the riskiest members first.")
    edges: list[GraphEdgePublic] = Field(description="Relationships among them.")
    truncated: bool = Field(False, description="True when the drawing leaves members or "
                            "entities out (max_nodes).")


class RingRefreshPublic(BaseModel):
    """What a ring refresh did."""

    rings: int = Field(description="Rings found and stored.", examples=[7548])
    members: int = Field(description="Users in them.", examples=[68016])
    retired: int = Field(description="Rings of the previous refresh no longer found.",
                         examples=[3])
    users_left: int = Field(description="Users whose ring_id was cleared.", examples=[11])
    seconds: dict[str, float] = Field(description="Time per step.",
                                      examples=[{"read": 2.8, "detect": 20.7, "write": 2.3}])
