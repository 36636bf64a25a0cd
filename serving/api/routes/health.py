"""Liveness, readiness and metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from serving.api.deps import Admin, RuntimeDep
from serving.api.errors import ERROR_RESPONSES
from serving.schemas.health import HealthPublic, ReadinessPublic

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthPublic)
def healthz() -> HealthPublic:
    """The process is alive (no key needed)."""
    return HealthPublic(status="ok")


@router.get("/readyz", response_model=ReadinessPublic,
            responses={503: {"model": ReadinessPublic, "description": "Not ready."}})
def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready when the graph store answers and the model is loaded (no key needed)."""
    now = time.monotonic()
    cached = runtime.ready_cache
    if cached is not None and now - cached[0] < 1.0:
        store_ok = cached[1]
    else:
        store_ok = runtime.guard.ping()
        runtime.ready_cache = (now, store_ok)
    model_ok = runtime.scorer.ready()
    body = ReadinessPublic(
        status="ready" if store_ok and model_ok else "not_ready",
        store="up" if store_ok else "down", model="loaded" if model_ok else "missing",
        model_version=runtime.scorer.model_version, policy_version=runtime.policy.version,
        spool_depth=runtime.spool.depth)
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ready" else 503)


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."},
    **ERROR_RESPONSES})
def metrics(runtime: RuntimeDep, _: Admin) -> Response:
    """Prometheus metrics (role admin)."""
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
