"""The services trust only signed caller tokens, on the real processes: a call straight to a
service's gRPC port with forged x-auth-* metadata, a token signed with a key of our own, or a
token for another service is refused UNAUTHENTICATED, while the gateway's calls work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from aftersales.customers.v1 import customers_pb2, customers_pb2_grpc
from aftersales.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from aftersales.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from devtools.system import SERVICES, LocalSystem
from servicekit.auth import AuthContext
from servicekit.caller_token import (
    GATEWAY,
    METADATA_KEY,
    audience_for,
    generate_key_pairs,
    load_signer,
)
from tests.e2e.conftest import Api

HQ_ADMIN = AuthContext("u-hq-admin", "hq_admin")
FORGED = (("x-auth-user", "u-hq-admin"), ("x-auth-role", "hq_admin"))

Rpc = Callable[..., Awaitable[Any]]


def rpc_of(service: str, channel: grpc.aio.Channel) -> tuple[Rpc, Any]:
    """A read RPC of each service that an HQ admin may make, and its request."""
    if service == "orders":
        orders = orders_pb2_grpc.OrdersServiceStub(channel)
        return orders.ListRepairOrders, orders_pb2.ListRepairOrdersRequest()
    if service == "inventory":
        inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
        return inventory.ListWarehouses, inventory_pb2.ListWarehousesRequest()
    if service == "customers":
        customers = customers_pb2_grpc.CustomersServiceStub(channel)
        return customers.FindCustomer, customers_pb2.FindCustomerRequest(phone="13812345678")
    reporting = reporting_pb2_grpc.ReportingServiceStub(channel)
    return reporting.GetKpis, reporting_pb2.GetKpisRequest()


@pytest.fixture
async def channels(system: LocalSystem) -> AsyncIterator[dict[str, grpc.aio.Channel]]:
    """Plain channels straight to each service's port, without our interceptors."""
    opened = {
        name: grpc.aio.insecure_channel(f"127.0.0.1:{system.config.grpc_ports[name]}")
        for name in SERVICES
    }
    yield opened
    for channel in opened.values():
        await channel.close()


async def status(rpc: Rpc, request: Any, metadata: tuple[tuple[str, str], ...]) -> str:
    try:
        await rpc(request, metadata=metadata, timeout=5)
    except grpc.aio.AioRpcError as error:
        return str(error.code().name)
    return "OK"


@pytest.mark.parametrize("service", SERVICES)
async def test_forged_metadata_is_refused(
    service: str, channels: dict[str, grpc.aio.Channel]
) -> None:
    rpc, request = rpc_of(service, channels[service])
    assert await status(rpc, request, FORGED) == "UNAUTHENTICATED"


@pytest.mark.parametrize("service", SERVICES)
async def test_a_token_signed_with_another_key_is_refused(
    service: str, channels: dict[str, grpc.aio.Channel], tmp_path: Path
) -> None:
    generate_key_pairs(tmp_path, [GATEWAY])  # a key pair that calls itself the gateway's
    impostor = load_signer(tmp_path, GATEWAY).token_for(HQ_ADMIN, service)
    rpc, request = rpc_of(service, channels[service])
    assert await status(rpc, request, ((METADATA_KEY, impostor), *FORGED)) == "UNAUTHENTICATED"


@pytest.mark.parametrize("service", SERVICES)
async def test_the_gateways_key_works_only_for_the_service_named(
    service: str, system: LocalSystem, channels: dict[str, grpc.aio.Channel]
) -> None:
    gateway = load_signer(system.keys_dir, GATEWAY)
    other = next(name for name in SERVICES if service not in audience_for(name))
    rpc, request = rpc_of(service, channels[service])
    for_other = gateway.token_for(HQ_ADMIN, other)
    assert await status(rpc, request, ((METADATA_KEY, for_other),)) == "UNAUTHENTICATED"
    # The same caller with a token for this service gets through (an answer, or NOT_FOUND for a
    # customer nobody has recorded).
    for_this = gateway.token_for(HQ_ADMIN, service)
    assert await status(rpc, request, ((METADATA_KEY, for_this),)) in {"OK", "NOT_FOUND"}


async def test_the_gateways_calls_work(api: Api) -> None:
    for path in ("/api/v1/repair-orders", "/api/v1/warehouses", "/api/v1/reports/kpis"):
        reply = await api.get("hq.admin", path)
        assert reply.status_code == 200, reply.text
