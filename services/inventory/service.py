"""The inventory service (库存): the parts catalog (料号), warehouses (库房), stock levels and the
stock ledger. What it offers and announces:

- RPCs: aftersales.inventory.v1.InventoryService (protos/aftersales/inventory/v1/inventory.proto)
  - ListParts: the catalog, filtered by brand, category and model, paged by part number
  - ListWarehouses: the warehouses in the caller's scope
  - GetStock: on-hand, reserved, available and average cost in one warehouse
  - ReserveParts, IssueParts, ReleaseParts, ReturnParts, GetOrderParts: an order's parts
    (called by orders with the user's token)
  - RecordReceipt, RecordAdjustment, ListMovements: warehouse keepers' documents and the ledger
  - CheckConservation: the ledger against the balances, per part (hq_admin)
- Events out (protos/aftersales/events/v1/inventory_events.proto), on
  inventory.v1.<branch>.<store>.<event>:
  - stock_moved: every ledger row
  - order_parts_changed: an order's lines reserved, issued, released or returned
- Events in: none yet
- Commands: `conservation [<part number>]` (services/inventory/commands.py)
"""

from __future__ import annotations

from pathlib import Path

import grpc

from servicekit.runtime import Runtime, ServiceSpec
from services.inventory import commands, demo, grpc_api
from services.inventory.adapters.orm import metadata


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    grpc_api.register(server, runtime.uow)


SPEC = ServiceSpec(
    name="inventory",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    seed_demo=demo.seed,
    commands={"conservation": commands.conservation_command},
)
