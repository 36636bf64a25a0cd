"""The relationship graph's schema, declared once for every store.

Node labels and relationship types follow docs/PRODUCT.md §3. Each store turns the same
:data:`SCHEMA` into its own DDL (Neo4j constraints and indexes, LadybugDB node and rel tables),
so the two backends cannot drift apart.

Identity rules, which make every write idempotent:

* a node is identified by its ``id`` property (for people's identifiers the keyed hash);
* a *structural* relationship (``key=None``) is unique per ``(source, target)`` pair;
* an *event* relationship (``key="event_id"``) is unique per event id, so the same login
  replayed twice is one edge while two logins from the same IP are two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from graph.errors import SchemaError
from graph.typing import EdgeType, NodeType, RelType, Row

PropertyType = Literal["STRING", "INT64", "DOUBLE", "BOOL"]

_PY_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "STRING": (str,),
    "INT64": (int,),
    "DOUBLE": (float, int),
    "BOOL": (bool,),
}


@dataclass(frozen=True)
class Property:
    """One typed property of a node or relationship.

    Args:
        name (str): property name, a valid identifier.
        type (PropertyType): storage type.
        description (str): what it means, for the docs.
        document (bool, optional): a large text (an audit record's JSON) that a store may keep
            beside its tables; read and written like any other property. (default: ``False``)
        earliest (bool, optional): a time a write may only move earlier (since when a pair
            is known): a later value written again keeps the stored one, so the store dates
            a pair as the live graph does. (default: ``False``)
    """

    name: str
    type: PropertyType
    description: str = ""
    document: bool = False
    earliest: bool = False


@dataclass(frozen=True)
class NodeSpec:
    """A node label with its key and properties.

    Args:
        label (NodeType): the label.
        properties (tuple[Property, ...]): properties besides ``id``.
        indexes (tuple[str, ...]): properties to index for lookups.
        record (bool, optional): an operational record (verdict, API key, label event) kept
            by the store for the service, not an entity of the relationship graph; snapshots
            and models leave it out. (default: ``False``)
        exported (bool, optional): whether :meth:`graph.GraphStore.iter_export` exports it;
            ``False`` for what describes one store instance rather than the data in it (its
            identity), which a copy of the graph must not carry. (default: ``True``)
    """

    label: NodeType
    properties: tuple[Property, ...]
    indexes: tuple[str, ...] = ()
    record: bool = False
    exported: bool = True

    @property
    def columns(self) -> tuple[str, ...]:
        return ("id", *(p.name for p in self.properties))

    @property
    def documents(self) -> tuple[str, ...]:
        """The names of its :attr:`Property.document` properties."""
        return tuple(p.name for p in self.properties if p.document)

    def property(self, name: str) -> Property:
        if name == "id":
            return Property("id", "STRING")
        for p in self.properties:
            if p.name == name:
                return p
        raise SchemaError(f"{self.label} has no property {name!r}")


@dataclass(frozen=True)
class RelSpec:
    """A relationship type between two labels.

    Args:
        type (RelType): relationship type.
        src (NodeType): source label.
        dst (NodeType): target label.
        properties (tuple[Property, ...]): properties of the relationship.
        key (str, optional): property that identifies one relationship (``"event_id"`` for
            events); ``None`` means one relationship per ``(src, dst)`` pair.
            (default: ``None``)
    """

    type: RelType
    src: NodeType
    dst: NodeType
    properties: tuple[Property, ...] = ()
    key: str | None = None
    description: str = ""

    @property
    def edge_type(self) -> EdgeType:
        return (self.src, self.type, self.dst)

    @property
    def columns(self) -> tuple[str, ...]:
        return ("src", "dst", *(p.name for p in self.properties))

    @property
    def earliest(self) -> tuple[str, ...]:
        """The names of its :attr:`Property.earliest` properties."""
        return tuple(p.name for p in self.properties if p.earliest)

    def property(self, name: str) -> Property:
        for p in self.properties:
            if p.name == name:
                return p
        raise SchemaError(f"{self.type} has no property {name!r}")


def _p(name: str, type_: PropertyType, description: str = "", *,
       document: bool = False, earliest: bool = False) -> Property:
    return Property(name, type_, description, document, earliest)


# Label properties shared by the entities that investigators confirm or clear.
_LABEL_PROPS: Final = (
    _p("fraud_label", "STRING", "'fraud' or 'cleared' once an investigator decided; else null"),
    _p("fraud_label_at", "INT64", "when the fraud label became known"),
    _p("fraud_label_source", "STRING", "who or what set the fraud label"),
    _p("default_label", "BOOL", "true once the account defaulted on a loan"),
    _p("default_label_at", "INT64", "when the default became known"),
    _p("default_label_source", "STRING", "who or what set the default label"),
)

_SCORE_PROPS: Final = (
    _p("fraud_score", "DOUBLE", "latest calibrated fraud probability from rescoring"),
    _p("pd_score", "DOUBLE", "latest probability of default from rescoring"),
    _p("scored_at", "INT64", "when the scores were written"),
    _p("model_version", "STRING", "model that wrote the scores"),
)

NODES: Final[tuple[NodeSpec, ...]] = (
    NodeSpec(
        "User",
        (
            _p("created_at", "INT64", "sign-up time"),
            _p("id_hash", "STRING", "keyed hash of the national id"),
            _p("name_masked", "STRING", "masked display name"),
            _p("home_city", "STRING", "declared home city"),
            _p("home_lat", "DOUBLE", "coarsened (graph.privacy.COORDINATE_DECIMALS)"),
            _p("home_lon", "DOUBLE", "coarsened"),
            _p("ring_id", "STRING", "the ring (community of accounts) the latest ring refresh "
               "put the user in; null: none"),
            *_LABEL_PROPS,
            *_SCORE_PROPS,
        ),
        indexes=("id_hash", "fraud_label", "ring_id"),
    ),
    NodeSpec(
        "Device",
        (
            _p("masked", "STRING", "masked device serial"),
            _p("os", "STRING", "android, ios, emulator, ..."),
            _p("first_seen", "INT64"),
        ),
    ),
    NodeSpec("Phone", (_p("masked", "STRING", "masked number, e.g. 138****5678"),)),
    NodeSpec(
        "Address",
        (
            _p("masked", "STRING", "masked normalised address"),
            _p("city", "STRING"),
            _p("lat", "DOUBLE"),
            _p("lon", "DOUBLE"),
        ),
    ),
    NodeSpec(
        "IP",
        (
            _p("masked", "STRING", "the address's network, e.g. 10.12.0.0/24"),
            _p("city", "STRING"),
            _p("lat", "DOUBLE"),
            _p("lon", "DOUBLE"),
            _p("kind", "STRING", "residential, mobile, office, public_wifi, datacenter"),
        ),
    ),
    NodeSpec(
        "Merchant",
        (
            _p("name_masked", "STRING"),
            _p("category", "STRING"),
            _p("size", "STRING", "micro, small, medium, large"),
            _p("city", "STRING"),
            _p("created_at", "INT64"),
            *_LABEL_PROPS,
            *_SCORE_PROPS,
        ),
        indexes=("fraud_label",),
    ),
    NodeSpec(
        "Application",
        (
            _p("product", "STRING", "bnpl, cash_loan, merchant_loan, sme_owner_loan"),
            _p("amount", "DOUBLE"),
            _p("currency", "STRING"),
            _p("term_months", "INT64", "loan term in monthly instalments; null when not stated"),
            _p("ts", "INT64", "application time"),
            _p("lat", "DOUBLE"),
            _p("lon", "DOUBLE"),
            _p("decision", "STRING", "approve, review, decline once scored"),
            *_LABEL_PROPS,
        ),
        indexes=("ts", "fraud_label"),
    ),
    NodeSpec(
        "SalesReport",
        (
            _p("day", "INT64", "start of the day reported, epoch seconds"),
            _p("gmv", "DOUBLE", "gross merchandise value sold that day"),
            _p("orders", "INT64"),
            _p("refunds", "DOUBLE", "value refunded that day"),
            _p("inventory", "DOUBLE", "inventory value at the end of the day"),
        ),
        indexes=("day",),
    ),
)

RING: Final[NodeType] = "Ring"
"""The label of a ring found by :func:`graph.rings.refresh_rings` (derived from the graph, so an
operational record: snapshots and models leave it out)."""
STORE_IDENTITY: Final[NodeType] = "StoreIdentity"
"""The label of the one node that names a store instance (:meth:`graph.GraphStore.identity`)."""
RESCORE_RUN: Final[NodeType] = "RescoreRun"
"""The label of a batch rescoring run's record (:mod:`gnn.rescoring`): its model, time and
state; id ``rescore-<started>-<version>``."""
RESCORE_CHUNK: Final[NodeType] = "RescoreChunk"
"""The label of one written chunk of a rescoring run, id ``<run id>/<label>/<chunk>``: what a
restarted run skips."""
PSEUDONYM_KEY: Final[NodeType] = "PseudonymKey"
"""The label of the store's pseudonymisation key chain (:mod:`graph.key_rotation`), one node
per key, by generation."""

# NOTE: operational records live in the same store as the graph so that several API replicas
# share them (idempotency, audit, keys), but they are not part of the relationship graph:
# `Schema.graph_labels` and snapshots leave them out.
RECORDS: Final[tuple[NodeSpec, ...]] = (
    NodeSpec(
        "Verdict",
        (
            _p("request_hash", "STRING", "SHA-256 of the canonical, pseudonymised request"),
            _p("decision", "STRING", "approve, review or decline"),
            _p("fraud_probability", "DOUBLE"),
            _p("pd", "DOUBLE", "probability of default"),
            _p("grade", "STRING", "credit grade from the policy"),
            _p("credit_limit", "DOUBLE", "recommended credit limit"),
            _p("degraded", "BOOL", "decided without the full graph"),
            _p("model_version", "STRING"),
            _p("graph_version", "STRING"),
            _p("policy_version", "STRING"),
            _p("decided_at", "INT64", "when the verdict was made, epoch seconds"),
            _p("verdict_json", "STRING", "the verdict exactly as returned", document=True),
            _p("features_json", "STRING", "the features the verdict used", document=True),
            _p("request_json", "STRING", "the canonical request, identifiers hashed", document=True),
        ),
        indexes=("decided_at",),
        record=True,
    ),
    NodeSpec(
        "ChallengerScore",
        (
            _p("application_id", "STRING", "the application (its Verdict has the same id)"),
            _p("model_version", "STRING", "the challenger that scored it"),
            _p("champion_version", "STRING", "the model whose verdict was answered"),
            _p("product", "STRING"),
            _p("fraud_probability", "DOUBLE", "the challenger's"),
            _p("pd", "DOUBLE", "the challenger's probability of default"),
            _p("decision", "STRING", "what the policy would have decided on the challenger's "
               "scores"),
            _p("champion_decision", "STRING", "the decision answered"),
            _p("champion_fraud_probability", "DOUBLE"),
            _p("champion_pd", "DOUBLE"),
            _p("scored_at", "INT64", "when the challenger scored it, epoch seconds (after the "
               "verdict was answered)"),
        ),
        indexes=("application_id",),
        record=True,
    ),
    NodeSpec(
        "VerdictConflict",
        (
            _p("application_id", "STRING", "the application two verdicts were answered for"),
            _p("kind", "STRING", "request: answered for another request body; verdict: the "
               "same request answered with another verdict"),
            _p("request_hash", "STRING", "request hash of the verdict answered, which lost"),
            _p("stored_request_hash", "STRING", "request hash of the stored Verdict"),
            _p("decision", "STRING", "the decision answered"),
            _p("degraded", "BOOL"),
            _p("decided_at", "INT64", "when the verdict answered was made, epoch seconds"),
            _p("found_at", "INT64", "when replay found the conflict, epoch seconds"),
            _p("replica", "STRING", "host and spool file of the replica that answered"),
            _p("verdict_json", "STRING", "the verdict answered, exactly as returned",
               document=True),
            _p("request_json", "STRING", "its canonical request, identifiers hashed",
               document=True),
        ),
        record=True,
    ),
    NodeSpec(
        "ApiKey",
        (
            _p("name", "STRING", "who holds the key"),
            _p("role", "STRING", "scoring, investigator or admin"),
            _p("key_hash", "STRING", "SHA-256 of the key; the key itself is never stored"),
            _p("created_at", "INT64"),
            _p("revoked_at", "INT64", "set when the key is revoked"),
            _p("rate_limit_per_s", "DOUBLE", "requests per second allowed; null: the default"),
            _p("created_by", "STRING", "key id of the API caller that created it; null: CLI"),
        ),
        record=True,
    ),
    NodeSpec(
        "LabelEvent",
        (
            _p("target_label", "STRING", "User, Merchant or Application"),
            _p("target_id", "STRING"),
            _p("kind", "STRING", "fraud, cleared or default"),
            _p("at", "INT64", "when the label became known"),
            _p("source", "STRING"),
            _p("body_hash", "STRING", "SHA-256 of the canonical label event"),
            _p("received_at", "INT64"),
        ),
        indexes=("target_id",),
        record=True,
    ),
    NodeSpec(
        "EventRecord",
        (
            _p("type", "STRING", "login, order, repayment or merchant_sales"),
            _p("body_hash", "STRING", "SHA-256 of the canonical event, identifiers hashed"),
            _p("received_at", "INT64", "when the API accepted it, epoch seconds"),
        ),
        record=True,
    ),
    NodeSpec(
        "CaseItem",
        (
            _p("user_id", "STRING", "the applicant"),
            _p("product", "STRING"),
            _p("amount", "DOUBLE"),
            _p("risk", "DOUBLE", "the verdict's fraud probability"),
            _p("decided_at", "INT64", "when the review verdict was made, epoch seconds"),
            _p("reasons", "STRING", "the verdict's reason codes, comma-separated; set when "
               "the item joins a case"),
            _p("case_id", "STRING", "the case it joined; null until it joins one, '-' when "
               "the stored verdict of its application is not a review"),
        ),
        indexes=("case_id",),
        record=True,
    ),
    NodeSpec(
        "Case",
        (
            _p("scope", "STRING", "ring:<ring id> or user:<user id>: what its verdicts share"),
            _p("ring_id", "STRING"),
            _p("user_id", "STRING", "the user of a user's own case"),
            _p("status", "STRING", "open or closed"),
            _p("opened_at", "INT64"),
            _p("updated_at", "INT64"),
            _p("risk", "DOUBLE", "highest fraud probability among its verdicts"),
            _p("amount", "DOUBLE", "total amount applied for in its verdicts"),
            _p("items", "INT64", "how many review verdicts it holds"),
            _p("products", "STRING", "products of its verdicts, comma-separated"),
            _p("reasons", "STRING", "reason codes of its verdicts, comma-separated"),
            _p("assignee", "STRING", "the investigator it is assigned to"),
            _p("assigned_at", "INT64"),
            _p("assigned_by", "STRING", "key id that assigned it"),
            _p("disposition", "STRING", "confirmed_fraud, cleared or default_risk"),
            _p("disposed_at", "INT64"),
            _p("disposed_by", "STRING", "key id that decided it"),
        ),
        indexes=("scope", "status"),
        record=True,
    ),
    NodeSpec(
        "CaseDisposition",
        (
            _p("disposition", "STRING", "confirmed_fraud, cleared or default_risk"),
            _p("by", "STRING", "key id that decided it"),
            _p("by_name", "STRING", "name of that key's holder"),
            _p("at", "INT64"),
        ),
        record=True,
    ),
    NodeSpec(
        "CaseNote",
        (
            _p("case_id", "STRING"),
            _p("author", "STRING", "key id that wrote it"),
            _p("author_name", "STRING", "name of that key's holder"),
            _p("at", "INT64"),
            _p("text", "STRING", "the note", document=True),
        ),
        indexes=("case_id",),
        record=True,
    ),
    NodeSpec(
        "WatchlistEntry",
        (
            _p("entity_label", "STRING", "Device, Phone, Address, IP or Merchant"),
            _p("entity_id", "STRING", "the entity's id in the store (keyed hash for people's "
               "identifiers)"),
            _p("masked", "STRING", "what an investigator sees of it"),
            _p("reason", "STRING", "why it was flagged"),
            _p("active", "BOOL", "false once taken off the watchlist"),
            _p("added_by", "STRING", "key id"),
            _p("added_at", "INT64"),
            _p("removed_by", "STRING", "key id"),
            _p("removed_at", "INT64"),
        ),
        indexes=("entity_id",),
        record=True,
    ),
    NodeSpec(
        "ReadAudit",
        (
            _p("key_id", "STRING", "the API key that read"),
            _p("role", "STRING"),
            _p("route", "STRING", "what was read (the route's path template)"),
            _p("entity_label", "STRING"),
            _p("entity_id", "STRING"),
            _p("at", "INT64", "when, epoch seconds"),
        ),
        indexes=("key_id",),
        record=True,
    ),
    NodeSpec(
        RING,
        (
            _p("size", "INT64", "member accounts"),
            _p("risk", "DOUBLE", "mean member risk: 1 confirmed fraud, 0 cleared, else the "
               "latest fraud_score, else 0"),
            _p("confirmed_fraud_share", "DOUBLE", "share of members labelled fraud"),
            _p("money_at_stake", "DOUBLE", "sum of the members' application amounts not "
               "declined"),
            _p("shared_entities", "INT64", "devices, phones, addresses and IPs that two or "
               "more members share (hubs left out)"),
            _p("refreshed_at", "INT64", "when the refresh that found it ran, epoch seconds"),
            _p("retired_at", "INT64", "set when a refresh no longer finds it; null while live"),
            _p("members_json", "STRING", "member user ids, a JSON list"),
            _p("entities_json", "STRING", "shared entities, a JSON list of [label, id, "
               "members]"),
        ),
        indexes=("risk",),
        record=True,
    ),
    NodeSpec(
        PSEUDONYM_KEY,
        (
            _p("generation", "INT64", "0 for the key the store was first written under, one "
               "more per rotation"),
            _p("check", "STRING", "HMAC(key, 'riskgraph-key-check'): tells whether a "
               "configured key is this one; never the key"),
            _p("retired_key", "STRING", "the key, hex, once a rotation retired it (hashing a "
               "clear value needs every key of the chain); null while it is the newest"),
            _p("state", "STRING", "rotating while `riskgraph rotate-key` re-keys the store to "
               "this key, then current, then retired"),
            _p("created_at", "INT64", "when it was recorded, epoch seconds"),
            _p("rotated_at", "INT64", "when the rotation to it finished, epoch seconds"),
        ),
        record=True,
        exported=False,
    ),
    NodeSpec(
        RESCORE_RUN,
        (
            _p("model_version", "STRING", "the model that scores"),
            _p("as_of", "INT64", "the graph time scored at (features see events before it)"),
            _p("scored_at", "INT64", "the time written as the nodes' scored_at, epoch seconds"),
            _p("state", "STRING", "running, then done"),
            _p("chunk_size", "INT64", "roots per chunk: chunk i holds positions i*size.."),
            _p("chunks", "INT64", "chunks of users and merchants in all"),
            _p("world_size", "INT64", "processes that shared the last attempt"),
            _p("users", "INT64", "users scored (a restart on another count starts afresh)"),
            _p("merchants", "INT64", "merchants scored"),
            _p("started_at", "INT64", "when the run was created, epoch seconds"),
            _p("finished_at", "INT64", "when its last chunk was written, epoch seconds"),
            _p("previous_run", "STRING", "the last run done before it (its report compares)"),
        ),
        record=True,
        exported=False,
    ),
    NodeSpec(
        RESCORE_CHUNK,
        (
            _p("run_id", "STRING", "the RescoreRun it belongs to"),
            _p("label", "STRING", "User or Merchant"),
            _p("chunk", "INT64", "its number within the label"),
            _p("rows", "INT64", "nodes written"),
            _p("written_at", "INT64", "when its scores were written, epoch seconds"),
            _p("rank", "INT64", "the torch.distributed rank that wrote it"),
        ),
        record=True,
        exported=False,
    ),
    NodeSpec(
        STORE_IDENTITY,
        (
            _p("instance_id", "STRING", "random id drawn the first time the store was asked for "
               "it; a store created again at the same path or URI draws another"),
            _p("created_at", "INT64", "when it was drawn, epoch seconds"),
        ),
        record=True,
        exported=False,
    ),
)

RELS: Final[tuple[RelSpec, ...]] = (
    RelSpec("USES", "User", "Device", (_p("first_seen", "INT64", earliest=True),
                                       _p("last_seen", "INT64"))),
    RelSpec("HAS_PHONE", "User", "Phone", (_p("since", "INT64", earliest=True),)),
    RelSpec("LIVES_AT", "User", "Address", (_p("since", "INT64", earliest=True),)),
    RelSpec("WORKS_AT", "User", "Address", (_p("since", "INT64", earliest=True),),
            description="declared work address or company"),
    RelSpec(
        "LOGGED_IN_FROM",
        "User",
        "IP",
        (
            _p("event_id", "STRING"),
            _p("ts", "INT64"),
            _p("lat", "DOUBLE"),
            _p("lon", "DOUBLE"),
            _p("device_id", "STRING"),
        ),
        key="event_id",
    ),
    RelSpec(
        "ORDERED_AT",
        "User",
        "Merchant",
        (
            _p("event_id", "STRING"),
            _p("ts", "INT64"),
            _p("amount", "DOUBLE"),
            _p("category", "STRING"),
            _p("bnpl", "BOOL"),
            _p("returned", "BOOL"),
        ),
        key="event_id",
    ),
    RelSpec("APPLIED", "User", "Application", (_p("ts", "INT64"),)),
    RelSpec("APPLIED_ON", "Application", "Device", description="device used to apply"),
    RelSpec("APPLIED_FROM", "Application", "IP", description="IP used to apply"),
    RelSpec("APPLIED_AT", "Application", "Merchant", description="checkout merchant (BNPL)"),
    RelSpec(
        "REPAID",
        "User",
        "Application",
        (
            _p("event_id", "STRING"),
            _p("ts", "INT64"),
            _p("due_ts", "INT64"),
            _p("amount", "DOUBLE"),
            _p("status", "STRING", "on_time, late, missed"),
        ),
        key="event_id",
    ),
    RelSpec("CONTACT", "User", "User", (_p("since", "INT64", earliest=True),),
            description="emergency contact"),
    RelSpec("OWNS", "User", "Merchant", (_p("since", "INT64", earliest=True),)),
    RelSpec("REPORTED", "Merchant", "SalesReport", description="a merchant's daily sales"),
)


@dataclass(frozen=True)
class Schema:
    """The node and relationship specs with lookups and row validation."""

    nodes: tuple[NodeSpec, ...]
    rels: tuple[RelSpec, ...]
    _node_index: dict[str, NodeSpec] = field(init=False, repr=False, compare=False)
    _rel_index: dict[str, RelSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_node_index", {n.label: n for n in self.nodes})
        object.__setattr__(self, "_rel_index", {r.type: r for r in self.rels})

    @property
    def labels(self) -> tuple[NodeType, ...]:
        return tuple(self._node_index)

    @property
    def graph_labels(self) -> tuple[NodeType, ...]:
        """The labels of the relationship graph, without operational records."""
        return tuple(n.label for n in self.nodes if not n.record)

    @property
    def rel_types(self) -> tuple[RelType, ...]:
        return tuple(self._rel_index)

    def node(self, label: str) -> NodeSpec:
        """Return the spec of ``label``; raise :class:`SchemaError` if it is unknown."""
        try:
            return self._node_index[label]
        except KeyError:
            raise SchemaError(f"unknown node label {label!r}") from None

    def rel(self, rel_type: str) -> RelSpec:
        """Return the spec of ``rel_type``; raise :class:`SchemaError` if it is unknown."""
        try:
            return self._rel_index[rel_type]
        except KeyError:
            raise SchemaError(f"unknown relationship type {rel_type!r}") from None

    def check_node_row(self, label: str, row: Row) -> None:
        """Raise :class:`SchemaError` unless ``row`` is a valid ``label`` row."""
        spec = self.node(label)
        _check_row(label, row, ("id",), spec.property)

    def check_rel_row(self, rel_type: str, row: Row) -> None:
        """Raise :class:`SchemaError` unless ``row`` is a valid ``rel_type`` row."""
        spec = self.rel(rel_type)
        required = ("src", "dst") if spec.key is None else ("src", "dst", spec.key)

        def prop(name: str) -> Property:
            if name in ("src", "dst"):
                return Property(name, "STRING")
            return spec.property(name)

        _check_row(rel_type, row, required, prop)


def _check_row(owner: str, row: Row, required: tuple[str, ...], prop: object) -> None:
    for name in required:
        value = row.get(name)
        if not isinstance(value, str) or not value:
            raise SchemaError(f"{owner} row needs a non-empty string {name!r}, got {value!r}")
    for name, value in row.items():
        spec = prop(name)  # type: ignore[operator]
        if value is None:
            continue
        allowed = _PY_TYPES[spec.type]
        # NOTE: bool is an int subclass; a flag must not pass as a number or the reverse.
        if isinstance(value, bool) != (spec.type == "BOOL") or not isinstance(value, allowed):
            raise SchemaError(
                f"{owner}.{name} must be {spec.type}, got {type(value).__name__} {value!r}"
            )


SCHEMA: Final = Schema(NODES + RECORDS, RELS)
"""The one schema of RiskGraph."""
