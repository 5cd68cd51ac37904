"""Spans cost CPU on every request: made only when something exports them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from starlette.types import Message, Receive, Scope, Send

from servicekit import telemetry
from servicekit.testing import DatabaseTarget
from services.gateway import middleware
from services.gateway.app import create_app
from services.gateway.tests.fakes import FakeServices
from services.gateway.tests.helpers import auth_headers, make_settings


def test_nothing_is_sampled_when_nothing_exports() -> None:
    assert telemetry.sampler_for(None) is ALWAYS_OFF
    assert telemetry.sampler_for(None, "0.5") is ALWAYS_OFF


def test_with_an_exporter_new_traces_are_sampled_at_the_ratio_and_parents_are_followed() -> None:
    every = telemetry.sampler_for("http://collector:4317")
    assert isinstance(every, ParentBased)
    assert "TraceIdRatioBased{1.0}" in every.get_description()
    some = telemetry.sampler_for("http://collector:4317", "0.1")
    assert "TraceIdRatioBased{0.1}" in some.get_description()


class NoSpans:
    def start_as_current_span(self, *_: object, **__: object) -> Any:
        raise AssertionError("a span was made while tracing is off")


async def test_no_span_is_made_when_tracing_is_off(
    db_target: DatabaseTarget, fakes: FakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A configured provider (tracing set up without an exporter), as in a deployed gateway:
    # FastAPI's own per-request telemetry would switch itself on for it.
    telemetry.configure_tracing("gateway-test", None)
    monkeypatch.setattr(middleware, "_tracer", NoSpans())
    app = create_app(make_settings(db_target, fakes.address))
    # Whether FastAPI's telemetry was around the request, as it answered.
    wrapped: list[bool] = []

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        async def noting(message: Message) -> None:
            wrapped.append("fastapi.telemetry" in scope)
            await send(message)

        await app(scope, receive, noting)

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(watched), base_url="http://gw") as http,
    ):
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        headers = await auth_headers(http, "hq.admin")
        headers["traceparent"] = f"00-{trace_id}-00f067aa0ba902b7-01"
        reply = await http.get("/api/v1/ping", headers=headers)
    assert reply.status_code == 200
    # The caller's trace still goes on into the services' calls, without a span of ours.
    assert fakes.seen.metadata[-1]["traceparent"].split("-")[1] == trace_id
    assert wrapped and not any(wrapped)
