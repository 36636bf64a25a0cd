"""Maps serving and graph errors to HTTP answers; the only place that does."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from graph import GraphError
from serving.errors import (
    IdempotencyConflictError,
    InvalidFieldError,
    NotFoundError,
    UnavailableError,
)
from serving.logs import request_id_var
from serving.spool import SpoolError

log = logging.getLogger(__name__)

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body cannot be read (not UTF-8 / not JSON)."},
    401: {"description": "No valid API key in X-API-Key."},
    403: {"description": "The key's role may not call this endpoint."},
    422: {"description": "Invalid input; `detail[].loc` names the field."},
    429: {"description": "Rate limit of the key exceeded; see Retry-After."},
}


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            # NOTE: Starlette's Allow names the first route that matched the path only; one
            # path served by two routes (GET and POST /v1/keys) must list both.
            path = request.url.path
            allowed = sorted({m for r in request.app.routes if isinstance(r, APIRoute)
                              and r.path_regex.match(path) for m in (r.methods or ())})
            return JSONResponse({"detail": exc.detail}, status_code=405,
                                headers={**(exc.headers or {}), "Allow": ", ".join(allowed)})
        return await http_exception_handler(request, exc)

    @app.exception_handler(InvalidFieldError)
    async def _invalid(request: Request, exc: InvalidFieldError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": [jsonable_encoder({
            "loc": list(exc.field), "msg": exc.message, "type": "value_error",
            "input": exc.value})]})

    @app.exception_handler(IdempotencyConflictError)
    async def _conflict(request: Request, exc: IdempotencyConflictError) -> JSONResponse:
        return JSONResponse(status_code=409, content={
            "detail": str(exc), "loc": ["body", "application_id"]})

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(UnavailableError)
    async def _unavailable(request: Request, exc: UnavailableError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)},
                            headers={"Retry-After": "1"})

    @app.exception_handler(SpoolError)
    async def _spool(request: Request, exc: SpoolError) -> JSONResponse:
        log.error("spool failure: %s", exc)
        return JSONResponse(status_code=503, content={
            "detail": "graph store unavailable and the local spool cannot accept writes"},
            headers={"Retry-After": "5"})

    @app.exception_handler(GraphError)
    async def _graph(request: Request, exc: GraphError) -> JSONResponse:
        log.error("graph store rejected a call: %s", exc)
        return JSONResponse(status_code=503, content={
            "detail": "graph store error", "request_id": request_id_var.get()},
            headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(status_code=500, content={
            "detail": "internal error", "request_id": request_id_var.get()})
