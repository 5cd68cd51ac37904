"""Slow-moving stock (滞销品)."""

from __future__ import annotations

from datetime import timedelta

from servicekit.auth import AuthContext
from servicekit.errors import invalid
from servicekit.timeutil import utc_now
from services.inventory.adapters.repository import slow_moving as slow_moving_db
from services.inventory.adapters.repository import warehouses as warehouses_db
from services.inventory.handlers import common
from services.inventory.handlers.common import NewUow

MAX_SLOW_MOVING_DAYS = 3650
SLOW_MOVING_LIMIT = 500


async def list_slow_moving(
    new_uow: NewUow, auth: AuthContext, days: int, warehouse_id: str
) -> list[slow_moving_db.SlowMoving]:
    """Parts on hand that nothing took out (issue, transfer, scrap, return to the
    manufacturer) for `days`, most value first: over the caller's scope (HQ the chain, a
    branch its warehouses, a store its own), or one warehouse in it."""
    if not 0 < days <= MAX_SLOW_MOVING_DAYS:
        raise invalid("days", f"must be 1 to {MAX_SLOW_MOVING_DAYS}")
    async with new_uow() as uow:
        session = uow.session
        if warehouse_id:
            ids = [(await common.visible_warehouse(session, auth, warehouse_id)).id]
        else:
            scope = await warehouses_db.list_warehouses(session, auth.branch_id, auth.store_id)
            ids = [w.id for w in scope]
        since = utc_now() - timedelta(days=days)
        return await slow_moving_db.slow_moving(session, ids, since, SLOW_MOVING_LIMIT)
