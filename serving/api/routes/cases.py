"""Investigators' cases, the watchlist and the record of who read what."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status

from serving import read_audit, watchlist
from serving.api.deps import Admin, Investigator, RuntimeDep
from serving.api.errors import ERROR_RESPONSES
from serving.cases import Case, CaseItem, CaseNote
from serving.errors import UnavailableError
from serving.schemas.cases import (
    CASE_ID_PATTERN,
    CaseAssign,
    CaseDetailPublic,
    CaseDispositionCreate,
    CaseItemPublic,
    CaseNoteCreate,
    CaseNotePublic,
    CasePublic,
    CaseQueuePublic,
    WatchLabel,
    WatchlistCreate,
    WatchlistEntryPublic,
    WatchlistPublic,
)
from serving.schemas.common import ID_PATTERN
from serving.schemas.verdict import VerdictPublic
from serving.store_guard import StoreDown

router = APIRouter(prefix="/v1", tags=["cases"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, 404: {"description": "No such case."},
    503: {"description": "Graph store unavailable."}}
CaseId = Annotated[str, Path(pattern=CASE_ID_PATTERN, max_length=128,
                             description="Case id: ring:<ring id>:<n> or user:<user id>:<n>.")]
Product = Literal["bnpl", "cash_loan", "merchant_loan", "sme_owner_loan"]


@router.get("/cases", response_model=CaseQueuePublic, responses=_RESPONSES)
def list_cases(
    runtime: RuntimeDep, who: Investigator,
    status_: Annotated[Literal["open", "closed"], Query(alias="status",
                                                        description="open or closed.")] = "open",
    product: Annotated[Product | None, Query(description="Only cases with a verdict of this "
                                             "product.")] = None,
    reason: Annotated[str | None, Query(pattern=r"^[A-Z][A-Z_]{1,63}$",
                                        description="Only cases with a verdict giving this "
                                        "reason code.")] = None,
    assignee: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.:@\-]{1,64}$",
                                          description="Only cases assigned to this "
                                          "investigator.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most cases returned.")] = 100,
) -> CaseQueuePublic:
    """The case queue, highest risk first, then largest amount (investigator)."""
    cases = runtime.cases.queue(status=status_, product=product, reason=reason,
                                assignee=assignee, limit=limit)
    runtime.read_audit.record(who, "/v1/cases", "Case", f"queue:{status_}")
    return CaseQueuePublic(cases=[_case(c) for c in cases])


@router.get("/cases/{case_id}", response_model=CaseDetailPublic, responses=_RESPONSES)
def get_case(case_id: CaseId, runtime: RuntimeDep, who: Investigator) -> CaseDetailPublic:
    """One case with its review verdicts (reasons, amounts, products) and notes (investigator)."""
    case = runtime.cases.get(case_id)
    runtime.read_audit.record(who, "/v1/cases/{case_id}", "Case", case_id)
    return _detail(case)


@router.post("/cases/{case_id}/assign", response_model=CaseDetailPublic,
             responses={**_RESPONSES, 409: {"description": "The case is closed."}})
def assign_case(case_id: CaseId, body: CaseAssign, runtime: RuntimeDep,
                who: Investigator) -> CaseDetailPublic:
    """Assign an open case to an investigator (investigator)."""
    return _detail(runtime.cases.assign(case_id, body.assignee, who))


@router.post("/cases/{case_id}/notes", response_model=CaseNotePublic,
             status_code=status.HTTP_201_CREATED, responses=_RESPONSES)
def add_note(case_id: CaseId, body: CaseNoteCreate, runtime: RuntimeDep,
             who: Investigator) -> CaseNotePublic:
    """Add a note to a case; who and when are recorded (investigator)."""
    return _note(runtime.cases.add_note(case_id, body.text, who))


@router.post("/cases/{case_id}/disposition", response_model=CaseDetailPublic,
             responses={**_RESPONSES, 409: {"description": "Already disposed of otherwise."}})
def dispose_case(case_id: CaseId, body: CaseDispositionCreate, runtime: RuntimeDep,
                 who: Investigator) -> CaseDetailPublic:
    """Close a case as confirmed fraud, cleared or default risk, labelling its users and
    applications through the labels path; the same disposition again is a no-op
    (investigator)."""
    return _detail(runtime.cases.dispose(case_id, body.disposition, who))


@router.get("/watchlist", response_model=WatchlistPublic, responses=ERROR_RESPONSES)
def list_watchlist(runtime: RuntimeDep, who: Investigator) -> WatchlistPublic:
    """The entities on the watchlist, newest first (investigator)."""
    runtime.read_audit.record(who, "/v1/watchlist", "WatchlistEntry", "*")
    return WatchlistPublic(entries=[_entry(e) for e in runtime.watchlist.entries()])


@router.post("/watchlist", response_model=WatchlistEntryPublic,
             status_code=status.HTTP_201_CREATED, responses=_RESPONSES)
def add_watchlist(body: WatchlistCreate, runtime: RuntimeDep,
                  who: Investigator) -> WatchlistEntryPublic:
    """Flag a device, phone, address, IP or merchant: verdicts touching it name it
    (WATCHLISTED_<KIND>) and go to review at least (investigator)."""
    entry = watchlist.add_entry(runtime.guard, runtime.watchlist, runtime.pseudonymiser,
                                label=body.entity_type, entity_id=body.entity_id,
                                value=body.value, reason=body.reason, by=who)
    return _entry(entry)


@router.delete("/watchlist/{entity_type}/{entity_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={**_RESPONSES, 404: {"description": "Not on the watchlist."}})
def remove_watchlist(
    entity_type: Annotated[WatchLabel, Path(description="Kind of entity.")],
    entity_id: Annotated[str, Path(pattern=ID_PATTERN, max_length=64,
                                   description="Its id in the graph.")],
    runtime: RuntimeDep, who: Investigator,
) -> None:
    """Take an entity off the watchlist (investigator)."""
    watchlist.remove_entry(runtime.guard, runtime.watchlist, label=entity_type,
                           entity_id=entity_id, by=who)


@router.get("/read-audit", responses=ERROR_RESPONSES)
def list_reads(
    runtime: RuntimeDep, _: Admin,
    key_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_\-]{1,32}$",
                                        description="Only reads by this key.")] = None,
    entity_id: Annotated[str | None, Query(max_length=128,
                                           description="Only reads of this entity.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most records returned.")] = 100,
) -> dict[str, list[dict[str, Any]]]:
    """Who read what and when, newest first (admin)."""
    try:
        rows = runtime.guard.investigate(lambda s: read_audit.recent_reads(
            s, key_id=key_id, entity_id=entity_id, limit=limit))
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e
    return {"reads": [{**r, "at": datetime.fromtimestamp(int(r.get("at") or 0), UTC)
                       .isoformat()} for r in rows]}


def _time(value: object) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


def _csv(value: object) -> list[str]:
    return [v for v in value.split(",") if v] if isinstance(value, str) else []


def _case(case: Case) -> CasePublic:
    p = case.properties
    return CasePublic(
        case_id=case.case_id, status="closed" if p.get("status") == "closed" else "open",
        ring_id=p.get("ring_id"), user_id=p.get("user_id"),
        risk=float(p.get("risk") or 0.0), amount=float(p.get("amount") or 0.0),
        items=int(p.get("items") or 0), products=_csv(p.get("products")),
        reasons=_csv(p.get("reasons")), opened_at=_time(p.get("opened_at")),
        assignee=p.get("assignee"), assigned_at=_time(p.get("assigned_at")),
        disposition=p.get("disposition"), disposed_at=_time(p.get("disposed_at")),
        disposed_by=p.get("disposed_by"))


def _item(item: CaseItem) -> CaseItemPublic:
    return CaseItemPublic(
        application_id=item.application_id, user_id=item.user_id, product=item.product,
        amount=item.amount, risk=item.risk,
        decided_at=datetime.fromtimestamp(item.decided_at, UTC),
        verdict=VerdictPublic.model_validate(item.verdict) if item.verdict else None)


def _note(note: CaseNote) -> CaseNotePublic:
    return CaseNotePublic(note_id=note.note_id, author=note.author,
                          author_name=note.author_name,
                          at=datetime.fromtimestamp(note.at, UTC), text=note.text)


def _detail(case: Case) -> CaseDetailPublic:
    return CaseDetailPublic(**_case(case).model_dump(),
                            verdicts=[_item(i) for i in case.items],
                            notes=[_note(n) for n in case.notes])


def _entry(e: watchlist.WatchEntry) -> WatchlistEntryPublic:
    return WatchlistEntryPublic(entity_type=e.label, entity_id=e.entity_id, masked=e.masked,
                                reason=e.reason, active=e.active, added_by=e.added_by,
                                added_at=datetime.fromtimestamp(e.added_at, UTC))
