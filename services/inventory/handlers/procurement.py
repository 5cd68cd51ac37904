"""Purchasing (采购): reorder levels, suggestions, purchase orders and their receipt."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.auth import AuthContext, require_role
from servicekit.errors import NotFound, invalid
from servicekit.timeutil import utc_now
from services.inventory.adapters.repository import catalog as catalog_db
from services.inventory.adapters.repository import procurement as procurement_db
from services.inventory.adapters.repository import stock as stock_db
from services.inventory.adapters.repository import warehouses as warehouses_db
from services.inventory.domain import purchasing
from services.inventory.handlers import common, quotas
from services.inventory.handlers.common import (
    MAX_DOCUMENT_QUANTITY,
    MAX_UNIT_COST_FEN,
    STOCK_DOCUMENT_ROLES,
    MovementLine,
    NewUow,
    post_movements,
)

DEFAULT_CONSUMPTION_WINDOW_DAYS = 30
MAX_CONSUMPTION_WINDOW_DAYS = 365
MAX_PURCHASE_LINES = 200


async def set_reorder_level(
    new_uow: NewUow, auth: AuthContext, warehouse_id: str, level: purchasing.ReorderLevel
) -> purchasing.ReorderLevel:
    require_role(auth, STOCK_DOCUMENT_ROLES)
    purchasing.check_level(level)
    async with new_uow() as uow:
        warehouse = await common.visible_warehouse(uow.session, auth, warehouse_id)
        if not await catalog_db.retail_prices(uow.session, [level.part_number]):
            raise invalid("part_number", f"no part {level.part_number}")
        await procurement_db.set_reorder_level(uow.session, warehouse.id, level)
        await uow.commit()
    return level


async def suggest_reorders(
    new_uow: NewUow, auth: AuthContext, warehouse_id: str, window_days: int
) -> list[purchasing.Suggestion]:
    """采购参考: the parts with a reorder level that need ordering now, and how many."""
    window = window_days or DEFAULT_CONSUMPTION_WINDOW_DAYS
    if not 0 < window <= MAX_CONSUMPTION_WINDOW_DAYS:
        raise invalid("window_days", f"must be 1 to {MAX_CONSUMPTION_WINDOW_DAYS}")
    async with new_uow() as uow:
        warehouse = await common.visible_warehouse(uow.session, auth, warehouse_id)
        since = utc_now() - timedelta(days=window)
        positions = await procurement_db.reorder_positions(uow.session, warehouse.id, since)
    suggestions = [
        purchasing.suggest(x.level, x.available, x.in_transit, x.on_order, x.consumed, window)
        for x in positions
    ]
    return [x for x in suggestions if x.quantity > 0]


async def create_purchase_order(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    supplier: str,
    lines: list[purchasing.PurchaseLine],
) -> purchasing.PurchaseOrder:
    require_role(auth, STOCK_DOCUMENT_ROLES)
    if not supplier.strip() or len(supplier) > 100:
        raise invalid("supplier", "is required, at most 100 characters")
    if not lines or len(lines) > MAX_PURCHASE_LINES:
        raise invalid("lines", f"1 to {MAX_PURCHASE_LINES}")
    if len({x.part_number for x in lines}) != len(lines):
        raise invalid("lines", "each part once")
    for i, line in enumerate(lines):
        if not 0 < line.quantity <= MAX_DOCUMENT_QUANTITY:
            raise invalid(f"lines[{i}].quantity", f"must be 1 to {MAX_DOCUMENT_QUANTITY}")
        if not 0 <= line.unit_cost_fen <= MAX_UNIT_COST_FEN:
            raise invalid(f"lines[{i}].unit_cost_fen", f"must be 0 to {MAX_UNIT_COST_FEN}")
    async with new_uow() as uow:
        session = uow.session
        if (earlier := await uow.earlier_result()) is not None:
            return await _purchase_order_in_scope(session, auth, earlier)
        warehouse = await common.visible_warehouse(session, auth, warehouse_id)
        serialised = await catalog_db.serialised_flags(session, {x.part_number for x in lines})
        for i, line in enumerate(lines):
            if serialised.get(line.part_number) is not False:
                raise invalid(f"lines[{i}].part_number", f"no stocked part {line.part_number}")
        order = purchasing.PurchaseOrder(
            id=common.new_document_id("PO"),
            warehouse_id=warehouse.id,
            supplier=supplier,
            lines=tuple(replace(x, received=0) for x in lines),
            created_by=auth.user_id,
            created_at=utc_now(),
        )
        await procurement_db.add_purchase_order(session, order)
        await common.announce_document(uow, warehouse, "purchase_order", order.id, order.status)
        await uow.commit(result_id=order.id)
    return order


async def receive_purchase_order(
    new_uow: NewUow, auth: AuthContext, order_id: str, quantities: dict[str, int]
) -> purchasing.PurchaseOrder:
    """到货入库: what came in enters stock as receipts at the order's unit cost."""
    require_role(auth, STOCK_DOCUMENT_ROLES)
    if not order_id:
        raise invalid("purchase_order_id", "is required")
    async with new_uow() as uow:
        session = uow.session
        if await uow.earlier_result() is not None:
            return await _purchase_order_in_scope(session, auth, order_id)
        before = await _purchase_order_in_scope(session, auth, order_id)
        warehouse = await warehouses_db.get_warehouse(session, before.warehouse_id)
        assert warehouse is not None  # a purchase order's warehouse is never deleted
        await stock_db.lock_levels(session, {(warehouse.id, x.part_number) for x in before.lines})
        locked = await procurement_db.get_purchase_order(session, order_id, lock=True)
        assert locked is not None  # it was there a moment ago and is never deleted
        after = purchasing.receive_lines(locked, quantities)
        came = {
            x.part_number: x.received - y.received
            for x, y in zip(after.lines, locked.lines, strict=True)
            if x.received != y.received
        }
        value = sum(
            came[x.part_number] * x.unit_cost_fen for x in after.lines if x.part_number in came
        )
        await quotas.admit_into(session, warehouse.id, value, f"purchase order {order_id}")
        receipts = [
            MovementLine(
                warehouse.id, x.part_number, "receipt", came[x.part_number], x.unit_cost_fen
            )
            for x in after.lines
            if x.part_number in came
        ]
        await post_movements(uow, receipts, common.posting(auth, "purchase_order", order_id))
        await procurement_db.save_purchase_order(session, after)
        await common.announce_document(uow, warehouse, "purchase_order", after.id, after.status)
        await uow.commit(result_id=after.id)
    return after


async def _purchase_order_in_scope(
    session: AsyncConnection, auth: AuthContext, order_id: str
) -> purchasing.PurchaseOrder:
    found = await procurement_db.get_purchase_order(session, order_id)
    warehouse = await warehouses_db.get_warehouse(session, found.warehouse_id) if found else None
    if found is None or warehouse is None or not warehouse.visible_to(auth):
        raise NotFound(f"no purchase order {order_id} in your scope")
    return found
