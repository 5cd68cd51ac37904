"""One trace follows a repair order from the clerk's request to the reports: the gateway's HTTP
span, orders' gRPC span, the outbox relay's publish span (its trace context kept in the outbox
row) and reporting's consume span (carried in the NATS message's headers), all in one trace,
each the child of the one before. The processes export their spans over OTLP to a receiver in
this test that keeps them in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from devtools.system import LocalSystem, SystemConfig
from servicekit.testing import eventually, free_port
from tests.e2e.conftest import Api, repair_order

SPAN_KIND_SERVER, SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER = 2, 4, 5


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str


class MemoryReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver keeping every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    async def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.aio.ServicerContext,
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        Span(
                            attributes.get("service.name", ""),
                            span.name,
                            span.kind,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[tuple[MemoryReceiver, int]]:
    memory = MemoryReceiver()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(memory, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        yield memory, port
    finally:
        await server.stop(None)


@pytest.fixture(scope="module")
async def traced_system(
    receiver: tuple[MemoryReceiver, int], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalSystem]:
    folder: Path = tmp_path_factory.mktemp("traced")
    env = {
        "RATE_LIMIT_PER_SECOND": "0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver[1]}",
        "OTEL_TRACES_SAMPLER_ARG": "1",
        # Spans leave in batches this often (ms): the test waits for them.
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    local = LocalSystem(SystemConfig.for_tests(folder, env=env))
    try:
        await local.start()
        yield local
    finally:
        local.stop()
        await local.drop_schemas()


async def test_one_trace_covers_intake_from_the_gateway_to_the_reports(
    traced_system: LocalSystem, receiver: tuple[MemoryReceiver, int]
) -> None:
    memory = receiver[0]
    async with httpx.AsyncClient(base_url=traced_system.gateway_url, timeout=10) as client:
        created = await Api(client).post("sh001.clerk", "/api/v1/repair-orders", repair_order())
    assert created.status_code == 201, created.text

    def intake() -> Span | None:
        return next(
            (
                s
                for s in memory.spans
                if s.service == "gateway"
                and s.kind == SPAN_KIND_SERVER
                and s.name == "POST /api/v1/repair-orders"
            ),
            None,
        )

    async def whole_trace() -> list[Span] | None:
        root = intake()
        if root is None:
            return None
        spans = [s for s in memory.spans if s.trace_id == root.trace_id]
        consumed = [s for s in spans if s.service == "reporting" and s.kind == SPAN_KIND_CONSUMER]
        # Each process exports its spans in its own batches: the relay's publish span may come
        # in after the consumer's that followed it.
        published = [s for s in spans if s.service == "orders" and s.kind == SPAN_KIND_PRODUCER]
        return spans if consumed and published else None

    spans = await eventually(whole_trace, within=30, interval=0.2)
    by_id = {s.span_id: s for s in spans}

    def parent(span: Span) -> Span:
        assert span.parent_id in by_id, f"{span} has its parent outside the trace"
        return by_id[span.parent_id]

    root = intake()
    assert root is not None and root.parent_id == ""
    (rpc,) = [
        s
        for s in spans
        if s.service == "orders"
        and s.kind == SPAN_KIND_SERVER
        and s.name.endswith("CreateRepairOrder")
    ]
    assert parent(rpc) == root
    # The relay published the order's event under the span that wrote it; reporting's consumer
    # handled it under the relay's span.
    published = [s for s in spans if s.service == "orders" and s.kind == SPAN_KIND_PRODUCER]
    assert published and all(parent(s) == rpc for s in published)
    assert all(s.name.startswith("publish orders.v1.") for s in published)
    consumed = [s for s in spans if s.service == "reporting" and s.kind == SPAN_KIND_CONSUMER]
    assert all(parent(s) in published for s in consumed)
    assert {s.name for s in consumed} == {"consume reporting-orders"}
    # Other consumers of the event (customers, inventory) join the same trace the same way.
    assert all(parent(s) in published for s in spans if s.kind == SPAN_KIND_CONSUMER), (
        "every consumer follows the relay"
    )
