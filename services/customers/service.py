"""The customers service (客户): customers shared chain-wide, found by exact phone or IMEI, the
devices they own and the orders they brought in. What it offers and listens to:

- RPCs: aftersales.customers.v1.CustomersService (protos/aftersales/customers/v1/customers.proto)
  - FindCustomer: a customer by exact phone or by the IMEI of a device they own
- Events in: orders.v1.<branch>.<store>.order_received (OrderReceived), durable consumer
  `customers-order-received` on the ORDERS stream: the customer and device are upserted and
  the order counted once
- Events out: none yet
"""

from __future__ import annotations

from pathlib import Path

import grpc

from servicekit.inbox import EventConsumer
from servicekit.runtime import Runtime, ServiceSpec
from services.customers import consumers, grpc_api, notifications
from services.customers.adapters.orm import metadata


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    grpc_api.register(server, runtime.uow)
    notifications.register(server, runtime)


def all_consumers(runtime: Runtime) -> list[EventConsumer]:
    return consumers.consumers(runtime) + notifications.consumers(runtime)


SPEC = ServiceSpec(
    name="customers",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    consumers=all_consumers,
)
