"""Stock in a warehouse (库存) and the ledger that moves it: what each kind of movement does to
on-hand and to the moving-average cost, and the rule that stock never goes negative.

Quantities are whole units; money is integer fen, never floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from servicekit.errors import Conflict, invalid

INBOUND_KINDS = ("receipt", "return", "transfer_in")
"""入库, 退料 (back from an order), 调拨入: bring stock in at a stated unit cost."""

OUTBOUND_KINDS = ("issue", "transfer_out", "scrap", "return_to_manufacturer")
"""领料 (to an order), 调拨出, 报废, 返厂: take stock out at the warehouse's average cost."""

MOVEMENT_KINDS = (*INBOUND_KINDS, *OUTBOUND_KINDS, "adjustment")
"""An adjustment (盘盈/盘亏, from a stocktake) goes either way."""


@dataclass(frozen=True)
class StockLevel:
    """One part in one warehouse. `reserved` is on-hand promised to orders; what is left is
    available."""

    warehouse_id: str
    part_number: str
    on_hand: int = 0
    reserved: int = 0
    average_cost_fen: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class Posting:
    """What every ledger line of one business document shares: the document (type and id: an
    order, a receipt note, an adjustment), when it was booked and by whom."""

    document_type: str
    document_id: str
    occurred_at: datetime
    user_id: str


@dataclass(frozen=True)
class Movement:
    """One line of the stock ledger (库存台账), never changed once written. `quantity` is
    signed: + in, - out; the unit cost is what the line is valued at, so the ledger alone
    values every warehouse."""

    warehouse_id: str
    part_number: str
    kind: str
    quantity: int
    unit_cost_fen: int
    document_type: str
    document_id: str
    occurred_at: datetime
    user_id: str
    serial_number: str | None = None  # a serialised part moves one serial a line


def by_serial(
    moved: Movement, after: StockLevel, serials: Sequence[str]
) -> list[tuple[Movement, StockLevel]]:
    """A movement of n units of a serialised part as n ledger lines of one serial each, each
    with the level it left (the last one `after`)."""
    if len(serials) != abs(moved.quantity):
        raise invalid("serials", f"name one serial for each of the {abs(moved.quantity)} units")
    step = 1 if moved.quantity > 0 else -1
    lines = []
    for left, serial in enumerate(serials, start=1 - len(serials)):
        level = replace(after, on_hand=after.on_hand + step * left)
        lines.append((replace(moved, quantity=step, serial_number=serial), level))
    return lines


def movement(
    after: StockLevel, kind: str, quantity: int, unit_cost_fen: int, posting: Posting
) -> Movement:
    """The ledger line that brought a level to `after`."""
    return Movement(
        warehouse_id=after.warehouse_id,
        part_number=after.part_number,
        kind=kind,
        quantity=quantity,
        unit_cost_fen=unit_cost_fen,
        document_type=posting.document_type,
        document_id=posting.document_id,
        occurred_at=posting.occurred_at,
        user_id=posting.user_id,
    )


def moving_average_cost(
    on_hand: int, average_cost_fen: int, quantity: int, unit_cost_fen: int
) -> int:
    """The average cost after `quantity` units come in at `unit_cost_fen` (移动加权平均).

    Rounded down to the whole fen: (on_hand*avg + quantity*cost) // (on_hand + quantity). The
    fraction of a fen per unit that rounding drops is not carried forward; it is at most one
    fen a unit and never makes the cost negative.
    """
    return (on_hand * average_cost_fen + quantity * unit_cost_fen) // (on_hand + quantity)


def receive(level: StockLevel, quantity: int, unit_cost_fen: int) -> StockLevel:
    """Stock comes in: on-hand rises and the average cost moves towards the unit cost."""
    if quantity <= 0:
        raise invalid("quantity", "must be positive")
    if unit_cost_fen < 0:
        raise invalid("unit_cost_fen", "must not be negative")
    return replace(
        level,
        on_hand=level.on_hand + quantity,
        average_cost_fen=moving_average_cost(
            level.on_hand, level.average_cost_fen, quantity, unit_cost_fen
        ),
    )


def withdraw(level: StockLevel, quantity: int) -> StockLevel:
    """Stock goes out at the average cost, which stays as it is. Only available stock can go:
    on-hand never drops below zero, nor below what is reserved for orders."""
    if quantity <= 0:
        raise invalid("quantity", "must be positive")
    if quantity > level.available:
        raise Conflict(
            f"not enough of part {level.part_number} in warehouse {level.warehouse_id}: "
            f"{level.available} available, {quantity} wanted"
        )
    return replace(level, on_hand=level.on_hand - quantity)


def book(
    level: StockLevel,
    kind: str,
    quantity: int,
    unit_cost_fen: int | None,
    posting: Posting,
) -> tuple[StockLevel, Movement]:
    """Post one movement to a level: the level after it and the ledger line that records it.

    Stock coming in is valued at `unit_cost_fen` (required); stock going out is valued at the
    warehouse's average cost, so a transfer carries the sender's cost to the receiver.
    """
    if kind not in MOVEMENT_KINDS:
        raise invalid("kind", f"must be one of {', '.join(MOVEMENT_KINDS)}")
    if (kind in INBOUND_KINDS and quantity < 0) or (kind in OUTBOUND_KINDS and quantity > 0):
        raise invalid("quantity", f"has the wrong sign for a {kind}")
    if quantity == 0:
        raise invalid("quantity", "must not be zero")
    if quantity > 0:
        if unit_cost_fen is None:
            raise invalid("unit_cost_fen", f"is required for a {kind}")
        after = receive(level, quantity, unit_cost_fen)
        cost = unit_cost_fen
    else:
        after = withdraw(level, -quantity)
        cost = level.average_cost_fen
    return after, movement(after, kind, quantity, cost, posting)
