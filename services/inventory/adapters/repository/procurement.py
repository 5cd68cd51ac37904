"""Purchasing (采购): reorder levels, what a suggestion needs, purchase orders."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import upsert
from servicekit.timeutil import as_utc
from services.inventory.adapters.orm import (
    purchase_order_lines,
    purchase_orders,
    reorder_levels,
    stock_levels,
    stock_movements,
    transfer_lines,
    transfers,
)
from services.inventory.domain.purchasing import PurchaseLine, PurchaseOrder, ReorderLevel


async def set_reorder_level(
    session: AsyncConnection, warehouse_id: str, level: ReorderLevel
) -> None:
    values = {
        "min_level": level.min_level,
        "max_level": level.max_level,
        "lead_time_days": level.lead_time_days,
    }
    await session.execute(
        upsert(session, reorder_levels)
        .values(warehouse_id=warehouse_id, part_number=level.part_number, **values)
        .on_conflict_do_update(index_elements=["warehouse_id", "part_number"], set_=values)
    )


@dataclass(frozen=True)
class ReorderPosition:
    """A part with a reorder level in a warehouse, and the figures a suggestion needs."""

    level: ReorderLevel
    available: int
    in_transit: int
    on_order: int
    consumed: int


def _pairs(rows: Iterable[Any]) -> dict[str, int]:
    """Rows of (part number, quantity) as a dictionary."""
    return {str(row[0]): int(row[1]) for row in rows}


async def reorder_positions(
    session: AsyncConnection, warehouse_id: str, since: datetime
) -> list[ReorderPosition]:
    r, s, t, m = reorder_levels.c, stock_levels.c, transfer_lines.c, stock_movements.c
    levels = (
        await session.execute(
            select(reorder_levels).where(r.warehouse_id == warehouse_id).order_by(r.part_number)
        )
    ).all()
    parts_wanted = [x.part_number for x in levels]
    available = _pairs(
        await session.execute(
            select(s.part_number, s.on_hand - s.reserved).where(
                s.warehouse_id == warehouse_id, s.part_number.in_(parts_wanted)
            )
        )
    )
    in_transit = _pairs(
        await session.execute(
            select(t.part_number, func.sum(t.quantity))
            .join(transfers, transfers.c.id == t.transfer_id)
            .where(transfers.c.to_warehouse_id == warehouse_id, transfers.c.status == "shipped")
            .group_by(t.part_number)
        )
    )
    p = purchase_order_lines.c
    on_order = _pairs(
        await session.execute(
            select(p.part_number, func.sum(p.quantity - p.received))
            .join(purchase_orders, purchase_orders.c.id == p.purchase_order_id)
            .where(
                purchase_orders.c.warehouse_id == warehouse_id,
                purchase_orders.c.status == "open",
            )
            .group_by(p.part_number)
        )
    )
    # Net consumption: issued to orders less returned from them, over the window.
    consumed = _pairs(
        await session.execute(
            select(m.part_number, -func.sum(m.quantity))
            .where(
                m.warehouse_id == warehouse_id,
                m.kind.in_(("issue", "return")),
                m.occurred_at >= since,
            )
            .group_by(m.part_number)
        )
    )
    return [
        ReorderPosition(
            ReorderLevel(x.part_number, x.min_level, x.max_level, x.lead_time_days),
            int(available.get(x.part_number, 0)),
            int(in_transit.get(x.part_number, 0)),
            int(on_order.get(x.part_number, 0)),
            int(consumed.get(x.part_number, 0)),
        )
        for x in levels
    ]


async def add_purchase_order(session: AsyncConnection, order: PurchaseOrder) -> None:
    await session.execute(
        purchase_orders.insert(),
        {
            "id": order.id,
            "warehouse_id": order.warehouse_id,
            "supplier": order.supplier,
            "status": order.status,
            "created_by": order.created_by,
            "created_at": order.created_at,
        },
    )
    await session.execute(
        purchase_order_lines.insert(),
        [
            {
                "purchase_order_id": order.id,
                "part_number": x.part_number,
                "quantity": x.quantity,
                "unit_cost_fen": x.unit_cost_fen,
                "received": x.received,
            }
            for x in order.lines
        ],
    )


async def get_purchase_order(
    session: AsyncConnection, order_id: str, *, lock: bool = False
) -> PurchaseOrder | None:
    query = select(purchase_orders).where(purchase_orders.c.id == order_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        return None
    p = purchase_order_lines.c
    lines = await session.execute(
        select(purchase_order_lines).where(p.purchase_order_id == order_id).order_by(p.part_number)
    )
    m = row._mapping
    return PurchaseOrder(
        id=m["id"],
        warehouse_id=m["warehouse_id"],
        supplier=m["supplier"],
        lines=tuple(
            PurchaseLine(x.part_number, x.quantity, x.unit_cost_fen, x.received) for x in lines
        ),
        created_by=m["created_by"],
        created_at=as_utc(m["created_at"]),
        status=m["status"],
    )


async def save_purchase_order(session: AsyncConnection, order: PurchaseOrder) -> None:
    await session.execute(
        update(purchase_orders).where(purchase_orders.c.id == order.id).values(status=order.status)
    )
    p = purchase_order_lines.c
    for line in order.lines:
        await session.execute(
            update(purchase_order_lines)
            .where(p.purchase_order_id == order.id, p.part_number == line.part_number)
            .values(received=line.received)
        )
