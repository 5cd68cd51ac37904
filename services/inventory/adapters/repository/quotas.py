"""Franchise quota (额度): a store's quota and what uses it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import upsert
from services.inventory.adapters.orm import (
    order_part_lines,
    quotas,
    stock_levels,
    transfer_lines,
    transfers,
)
from services.inventory.domain.quota import QuotaUse


async def set_quota(
    session: AsyncConnection, warehouse_id: str, quota_fen: int, user_id: str, at: datetime
) -> None:
    await session.execute(
        upsert(session, quotas)
        .values(warehouse_id=warehouse_id, quota_fen=quota_fen, set_by=user_id, set_at=at)
        .on_conflict_do_update(
            index_elements=["warehouse_id"],
            set_={"quota_fen": quota_fen, "set_by": user_id, "set_at": at},
        )
    )


async def quota_use(
    session: AsyncConnection, warehouse_id: str, *, lock: bool = False
) -> QuotaUse | None:
    """The quota of a warehouse and what uses it, or None when it has no quota. Locked when
    asked, so two movements into the store are checked one after the other."""
    query = select(quotas.c.quota_fen).where(quotas.c.warehouse_id == warehouse_id)
    if lock:
        query = query.with_for_update()
    quota = await session.scalar(query)
    if quota is None:
        return None
    held = await held_value(session, warehouse_id)
    t = transfer_lines.c
    in_transit = await session.scalar(
        select(func.coalesce(func.sum(t.value_fen), 0))
        .join(transfers, transfers.c.id == t.transfer_id)
        .where(transfers.c.to_warehouse_id == warehouse_id, transfers.c.status == "shipped")
    )
    o = order_part_lines.c
    owed = await session.scalar(
        select(
            func.coalesce(func.sum((o.issued - o.returned - o.old_returned) * o.unit_cost_fen), 0)
        ).where(o.warehouse_id == warehouse_id, o.warranty.is_(True))
    )
    return QuotaUse(warehouse_id, int(quota), held, int(in_transit or 0), int(owed or 0))


async def held_value(session: AsyncConnection, warehouse_id: str) -> int:
    """What the on-hand is worth, over every part in the warehouse."""
    s = stock_levels.c
    held = await session.scalar(
        select(func.coalesce(func.sum(s.value_fen), 0)).where(s.warehouse_id == warehouse_id)
    )
    return int(held or 0)
