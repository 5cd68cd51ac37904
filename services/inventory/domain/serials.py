"""Serialised items (串号管理): mainboards and swap units, tracked one by one. A serial is in
exactly one place: in stock in one warehouse (perhaps held for one order line), in transit on
one transfer, consumed by one order line, or gone from the chain (returned to the manufacturer,
scrapped, or written off as missing). Each rule below is one move of one serial, from where it
must be to where it goes; anything else is a Conflict that says where the serial really is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from servicekit.errors import Conflict, invalid

SERIAL_STATES = (
    "in_stock",
    "in_transit",
    "consumed",
    "returned_to_manufacturer",
    "scrapped",
    "missing",
)
"""在库, 在途, 已领用 (into an order), 已返厂, 已报废, 盘亏/短少 (may be found again)."""

SERIAL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,59}$")
MAX_SERIALS = 1000


@dataclass(frozen=True)
class SerialItem:
    serial_number: str
    part_number: str
    state: str
    unit_cost_fen: int  # what it last came into a warehouse at
    warehouse_id: str | None = None  # in stock
    transfer_id: str | None = None  # in transit
    order_id: str | None = None  # held for (in stock) or consumed by (consumed) an order line
    line_id: str | None = None

    @property
    def held(self) -> bool:
        """In stock and held for an order line."""
        return self.state == "in_stock" and self.order_id is not None

    def where(self) -> str:
        """Where it is, in words, for the error that says it is not where it should be."""
        if self.state == "in_stock":
            held = f", held for order {self.order_id} line {self.line_id}" if self.held else ""
            return f"in stock in {self.warehouse_id}{held}"
        if self.state == "in_transit":
            return f"in transit on transfer {self.transfer_id}"
        if self.state == "consumed":
            return f"consumed by order {self.order_id} line {self.line_id}"
        return self.state.replace("_", " ")


def check_serials(serials: Sequence[str], quantity: int, field_name: str = "serials") -> None:
    """The serials a document names for `quantity` units of a serialised part: one each, well
    formed, none twice."""
    if len(serials) != quantity:
        raise invalid(field_name, f"name one serial for each of the {quantity} units")
    if len(serials) > MAX_SERIALS:
        raise invalid(field_name, f"at most {MAX_SERIALS}")
    first: dict[str, int] = {}
    for i, serial in enumerate(serials):
        if not SERIAL_PATTERN.match(serial):
            raise invalid(
                f"{field_name}[{i}]", "1 to 60 letters, digits and . _ / -, starting alphanumeric"
            )
        if serial in first:
            raise invalid(f"{field_name}[{i}]", f"repeats {field_name}[{first[serial]}]")
        first[serial] = i


def _wrong_place(item: SerialItem, expected: str) -> Conflict:
    return Conflict(f"serial {item.serial_number} is {item.where()}, not {expected}")


def _check_part(item: SerialItem, part_number: str) -> None:
    if item.part_number != part_number:
        raise Conflict(f"serial {item.serial_number} is a {item.part_number}, not {part_number}")


def check_free(item: SerialItem, part_number: str, warehouse_id: str) -> None:
    """In stock in the warehouse and held for no order."""
    _check_part(item, part_number)
    if item.state != "in_stock" or item.warehouse_id != warehouse_id or item.held:
        raise _wrong_place(item, f"free in {warehouse_id}")


def _placed(item: SerialItem, warehouse_id: str, unit_cost_fen: int) -> SerialItem:
    return replace(
        item,
        state="in_stock",
        warehouse_id=warehouse_id,
        transfer_id=None,
        order_id=None,
        line_id=None,
        unit_cost_fen=unit_cost_fen,
    )


def _gone(item: SerialItem, state: str) -> SerialItem:
    return replace(
        item, state=state, warehouse_id=None, transfer_id=None, order_id=None, line_id=None
    )


def receive(
    item: SerialItem | None,
    serial_number: str,
    part_number: str,
    warehouse_id: str,
    unit_cost_fen: int,
) -> SerialItem:
    """入库: a serial new to the chain, or one the manufacturer sends back, comes into stock."""
    if item is None:
        return SerialItem(serial_number, part_number, "in_stock", unit_cost_fen, warehouse_id)
    _check_part(item, part_number)
    if item.state != "returned_to_manufacturer":
        raise _wrong_place(item, "new to the chain")
    return _placed(item, warehouse_id, unit_cost_fen)


def find(
    item: SerialItem | None,
    serial_number: str,
    part_number: str,
    warehouse_id: str,
    unit_cost_fen: int,
) -> SerialItem:
    """盘盈: a serial found in the warehouse: unknown until now, or one written off missing."""
    if item is None:
        return SerialItem(serial_number, part_number, "in_stock", unit_cost_fen, warehouse_id)
    _check_part(item, part_number)
    if item.state != "missing":
        raise _wrong_place(item, "missing")
    return _placed(item, warehouse_id, unit_cost_fen)


LEAVING_STATES = {
    "adjustment": "missing",
    "scrap": "scrapped",
    "return_to_manufacturer": "returned_to_manufacturer",
}
"""Where a serial goes when it leaves a warehouse's stock by each kind of write-off."""


def write_off(item: SerialItem, part_number: str, warehouse_id: str, kind: str) -> SerialItem:
    """盘亏, 报废 or 返厂: a free serial of the warehouse leaves the chain."""
    check_free(item, part_number, warehouse_id)
    return _gone(item, LEAVING_STATES[kind])


def hold(
    item: SerialItem, part_number: str, warehouse_id: str, order_id: str, line_id: str
) -> SerialItem:
    """预留: a free serial is held for an order line; held for that line already, it stays."""
    if item.held and (item.order_id, item.line_id) == (order_id, line_id):
        _check_part(item, part_number)
        if item.warehouse_id == warehouse_id:
            return item
    check_free(item, part_number, warehouse_id)
    return replace(item, order_id=order_id, line_id=line_id)


def let_go(item: SerialItem, order_id: str, line_id: str) -> SerialItem:
    """The line's hold on the serial is let go: it is free in its warehouse again."""
    if not item.held or (item.order_id, item.line_id) != (order_id, line_id):
        raise _wrong_place(item, f"held for order {order_id} line {line_id}")
    return replace(item, order_id=None, line_id=None)


def consume(item: SerialItem, order_id: str, line_id: str) -> SerialItem:
    """领料: the serial held for the line leaves the warehouse into the order."""
    if not item.held or (item.order_id, item.line_id) != (order_id, line_id):
        raise _wrong_place(item, f"held for order {order_id} line {line_id}")
    return replace(item, state="consumed", warehouse_id=None)


def give_back(
    item: SerialItem, order_id: str, line_id: str, warehouse_id: str, unit_cost_fen: int
) -> SerialItem:
    """退料: a serial the line consumed comes back into the warehouse, free."""
    if item.state != "consumed" or (item.order_id, item.line_id) != (order_id, line_id):
        raise _wrong_place(item, f"consumed by order {order_id} line {line_id}")
    return _placed(item, warehouse_id, unit_cost_fen)


def ship(item: SerialItem, part_number: str, warehouse_id: str, transfer_id: str) -> SerialItem:
    """发货: a free serial of the sender is in transit on the transfer."""
    check_free(item, part_number, warehouse_id)
    return replace(item, state="in_transit", warehouse_id=None, transfer_id=transfer_id)


def arrive(item: SerialItem, transfer_id: str, warehouse_id: str, unit_cost_fen: int) -> SerialItem:
    """收货: a serial in transit on the transfer enters the receiver."""
    if item.state != "in_transit" or item.transfer_id != transfer_id:
        raise _wrong_place(item, f"in transit on transfer {transfer_id}")
    return _placed(item, warehouse_id, unit_cost_fen)
