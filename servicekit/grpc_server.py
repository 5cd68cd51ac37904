"""The gRPC server side every service shares: an interceptor that takes the auth and trace
context from metadata, maps domain errors to status codes (field errors travel in trailing
metadata) and records metrics; and the standard health checking service."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.trace import SpanKind

from servicekit import metrics
from servicekit.auth import AuthContext, reset_auth, set_auth
from servicekit.db import lost_connection
from servicekit.errors import (
    ERROR_METADATA_KEY,
    DomainError,
    InternalError,
    ServiceUnavailable,
)
from servicekit.telemetry import extract_context, tracer

log = logging.getLogger(__name__)


class ContextInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, service: str) -> None:
        self.service = service

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method: str = handler_call_details.method
        metadata = tuple(handler_call_details.invocation_metadata or ())
        inner = handler.unary_unary
        service = self.service

        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            token = set_auth(AuthContext.from_metadata(metadata))
            try:
                with tracer(__name__).start_as_current_span(
                    method, context=extract_context(metadata), kind=SpanKind.SERVER
                ):
                    try:
                        return await inner(request, context)
                    except DomainError as error:
                        code = error.grpc_code
                        await abort_with(context, error)
                    except Exception as error:
                        failure: DomainError
                        if lost_connection(error):
                            log.warning("database connection lost in %s", method)
                            failure = ServiceUnavailable("database unavailable")
                        else:
                            # Internal details stay in the log; the caller learns only that.
                            log.exception("unhandled error in %s", method)
                            failure = InternalError("internal error")
                        code = failure.grpc_code
                        await abort_with(context, failure)
            finally:
                reset_auth(token)
                name = method.rsplit("/", 1)[-1]
                metrics.GRPC_SERVER_HANDLED.labels(service, name, code.name).inc()
                metrics.GRPC_SERVER_DURATION.labels(service, name).observe(
                    time.perf_counter() - started
                )

        return grpc.unary_unary_rpc_method_handler(
            handle,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


async def abort_with(context: grpc.aio.ServicerContext, error: DomainError) -> None:
    await context.abort(
        error.grpc_code, error.message, trailing_metadata=((ERROR_METADATA_KEY, error.to_json()),)
    )


def new_server(service: str) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    server = grpc.aio.server(
        interceptors=[ContextInterceptor(service)],
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.max_receive_message_length", 8 * 1024 * 1024),
            # Clients reconnect every few minutes (calls in flight get 30 s to finish), and on
            # reconnecting resolve the name again: new replicas start taking calls.
            ("grpc.max_connection_age_ms", 5 * 60_000),
            ("grpc.max_connection_age_grace_ms", 30_000),
        ],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return server, health_servicer


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
