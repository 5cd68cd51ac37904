"""Pages of documents for the console's lists: transfers, stocktakes and purchase orders,
newest first, keyset-paged on (moment, id) so a deep page costs what the first one does."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Select, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.timeutil import as_utc
from services.inventory.adapters.orm import (
    purchase_orders,
    stocktakes,
    transfer_approvals,
    transfers,
    warehouses,
)

After = tuple[datetime, str]
"""Where a page resumes: after the row with this (moment, id)."""


@dataclass(frozen=True)
class TransferFilter:
    """Which transfers a list shows. `warehouse_ids` is the caller's scope (None: all)."""

    warehouse_ids: Collection[str] | None
    warehouse_id: str = ""
    status: str = ""
    pending_branch: str = ""


async def _page(
    session: AsyncConnection,
    query: Select,
    moment: Column,
    key: Column,
    limit: int,
    after: After | None,
) -> list[tuple[str, datetime]]:
    if after is not None:
        at, last_id = after
        query = query.where(or_(moment < at, and_(moment == at, key < last_id)))
    rows = await session.execute(query.order_by(moment.desc(), key.desc()).limit(limit))
    return [(row[0], as_utc(row[1])) for row in rows]


async def transfer_page(
    session: AsyncConnection, where: TransferFilter, limit: int, after: After | None
) -> list[tuple[str, datetime]]:
    """(id, requested_at) of up to `limit` transfers, newest first."""
    c = transfers.c
    query = select(c.id, c.requested_at)
    if where.warehouse_ids is not None:
        ids = list(where.warehouse_ids)
        query = query.where(or_(c.from_warehouse_id.in_(ids), c.to_warehouse_id.in_(ids)))
    if where.warehouse_id:
        query = query.where(
            or_(c.from_warehouse_id == where.warehouse_id, c.to_warehouse_id == where.warehouse_id)
        )
    if where.status:
        query = query.where(c.status == where.status)
    if where.pending_branch:
        branch = where.pending_branch
        sender, receiver = warehouses.alias("sender"), warehouses.alias("receiver")
        approved = exists().where(
            transfer_approvals.c.transfer_id == c.id, transfer_approvals.c.branch_id == branch
        )
        query = (
            query.join(sender, sender.c.id == c.from_warehouse_id)
            .join(receiver, receiver.c.id == c.to_warehouse_id)
            .where(
                c.status == "requested",
                or_(sender.c.branch_id == branch, receiver.c.branch_id == branch),
                ~approved,
            )
        )
    return await _page(session, query, c.requested_at, c.id, limit, after)


async def stocktake_page(
    session: AsyncConnection, warehouse_id: str, status: str, limit: int, after: After | None
) -> list[tuple[str, datetime]]:
    """(id, counted_at) of up to `limit` of the warehouse's stocktakes, newest first."""
    c = stocktakes.c
    query = select(c.id, c.counted_at).where(c.warehouse_id == warehouse_id)
    if status:
        query = query.where(c.status == status)
    return await _page(session, query, c.counted_at, c.id, limit, after)


async def purchase_order_page(
    session: AsyncConnection, warehouse_id: str, status: str, limit: int, after: After | None
) -> list[tuple[str, datetime]]:
    """(id, created_at) of up to `limit` of the warehouse's purchase orders, newest first."""
    c = purchase_orders.c
    query = select(c.id, c.created_at).where(c.warehouse_id == warehouse_id)
    if status:
        query = query.where(c.status == status)
    return await _page(session, query, c.created_at, c.id, limit, after)
