"""The reporting service (报表中心): read models built only from events, never from another
service's database, and KPIs per store, branch and HQ. What it offers and takes in:

- RPCs: aftersales.reporting.v1.ReportingService (protos/aftersales/reporting/v1/reporting.proto):
  GetKpis
- Events in: orders.v1.> on stream ORDERS, durable consumer reporting-orders: OrderReceived
- Events out: none
"""

from __future__ import annotations

from pathlib import Path

import grpc

from servicekit.inbox import EventConsumer
from servicekit.runtime import Runtime, ServiceSpec
from services.reporting import grpc_api, handlers, stock, stock_api
from services.reporting.adapters.orm import metadata

ORDERS_CONSUMER = "reporting-orders"


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    grpc_api.register(server, runtime.uow)
    stock_api.register(server, runtime.uow)


def consumers(runtime: Runtime) -> list[EventConsumer]:
    # HQ reports need every branch, so one consumer takes all order events.
    return [
        runtime.consumer(ORDERS_CONSUMER, "ORDERS", ["orders.v1.>"], handlers.ORDER_EVENTS),
        stock.stock_consumers(runtime),
    ]


SPEC = ServiceSpec(
    name="reporting",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    consumers=consumers,
)
