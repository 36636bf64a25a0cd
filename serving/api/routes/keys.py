"""API key management (role admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Annotated

from fastapi import APIRouter, Path, Response, status

from serving import keys
from serving.api.deps import Admin, RuntimeDep
from serving.api.errors import ERROR_RESPONSES
from serving.errors import NotFoundError, UnavailableError
from serving.schemas.keys import ApiKeyCreate, ApiKeyCreatedPublic, ApiKeyPublic
from serving.store_guard import StoreDown

router = APIRouter(prefix="/v1/keys", tags=["keys"])
_RESPONSES: dict[int | str, dict[str, Any]] = {**ERROR_RESPONSES, 503: {"description": "Graph store unavailable."}}


def _public(r: keys.ApiKeyRecord) -> ApiKeyPublic:
    return ApiKeyPublic(
        key_id=r.key_id, name=r.name, role=r.role, rate_limit_per_s=r.rate_limit_per_s,
        created_at=datetime.fromtimestamp(r.created_at, UTC),
        revoked_at=None if r.revoked_at is None else datetime.fromtimestamp(r.revoked_at, UTC))


@router.post("", response_model=ApiKeyCreatedPublic, status_code=status.HTTP_201_CREATED,
             responses={**_RESPONSES, 409: {
                 "description": "The caller already created as many active keys as it may "
                 "(RISKGRAPH_MAX_KEYS_PER_CALLER); revoke one first."}})
def create_key(body: ApiKeyCreate, runtime: RuntimeDep,
               caller: Admin) -> ApiKeyCreatedPublic:
    """Create a key; the secret is in this answer only (role admin)."""
    try:
        with runtime.keyring.creating:
            records = runtime.guard.write(keys.list_keys)
            keys.check_creator_cap(records, caller.key_id, runtime.settings.MAX_KEYS_PER_CALLER)
            record, secret = runtime.guard.write(lambda s: keys.create_key(
                s, body.name, body.role, rate_limit_per_s=body.rate_limit_per_s,
                created_by=caller.key_id))
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e
    runtime.keyring.put(record)
    return ApiKeyCreatedPublic(**_public(record).model_dump(), key=secret)


@router.get("", response_model=list[ApiKeyPublic], responses=_RESPONSES)
def list_keys(runtime: RuntimeDep, _: Admin) -> list[ApiKeyPublic]:
    """Every key, without secrets (role admin)."""
    try:
        records = runtime.guard.write(keys.list_keys)
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e
    return [_public(r) for r in records]


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               responses={**_RESPONSES, 404: {"description": "No such key."}})
def revoke_key(
    key_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,32}$", description="Key id.")],
    runtime: RuntimeDep, _: Admin,
) -> Response:
    """Revoke a key; every replica refuses it within one key refresh (role admin)."""
    try:
        found = runtime.guard.write(lambda s: keys.revoke_key(s, key_id))
        records = runtime.guard.write(keys.list_keys) if found else []
    except StoreDown as e:
        raise UnavailableError(f"graph store unavailable: {e}") from e
    if not found:
        raise NotFoundError(f"no key {key_id!r}")
    runtime.keyring.replace(records)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
