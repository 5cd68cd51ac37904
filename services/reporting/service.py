"""The reporting service (报表中心): read models built only from events, never from another
service's database, and KPIs per store, branch and HQ. What it offers and takes in:

- RPCs: aftersales.reporting.v1.ReportingService (protos/aftersales/reporting/v1/reporting.proto):
  GetKpis, ListFigureOrders; StockReportsService (stock_reports.proto): GetStockFigures,
  ListRecordMismatches
- Events in: orders.v1.> on stream ORDERS, durable consumer reporting-orders: OrderReceived,
  OrderStatusChanged (the order facts and the service record's parts), ClaimChanged;
  customers.v1.> on stream CUSTOMERS, durable consumer reporting-customers: FollowUpRecorded;
  inventory.v1.> on stream INVENTORY, durable consumer reporting-inventory: StockMoved,
  OrderPartsChanged
- Events out: none
- Streams: ARCHIVE, the whole history copied from ORDERS, INVENTORY and CUSTOMERS (kept here)
- Commands: `rebuild` (services/reporting/rebuild.py), every read model from the archive;
  `seed-history [--stores N --branches N --orders N --days N --until YYYY-MM-DD]`
  (services/reporting/seed_history.py), a synthetic history to measure on
"""

from __future__ import annotations

from pathlib import Path

import grpc

from servicekit.inbox import EventConsumer, chained_handlers
from servicekit.runtime import Runtime, ServiceSpec
from services.reporting import grpc_api, handlers, rebuild, seed_history, stock, stock_api
from services.reporting.adapters.orm import metadata

ORDERS_CONSUMER = "reporting-orders"
CUSTOMERS_CONSUMER = "reporting-customers"


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    grpc_api.register(server, runtime.uow)
    stock_api.register(server, runtime.uow)


def consumers(runtime: Runtime) -> list[EventConsumer]:
    # HQ reports need every branch, so one consumer per stream takes all its events; the
    # order facts of a batch are written at once, as its unit of work commits
    # (handlers.finish_batch); the parts side reads the service record of every step too.
    return [
        runtime.consumer(
            ORDERS_CONSUMER,
            "ORDERS",
            ["orders.v1.>"],
            chained_handlers(handlers.ORDER_EVENTS, stock.STOCK_ORDER_EVENTS),
        ),
        runtime.consumer(
            CUSTOMERS_CONSUMER, "CUSTOMERS", ["customers.v1.>"], handlers.CUSTOMER_EVENTS
        ),
        stock.stock_consumers(runtime),
    ]


SPEC: ServiceSpec = ServiceSpec(
    name="reporting",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    consumers=consumers,
    commands={
        "rebuild": lambda args: rebuild.command(SPEC, args),
        "seed-history": seed_history.seed_history_command,
    },
)
