"""Slow-moving stock (滞销品): on hand with no outbound movement since a day."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.adapters.orm import parts, stock_levels, stock_movements
from services.inventory.adapters.repository.common import utc_or_none
from services.inventory.domain.stock import OUTBOUND_KINDS


@dataclass(frozen=True)
class SlowMoving:
    warehouse_id: str
    part_number: str
    description: str
    on_hand: int
    value_fen: int
    last_outbound_at: datetime | None


async def slow_moving(
    session: AsyncConnection, warehouse_ids: Collection[str], since: datetime, limit: int
) -> list[SlowMoving]:
    """Stock on hand in these warehouses with no outbound movement since `since`, most value
    first."""
    s, m = stock_levels.c, stock_movements.c
    last_out = (
        select(m.warehouse_id, m.part_number, func.max(m.occurred_at).label("last_out"))
        .where(m.kind.in_(OUTBOUND_KINDS), m.warehouse_id.in_(list(warehouse_ids)))
        .group_by(m.warehouse_id, m.part_number)
        .subquery()
    )
    value = s.value_fen.label("value_fen")
    rows = await session.execute(
        select(
            s.warehouse_id,
            s.part_number,
            parts.c.description,
            s.on_hand,
            value,
            last_out.c.last_out,
        )
        .join(parts, parts.c.part_number == s.part_number)
        .outerjoin(
            last_out,
            (last_out.c.warehouse_id == s.warehouse_id) & (last_out.c.part_number == s.part_number),
        )
        .where(
            s.warehouse_id.in_(list(warehouse_ids)),
            s.on_hand > 0,
            (last_out.c.last_out.is_(None)) | (last_out.c.last_out < since),
        )
        .order_by(value.desc(), s.warehouse_id, s.part_number)
        .limit(limit)
    )
    return [SlowMoving(w, p, d, int(q), int(v), utc_or_none(last)) for w, p, d, q, v, last in rows]
