"""The seam between the API and the model: :class:`Scorer` and the values it trades.

The routes depend on this protocol only. A scorer turns one validated, pseudonymised
application (:class:`ApplicationFacts`) plus the graph store into probabilities, the features
it used and the evidence behind them (:class:`Signal`); the policy turns that into a decision.
``store`` is ``None`` in degraded mode: the scorer then uses only what the request carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias, runtime_checkable

from graph import GraphStore
from graph.typing import PRODUCTS, Product, loan_term

FeatureValue: TypeAlias = float | int | str | bool | None


@dataclass(frozen=True)
class ApplicationFacts:
    """One loan application as the scorer sees it: identifiers already keyed-hashed.

    Args:
        application_id (str): the caller's application id (idempotency key).
        product (Product): the credit product applied for.
        amount (float): amount applied for, in ``currency``.
        currency (str): ISO 4217 code.
        user_id (str): platform user id.
        device_id (str): keyed hash of the device serial (``dv_…``).
        device_masked (str): masked serial for display.
        ip (str): keyed hash of the IP address (``ip_…``), the IP node's id.
        lat (float): latitude of the application.
        lon (float): longitude of the application.
        ts (int): application time, epoch seconds.
        city (str, optional): city the client reported. (default: ``None``)
        address_id (str, optional): keyed hash of the declared address. (default: ``None``)
        phone_id (str, optional): keyed hash of the phone number. (default: ``None``)
        merchant_id (str, optional): checkout merchant (BNPL) or borrowing merchant.
            (default: ``None``)
        ip_masked (str, optional): the IP's network for display (``10.12.0.0/24``).
            (default: ``None``)
        term_months (int, optional): the loan term the application states, in monthly
            instalments; :attr:`term` is the one it is scored with. (default: ``None``)
    """

    application_id: str
    product: Product
    amount: float
    currency: str
    user_id: str
    device_id: str
    device_masked: str
    ip: str
    lat: float
    lon: float
    ts: int
    city: str | None = None
    address_id: str | None = None
    phone_id: str | None = None
    merchant_id: str | None = None
    ip_masked: str | None = None
    term_months: int | None = None

    @property
    def term(self) -> int:
        """The term scored and stored: :attr:`term_months`, else the product's longest
        (:func:`graph.typing.loan_term`)."""
        return loan_term(self.product, self.term_months)


@dataclass(frozen=True)
class Evidence:
    """What a reason points at: an entity and a number.

    Args:
        entity_type (str): node label (``Device``, ``User``, ``Application``...).
        entity_id (str): node id (hashed for people's identifiers).
        display (str): what an investigator reads (masked serial, city, ...).
        metric (str): what ``value`` measures (``shared_accounts``, ``km_from_usual``...).
        value (float): the number.
        reference (float, optional): the threshold or baseline it was compared with.
            (default: ``None``)
    """

    entity_type: str
    entity_id: str
    display: str
    metric: str
    value: float
    reference: float | None = None


@dataclass(frozen=True)
class Signal:
    """One piece of evidence that moved a score, with what its message needs.

    Args:
        code (str): a stable code of :data:`serving.reasons.CATALOGUE`.
        weight (float): contribution to the score's log-odds; ranks the reasons (negative
            weights are in the applicant's favour).
        evidence (Evidence): the entity and number behind it.
        params (Mapping[str, FeatureValue]): values the message templates interpolate.
    """

    code: str
    weight: float
    evidence: Evidence
    params: Mapping[str, FeatureValue] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreResult:
    """What a scorer returns for one application.

    Args:
        fraud_probability (float): calibrated probability the application is fraud.
        pd (float): probability of default if funded.
        features (Mapping[str, FeatureValue]): the named features used (no embeddings), kept
            in the audit trail; the policy reads limit inputs such as ``monthly_spend`` here.
        fraud_signals (tuple[Signal, ...]): what moved the fraud score, strongest first.
        credit_signals (tuple[Signal, ...]): what moved the probability of default.
        model_version (str): the model that produced the scores.
        graph_version (str): the state of the graph that was read.
    """

    fraud_probability: float
    pd: float
    features: Mapping[str, FeatureValue]
    fraud_signals: tuple[Signal, ...]
    credit_signals: tuple[Signal, ...]
    model_version: str
    graph_version: str

    @property
    def signals(self) -> tuple[Signal, ...]:
        """Fraud and credit signals together."""
        return self.fraud_signals + self.credit_signals


@runtime_checkable
class Scorer(Protocol):
    """Scores an application from the graph; the routes know nothing else about models."""

    @property
    def model_version(self) -> str:
        """The version of the model in use."""
        ...

    def ready(self) -> bool:
        """Whether the model is loaded and can score."""
        ...

    def prior(self, application: ApplicationFacts) -> ScoreResult:
        """The scores of an application without any graph (base rates; its features say
        ``degraded``): what the service decides with when scoring failed."""
        ...

    def score(self, application: ApplicationFacts, store: GraphStore | None) -> ScoreResult:
        """Score one application.

        Args:
            application (ApplicationFacts): the validated, pseudonymised application.
            store (GraphStore, optional): the graph as it was before this application; ``None``
                in degraded mode, when only the request itself is available.
        """
        ...

    def close(self) -> None:
        """Release what the scorer holds (the GNN's child process); called once, at shutdown."""
        ...
