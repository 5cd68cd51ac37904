"""The inventory service (库存): the parts catalog (料号), warehouses (库房), stock levels and the
stock ledger. What it offers and announces:

- RPCs: aftersales.inventory.v1.InventoryService (protos/aftersales/inventory/v1/inventory.proto)
  - ListParts: the catalog, filtered by brand, category and model, paged by part number
  - ListWarehouses: the warehouses in the caller's scope
  - GetStock: on-hand, reserved, available and average cost in one warehouse
- Events out: none yet (the outbox is in place for stock movements, transfers (调拨) and
  quotas (额度) to come)
- Events in: none yet
"""

from __future__ import annotations

from pathlib import Path

import grpc

from servicekit.runtime import Runtime, ServiceSpec
from services.inventory import demo, grpc_api
from services.inventory.adapters.orm import metadata


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    grpc_api.register(server, runtime.uow)


SPEC = ServiceSpec(
    name="inventory",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    seed_demo=demo.seed,
)
