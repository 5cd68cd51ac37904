"""Stock levels (库存): on-hand, reserved and what they are worth, per warehouse and part,
locked while a posting changes them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Row, bindparam, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import upsert
from services.inventory.adapters.orm import parts, stock_levels
from services.inventory.domain.stock import StockLevel

LevelKey = tuple[str, str]  # (warehouse_id, part_number)


@dataclass(frozen=True)
class StockRow:
    level: StockLevel
    description: str


def _level_from_row(row: Row[tuple[object, ...]]) -> StockLevel:
    m = row._mapping
    return StockLevel(
        warehouse_id=m["warehouse_id"],
        part_number=m["part_number"],
        on_hand=m["on_hand"],
        reserved=m["reserved"],
        average_cost_fen=m["average_cost_fen"],
        value_fen=m["value_fen"],
    )


async def stock_in(
    session: AsyncConnection, warehouse_id: str, part_number: str | None
) -> list[StockRow]:
    c = stock_levels.c
    conditions = [c.warehouse_id == warehouse_id]
    if part_number:
        conditions.append(c.part_number == part_number)
    rows = await session.execute(
        select(stock_levels, parts.c.description)
        .join(parts, parts.c.part_number == c.part_number)
        .where(*conditions)
        .order_by(c.part_number)
    )
    return [StockRow(_level_from_row(row), row.description) for row in rows]


async def lock_levels(
    session: AsyncConnection, keys: Collection[LevelKey]
) -> dict[LevelKey, StockLevel]:
    """The levels about to change, locked until the transaction ends; a part never stocked in
    a warehouse gets an empty level first, so there is always a row to lock."""
    ordered = sorted(keys)  # one lock order for everyone: no deadlocks between postings
    await session.execute(
        upsert(session, stock_levels).on_conflict_do_nothing(
            index_elements=["warehouse_id", "part_number"]
        ),
        [
            {
                "warehouse_id": warehouse_id,
                "part_number": part_number,
                "on_hand": 0,
                "reserved": 0,
                "average_cost_fen": 0,
                "value_fen": 0,
            }
            for warehouse_id, part_number in ordered
        ],
    )
    c = stock_levels.c
    rows = await session.execute(
        select(stock_levels)
        .where(tuple_(c.warehouse_id, c.part_number).in_(ordered))
        .order_by(c.warehouse_id, c.part_number)
        .with_for_update()
    )
    return {(row.warehouse_id, row.part_number): _level_from_row(row) for row in rows}


async def save_levels(session: AsyncConnection, levels: Collection[StockLevel]) -> None:
    c = stock_levels.c
    await session.execute(
        update(stock_levels)
        .where(
            c.warehouse_id == bindparam("key_warehouse_id"),
            c.part_number == bindparam("key_part_number"),
        )
        .values(
            on_hand=bindparam("new_on_hand"),
            reserved=bindparam("new_reserved"),
            average_cost_fen=bindparam("new_average_cost_fen"),
            value_fen=bindparam("new_value_fen"),
        ),
        [
            {
                "key_warehouse_id": level.warehouse_id,
                "key_part_number": level.part_number,
                "new_on_hand": level.on_hand,
                "new_reserved": level.reserved,
                "new_average_cost_fen": level.average_cost_fen,
                "new_value_fen": level.value_fen,
            }
            for level in levels
        ],
    )


async def inbound_cost(session: AsyncConnection, warehouse_id: str, part_number: str) -> int | None:
    """What found stock is valued at: the warehouse's average cost of the part, or its standard
    cost when the warehouse has none. None for an unknown part."""
    average = await session.scalar(
        select(stock_levels.c.average_cost_fen).where(
            stock_levels.c.warehouse_id == warehouse_id,
            stock_levels.c.part_number == part_number,
            stock_levels.c.on_hand > 0,
        )
    )
    if average is not None:
        return int(average)
    standard = await session.scalar(
        select(parts.c.standard_cost_fen).where(parts.c.part_number == part_number)
    )
    return None if standard is None else int(standard)
