"""`RequestContextMiddleware`: request id, body size limit, access log, latency metrics.

Plain ASGI rather than ``BaseHTTPMiddleware``: no extra task per request and no buffering of
the response, which matters at hundreds of requests per second.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.logs import request_id_var
from serving.metrics import ServingMetrics

access_log = logging.getLogger("serving.access")
_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    """Wraps every HTTP request.

    Args:
        app (ASGIApp): the app.
        metrics (ServingMetrics): where latency goes.
        max_body_bytes (int): larger request bodies get 413 before any parsing.
    """

    def __init__(self, app: ASGIApp, *, metrics: ServingMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        start = time.perf_counter()
        status = 500
        started = False

        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _send_json(send, 413, {"detail": f"request body larger than "
                                         f"{self.max_body_bytes} bytes"}, rid)
            self._finish(scope, 413, start, token)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except BodyTooLarge:
            if not started:
                status = 413
                await _send_json(send, 413, {"detail": f"request body larger than "
                                             f"{self.max_body_bytes} bytes"}, rid)
        finally:
            self._finish(scope, status, start, token)

    def _finish(self, scope: Scope, status: int, start: float, token: object) -> None:
        elapsed = time.perf_counter() - start
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        self.metrics.http_latency.labels(method=method, route=path,
                                         status=str(status)).observe(elapsed)
        state = scope.get("state") or {}
        principal = state.get("principal") if isinstance(state, dict) else None
        access_log.info("%s %s %d", method, scope.get("path", ""), status, extra={
            "route": path, "status": status, "ms": round(elapsed * 1000, 3),
            "key_id": getattr(principal, "key_id", None)})
        request_id_var.reset(token)  # type: ignore[arg-type]


async def _send_json(send: Send, status: int, body: dict[str, object], rid: str) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
        (b"x-request-id", rid.encode("latin-1"))]})
    await send({"type": "http.response.body", "body": data})
