"""Parts for a work order (工单用料): what an order line holds in its store's warehouse, and how
reserving (预留), issuing (领料), releasing and returning (退料) move it.

A line is keyed by (order_id, line_id). Reserving takes what is available and records the rest as
short: the order waits for parts. Each rule is a pure function of the line and the stock level
of its part, giving both back changed, with the ledger line when stock physically moved.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from servicekit.errors import Conflict, invalid
from services.inventory.domain.stock import (
    Movement,
    Posting,
    StockLevel,
    movement,
    receive,
    share_of_value,
    valued,
)

LINE_STATUSES = ("reserved", "short", "issued", "released", "returned")
"""reserved: all of it held; short: part of it (or none) held, the rest awaited; issued: taken
out into the order; released: the hold let go, nothing issued; returned: all issued came back."""

MAX_LINE_QUANTITY = 1000


@dataclass(frozen=True)
class OrderPartLine:
    order_id: str
    line_id: str
    warehouse_id: str
    part_number: str
    quantity: int
    warranty: bool  # a warranty repair (三包) owes the old part back to the manufacturer
    retail_price_fen: int
    reserved: int = 0
    short: int = 0
    issued: int = 0
    returned: int = 0
    status: str = "reserved"
    unit_cost_fen: int = 0  # the moving-average cost it left the warehouse at
    issued_at: datetime | None = None
    old_returned: int = 0  # old parts sent back to the manufacturer for it (旧件返还)

    @property
    def old_parts_owed(self) -> int:
        """A warranty line owes one old part for every new one it consumed."""
        if not self.warranty:
            return 0
        return self.issued - self.returned - self.old_returned

    @property
    def open(self) -> bool:
        """Holding stock (or waiting for it), not yet issued or let go."""
        return self.status in ("reserved", "short")


def check_quantity(quantity: int, field_name: str = "quantity") -> None:
    if quantity <= 0:
        raise invalid(field_name, "must be positive")
    if quantity > MAX_LINE_QUANTITY:
        raise invalid(field_name, f"must be at most {MAX_LINE_QUANTITY}")


def _hold(level: StockLevel, line: OrderPartLine, wanted: int) -> tuple[StockLevel, OrderPartLine]:
    """Hold up to `wanted` more units of what is available; what is not there stays short."""
    taken = min(wanted, max(level.available, 0))
    reserved = line.reserved + taken
    short = line.quantity - reserved
    return (
        replace(level, reserved=level.reserved + taken),
        replace(line, reserved=reserved, short=short, status="short" if short else "reserved"),
    )


def reserve(level: StockLevel, line: OrderPartLine) -> tuple[StockLevel, OrderPartLine]:
    """A new line: hold what is available of its quantity."""
    check_quantity(line.quantity)
    return _hold(level, replace(line, reserved=0, short=0, issued=0, returned=0), line.quantity)


def reserve_again(
    level: StockLevel, line: OrderPartLine, part_number: str, quantity: int
) -> tuple[StockLevel, OrderPartLine]:
    """The same line asked for again (a retry, or parts have arrived for a short line): nothing
    is held twice. A short line takes what has come in since; a released one is held anew; an
    issued or returned one stays as it is. Another part or quantity for the line is a
    conflict: a line is changed by releasing it and reserving a new one."""
    if part_number != line.part_number or quantity != line.quantity:
        raise Conflict(
            f"line {line.line_id} of order {line.order_id} is {line.quantity} of part "
            f"{line.part_number}; release it and reserve a new line to change it"
        )
    if line.status in ("reserved", "short"):
        return _hold(level, line, line.short)
    if line.status == "released":
        return reserve(level, line)
    return level, line


def issue(
    level: StockLevel, line: OrderPartLine, posting: Posting
) -> tuple[StockLevel, OrderPartLine, Movement | None]:
    """领料: the held stock leaves on-hand into the order with its share of the warehouse's
    value (its unit cost the average, for the line's price of cost). A short
    line first takes what has come in; if still short it cannot be issued (the order waits). An
    issued or returned line is answered as it is: a line is never issued twice."""
    if line.status in ("issued", "returned"):
        return level, line, None
    if line.status == "released":
        raise Conflict(f"line {line.line_id} of order {line.order_id} was released")
    level, line = _hold(level, line, line.short)
    if line.short:
        raise Conflict(
            f"line {line.line_id} of order {line.order_id} is short of part "
            f"{line.part_number}: {line.reserved} of {line.quantity} held"
        )
    quantity = line.reserved
    value = share_of_value(level, quantity)
    after = replace(
        valued(level, level.on_hand - quantity, level.value_fen - value),
        reserved=level.reserved - quantity,
    )
    cost = level.average_cost_fen
    issued = replace(
        line,
        reserved=0,
        short=0,
        issued=quantity,
        status="issued",
        unit_cost_fen=cost,
        issued_at=posting.occurred_at,
    )
    return after, issued, movement(after, "issue", -quantity, cost, posting, -value)


def release(level: StockLevel, line: OrderPartLine) -> tuple[StockLevel, OrderPartLine]:
    """The order no longer needs the line (cancelled, or another part chosen): its hold is let
    go. Issued, returned and released lines stay as they are."""
    if not line.open:
        return level, line
    return (
        replace(level, reserved=level.reserved - line.reserved),
        replace(line, reserved=0, short=0, status="released"),
    )


def give_back(
    level: StockLevel, line: OrderPartLine, quantity: int, posting: Posting
) -> tuple[StockLevel, OrderPartLine, Movement]:
    """退料: issued units come back unused, at the cost they left at, which moves the
    warehouse's average back towards it. Only what was issued and is still unused: not
    returned already, nor consumed with its old part sent to the manufacturer."""
    check_quantity(quantity)
    if line.status not in ("issued", "returned"):
        raise Conflict(f"line {line.line_id} of order {line.order_id} was not issued")
    outstanding = line.issued - line.returned - line.old_returned
    if quantity > outstanding:
        raise invalid("quantity", f"only {outstanding} issued and not yet returned")
    after = receive(level, quantity, line.unit_cost_fen)
    returned = line.returned + quantity
    back = replace(
        line, returned=returned, status="returned" if returned == line.issued else "issued"
    )
    return after, back, movement(after, "return", quantity, line.unit_cost_fen, posting)


def switch_part(
    old_level: StockLevel,
    new_level: StockLevel,
    line: OrderPartLine,
    part_number: str,
    quantity: int,
    retail_price_fen: int,
) -> tuple[StockLevel, StockLevel, OrderPartLine]:
    """替代料: a line not yet issued takes another part instead (its part's successor): the
    hold on the old part is let go, and the new part is held as a new reservation would be."""
    if line.issued:
        raise Conflict(
            f"line {line.line_id} of order {line.order_id} has issued {line.part_number}: "
            "return it before taking another part"
        )
    old_level, released = release(old_level, line)
    new_level, after = reserve(
        new_level,
        replace(
            released,
            part_number=part_number,
            quantity=quantity,
            retail_price_fen=retail_price_fen,
        ),
    )
    return old_level, new_level, after
