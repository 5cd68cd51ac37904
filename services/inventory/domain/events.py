"""The events inventory's changes raise, as the business names them: plain facts, recorded in
the name of the warehouse they happened in and sent when the change commits."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.inventory.domain.order_parts import OrderPartLine
from services.inventory.domain.stock import Movement, StockLevel
from services.inventory.domain.transfer import Transfer
from services.inventory.domain.warehouse import Warehouse


@dataclass(frozen=True)
class StockMoved:
    """A ledger line was written, and the level it left behind."""

    movement: Movement
    after: StockLevel


@dataclass(frozen=True)
class DocumentChanged:
    """A stock document (receipt, adjustment, stocktake, old-part return...) changed."""

    document_type: str
    document_id: str
    status: str = ""


@dataclass(frozen=True)
class TransferChanged:
    """A transfer between warehouses moved on, as it now stands."""

    transfer: Transfer


@dataclass(frozen=True)
class OrderPartsChanged:
    """An order's part lines at the warehouse changed (`action`: reserved, issued...)."""

    order_id: str
    action: str
    lines: tuple[OrderPartLine, ...]


@dataclass(frozen=True)
class OldPartsReturned:
    """A batch of old parts (旧件) went back to the manufacturer: the order lines it settles,
    each with the part and how many (orders' settlement makes them payable)."""

    batch_id: str
    lines: tuple[tuple[str, str, str, int], ...]  # (order id, line id, part number, quantity)


InventoryEvent = (
    StockMoved | DocumentChanged | TransferChanged | OrderPartsChanged | OldPartsReturned
)


@dataclass
class WarehouseNews:
    """What a warehouse announces of one change, in the order it happened: every event goes
    out in the warehouse's name (its branch and store)."""

    warehouse: Warehouse
    pending_events: list[InventoryEvent] = field(default_factory=list)

    def record(self, event: InventoryEvent) -> WarehouseNews:
        self.pending_events.append(event)
        return self
