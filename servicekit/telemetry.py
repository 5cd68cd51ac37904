"""OpenTelemetry tracing. Spans are recorded and exported over OTLP only when
OTEL_EXPORTER_OTLP_ENDPOINT is set, and then for the share of new traces
OTEL_TRACES_SAMPLER_ARG names (parent-based: a trace the caller sampled is sampled throughout).
Without an endpoint nothing is recorded: spans would cost CPU on every request and go nowhere.
Trace context travels in gRPC metadata and NATS message headers as W3C `traceparent`."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, TraceIdRatioBased

_configured = False
_exporting = False


def sampler_for(otlp_endpoint: str | None, ratio: float = 1.0) -> Sampler:
    """That share of new traces when spans are exported; none when nothing exports them
    (trace ids are still made, for the logs)."""
    if not otlp_endpoint:
        return ALWAYS_OFF
    return ParentBased(TraceIdRatioBased(ratio))


def configure_tracing(service: str, otlp_endpoint: str | None, sample_ratio: float = 1.0) -> None:
    global _configured, _exporting
    if _configured:
        return
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=sampler_for(otlp_endpoint, sample_ratio),
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    _configured = True
    _exporting = bool(otlp_endpoint)


def tracing_on() -> bool:
    """Whether spans go anywhere: when not, hot paths may skip making them at all."""
    return _exporting


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
