"""Warehouses (库房): one per store, one central per branch."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.adapters.orm import warehouses
from services.inventory.domain.warehouse import Warehouse


async def add_warehouses(session: AsyncConnection, new: Collection[Warehouse]) -> None:
    await session.execute(
        warehouses.insert(),
        [
            {
                "id": w.id,
                "name": w.name,
                "kind": w.kind,
                "branch_id": w.branch_id,
                "store_id": w.store_id,
                "franchised": w.franchised,
            }
            for w in new
        ],
    )


def _warehouse_from_row(row: Row[tuple[object, ...]]) -> Warehouse:
    m = row._mapping
    return Warehouse(m["id"], m["name"], m["kind"], m["branch_id"], m["store_id"], m["franchised"])


async def list_warehouses(
    session: AsyncConnection, branch_id: str | None, store_id: str | None
) -> list[Warehouse]:
    """Warehouses of a branch (its central and its stores') or of one store; all when neither
    is given. Central warehouses come first in each branch."""
    c = warehouses.c
    conditions = []
    if branch_id:
        conditions.append(c.branch_id == branch_id)
    if store_id:
        conditions.append(c.store_id == store_id)
    rows = await session.execute(
        select(warehouses).where(*conditions).order_by(c.branch_id, c.kind, c.id)
    )
    return [_warehouse_from_row(row) for row in rows]


async def get_warehouse(session: AsyncConnection, warehouse_id: str) -> Warehouse | None:
    row = (await session.execute(select(warehouses).where(warehouses.c.id == warehouse_id))).first()
    return _warehouse_from_row(row) if row else None


async def central_warehouse(session: AsyncConnection, branch_id: str) -> Warehouse | None:
    """The branch's central warehouse (中心库), if it has one."""
    c = warehouses.c
    row = (
        await session.execute(
            select(warehouses).where(c.branch_id == branch_id, c.kind == "branch_central")
        )
    ).first()
    return _warehouse_from_row(row) if row else None
