"""Behaviour events and labels."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from serving.api.deps import Investigator, RuntimeDep, Scoring
from serving.api.errors import ERROR_RESPONSES
from serving.errors import InvalidFieldError
from serving.schemas.events import EventBatchCreate, EventBatchPublic
from serving.schemas.labels import LabelBatchCreate, LabelBatchPublic

router = APIRouter(prefix="/v1", tags=["events"])
_RESPONSES: dict[int | str, dict[str, Any]] = {**ERROR_RESPONSES,
              503: {"description": "Store down and the local spool cannot accept the write."}}


@router.post("/events", response_model=EventBatchPublic, status_code=status.HTTP_202_ACCEPTED,
             responses=_RESPONSES)
def post_events(batch: EventBatchCreate, runtime: RuntimeDep, _: Scoring) -> EventBatchPublic:
    """Record logins, orders, repayments and merchant sales (role scoring); idempotent by event id."""
    limit = runtime.settings.MAX_EVENTS_PER_BATCH
    if len(batch.events) > limit:
        raise InvalidFieldError(("body", "events"), f"at most {limit} events per batch",
                                len(batch.events))
    outcome = runtime.ingest.add_events(batch.events)
    return EventBatchPublic(accepted=outcome.accepted, duplicates=outcome.duplicates,
                            conflicts=outcome.conflicts, checked=outcome.checked,
                            spooled=outcome.spooled)


@router.post("/labels", response_model=LabelBatchPublic, status_code=status.HTTP_202_ACCEPTED,
             responses=_RESPONSES)
def post_labels(batch: LabelBatchCreate, runtime: RuntimeDep,
                _: Investigator) -> LabelBatchPublic:
    """Record confirmed fraud, cleared and default labels (role investigator); idempotent by event id."""
    limit = runtime.settings.MAX_EVENTS_PER_BATCH
    if len(batch.labels) > limit:
        raise InvalidFieldError(("body", "labels"), f"at most {limit} labels per batch",
                                len(batch.labels))
    outcome = runtime.ingest.add_labels(batch.labels)
    return LabelBatchPublic(accepted=outcome.accepted, duplicates=outcome.duplicates,
                            conflicts=outcome.conflicts, spooled=outcome.spooled)
