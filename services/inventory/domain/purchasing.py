"""Purchasing (采购): reorder suggestions per warehouse, purchase orders, and their receipts into
stock at the purchase cost.

A part is reordered when what the warehouse can count on (on-hand less reserved, plus what is
in transit to it and on order) falls below its reorder point: the larger of its minimum level
and what it consumes over the supplier's lead time. The suggestion brings it up to the larger
of its maximum level and the reorder point plus a lead time's consumption. Consumption is the
net issued to orders over the window, per day.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from math import ceil

from servicekit.errors import Conflict, invalid

PO_STATUSES = ("open", "received", "cancelled")
MAX_LEVEL = 100_000
MAX_LEAD_TIME_DAYS = 365


@dataclass(frozen=True)
class ReorderLevel:
    """What a warehouse keeps of a part: at least `min_level`, up to `max_level`, and how long
    the supplier takes."""

    part_number: str
    min_level: int
    max_level: int
    lead_time_days: int


def check_level(level: ReorderLevel) -> None:
    if not 0 <= level.min_level <= MAX_LEVEL:
        raise invalid("min_level", f"must be 0 to {MAX_LEVEL}")
    if not level.min_level <= level.max_level <= MAX_LEVEL:
        raise invalid("max_level", f"must be from min_level to {MAX_LEVEL}")
    if not 0 <= level.lead_time_days <= MAX_LEAD_TIME_DAYS:
        raise invalid("lead_time_days", f"must be 0 to {MAX_LEAD_TIME_DAYS}")


@dataclass(frozen=True)
class Suggestion:
    part_number: str
    available: int
    in_transit: int
    on_order: int
    daily_consumption: float
    reorder_point: int
    quantity: int  # to order now; 0 when none is needed


def suggest(
    level: ReorderLevel,
    available: int,
    in_transit: int,
    on_order: int,
    consumed: int,
    window_days: int,
) -> Suggestion:
    daily = max(consumed, 0) / window_days
    lead_demand = ceil(daily * level.lead_time_days)
    reorder_point = max(level.min_level, lead_demand)
    position = available + in_transit + on_order
    target = max(level.max_level, reorder_point + lead_demand)
    quantity = target - position if position < reorder_point else 0
    return Suggestion(
        level.part_number, available, in_transit, on_order, daily, reorder_point, quantity
    )


@dataclass(frozen=True)
class PurchaseLine:
    part_number: str
    quantity: int
    unit_cost_fen: int
    received: int = 0

    @property
    def outstanding(self) -> int:
        return self.quantity - self.received


@dataclass(frozen=True)
class PurchaseOrder:
    id: str
    warehouse_id: str
    supplier: str
    lines: tuple[PurchaseLine, ...]
    created_by: str
    created_at: datetime
    status: str = "open"

    @property
    def on_order(self) -> dict[str, int]:
        if self.status != "open":
            return {}
        return {x.part_number: x.outstanding for x in self.lines if x.outstanding}


def receive_lines(order: PurchaseOrder, quantities: dict[str, int]) -> PurchaseOrder:
    """到货: what came in, by part (every outstanding unit when `quantities` is empty). The
    order is received once nothing is outstanding."""
    if order.status != "open":
        raise Conflict(f"purchase order {order.id} is {order.status}")
    wanted = quantities or {x.part_number: x.outstanding for x in order.lines if x.outstanding}
    by_part = {x.part_number: x for x in order.lines}
    for part_number, quantity in wanted.items():
        line = by_part.get(part_number)
        if line is None:
            raise invalid("lines", f"part {part_number} is not on the order")
        if not 0 < quantity <= line.outstanding:
            raise invalid("lines", f"{part_number}: 1 to {line.outstanding} outstanding")
    lines = tuple(
        replace(x, received=x.received + wanted.get(x.part_number, 0)) for x in order.lines
    )
    done = all(x.outstanding == 0 for x in lines)
    return replace(order, lines=lines, status="received" if done else "open")
