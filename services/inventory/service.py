"""The inventory service (库存): the parts catalog (料号), warehouses (库房), stock levels and the
stock ledger (库存台账). What it offers and announces:

- RPCs: aftersales.inventory.v1.InventoryService (protos/aftersales/inventory/v1/inventory.proto)
  - ListParts, ListWarehouses, GetStock: the catalog, the warehouses in scope, on-hand,
    reserved, available and average cost
  - ReserveParts, IssueParts, ReleaseParts, ReturnParts, GetOrderParts: an order's parts
    (called by orders with the user's token); a store short of parts asks its central
  - RecordReceipt, RecordAdjustment, RecordWriteOff, ListMovements: keepers' documents and
    the ledger
  - CheckConservation: the ledger against the balances, per part (hq_admin)
  - RequestTransfer, ApproveTransfer, ShipTransfer, ReceiveTransfer, CancelTransfer,
    GetTransfer: transfers (调拨)
  - SetQuota, GetQuota: franchise quotas (额度)
  - ListOldPartsOwed, ReturnOldParts: old-part returns (旧件返还)
  - RecordStocktake, DecideStocktake, GetStocktake: stocktakes (盘点)
  - SetReorderLevel, SuggestReorders, CreatePurchaseOrder, ReceivePurchaseOrder: purchasing
  - ListSlowMoving: slow-moving stock (滞销品)
- Events out (protos/aftersales/events/v1/inventory_events.proto), on
  inventory.v1.<branch>.<store>.<event>:
  - stock_moved: every ledger row
  - order_parts_changed: an order's lines reserved, issued, released or returned
  - transfer_changed: a transfer requested, approved, shipped, received or cancelled
  - document_changed: a stocktake, an old-part batch, a quota or a purchase order
- Events in (ORDERS stream): `inventory-order-holds`: OrderStatusChanged; the parts attempt
  that moved the order is written, any other at its version lets go of what only it claimed,
  and an order cancelled, declined or closed lets go of its holds (domain/holds.py); it and
  OrderReceived note how far orders' events have flowed (the newest one's creation time)
- Background: the hold keeper, in every replica: an attempt not written though orders' events
  created HOLD_GRACE_SECONDS after its claim were heard (and had settled, with no orders event
  failing) lets go of what only it claimed: a stalled orders stream lets nothing go; the loose
  holds are a metric
- Commands: `conservation [<part number>]`, `reconcile-holds [--release]`
  (services/inventory/commands.py)
"""

from __future__ import annotations

from pathlib import Path

import grpc

from servicekit.runtime import Runtime, ServiceSpec
from services.inventory import commands, consumers, demo, grpc_api
from services.inventory.adapters.orm import metadata


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    grpc_api.register(server, runtime.uow)


SPEC = ServiceSpec(
    name="inventory",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    consumers=consumers.consumers,
    background=consumers.background,
    seed_demo=demo.seed,
    commands={
        "conservation": commands.conservation_command,
        "reconcile-holds": commands.reconcile_holds_command,
    },
)
