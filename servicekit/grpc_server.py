"""The gRPC server side every service shares: an interceptor that verifies the caller's signed
token and refuses text no database stores before any handler runs, takes the trace context
from metadata, maps domain errors to status codes (field errors travel in trailing metadata)
and records metrics; the standard health checking service, callable without a token (probes);
mutual TLS when configured."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.trace import SpanKind

from servicekit import idempotency, metrics
from servicekit.auth import reset_auth, set_auth
from servicekit.caller_token import (
    METADATA_KEY,
    CallerTokenVerifier,
    hold_received,
    load_verifier,
    release_received,
)
from servicekit.db import lost_connection, lost_race
from servicekit.errors import (
    ERROR_METADATA_KEY,
    DomainError,
    InternalError,
    ServiceUnavailable,
    Unauthenticated,
)
from servicekit.settings import TrustSettings
from servicekit.telemetry import extract_context, tracer
from servicekit.text_hygiene import refuse_unstorable_text
from servicekit.tls import TlsFiles, peer_process

log = logging.getLogger(__name__)

_HEALTH = "/grpc.health.v1.Health/"


def audience_of(method: str) -> str:
    """The service whose API a method belongs to: `orders` for
    /aftersales.orders.v1.OrdersService/CreateRepairOrder; a caller token must name it."""
    parts = method.lstrip("/").split(".", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "aftersales" else ""


def _metadata_value(metadata: tuple[tuple[str, str | bytes], ...], name: str) -> str | None:
    for key, value in metadata:
        if key == name and isinstance(value, str):
            return value
    return None


def caller_token(metadata: tuple[tuple[str, str | bytes], ...]) -> str:
    token = _metadata_value(metadata, METADATA_KEY)
    if token is None:
        raise Unauthenticated("no caller token on the call")
    return token


# How often a call whose transaction the database rolled back for another one is run again.
LOST_RACE_TRIES = 4


async def _racing_again(
    inner: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
    request: Any,
    context: grpc.aio.ServicerContext,
    method: str,
) -> Any:
    """Run the call; when the database broke a deadlock (or a serialisation conflict) by
    rolling its transaction back, run it again after a short random pause. Nothing of the
    rolled-back try stands, and the calls it made to other services carry the same request
    id: this is what the client's own retry with the same key would do, only sooner and
    without a 5xx for a clerk to see."""
    attempt = 1
    while True:
        try:
            return await inner(request, context)
        except Exception as error:
            if attempt == LOST_RACE_TRIES or not lost_race(error):
                raise
            log.info("%s lost a race in the database (try %d); running it again", method, attempt)
            await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
            attempt += 1


class ContextInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self, service: str, verifier: CallerTokenVerifier, check_peers: bool = False
    ) -> None:
        self.service = service
        self.verifier = verifier
        # With mutual TLS: the caller's certificate must name a process that may bring the token.
        self.check_peers = check_peers
        # Each method's wrapped handler, made on its first call: the same for every call after.
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(_HEALTH):
            return handler
        if handler.unary_unary is None:
            # Only unary calls get their caller verified here: any other kind is not served.
            return None
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        inner = handler.unary_unary
        service = self.service
        verifier = self.verifier
        audience = audience_of(method)
        check_peers = self.check_peers

        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            metadata = tuple(context.invocation_metadata() or ())
            auth_reset = set_auth(None)
            received_reset = hold_received(None, None)
            request_reset = idempotency.hold_received(None)
            try:
                with tracer(__name__).start_as_current_span(
                    method, context=extract_context(metadata), kind=SpanKind.SERVER
                ):
                    try:
                        token = caller_token(metadata)
                        peer = peer_process(context.auth_context()) if check_peers else None
                        caller = verifier.verify(token, audience, peer)
                        set_auth(caller)
                        hold_received(caller, token)
                        if isinstance(request, Message):
                            refuse_unstorable_text(request)
                            request_id = _metadata_value(metadata, idempotency.REQUEST_ID_METADATA)
                            if request_id is not None:
                                idempotency.check_request_id(request_id)
                                idempotency.hold_received(
                                    idempotency.ReceivedRequest(
                                        request_id, method, idempotency.request_hash(request)
                                    )
                                )
                        return await _racing_again(inner, request, context, method)
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
                idempotency.release_received(request_reset)
                release_received(received_reset)
                reset_auth(auth_reset)
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


def new_server(
    service: str,
    trust: TrustSettings | None = None,
    max_connection_age_seconds: float = 30.0,
    max_connection_age_grace_seconds: float = 10.0,
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A server whose calls need a caller token signed by a key in `trust` (by default the
    settings from the environment) and, with mutual TLS in `trust`, brought by a process the
    token lets bring it, as its certificate names it.

    Each client connection is asked to go (GOAWAY) after `max_connection_age_seconds` (gRPC
    adds ±10 % so that they do not all go at once), its calls in flight getting the grace to
    finish; the client opens a new one, resolving the name again, without failing a call. So
    with a headless Service new pods take their share within about that long, rather than
    when the clients happen to reconnect."""
    trust = trust or TrustSettings.from_env()
    verifier = load_verifier(trust.token_keys)
    server = grpc.aio.server(
        interceptors=[ContextInterceptor(service, verifier, check_peers=trust.tls is not None)],
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.max_receive_message_length", 8 * 1024 * 1024),
            ("grpc.max_connection_age_ms", int(max_connection_age_seconds * 1000)),
            ("grpc.max_connection_age_grace_ms", int(max_connection_age_grace_seconds * 1000)),
        ],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return server, health_servicer


def listen(server: grpc.aio.Server, address: str, tls: TlsFiles | None) -> int:
    """Open the server's port, with mutual TLS when configured (its certificate re-read when
    the files change); the port, 0 when it failed."""
    if tls is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, tls.server_credentials())


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
