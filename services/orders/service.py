"""The orders service (工单): work orders, their lifecycle and routes, warranty and brand
authorisation, the device passport. What it offers and announces:

- RPCs: aftersales.orders.v1.OrdersService (protos/aftersales/orders/v1/orders.proto)
- Events out: orders.v1.<branch>.<store>.order_received (OrderReceived)
- Events in: none yet
"""

from __future__ import annotations

from pathlib import Path

import grpc

from servicekit.runtime import Runtime, ServiceSpec
from services.orders import demo, grpc_api
from services.orders.adapters.orm import metadata


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    grpc_api.register(server, runtime.uow)


SPEC = ServiceSpec(
    name="orders",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    seed_demo=demo.seed,
)
