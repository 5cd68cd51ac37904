"""OpenTelemetry tracing. Spans are exported over OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT is
set; trace ids are made either way so logs can be correlated. Trace context travels in gRPC
metadata and NATS message headers as W3C `traceparent`."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_configured = False


def configure_tracing(service: str, otlp_endpoint: str | None) -> None:
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    _configured = True


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


@functools.cache
def tracer(name: str) -> trace.Tracer:
    # Kept: getting a tracer builds a new one each time, and hot paths ask per message. One
    # got before tracing is configured is a proxy that follows the provider set later.
    return trace.get_tracer(name)


def inject_headers() -> dict[str, str]:
    """The current trace context as carrier headers (traceparent, tracestate)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract_context(
    carrier: Mapping[str, str] | Iterable[tuple[str, str | bytes]],
) -> otel_context.Context:
    if not isinstance(carrier, Mapping):
        carrier = {k: v for k, v in carrier if isinstance(v, str)}
    return propagate.extract(carrier)
