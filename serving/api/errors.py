"""Maps serving and graph errors to HTTP answers; the only place that does."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from graph import GraphError
from serving.errors import (
    IdempotencyConflictError,
    InvalidFieldError,
    LimitExceededError,
    NotFoundError,
    StateConflictError,
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


def encodable(value: Any) -> Any:
    """``value`` with what strict JSON in UTF-8 cannot carry written out: a non-finite number
    (NaN, ±Infinity, an overflow such as ``1e309``) as its name, a lone surrogate as its
    ``\\udXXX`` escape, bytes as text.

    NOTE: a 422 echoes the input it refuses; echoed as is, these made the answer itself fail
    to encode (a 500 in place of the 422).
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if value.isascii() else value.encode(
            "utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encodable(v) for v in value]
    return value


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422,
                            content={"detail": encodable(jsonable_encoder(exc.errors()))})

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
        return JSONResponse(status_code=422, content={"detail": [encodable(jsonable_encoder({
            "loc": list(exc.field), "msg": exc.message, "type": "value_error",
            "input": exc.value}))]})

    @app.exception_handler(IdempotencyConflictError)
    async def _conflict(request: Request, exc: IdempotencyConflictError) -> JSONResponse:
        return JSONResponse(status_code=409, content={
            "detail": str(exc), "loc": ["body", "application_id"]})

    @app.exception_handler(LimitExceededError)
    async def _limit(request: Request, exc: LimitExceededError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(StateConflictError)
    async def _state(request: Request, exc: StateConflictError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

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
