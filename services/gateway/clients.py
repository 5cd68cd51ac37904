"""gRPC stubs of the four services, over channels that carry the caller (in a caller token the
gateway signs for each service) and the trace context; mutual TLS when configured. Each channel
balances over every replica of its service (servicekit.grpc_client: `<SERVICE>_ADDR` a list of
addresses, or a name that resolves to them all)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import grpc

from aftersales.customers.v1 import bulletins_pb2_grpc, customers_pb2_grpc, notifications_pb2_grpc
from aftersales.inventory.v1 import inventory_pb2_grpc
from aftersales.orders.v1 import base_data_pb2_grpc, orders_pb2_grpc
from aftersales.reporting.v1 import reporting_pb2_grpc, stock_reports_pb2_grpc
from servicekit.caller_token import GATEWAY, load_signer
from servicekit.grpc_client import is_serving, open_channel
from servicekit.settings import TrustSettings


class ServiceClients:
    def __init__(self, addresses: Mapping[str, str], trust: TrustSettings | None = None) -> None:
        trust = trust or TrustSettings.from_env()
        signer = load_signer(trust.token_keys, GATEWAY)
        self.channels: dict[str, grpc.aio.Channel] = {
            name: open_channel(address, name, signer, trust.tls)
            for name, address in addresses.items()
        }
        self.orders = orders_pb2_grpc.OrdersServiceStub(self.channels["orders"])
        self.base_data = base_data_pb2_grpc.BaseDataServiceStub(self.channels["orders"])
        self.settlement = orders_pb2_grpc.SettlementServiceStub(self.channels["orders"])
        self.inventory = inventory_pb2_grpc.InventoryServiceStub(self.channels["inventory"])
        self.customers = customers_pb2_grpc.CustomersServiceStub(self.channels["customers"])
        self.notifications = notifications_pb2_grpc.NotificationsServiceStub(
            self.channels["customers"]
        )
        self.bulletins = bulletins_pb2_grpc.BulletinsServiceStub(self.channels["customers"])
        self.reporting = reporting_pb2_grpc.ReportingServiceStub(self.channels["reporting"])
        self.stock_reports = stock_reports_pb2_grpc.StockReportsServiceStub(
            self.channels["reporting"]
        )

    async def down(self) -> list[str]:
        """The services whose health check does not answer SERVING."""
        names = list(self.channels)
        serving = await asyncio.gather(*(is_serving(self.channels[n]) for n in names))
        return [name for name, ok in zip(names, serving, strict=True) if not ok]

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self.channels.values()))
