"""Warehouses in the caller's scope and their stock."""

from __future__ import annotations

from servicekit.auth import AuthContext
from servicekit.errors import NotFound, invalid
from services.inventory.adapters.repository import catalog as catalog_db
from services.inventory.adapters.repository import stock as stock_db
from services.inventory.adapters.repository import warehouses as warehouses_db
from services.inventory.domain.stock import StockLevel
from services.inventory.domain.warehouse import Warehouse
from services.inventory.handlers.common import NewUow


async def list_warehouses(new_uow: NewUow, auth: AuthContext) -> list[Warehouse]:
    """The warehouses within the caller's scope: HQ all, a branch its central and its stores',
    a store its own."""
    async with new_uow() as uow:
        return await warehouses_db.list_warehouses(uow.session, auth.branch_id, auth.store_id)


async def get_stock(
    new_uow: NewUow, auth: AuthContext, warehouse_id: str, part_number: str
) -> tuple[Warehouse, list[stock_db.StockRow]]:
    """Stock of a warehouse, or of one part in it (zero when the part was never stocked
    there)."""
    if not warehouse_id:
        raise invalid("warehouse_id", "is required")
    async with new_uow() as uow:
        warehouse = await warehouses_db.get_warehouse(uow.session, warehouse_id)
        # Another unit's warehouse is indistinguishable from one that does not exist.
        if warehouse is None or not warehouse.visible_to(auth):
            raise NotFound(f"no warehouse {warehouse_id} in your scope")
        rows = await stock_db.stock_in(uow.session, warehouse_id, part_number or None)
        if part_number and not rows:
            description = await catalog_db.part_description(uow.session, part_number)
            if description is None:
                raise NotFound(f"no part {part_number}")
            rows = [stock_db.StockRow(StockLevel(warehouse_id, part_number), description)]
    return warehouse, rows
