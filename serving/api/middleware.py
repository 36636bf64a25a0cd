"""`RequestContextMiddleware`: request id, body size and time limits, access log, latency
metrics.

Plain ASGI rather than ``BaseHTTPMiddleware``: no extra task per request and no buffering of
the response, which matters at hundreds of requests per second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.logs import request_id_var
from serving.metrics import ServingMetrics

log = logging.getLogger(__name__)
access_log = logging.getLogger("serving.access")
_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class BodyTimeout(Exception):
    pass


class RequestContextMiddleware:
    """Wraps every HTTP request.

    Args:
        app (ASGIApp): the app.
        metrics (ServingMetrics): where latency goes.
        max_body_bytes (int): larger request bodies get 413 before any parsing.
        body_timeout_s (float, optional): a request whose body stops arriving for this long
            gets 408 and its connection closed, instead of holding both for as long as the
            client likes. (default: ``30.0``)
    """

    def __init__(self, app: ASGIApp, *, metrics: ServingMetrics, max_body_bytes: int,
                 body_timeout_s: float = 30.0) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

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
            await self._too_large(send, rid)
            self._finish(scope, 413, start, token)
            return
        if (length is not None and int(length) > 0) or (
                length is None and b"transfer-encoding" in headers):
            # NOTE: the body is read here, up to the limit and the timeout, so that one too
            # large is a 413 and one that stops coming a 408, before any parsing (read inside
            # the app, either exception surfaced as FastAPI's 400 "error parsing the body"); a
            # chunked body announces no length, a body may come slower than its length says.
            try:
                body = await _read_body(receive, self.max_body_bytes, self.body_timeout_s)
            except BodyTimeout:
                await self._body_timeout(send, rid)
                self._finish(scope, 408, start, token)
                return
            if body is None:
                await self._too_large(send, rid)
                self._finish(scope, 413, start, token)
                return
            receive = _replay(body, receive)

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
            # NOTE: every body there is was read above, within its limit and its timeout
            await self.app(scope, receive, send_with_id)
        except Exception:
            # NOTE: answered here rather than by Starlette's outermost handler, which runs
            # after this middleware has let go of the request id and re-raises to the server,
            # which then drops the connection: a client saw a reset, the operator a 500 with
            # no request id to find in the log.
            log.exception("unhandled error")
            if not started:
                status = 500
                await _send_json(send, 500, {"detail": "internal error", "request_id": rid},
                                 rid)
        finally:
            self._finish(scope, status, start, token)

    async def _too_large(self, send: Send, rid: str) -> None:
        await _send_json(send, 413, {"detail": f"request body larger than "
                                     f"{self.max_body_bytes} bytes"}, rid)

    async def _body_timeout(self, send: Send, rid: str) -> None:
        await _send_json(send, 408, {"detail": f"request body not received: nothing came for "
                                     f"{self.body_timeout_s:g} s"}, rid, close=True)

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


async def _read_body(receive: Receive, limit: int, timeout_s: float) -> bytes | None:
    """The whole request body, or ``None`` as soon as it is longer than ``limit`` bytes.

    Raises:
        BodyTimeout: nothing came for ``timeout_s`` before the body's end.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            async with asyncio.timeout(timeout_s):
                message = await receive()
        except TimeoutError:
            raise BodyTimeout from None
        if message["type"] != "http.request":
            break  # the client went away; the app sees an empty body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` in one message, then the server's messages
    (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_json(send: Send, status: int, body: dict[str, object], rid: str, *,
                     close: bool = False) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(data)).encode()),
               (b"x-request-id", rid.encode("latin-1"))]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
