"""Dependencies of the routes: the runtime, and who may call (API key, role, rate limit)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from serving.api.runtime import Runtime
from serving.keys import Principal, Role

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="API key; roles: scoring, investigator, admin.")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency that admits a valid key of one of ``roles`` (admin always), within its
    rate limit: 401 without a valid key, 403 for another role, 429 over the limit."""
    allowed = frozenset(roles) | {"admin"}

    def dependency(
        request: Request,
        runtime: RuntimeDep,
        key: Annotated[str | None, Security(api_key_header)] = None,
    ) -> Principal:
        if not key:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header",
                                headers={"WWW-Authenticate": "ApiKey"})
        principal = runtime.keyring.authenticate(key)
        if principal is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or revoked API key",
                                headers={"WWW-Authenticate": "ApiKey"})
        if principal.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"role {principal.role} may not call this endpoint; needs "
                                f"{' or '.join(sorted(allowed))}")
        wait = runtime.limiter.acquire(principal.key_id, principal.rate_limit_per_s)
        if wait > 0:
            runtime.metrics.rate_limited.inc()
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                                f"rate limit of key {principal.key_id} exceeded",
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
        request.state.principal = principal
        return principal

    return dependency


Scoring = Annotated[Principal, Depends(require("scoring"))]
Investigator = Annotated[Principal, Depends(require("investigator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
