"""The stock ledger: every movement appended, read by warehouse, by document or by serial."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.timeutil import as_utc
from services.inventory.adapters.orm import stock_movements
from services.inventory.domain.stock import Movement


async def add_movements(session: AsyncConnection, movements: Collection[Movement]) -> list[int]:
    """Append to the ledger; the new rows' ids, in the order given."""
    if not movements:
        return []
    rows = await session.execute(
        stock_movements.insert().returning(stock_movements.c.id, sort_by_parameter_order=True),
        [
            {
                "warehouse_id": m.warehouse_id,
                "part_number": m.part_number,
                "kind": m.kind,
                "quantity": m.quantity,
                "unit_cost_fen": m.unit_cost_fen,
                "value_fen": m.value_fen,
                "document_type": m.document_type,
                "document_id": m.document_id,
                "occurred_at": m.occurred_at,
                "user_id": m.user_id,
                "serial_number": m.serial_number,
            }
            for m in movements
        ],
    )
    return [row.id for row in rows]


@dataclass(frozen=True)
class LedgerRow:
    id: int
    movement: Movement


async def list_movements(
    session: AsyncConnection,
    warehouse_id: str,
    part_number: str | None,
    limit: int,
    before_id: int | None,
) -> list[LedgerRow]:
    """A warehouse's ledger, newest first, keyset-paged: the page starts before `before_id`."""
    c = stock_movements.c
    conditions = [c.warehouse_id == warehouse_id]
    if part_number:
        conditions.append(c.part_number == part_number)
    if before_id is not None:
        conditions.append(c.id < before_id)
    rows = await session.execute(
        select(stock_movements).where(*conditions).order_by(c.id.desc()).limit(limit)
    )
    return [_ledger_row(row) for row in rows]


def _ledger_row(row: Row[tuple[object, ...]]) -> LedgerRow:
    return LedgerRow(
        row.id,
        Movement(
            warehouse_id=row.warehouse_id,
            part_number=row.part_number,
            kind=row.kind,
            quantity=row.quantity,
            unit_cost_fen=row.unit_cost_fen,
            document_type=row.document_type,
            document_id=row.document_id,
            occurred_at=as_utc(row.occurred_at),
            user_id=row.user_id,
            serial_number=row.serial_number,
            value_fen=row.value_fen,
        ),
    )


async def get_movement(session: AsyncConnection, movement_id: int) -> LedgerRow | None:
    row = (
        await session.execute(select(stock_movements).where(stock_movements.c.id == movement_id))
    ).first()
    return None if row is None else _ledger_row(row)


async def movements_like(session: AsyncConnection, first: int, last: int) -> list[LedgerRow]:
    """The rows from `first` to `last` of the first one's warehouse, part and document."""
    head = await get_movement(session, first)
    if head is None:
        return []
    c, m = stock_movements.c, head.movement
    rows = await session.execute(
        select(stock_movements)
        .where(
            c.id.between(first, last),
            c.warehouse_id == m.warehouse_id,
            c.part_number == m.part_number,
            c.document_type == m.document_type,
            c.document_id == m.document_id,
        )
        .order_by(c.id)
    )
    return [_ledger_row(row) for row in rows]


async def movements_of(session: AsyncConnection, movement_ids: Collection[int]) -> list[LedgerRow]:
    """Ledger rows by id, in id order."""
    rows = await session.execute(
        select(stock_movements)
        .where(stock_movements.c.id.in_(list(movement_ids)))
        .order_by(stock_movements.c.id)
    )
    return [_ledger_row(row) for row in rows]


async def serial_history(session: AsyncConnection, serial_number: str) -> list[LedgerRow]:
    """Every ledger row of one serial, oldest first."""
    c = stock_movements.c
    rows = await session.execute(
        select(stock_movements).where(c.serial_number == serial_number).order_by(c.id)
    )
    return [_ledger_row(row) for row in rows]
