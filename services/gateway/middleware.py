"""Layers around every HTTP request: its server span (when spans are exported), its metrics and
a fresh auth context; and a cap on the size of its body.

Pure ASGI rather than BaseHTTPMiddleware: no extra task per request, so the auth context the
auth dependency sets stays in the request's own context, and is cleared when it ends.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.auth import reset_auth, set_auth
from servicekit.metrics import HTTP_DURATION, HTTP_REQUESTS
from servicekit.telemetry import extract_context, tracer, tracing_on
from services.gateway.problems import problem_response

# Unknown paths share one label so that scanners cannot blow up the metric's cardinality.
UNMATCHED = "unmatched"
_TRACE_HEADERS = (b"traceparent", b"tracestate")
_tracer = tracer(__name__)


class RequestMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        status = 500  # unless the app gets to start a response

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _TRACE_HEADERS
        }
        auth_token = set_auth(None)
        try:
            if tracing_on():
                await self._traced(scope, receive, send_and_note, carrier, lambda: status)
            else:
                # Nothing records spans: make none, only carry on a trace the caller started
                # (for the logs, and into the services' calls).
                attached = otel_context.attach(extract_context(carrier)) if carrier else None
                try:
                    await self.app(scope, receive, send_and_note)
                finally:
                    if attached is not None:
                        otel_context.detach(attached)
        finally:
            reset_auth(auth_token)
            route = _route(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)

    async def _traced(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        carrier: dict[str, str],
        status: Callable[[], int],
    ) -> None:
        method: str = scope["method"]
        with _tracer.start_as_current_span(
            method, context=extract_context(carrier), kind=SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send)
            finally:
                route = _route(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status())


def _route(scope: Scope) -> str:
    return getattr(scope.get("route"), "path", UNMATCHED)


class BodyTooLarge(Exception):
    """Raised from `receive` when a streamed body passes the limit."""


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with a 413 before reading them: a declared
    Content-Length is checked up front, and a chunked body is counted as it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _body_framing(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
        elif chunked:
            await self._counted(scope, receive, send)
        else:
            # No body, or one of a declared length the server delivers no more of.
            await self.app(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        too_large = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        # Whatever the app made of the interrupted body (let it through, or answered it), the
        # answer is the 413.
        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, counting_receive, guarded_send)
        if too_large and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The connection is kept: the server drops the rest of the body unread, and a client
        # still sending it reads the 413 instead of a reset connection.
        response = problem_response(
            413,
            "Content too large",
            f"request bodies are limited to {self.max_bytes} bytes",
            scope["path"],
            "content_too_large",
        )
        await response(scope, receive, send)


def _body_framing(scope: Scope) -> tuple[int | None, bool]:
    """The declared Content-Length, if any, and whether the body comes chunked."""
    declared: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            # The server has already refused a Content-Length that is not a number.
            declared = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    return declared, chunked
