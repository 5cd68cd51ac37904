"""What every request pays for: spans only when something exports them, and a gRPC call that
carries the caller without an interceptor's task."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from starlette.types import Message, Receive, Scope, Send

from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from servicekit import telemetry
from servicekit.auth import AuthContext, reset_auth, set_auth
from servicekit.caller_token import METADATA_KEY
from servicekit.grpc_client import call, open_channel
from servicekit.testing import DatabaseTarget, gateway_signer
from services.gateway import middleware
from services.gateway.app import create_app
from services.gateway.routers import repair_orders, system
from services.gateway.tests.fakes import FakeServices
from services.gateway.tests.helpers import auth_headers, make_settings


def test_nothing_is_sampled_when_nothing_exports() -> None:
    assert telemetry.sampler_for(None) is ALWAYS_OFF
    assert telemetry.sampler_for(None, 0.5) is ALWAYS_OFF


def test_with_an_exporter_new_traces_are_sampled_at_the_ratio_and_parents_are_followed() -> None:
    every = telemetry.sampler_for("http://collector:4317")
    assert isinstance(every, ParentBased)
    assert "TraceIdRatioBased{1.0}" in every.get_description()
    some = telemetry.sampler_for("http://collector:4317", 0.1)
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


async def test_a_call_to_a_service_runs_in_no_task_of_its_own_beside_grpcs(
    fakes: FakeServices,
) -> None:
    channel = open_channel(fakes.address, "orders", gateway_signer())
    stub = orders_pb2_grpc.OrdersServiceStub(channel)
    loop = asyncio.get_running_loop()
    created: list[str] = []
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        created.append(getattr(coro, "__qualname__", "?"))
        return asyncio.Task(coro, loop=loop, **kwargs)

    held = set_auth(AuthContext("u-1", "clerk", "SH", "SH-001"))
    try:
        await call(stub.Ping, orders_pb2.PingRequest())  # connected
        loop.set_task_factory(counting)
        await call(stub.Ping, orders_pb2.PingRequest())
    finally:
        loop.set_task_factory(factory)
        reset_auth(held)
        await channel.close()
    # The client's side: grpc.aio's own task for the call, and no interceptor's task beside it.
    assert [name for name in created if "Call" in name] == ["UnaryUnaryCall._invoke"]
    assert fakes.seen.metadata[-1][METADATA_KEY]


def test_the_ping_and_the_probes_are_matched_before_every_other_route(
    db_target: DatabaseTarget,
) -> None:
    # Starlette tries routes one by one: last, they cost a hundred failed matches each.
    app = create_app(make_settings(db_target, "127.0.0.1:1"))
    included = [route.original_router for route in app.routes if hasattr(route, "original_router")]
    assert included[0] is system.router
    assert included[1] is repair_orders.router
