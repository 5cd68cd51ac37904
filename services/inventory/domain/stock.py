"""Stock in a warehouse (库存) and the ledger that moves it: what each kind of movement does to
on-hand and to the moving-average cost, and the rule that stock never goes negative.

Quantities are whole units; money is integer fen, never floats. A level keeps the total value
of its stock, not only the average: the average is derived from it, and stock going out takes
its share of the value, so no fen is lost to rounding: value in = value out + value held.
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
    available. `value_fen` is what the on-hand is worth in total; `average_cost_fen` is derived
    from it (rounded down) and, once the stock is gone, stays at what it last was, so stock
    found later has a price."""

    warehouse_id: str
    part_number: str
    on_hand: int = 0
    reserved: int = 0
    average_cost_fen: int = 0
    value_fen: int = 0

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
    signed: + in, - out. `value_fen`, signed like the quantity, is exactly what the line
    moved, so the ledger alone values every warehouse to the fen; the unit cost is the
    average per unit it went at, shown to people (rounded down for stock going out)."""

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
    value_fen: int = 0


def by_serial(
    moved: Movement, after: StockLevel, serials: Sequence[str]
) -> list[tuple[Movement, StockLevel]]:
    """A movement of n units of a serialised part as n ledger lines of one serial each, each
    with the level it left (the last one `after`)."""
    if len(serials) != abs(moved.quantity):
        raise invalid("serials", f"name one serial for each of the {abs(moved.quantity)} units")
    step = 1 if moved.quantity > 0 else -1
    shares = split_value(abs(moved.value_fen), len(serials))
    lines = []
    for i, serial in enumerate(serials):
        still_to_move = step * sum(shares[i + 1 :])
        level = replace(
            after,
            on_hand=after.on_hand - step * (len(serials) - 1 - i),
            value_fen=after.value_fen - still_to_move,
        )
        one = replace(moved, quantity=step, serial_number=serial, value_fen=step * shares[i])
        lines.append((one, level))
    return lines


def split_value(value_fen: int, parts: int) -> list[int]:
    """`value_fen` in `parts` whole-fen shares that add up to it exactly, the first ones a fen
    more where it does not divide."""
    share, rest = divmod(value_fen, parts)
    return [share + (1 if i < rest else 0) for i in range(parts)]


def share_of_value(level: StockLevel, quantity: int) -> int:
    """What `quantity` of the level's on-hand is worth: its share of the total value, rounded
    down; all of it when the last units go, so what leaves and what stays add up to the
    value."""
    if quantity >= level.on_hand:
        return level.value_fen
    return level.value_fen * quantity // level.on_hand


def average_of(on_hand: int, value_fen: int, before: int) -> int:
    """The average cost of `on_hand` units worth `value_fen`; `before` when none are left."""
    return value_fen // on_hand if on_hand else before


def valued(level: StockLevel, on_hand: int, value_fen: int) -> StockLevel:
    """The level with this on-hand and value, and the average that follows from them."""
    return replace(
        level,
        on_hand=on_hand,
        value_fen=value_fen,
        average_cost_fen=average_of(on_hand, value_fen, level.average_cost_fen),
    )


def movement(
    after: StockLevel,
    kind: str,
    quantity: int,
    unit_cost_fen: int,
    posting: Posting,
    value_fen: int | None = None,
) -> Movement:
    """The ledger line that brought a level to `after`. Its value is `value_fen` (signed like
    the quantity), or quantity × unit cost when that is exact (stock coming in)."""
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
        value_fen=quantity * unit_cost_fen if value_fen is None else value_fen,
    )


def receive(level: StockLevel, quantity: int, unit_cost_fen: int) -> StockLevel:
    """Stock comes in (移动加权平均): on-hand rises, the value by quantity × unit cost, and the
    average moves towards the unit cost."""
    if quantity <= 0:
        raise invalid("quantity", "must be positive")
    if unit_cost_fen < 0:
        raise invalid("unit_cost_fen", "must not be negative")
    return receive_value(level, quantity, quantity * unit_cost_fen)


def receive_value(level: StockLevel, quantity: int, value_fen: int) -> StockLevel:
    """`quantity` units worth `value_fen` in all come in (a transfer's units arrive at what
    they left the sender at)."""
    return valued(level, level.on_hand + quantity, level.value_fen + value_fen)


def withdraw(level: StockLevel, quantity: int) -> tuple[StockLevel, int]:
    """Stock goes out with its share of the value (see share_of_value): the level after, and
    the value that left. Only available stock can go: on-hand never drops below zero, nor
    below what is reserved for orders."""
    if quantity <= 0:
        raise invalid("quantity", "must be positive")
    if quantity > level.available:
        raise Conflict(
            f"not enough of part {level.part_number} in warehouse {level.warehouse_id}: "
            f"{level.available} available, {quantity} wanted"
        )
    out = share_of_value(level, quantity)
    return valued(level, level.on_hand - quantity, level.value_fen - out), out


def book(
    level: StockLevel,
    kind: str,
    quantity: int,
    unit_cost_fen: int | None,
    posting: Posting,
) -> tuple[StockLevel, Movement]:
    """Post one movement to a level: the level after it and the ledger line that records it.

    Stock coming in is valued at `unit_cost_fen` (required); stock going out takes its share
    of the warehouse's value, so a transfer carries the sender's cost to the receiver.
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
        return after, movement(after, kind, quantity, unit_cost_fen, posting)
    after, out = withdraw(level, -quantity)
    return after, movement(after, kind, quantity, level.average_cost_fen, posting, -out)
