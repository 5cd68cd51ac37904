"""One layer around every HTTP request: its server span, its metrics, and a fresh auth context.

Pure ASGI rather than BaseHTTPMiddleware: no extra task per request, so the auth context the
auth dependency sets stays in the request's own context, and is cleared when it ends.
"""

from __future__ import annotations

import time

from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.auth import reset_auth, set_auth
from servicekit.metrics import HTTP_DURATION, HTTP_REQUESTS
from servicekit.telemetry import extract_context, tracer

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
        with _tracer.start_as_current_span(
            method, context=extract_context(carrier), kind=SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send_and_note)
            finally:
                reset_auth(auth_token)
                route = getattr(scope.get("route"), "path", UNMATCHED)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                HTTP_REQUESTS.labels(method, route, str(status)).inc()
                HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)
