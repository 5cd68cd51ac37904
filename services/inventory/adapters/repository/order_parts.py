"""An order's part lines (工单用料): what each holds, issued and returned, and the old parts
its warranty lines still owe."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.adapters.orm import order_part_lines
from services.inventory.adapters.repository.common import utc_or_none
from services.inventory.domain.order_parts import OrderPartLine


def _line_from_row(row: Row[tuple[object, ...]]) -> OrderPartLine:
    m = row._mapping
    return OrderPartLine(
        order_id=m["order_id"],
        line_id=m["line_id"],
        warehouse_id=m["warehouse_id"],
        part_number=m["part_number"],
        quantity=m["quantity"],
        warranty=m["warranty"],
        retail_price_fen=m["retail_price_fen"],
        reserved=m["reserved"],
        short=m["short"],
        issued=m["issued"],
        returned=m["returned"],
        status=m["status"],
        unit_cost_fen=m["unit_cost_fen"],
        issued_at=utc_or_none(m["issued_at"]),
        old_returned=m["old_returned"],
    )


async def order_lines(
    session: AsyncConnection, order_id: str, *, lock: bool = False
) -> list[OrderPartLine]:
    """An order's part lines by line id; locked until the transaction ends when asked (always
    after the stock levels they touch: one lock order for everyone)."""
    c = order_part_lines.c
    query = select(order_part_lines).where(c.order_id == order_id).order_by(c.line_id)
    if lock:
        query = query.with_for_update()
    return [_line_from_row(row) for row in await session.execute(query)]


def _line_values(line: OrderPartLine, now: datetime) -> dict[str, object]:
    return {
        "warehouse_id": line.warehouse_id,
        "part_number": line.part_number,
        "quantity": line.quantity,
        "warranty": line.warranty,
        "retail_price_fen": line.retail_price_fen,
        "reserved": line.reserved,
        "short": line.short,
        "issued": line.issued,
        "returned": line.returned,
        "status": line.status,
        "unit_cost_fen": line.unit_cost_fen,
        "issued_at": line.issued_at,
        "old_returned": line.old_returned,
        "updated_at": now,
    }


async def add_lines(
    session: AsyncConnection, lines: Collection[OrderPartLine], now: datetime
) -> None:
    if not lines:
        return
    await session.execute(
        order_part_lines.insert(),
        [{"order_id": x.order_id, "line_id": x.line_id, **_line_values(x, now)} for x in lines],
    )


async def save_lines(
    session: AsyncConnection, lines: Collection[OrderPartLine], now: datetime
) -> None:
    c = order_part_lines.c
    for line in lines:
        await session.execute(
            update(order_part_lines)
            .where(c.order_id == line.order_id, c.line_id == line.line_id)
            .values(**_line_values(line, now))
        )


async def lines_owing_old_parts(
    session: AsyncConnection, warehouse_id: str, *, lock: bool = False
) -> list[OrderPartLine]:
    """Warranty lines of a warehouse that still owe old parts, oldest issue first; locked
    when asked, so two batches cannot settle the same line twice."""
    o = order_part_lines.c
    query = (
        select(order_part_lines)
        .where(
            o.warehouse_id == warehouse_id,
            o.warranty.is_(True),
            o.issued - o.returned - o.old_returned > 0,
        )
        .order_by(o.issued_at, o.order_id, o.line_id)
    )
    if lock:
        query = query.with_for_update()
    return [_line_from_row(row) for row in await session.execute(query)]
