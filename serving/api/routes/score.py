"""Scoring applications and reading verdicts back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from serving.api.deps import Investigator, RuntimeDep, Scoring
from serving.api.errors import ERROR_RESPONSES
from serving.errors import NotFoundError, UnavailableError
from serving.schemas.application import ApplicationCreate
from serving.schemas.common import ID_PATTERN
from serving.schemas.verdict import VerdictAuditPublic, VerdictConflictPublic, VerdictPublic
from serving.store_guard import StoreDown

router = APIRouter(prefix="/v1", tags=["scoring"])


@router.post("/score", response_model=VerdictPublic, responses={
    **ERROR_RESPONSES,
    409: {"description": "The application id was already scored with a different body."},
    503: {"description": "Store down and the local spool cannot accept the write."}})
def score(application: ApplicationCreate, runtime: RuntimeDep, _: Scoring) -> Response:
    """Decide one application (role scoring); the same id and body return the stored verdict."""
    outcome = runtime.scoring.score(application)
    # NOTE: the verdict goes out as the very JSON that is stored, serialised once.
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return Response(outcome.verdict_json, media_type="application/json", headers=headers)


@router.get("/verdicts/{application_id}", response_model=VerdictAuditPublic, responses={
    **ERROR_RESPONSES,
    404: {"description": "No verdict for this application id."},
    503: {"description": "Store unavailable and the verdict is not in the local spool."}})
def get_verdict(
    application_id: Annotated[str, Path(pattern=ID_PATTERN, max_length=64,
                                        description="The application id.")],
    runtime: RuntimeDep, _: Investigator,
) -> VerdictAuditPublic:
    """The audit record of a verdict: request hash, features, versions, reasons (investigator)."""
    try:
        audit = runtime.scoring.audit(application_id)
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e
    if audit is None:
        raise NotFoundError(f"no verdict for application {application_id!r}")
    return audit


@router.get("/verdict-conflicts", response_model=list[VerdictConflictPublic], responses={
    **ERROR_RESPONSES, 503: {"description": "Store unavailable."}})
def list_verdict_conflicts(
    runtime: RuntimeDep, _: Investigator,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most records returned.")] = 100,
) -> list[VerdictConflictPublic]:
    """Verdicts answered during an outage that lost to a stored one, newest first
    (investigator)."""
    try:
        return runtime.scoring.conflicts(limit)
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e
