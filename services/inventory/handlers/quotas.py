"""Franchise quota (额度): what a franchised store may hold."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.auth import AuthContext, require_role
from servicekit.errors import NotFound, invalid
from servicekit.timeutil import utc_now
from services.inventory.adapters.repository import quotas as quotas_db
from services.inventory.domain import quota
from services.inventory.domain.quota import QuotaUse
from services.inventory.handlers import common
from services.inventory.handlers.common import NewUow

QUOTA_SETTER_ROLES = ("branch_manager", "hq_admin")


async def admit_into(
    session: AsyncConnection, warehouse_id: str, adding_fen: int, what: str
) -> None:
    """Refuse a movement that would take a franchised store over its quota. The quota row is
    locked (after the stock levels), so movements into one store are checked in turn."""
    if adding_fen <= 0:
        return
    use = await quotas_db.quota_use(session, warehouse_id, lock=True)
    if use is not None:
        quota.admit(use, adding_fen, what)


async def set_quota(
    new_uow: NewUow, auth: AuthContext, warehouse_id: str, quota_fen: int
) -> QuotaUse:
    """额度: a franchised store's quota, set by its branch (or HQ). Setting it below what is
    already used is allowed: nothing more comes in until the store is back within it."""
    require_role(auth, QUOTA_SETTER_ROLES)
    quota.check_quota(quota_fen)
    async with new_uow() as uow:
        warehouse = await common.visible_warehouse(uow.session, auth, warehouse_id)
        if not warehouse.franchised:
            raise invalid("warehouse_id", f"{warehouse_id} is not a franchised store's")
        await quotas_db.set_quota(uow.session, warehouse.id, quota_fen, auth.user_id, utc_now())
        use = await quotas_db.quota_use(uow.session, warehouse.id)
        await common.announce_document(uow, warehouse, "quota", warehouse.id)
        await uow.commit()
    assert use is not None  # just written
    return use


async def get_quota(new_uow: NewUow, auth: AuthContext, warehouse_id: str) -> QuotaUse:
    """The quota's use, for the store and its branch."""
    async with new_uow() as uow:
        warehouse = await common.visible_warehouse(uow.session, auth, warehouse_id)
        use = await quotas_db.quota_use(uow.session, warehouse.id)
    if use is None:
        raise NotFound(f"no quota for {warehouse_id}")
    return use
