"""Serialised items (串号): where each unit is and which order line holds it."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.adapters.orm import serial_items
from services.inventory.domain.serials import SerialItem


def _serial_from_row(row: Row[tuple[object, ...]]) -> SerialItem:
    m = row._mapping
    return SerialItem(
        serial_number=m["serial_number"],
        part_number=m["part_number"],
        state=m["state"],
        unit_cost_fen=m["unit_cost_fen"],
        warehouse_id=m["warehouse_id"],
        transfer_id=m["transfer_id"],
        order_id=m["order_id"],
        line_id=m["line_id"],
    )


async def lock_serials(
    session: AsyncConnection, serial_numbers: Collection[str], *, lock: bool = True
) -> dict[str, SerialItem]:
    """The known ones of these serials; locked until the transaction ends unless asked not
    to (after the stock levels they move: one lock order for everyone)."""
    if not serial_numbers:
        return {}
    c = serial_items.c
    query = (
        select(serial_items)
        .where(c.serial_number.in_(sorted(serial_numbers)))
        .order_by(c.serial_number)
    )
    rows = await session.execute(query.with_for_update() if lock else query)
    return {row.serial_number: _serial_from_row(row) for row in rows}


def _serial_values(item: SerialItem, now: datetime) -> dict[str, object]:
    return {
        "part_number": item.part_number,
        "state": item.state,
        "warehouse_id": item.warehouse_id,
        "transfer_id": item.transfer_id,
        "order_id": item.order_id,
        "line_id": item.line_id,
        "unit_cost_fen": item.unit_cost_fen,
        "updated_at": now,
    }


async def add_serials(
    session: AsyncConnection, items: Collection[SerialItem], now: datetime
) -> None:
    """Serials new to the chain. The same serial added at once elsewhere fails the insert
    (the primary key), so it is never in two places."""
    if items:
        await session.execute(
            serial_items.insert(),
            [{"serial_number": x.serial_number, **_serial_values(x, now)} for x in items],
        )


async def save_serials(
    session: AsyncConnection, items: Collection[SerialItem], now: datetime
) -> None:
    c = serial_items.c
    for item in items:
        await session.execute(
            update(serial_items)
            .where(c.serial_number == item.serial_number)
            .values(**_serial_values(item, now))
        )


async def serials_of_lines(
    session: AsyncConnection, order_id: str, *, lock: bool = False
) -> list[SerialItem]:
    """The serials an order's lines hold or consumed, by serial."""
    c = serial_items.c
    query = select(serial_items).where(c.order_id == order_id).order_by(c.serial_number)
    if lock:
        query = query.with_for_update()
    return [_serial_from_row(row) for row in await session.execute(query)]


async def free_serials(
    session: AsyncConnection, warehouse_id: str, part_number: str, limit: int
) -> list[SerialItem]:
    """Serials of the part in stock in the warehouse and held for no order, locked, first by
    serial number. Called under the level's lock, so no one else takes them meanwhile."""
    c = serial_items.c
    rows = await session.execute(
        select(serial_items)
        .where(
            c.warehouse_id == warehouse_id,
            c.part_number == part_number,
            c.state == "in_stock",
            c.order_id.is_(None),
        )
        .order_by(c.serial_number)
        .limit(limit)
        .with_for_update()
    )
    return [_serial_from_row(row) for row in rows]


async def serials_in(
    session: AsyncConnection, warehouse_id: str, part_number: str | None
) -> list[SerialItem]:
    """Serials in stock in a warehouse (held or free), by part and serial."""
    c = serial_items.c
    conditions = [c.warehouse_id == warehouse_id, c.state == "in_stock"]
    if part_number:
        conditions.append(c.part_number == part_number)
    rows = await session.execute(
        select(serial_items).where(*conditions).order_by(c.part_number, c.serial_number)
    )
    return [_serial_from_row(row) for row in rows]


async def get_serial(session: AsyncConnection, serial_number: str) -> SerialItem | None:
    row = (
        await session.execute(
            select(serial_items).where(serial_items.c.serial_number == serial_number)
        )
    ).first()
    return None if row is None else _serial_from_row(row)
