"""The server interceptor over real gRPC: a call gets to a handler only with a caller token the
gateway (or the calling service, for itself) signed for that service; the plain x-auth-*
metadata of old means nothing; health checks need no token; a service passes its caller's
token on to the services it calls on; text no database stores is refused before the handler;
calls to a service that is down fail fast."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aftersales.customers.v1 import customers_pb2
from servicekit.auth import AuthContext, current_auth, service_identity
from servicekit.caller_token import METADATA_KEY, load_signer
from servicekit.errors import InvalidInput, ServiceUnavailable, Unauthenticated
from servicekit.grpc_client import call, open_channel
from servicekit.grpc_server import SERVING, new_server
from servicekit.testing import (
    acting_as,
    free_port,
    gateway_signer,
    session_keys,
    session_trust,
)

CLERK = AuthContext("u-clerk", "clerk", "SH", "SH-001")
FORGED = (("x-auth-user", "u-hq"), ("x-auth-role", "hq_admin"))


async def who(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    caller = current_auth()
    return f"{caller.user_id}/{caller.role}/{caller.branch_id}/{caller.store_id}".encode()


@dataclass
class Service:
    """A service `name` in this process answering /aftersales.<name>.v1.Test/Who."""

    name: str
    server: grpc.aio.Server
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def who(self) -> str:
        return f"/aftersales.{self.name}.v1.Test/Who"


Handler = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]


async def start(name: str, handler: Handler) -> Service:
    server, health = new_server(name, session_trust())
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                f"aftersales.{name}.v1.Test", {"Who": grpc.unary_unary_rpc_method_handler(handler)}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health.set("", SERVING)
    return Service(name, server, port)


@pytest.fixture
async def reporting() -> AsyncIterator[Service]:
    service = await start("reporting", who)
    yield service
    await service.server.stop(None)


@pytest.fixture
async def plain(reporting: Service) -> AsyncIterator[grpc.aio.Channel]:
    """A channel without our interceptor: metadata exactly as the test writes it."""
    channel = grpc.aio.insecure_channel(reporting.address)
    yield channel
    await channel.close()


async def status(
    channel: grpc.aio.Channel, method: str, metadata: tuple[tuple[str, str], ...]
) -> str:
    try:
        await channel.unary_unary(method)(b"", metadata=metadata, timeout=5)
    except grpc.aio.AioRpcError as error:
        return str(error.code().name)
    return "OK"


async def test_forged_metadata_or_no_token_is_refused(
    reporting: Service, plain: grpc.aio.Channel
) -> None:
    assert await status(plain, reporting.who, FORGED) == "UNAUTHENTICATED"
    assert await status(plain, reporting.who, ()) == "UNAUTHENTICATED"
    assert await status(plain, reporting.who, ((METADATA_KEY, "x.y.z"), *FORGED)) == (
        "UNAUTHENTICATED"
    )


async def test_a_token_for_another_service_is_refused(
    reporting: Service, plain: grpc.aio.Channel
) -> None:
    for_customers = gateway_signer().token_for(CLERK, "customers")
    assert await status(plain, reporting.who, ((METADATA_KEY, for_customers),)) == (
        "UNAUTHENTICATED"
    )


async def test_a_good_token_reaches_the_handler_as_the_caller(
    reporting: Service, plain: grpc.aio.Channel
) -> None:
    token = gateway_signer().token_for(CLERK, "reporting")
    answer = await plain.unary_unary(reporting.who)(b"", metadata=((METADATA_KEY, token),))
    assert answer == b"u-clerk/clerk/SH/SH-001"
    # And the same through our channel, which signs for the caller in the context.
    channel = open_channel(reporting.address, "reporting", gateway_signer())
    try:
        with acting_as(CLERK):
            assert await call(channel.unary_unary(reporting.who), b"") == answer
        with pytest.raises(Unauthenticated):
            await call(channel.unary_unary(reporting.who), b"")  # no caller: no token
    finally:
        await channel.close()


async def test_health_checks_need_no_token(plain: grpc.aio.Channel) -> None:
    reply = await health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest())
    assert reply.status == SERVING


async def test_a_service_passes_its_callers_token_on_to_the_services_it_calls_on() -> None:
    """orders calls inventory while serving a caller: inventory sees the same caller, from the
    token orders received (orders' channel has no signer of its own here)."""
    inventory = await start("inventory", who)
    to_inventory = open_channel(inventory.address, "inventory")

    async def ask_inventory(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        reply: bytes = await call(to_inventory.unary_unary(inventory.who), b"")
        return reply

    orders = await start("orders", ask_inventory)
    channel = open_channel(orders.address, "orders", gateway_signer())
    try:
        with acting_as(CLERK):
            answer = await call(channel.unary_unary(orders.who), b"")
        assert answer == b"u-clerk/clerk/SH/SH-001"
    finally:
        await channel.close()
        await to_inventory.close()
        await orders.server.stop(None)
        await inventory.server.stop(None)


async def test_a_service_acting_on_its_own_signs_as_itself(reporting: Service) -> None:
    inventory = await start("inventory", who)
    orders_signer = load_signer(session_keys(), "orders")
    to_inventory = open_channel(inventory.address, "inventory", orders_signer)
    to_reporting = open_channel(reporting.address, "reporting", orders_signer)
    try:
        with acting_as(service_identity("orders")):
            answer = await call(to_inventory.unary_unary(inventory.who), b"")
            assert answer == b"service:orders/service/None/None"
            with pytest.raises(Unauthenticated):  # orders does not call on reporting
                await call(to_reporting.unary_unary(reporting.who), b"")
    finally:
        await to_inventory.close()
        await to_reporting.close()
        await inventory.server.stop(None)


async def test_a_call_to_a_service_that_is_down_fails_fast() -> None:
    deadline = 10.0
    channel = open_channel(
        f"127.0.0.1:{free_port()}", "reporting", gateway_signer(), timeout=deadline
    )
    started = time.monotonic()
    try:
        with acting_as(CLERK), pytest.raises(ServiceUnavailable):
            await call(channel.unary_unary("/aftersales.reporting.v1.Test/Who"), b"")
    finally:
        await channel.close()
    assert time.monotonic() - started < deadline / 5


async def test_text_no_database_stores_is_refused_before_the_handler() -> None:
    handled: list[customers_pb2.FindCustomerRequest] = []

    async def find(request: customers_pb2.FindCustomerRequest, _: object) -> bytes:
        handled.append(request)
        return b""

    server, _health = new_server("customers", session_trust())
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "aftersales.customers.v1.Test",
                {
                    "Find": grpc.unary_unary_rpc_method_handler(
                        find, request_deserializer=customers_pb2.FindCustomerRequest.FromString
                    )
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = open_channel(f"127.0.0.1:{port}", "customers", gateway_signer())
    method = channel.unary_unary(
        "/aftersales.customers.v1.Test/Find",
        request_serializer=customers_pb2.FindCustomerRequest.SerializeToString,
    )
    try:
        with acting_as(CLERK):
            with pytest.raises(InvalidInput) as caught:
                await call(method, customers_pb2.FindCustomerRequest(phone="138\x001234"))
            assert [e.field for e in caught.value.errors] == ["phone"]
            assert not handled
            await call(method, customers_pb2.FindCustomerRequest(phone="13812345678"))
            assert len(handled) == 1
    finally:
        await channel.close()
        await server.stop(None)
