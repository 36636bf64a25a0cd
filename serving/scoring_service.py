"""`ScoringService`: one application in, one verdict out; what ``POST /v1/score`` calls.

The steps, in order: hash identifiers and the canonical request; look for a verdict of the
application id (waiting in the local spool, then in the store, then among the answers this
host's replicas recorded) and answer with it, or refuse a different body (409); score under
the store's read timeout, or without the store in degraded mode; apply the policy; render
reasons; claim the ``Verdict`` record in the store (the spool while the store is down) and
queue the application's rows behind it (:meth:`serving.writer.DurableWriter.claim`). A claim
lost to another replica answers with that replica's verdict. Every verdict answered is
recorded in the replica's spool file, so that while the store cannot be read a resent id still
gets its verdict or 409 (docs/API.md, "Idempotency while the store is down").
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from graph import GraphError, GraphNode, GraphStore, Pseudonymiser
from graph.typing import PRODUCT_TERMS
from serving.champion_challenger import ChampionVerdict
from serving.errors import IdempotencyConflictError, InvalidFieldError
from serving.graph_writes import (
    application_ops,
    canonical_json,
    canonical_request,
    sha256_hex,
    to_facts,
)
from serving.metrics import ServingMetrics
from serving.policy import Policy, decide
from serving.reasons import render
from serving.schemas.application import ApplicationCreate
from serving.schemas.verdict import (
    CreditPublic,
    EvidencePublic,
    ReasonPublic,
    VerdictAuditPublic,
    VerdictConflictPublic,
    VerdictPublic,
)
from serving.scoring import ApplicationFacts, Evidence, ScoreResult, Scorer, Signal
from serving.spool import Answer
from serving.store_guard import StoreDown, StoreGuard
from serving.watchlist import Watchlist
from serving.writer import DurableWriter, Op

log = logging.getLogger(__name__)

MAX_REASONS: Final = 8
_LOCK_STRIPES: Final = 256


@dataclass(frozen=True)
class ScoreOutcome:
    """A verdict (as the JSON that is stored and returned) and whether it was a stored one
    answered again."""

    verdict_json: str
    replayed: bool
    stored_in: Literal["graph", "spool", "answers"]

    @property
    def verdict(self) -> VerdictPublic:
        return VerdictPublic.model_validate_json(self.verdict_json)


class ScoringService:
    """Decides verdicts (see the module docstring).

    Args:
        guard (StoreGuard): store access under timeouts.
        writer (DurableWriter): writes to the store or the spool.
        scorer (Scorer): the model.
        policy (Policy): thresholds and limits.
        pseudonymiser (Pseudonymiser): keyed hashing of identifiers.
        metrics (ServingMetrics): where to count.
        degraded_cap (float, optional): operator ceiling on degraded approvals.
            (default: ``None``)
        watchlist (Watchlist, optional): the investigators' watchlist, whose hits are fraud
            reasons of the verdict. (default: ``None``)
    """

    def __init__(self, *, guard: StoreGuard, writer: DurableWriter, scorer: Scorer,
                 policy: Policy, pseudonymiser: Pseudonymiser, metrics: ServingMetrics,
                 degraded_cap: float | None = None, watchlist: Watchlist | None = None) -> None:
        self.guard = guard
        self.writer = writer
        self.scorer = scorer
        self.policy = policy
        self.pseudonymiser = pseudonymiser
        self.metrics = metrics
        self.degraded_cap = degraded_cap
        self.watchlist = watchlist
        self.verdict_observers: list[Callable[[ChampionVerdict], None]] = []
        """Called with each new verdict once it is decided and claimed (the challenger's
        queue, the drift monitor's windows); each must return at once."""
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    def __repr__(self) -> str:
        return (f"ScoringService(scorer={self.scorer!r}, policy={self.policy.version!r}, "
                f"degraded_cap={self.degraded_cap})")

    def check(self, app: ApplicationCreate) -> None:
        """The rules that need the policy; raise :class:`InvalidFieldError` naming the field."""
        spec = self.policy.product(app.product)
        if app.amount > spec.max_amount:
            raise InvalidFieldError(("body", "amount"), f"must be at most {spec.max_amount:g} "
                                    f"for product {app.product}", app.amount)
        if app.currency != self.policy.currency:
            raise InvalidFieldError(("body", "currency"),
                                    f"must be {self.policy.currency}", app.currency)
        if app.term_months is not None and app.term_months not in PRODUCT_TERMS[app.product]:
            raise InvalidFieldError(("body", "term_months"), "must be one of "
                                    f"{', '.join(map(str, PRODUCT_TERMS[app.product]))} for "
                                    f"product {app.product}", app.term_months)
        if app.product in ("bnpl", "merchant_loan") and app.merchant_id is None:
            raise InvalidFieldError(("body", "merchant_id"),
                                    f"is required for product {app.product}", None)

    def score(self, app: ApplicationCreate) -> ScoreOutcome:
        """Decide one application, or answer with its stored verdict.

        Raises:
            InvalidFieldError: the request breaks the policy's limits.
            IdempotencyConflictError: the id was decided for a different body.
        """
        t0 = time.perf_counter()
        self.check(app)
        facts = to_facts(app, self.pseudonymiser)
        request = canonical_request(facts)
        request_hash = sha256_hex(canonical_json(request))
        lock = self._locks[zlib.crc32(app.application_id.encode()) % _LOCK_STRIPES]
        stage = self.metrics.score_stage
        with lock:
            t_lookup = time.perf_counter()
            stored = self._stored(app.application_id, request_hash)
            if stored is not None:
                return stored
            t_model = time.perf_counter()
            stage.labels("lookup").observe(t_model - t_lookup)
            # NOTE: the scorer reads the live graph, not the store: a slow store does not slow
            # a verdict. One made while the store is down is flagged degraded all the same
            # (other replicas' writes since are unseen; this one waits in the spool), as is
            # one made without any graph state (the scorer's prior).
            degraded = not self.guard.up
            try:
                result = self.scorer.score(facts, None)
            except Exception:
                log.exception("scorer failed on %s; deciding in degraded mode",
                              app.application_id)
                self.metrics.scorer_errors.inc()
                result = self.scorer.prior(facts)
            degraded = degraded or result.features.get("degraded") is True
            watched = [] if self.watchlist is None else self.watchlist.signals(facts)
            verdict, op = self._decision(app, facts, request, request_hash, result, degraded,
                                         t0, watched)
            t_claim = time.perf_counter()
            stage.labels("model").observe(t_claim - t_model)
            try:
                written = self.writer.claim("score", op, key=app.application_id,
                                            spool_when_down=degraded)
            except StoreDown as e:
                # NOTE: the claim did not reach the store. On a shared store it is the first
                # store call of a new application (see _stored), so an outage shows here: when
                # it marked the store down, the verdict is decided again as degraded (capped,
                # and saying so), as the look-up's failure made it before. A slow store alone
                # leaves the verdict as the live graph decided it (docs/API.md).
                log.warning("verdict claim for %s not answered (%s); spooled",
                            app.application_id, e)
                self.metrics.unverified.inc()
                if not self.guard.up:
                    degraded = True
                    verdict, op = self._decision(app, facts, request, request_hash, result,
                                                 True, t0, watched)
                self.writer.spool_claim("score", op, key=app.application_id)
                written = None
            stage.labels("claim").observe(time.perf_counter() - t_claim)
            stored_in: Literal["graph", "spool"] = "spool" if written is None else "graph"
            if written is not None and app.application_id in written.existing_verdicts:
                # NOTE: decided before (a resend: the look-up leaves it to the claim on a
                # shared store), or by another replica between our look-up and our claim.
                return self._answer_existing(
                    app.application_id, request_hash,
                    written.existing_verdicts[app.application_id].properties, "graph")
        labels = {"product": app.product, "decision": verdict.decision,
                  "degraded": str(degraded).lower()}
        self.metrics.score_latency.labels(**labels).observe(time.perf_counter() - t0)
        if self.verdict_observers:
            answered = ChampionVerdict(facts, verdict.decision, verdict.fraud_probability,
                                       verdict.credit.pd, verdict.model_version, degraded,
                                       result.features)
            for observe in self.verdict_observers:
                observe(answered)
        self.metrics.verdicts.labels(**labels).inc()
        if degraded:
            self.metrics.degraded.inc()
        return ScoreOutcome(str(op["row"]["verdict_json"]), False, stored_in)

    def _decision(self, app: ApplicationCreate, facts: ApplicationFacts,
                  request: Mapping[str, Any], request_hash: str, result: ScoreResult,
                  degraded: bool, t0: float, watched: Sequence[Signal]
                  ) -> tuple[VerdictPublic, Op]:
        """The verdict of a scored application and the ``verdict`` op that stores it."""
        verdict, features = self._verdict(app, result, degraded, t0, watched)
        verdict_json = verdict.model_dump_json()
        row = {
            "id": app.application_id, "request_hash": request_hash,
            "decision": verdict.decision, "fraud_probability": verdict.fraud_probability,
            "pd": verdict.credit.pd, "grade": verdict.credit.grade,
            "credit_limit": verdict.credit.recommended_limit, "degraded": degraded,
            "model_version": verdict.model_version,
            "graph_version": verdict.graph_version,
            "policy_version": verdict.policy_version,
            "decided_at": int(verdict.decided_at.timestamp()),
            "verdict_json": verdict_json,
            "features_json": canonical_json(features),
            "request_json": canonical_json(request),
        }
        (op,) = application_ops(facts, row, self.pseudonymiser, app)
        return verdict, op

    def warm_up(self) -> None:
        """Run the scorer's reads once on a made-up application so that the store has planned
        and cached its queries before the first real verdict (best effort)."""
        facts = ApplicationFacts(
            application_id="warm-up", product="bnpl", amount=1.0, currency=self.policy.currency,
            user_id="warm-up-user", device_id="dv_warm_up", device_masked="****", ip="ip_warm_up",
            lat=0.0, lon=0.0, ts=int(time.time()), merchant_id="warm-up-merchant")
        t0 = time.perf_counter()
        try:
            self.guard.read(lambda s: (s.get_node("Verdict", "warm-up"),
                                       self.scorer.score(facts, s)),
                            timeout_s=max(5.0, self.guard.write_timeout_s))
        except Exception as e:  # noqa: BLE001 - warming up is optional
            log.info("warm-up skipped: %s", e)
            return
        log.info("warm-up done in %.0f ms", (time.perf_counter() - t0) * 1000)

    # -- the audit trail ----------------------------------------------------------------------
    def audit(self, application_id: str) -> VerdictAuditPublic | None:
        """The stored verdict of an application with its hash, request, features and the
        answers that lost to it (``VerdictConflict`` records).

        Raises:
            StoreDown: the store is unavailable and the verdict is not in the local spool.
        """
        spooled = self._spooled_row(application_id)
        if spooled is not None:
            return _audit(spooled, "spool", [])
        if not self.writer.may_have_verdict(application_id):
            return None
        prefix = f"{application_id}/"

        def read(store: GraphStore) -> tuple[GraphNode | None, list[GraphNode]]:
            node = store.get_node("Verdict", application_id)
            if node is None:
                return None, []
            # NOTE: conflicts are rare (answers given in an outage that lost at replay): a
            # scan of their ids costs less than an index no other query needs.
            ids = [i for i in store.node_ids("VerdictConflict") if i.startswith(prefix)]
            found = (store.get_node("VerdictConflict", i) for i in ids)
            return node, [c for c in found if c is not None]

        node, conflicts = self.guard.investigate(read)
        return None if node is None else _audit(node.properties, "graph", conflicts)

    def conflicts(self, limit: int) -> list[VerdictConflictPublic]:
        """The ``VerdictConflict`` records, the most recently found first.

        Raises:
            StoreDown: the store is unavailable or slow.
        """
        table = self.guard.investigate(lambda s: s.export_nodes("VerdictConflict"))
        rows = sorted(table.to_pylist(), key=lambda r: (-int(r["found_at"] or 0), r["id"]))
        return [_conflict(r) for r in rows[:limit]]

    # -- helpers ------------------------------------------------------------------------------
    def _spooled_row(self, application_id: str) -> Mapping[str, Any] | None:
        ops = self.writer.find_spooled("score", application_id)
        if ops is None:
            return None
        return next((op["row"] for op in ops if op["op"] == "verdict"), None)

    def _stored(self, application_id: str, request_hash: str) -> ScoreOutcome | None:
        """The verdict already given for ``application_id``, looked for in order where it
        can be: waiting in this replica's spool; in the store; recorded by a replica of this
        host (answered, not stored yet; or, with the store unreadable, any answer).

        Raises:
            IdempotencyConflictError: it was given for another request.
        """
        row = self._spooled_row(application_id)
        if row is not None:
            return self._answer_existing(application_id, request_hash, row, "spool")
        if not self.writer.may_have_verdict(application_id):
            return None
        if self.writer.claims_in_store and self.guard.up:
            # NOTE: the claim after scoring creates the Verdict record unless one exists and
            # returns the one that does (first claim wins, across replicas), so a read here
            # would only answer a resend sooner: a round trip to a shared store for every new
            # application (Neo4j: p99 96 ms of queueing at 100 verdicts/s) to spare the rare
            # resend one scoring. What this host answered and has not stored yet is not in the
            # store: that is looked for here.
            answered = self.writer.answered(application_id)
            return None if answered is None else self._answer_recorded(answered, request_hash)
        try:
            node: GraphNode | None = self.guard.read(
                lambda s: s.get_node("Verdict", application_id))
        except (StoreDown, GraphError) as e:
            answered = self.writer.answered(application_id)
            if answered is not None:
                return self._answer_recorded(answered, request_hash)
            # NOTE: neither this host nor the store can say whether another replica decided
            # this id; it is decided anew, and at replay a verdict already stored stands and
            # this one is kept as a VerdictConflict (docs/API.md).
            log.warning("verdict look-up for %s failed (%s) and no replica of this host "
                        "answered it; deciding anew", application_id, e)
            self.metrics.unverified.inc()
            return None
        if node is None:
            answered = self.writer.answered(application_id)
            return None if answered is None else self._answer_recorded(answered, request_hash)
        outcome = self._answer_existing(application_id, request_hash, node.properties, "graph")
        # NOTE: recorded so that this replica answers it again while the store is down.
        self.writer.record_answer(Answer(application_id, request_hash, outcome.verdict_json))
        return outcome

    def _answer_recorded(self, answered: Answer, request_hash: str) -> ScoreOutcome:
        return self._answer_existing(
            answered.application_id, request_hash,
            {"request_hash": answered.request_hash, "verdict_json": answered.verdict_json},
            "answers")

    def _answer_existing(self, application_id: str, request_hash: str,
                         row: Mapping[str, Any], where: Literal["graph", "spool", "answers"]
                         ) -> ScoreOutcome:
        if row.get("request_hash") != request_hash:
            self.metrics.conflicts.inc()
            raise IdempotencyConflictError(application_id)
        self.metrics.idempotent_replays.inc()
        return ScoreOutcome(str(row["verdict_json"]), True, where)

    def _verdict(self, app: ApplicationCreate, result: ScoreResult, degraded: bool,
                 t0: float, watched: Sequence[Signal] = ()) -> tuple[VerdictPublic, dict[str, Any]]:
        outcome = decide(
            self.policy, application_id=app.application_id, product=app.product,
            amount=float(app.amount), fraud_probability=result.fraud_probability,
            pd=result.pd, features=result.features, degraded=degraded,
            degraded_cap=self.degraded_cap,
            fraud_reasons=[*result.fraud_signals, *watched],
            credit_reasons=result.credit_signals)
        signals: list[Signal] = list(outcome.signals)
        if degraded:
            signals.append(Signal("DEGRADED_MODE", 0.0, Evidence(
                "Application", app.application_id, app.application_id, "store_available", 0.0)))
        adverse = [s for s in [*watched, *result.signals] if s.weight > 0]
        favourable = [s for s in result.signals if s.weight <= 0]
        signals += sorted(adverse, key=lambda s: -s.weight)
        if outcome.decision == "approve" or not adverse:
            signals += favourable
        unique: dict[tuple[str, str, str, str], Signal] = {}
        for s in signals:
            ev = s.evidence
            unique.setdefault((s.code, ev.entity_type, ev.entity_id, ev.metric), s)
        # NOTE: a weight is shown where it is the scorer's contribution; the policy's, the
        # watchlist's and the service's own reasons carry ranks, not log-odds
        scored = {id(s) for s in result.signals}
        reasons = [(render(s), id(s) in scored) for s in list(unique.values())[:MAX_REASONS]]
        features: dict[str, Any] = {**result.features, "thin_file": outcome.thin_file}
        verdict = VerdictPublic(
            application_id=app.application_id,
            decision=outcome.decision,
            fraud_probability=round(result.fraud_probability, 6),
            credit=CreditPublic(pd=round(result.pd, 6), grade=outcome.grade,
                                recommended_limit=outcome.credit_limit,
                                currency=self.policy.currency),
            reasons=[ReasonPublic(code=r.code, message_en=r.message_en,
                                  message_zh=r.message_zh,
                                  evidence=EvidencePublic(**vars(r.evidence)),
                                  weight=r.weight if from_scorer else None)
                     for r, from_scorer in reasons],
            model_version=result.model_version,
            graph_version=result.graph_version,
            policy_version=self.policy.version,
            degraded=degraded,
            elapsed_ms=round((time.perf_counter() - t0) * 1000, 3),
            decided_at=datetime.now(UTC),
        )
        return verdict, features


def _audit(row: Mapping[str, Any], where: Literal["graph", "spool"],
           conflicts: list[GraphNode]) -> VerdictAuditPublic:
    return VerdictAuditPublic(
        verdict=VerdictPublic.model_validate_json(str(row["verdict_json"])),
        request_hash=str(row["request_hash"]),
        request=json.loads(str(row.get("request_json") or "{}")),
        features=json.loads(str(row.get("features_json") or "{}")),
        stored_in=where,
        conflicts=sorted((_conflict(c.properties) for c in conflicts),
                         key=lambda c: (c.found_at, c.replica)),
    )


def _conflict(row: Mapping[str, Any]) -> VerdictConflictPublic:
    return VerdictConflictPublic(
        application_id=str(row["application_id"]), kind=row["kind"],
        verdict=VerdictPublic.model_validate_json(str(row["verdict_json"])),
        request_hash=str(row["request_hash"]),
        stored_request_hash=str(row["stored_request_hash"]),
        replica=str(row["replica"]),
        found_at=datetime.fromtimestamp(int(row["found_at"]), UTC))

