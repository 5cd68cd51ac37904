"""gRPC clients: a channel to one service whose calls carry the caller's signed token
(the one the call being served arrived with, else one signed here) and the trace context in
metadata and sets a default deadline, mutual TLS when configured, and `call` that turns a failed
RPC back into the domain error the service raised.

Calls fail fast: a service that is down answers UNAVAILABLE (ServiceUnavailable, a 503 at the
gateway) at once rather than when the deadline runs out.

A channel balances its calls round-robin over every address of the service: the replicas a
`dns:///name:port` target resolves to (a headless Kubernetes Service), or a comma-separated
list of IP addresses (`make run REPLICAS=...`). A replica that dies leaves the rotation once
its connection drops; a call it had in hand fails UNAVAILABLE and is tried again on another
replica when that cannot do it twice: a read, a method its proto declares idempotent, or a
write carrying its request id (the Idempotency-Key the service dedupes by,
servicekit.idempotency). A service's own "cannot
serve now" (ServiceUnavailable) is passed on as it is: the caller decides when to retry."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc

from servicekit.auth import AuthContext, maybe_auth
from servicekit.caller_token import METADATA_KEY, CallerTokenSigner, received_for
from servicekit.errors import ERROR_METADATA_KEY, DomainError, Unauthenticated, error_from_grpc
from servicekit.idempotency import REQUEST_ID_METADATA, request_id_to_pass
from servicekit.telemetry import inject_headers
from servicekit.tls import TlsFiles

Response = TypeVar("Response")
Metadata = Iterable[tuple[str, str | bytes]]
DEFAULT_DEADLINE_SECONDS = 5.0
# Tries of a call that may be tried again (reads, keyed writes) while replicas answer
# UNAVAILABLE, and the pause before each further one: a dead replica's connection is seen
# dropped within that.
RETRY_ATTEMPTS = 3
RETRY_BACKOFF_SECONDS = (0.05, 0.2)
# Methods that change nothing, by their name's first word.
_READS = ("Get", "List", "Find", "Check", "Export", "Ping", "Watch")
# Target schemes gRPC resolves itself; any other address is `host:port` or a list of them.
_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:", "xds:")


class CallContext:
    """What every call on a channel to `service` carries: the caller's token, the request id
    being served, the trace context; and its default deadline."""

    def __init__(
        self, default_timeout: float, service: str | None, signer: CallerTokenSigner | None
    ) -> None:
        self.default_timeout = default_timeout
        self.service = service
        self.signer = signer

    def token_for(self, caller: AuthContext, service: str) -> str:
        received = received_for(caller)
        if received is not None:
            return received
        if self.signer is None:
            raise Unauthenticated(f"no caller token to pass on to {service}")
        return self.signer.token_for(caller, service)

    def metadata(self, given: Metadata | None) -> list[tuple[str, str | bytes]]:
        metadata = list(given or ())
        caller = maybe_auth()
        if caller is not None and self.service is not None:
            metadata.append((METADATA_KEY, self.token_for(caller, self.service)))
        request_id = request_id_to_pass()
        if request_id is not None:
            metadata.append((REQUEST_ID_METADATA, request_id))
        metadata.extend(inject_headers().items())
        return metadata


def idempotent(method: str | bytes) -> bool:
    """Whether trying the method (`/package.Service/Method`) twice does no more than once: a
    read by its name, or one its proto declares so (`option idempotency_level = IDEMPOTENT`,
    or NO_SIDE_EFFECTS). Health checks are not tried again: they ask after one replica, and
    must answer at once."""
    name = method.decode() if isinstance(method, bytes) else method
    service, _slash, verb = name.rpartition("/")
    if service.startswith("/grpc.health."):
        return False
    try:
        descriptor = descriptor_pool.Default().FindMethodByName(name.strip("/").replace("/", "."))
    except KeyError:
        declared = False
    else:
        level = descriptor.GetOptions().idempotency_level
        declared = level != descriptor_pb2.MethodOptions.IDEMPOTENCY_UNKNOWN
    return declared or verb.startswith(_READS)


def _keyed(metadata: list[tuple[str, str | bytes]]) -> bool:
    return any(key == REQUEST_ID_METADATA for key, _value in metadata)


class _CarryingMethod(grpc.aio.UnaryUnaryMultiCallable):
    def __init__(self, carrying: CarryingChannel, method: str, args: Any, kwargs: Any) -> None:
        self._carrying = carrying
        self._args = (method, *args)
        self._kwargs = kwargs
        self._idempotent = idempotent(method)
        self._opened: grpc.aio.Channel | None = None
        self._method: grpc.aio.UnaryUnaryMultiCallable | None = None

    def _current(self) -> grpc.aio.UnaryUnaryMultiCallable:
        channel = self._carrying.current()
        if channel is not self._opened or self._method is None:
            self._method = channel.unary_unary(*self._args, **self._kwargs)
            self._opened = channel
        return self._method

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        context = self._carrying.context
        timeout = timeout or context.default_timeout
        sent = context.metadata(metadata)

        def attempt(seconds: float) -> Any:
            return self._current()(
                request,
                timeout=seconds,
                metadata=sent,
                credentials=credentials,
                wait_for_ready=wait_for_ready,
                compression=compression,
            )

        if self._idempotent or _keyed(sent):
            return _with_retries(attempt, timeout)
        return attempt(timeout)


def _replica_gone(error: grpc.aio.AioRpcError) -> bool:
    """UNAVAILABLE from the connection (the replica died, or went away), not a service's own
    answer that it cannot serve now (its database is away: ServiceUnavailable, a 503 to pass on)."""
    return error.code() == grpc.StatusCode.UNAVAILABLE and _domain_error_bytes(error) is None


async def _with_retries(attempt: Callable[[float], Awaitable[Response]], timeout: float) -> Any:
    """The call, tried again when its replica is gone while the deadline allows: round-robin
    sends each try to the next replica that is up."""
    deadline = time.monotonic() + timeout
    for pause in RETRY_BACKOFF_SECONDS:
        try:
            return await attempt(max(deadline - time.monotonic(), 0.001))
        except grpc.aio.AioRpcError as error:
            if not _replica_gone(error) or time.monotonic() + pause > deadline:
                raise
        await asyncio.sleep(pause)
    return await attempt(max(deadline - time.monotonic(), 0.001))


# How often a channel with mutual TLS looks whether its certificate files changed, and how long
# the calls on a replaced channel get to finish.
TLS_RELOAD_SECONDS = 1.0
REPLACED_CHANNEL_GRACE_SECONDS = 30.0


class CarryingChannel(grpc.aio.Channel):
    """A channel whose unary calls carry their CallContext. Added per call rather than by a
    client interceptor: grpc.aio runs every intercepted call in a task of its own, which cost
    more CPU than the rest of a call to a no-op. With mutual TLS, a renewed certificate (its
    files replaced, as cert-manager does) opens a new channel for the calls from then on; the
    old one closes once its calls are done."""

    def __init__(
        self,
        open_: Callable[[], grpc.aio.Channel],
        context: CallContext,
        tls: TlsFiles | None = None,
    ) -> None:
        self._open = open_
        self._channel = open_()
        self.context = context
        self._tls = tls
        self._stamp = tls.stamp() if tls is not None else None
        self._looked = time.monotonic()
        self._closing: set[asyncio.Task[None]] = set()

    def current(self) -> grpc.aio.Channel:
        """The channel calls go on now: a new one once the certificate files changed."""
        if self._tls is not None and time.monotonic() - self._looked >= TLS_RELOAD_SECONDS:
            self._looked = time.monotonic()
            stamp = self._tls.stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                replaced, self._channel = self._channel, self._open()
                task = asyncio.ensure_future(replaced.close(REPLACED_CHANNEL_GRACE_SECONDS))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        return self._channel

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _CarryingMethod(self, method, args, kwargs)

    # The streaming kinds (the health service's Watch) and the rest: the plain channel's.
    def unary_stream(self, *args: Any, **kwargs: Any) -> Any:
        return self.current().unary_stream(*args, **kwargs)

    def stream_unary(self, *args: Any, **kwargs: Any) -> Any:
        return self.current().stream_unary(*args, **kwargs)

    def stream_stream(self, *args: Any, **kwargs: Any) -> Any:
        return self.current().stream_stream(*args, **kwargs)

    async def __aenter__(self) -> CarryingChannel:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)
        for task in list(self._closing):
            task.cancel()

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self.current().get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.current().wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.current().channel_ready()


_ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def channel_target(address: str) -> str:
    """The gRPC target for a service's address: `host:port` or a target with its scheme
    (`dns:///orders:50151`, whose name resolves to every replica) as it is; a comma-separated
    list of IP `host:port`s as one `ipv4:`/`ipv6:` target over them all. ValueError naming
    the fault for a list gRPC cannot take."""
    items = [item.strip() for item in address.split(",")]
    if len(items) == 1 or address.startswith(_SCHEMES):
        return address.strip()
    versions = {_ip_version(item, address) for item in items}
    if len(versions) > 1:
        raise ValueError(f"{address!r}: a list of addresses is all IPv4 or all IPv6")
    return f"ipv{versions.pop()}:" + ",".join(items)


def _ip_version(item: str, address: str) -> int:
    host, colon, port = item.rpartition(":")
    try:
        if not colon or not port.isdigit():
            raise ValueError
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).version
    except ValueError:
        raise ValueError(
            f"{address!r}: {item!r} is no IP address with its port; a list of addresses takes "
            "those (127.0.0.1:50151,127.0.0.1:50251), while a name that resolves to every "
            "replica goes alone (dns:///orders:50151)"
        ) from None


def open_channel(
    address: str,
    service: str | None = None,
    signer: CallerTokenSigner | None = None,
    tls: TlsFiles | None = None,
    timeout: float = DEFAULT_DEADLINE_SECONDS,
) -> grpc.aio.Channel:
    """A channel to `service` at `address` (channel_target: one address, a list, or a name
    with every replica behind it). Calls made for a caller carry a token for it: the one the
    call being served arrived with, else one `signer` signs. Without a service, calls carry no
    token (health checks)."""
    target = channel_target(address)
    options: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.enable_retries", 1),
        # Reconnect quickly after a service restarts; the default backoff grows to 2 min.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2_000),
        # Calls spread over every address the name resolves to: with `dns:///name:port`
        # and a headless Kubernetes Service, over the service's replicas.
        ("grpc.service_config", _ROUND_ROBIN),
    ]
    if target.startswith(("ipv4:", "ipv6:")) and "," in target:
        # The list itself is no name a certificate holds; the first address is.
        options.append(("grpc.default_authority", address.split(",")[0].strip()))

    def open_() -> grpc.aio.Channel:
        if tls is None:
            return grpc.aio.insecure_channel(target, options=options)
        return grpc.aio.secure_channel(target, tls.channel_credentials(), options=options)

    return CarryingChannel(open_, CallContext(timeout, service, signer), tls)


def _domain_error_bytes(error: grpc.aio.AioRpcError) -> bytes | None:
    for key, value in error.trailing_metadata() or ():
        if key == ERROR_METADATA_KEY and isinstance(value, bytes):
            return value
    return None


async def call(method: Callable[..., Awaitable[Response]], request: Any) -> Response:
    """Invoke an RPC; a failure comes back as the DomainError the service raised."""
    try:
        return await method(request)
    except grpc.aio.AioRpcError as error:
        raise error_from_grpc(error.code(), error.details(), _domain_error_bytes(error)) from None


async def is_serving(channel: grpc.aio.Channel, deadline: float = 1.0) -> bool:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=deadline)
    except (grpc.aio.AioRpcError, DomainError):
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
