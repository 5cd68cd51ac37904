"""The console's lists: transfers, stocktakes and purchase orders in the caller's scope, newest
first, a page at a time; and one purchase order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit import paging
from servicekit.auth import AuthContext
from servicekit.errors import NotFound, invalid
from services.inventory.adapters.repository import lists as lists_db
from services.inventory.adapters.repository import procurement as procurement_db
from services.inventory.adapters.repository import stocktakes as stocktakes_db
from services.inventory.adapters.repository import transfers as transfers_db
from services.inventory.adapters.repository import warehouses as warehouses_db
from services.inventory.domain import purchasing
from services.inventory.domain.purchasing import PO_STATUSES
from services.inventory.domain.stocktake import STOCKTAKE_STATUSES, Stocktake
from services.inventory.domain.transfer import TRANSFER_STATUSES, Transfer
from services.inventory.handlers import common
from services.inventory.handlers.common import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, NewUow

Doc = TypeVar("Doc")


def _status(status: str, allowed: Sequence[str]) -> str:
    if status and status not in allowed:
        raise invalid("status", f"must be one of {', '.join(allowed)}")
    return status


def _after(token: str) -> lists_db.After | None:
    """Where a page resumes: after this (moment, id)."""
    if not token:
        return None
    at, last_id = paging.decode_page_token(token, 2)
    try:
        return datetime.fromisoformat(at), last_id
    except ValueError as error:
        raise invalid("cursor", "is not a cursor this service issued") from error


async def _load(
    session: AsyncConnection,
    keys: list[tuple[str, datetime]],
    size: int,
    get: Callable[[AsyncConnection, str], Awaitable[Doc | None]],
) -> tuple[list[Doc], str]:
    """The documents of a page of keys (fetched one past the page to tell whether more
    follow) and the token of the next page."""
    found = []
    for doc_id, _ in keys[:size]:
        doc = await get(session, doc_id)
        if doc is not None:
            found.append(doc)
    if len(keys) <= size:
        return found, ""
    last_id, at = keys[size - 1]
    return found, paging.encode_page_token(at.isoformat(), last_id)


async def list_transfers(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    status: str,
    pending_branch: str,
    page_size: int,
    page_token: str,
) -> tuple[list[Transfer], str]:
    """Transfers either of whose warehouses the caller covers: from or to one warehouse, in one
    status, or those still awaiting a branch's approval (a manager's queue)."""
    _status(status, TRANSFER_STATUSES)
    size = paging.page_size(page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = _after(page_token)
    # Another branch's queue is as unknown to a branch user as another branch's warehouse.
    if pending_branch and auth.branch_id and auth.branch_id != pending_branch:
        raise NotFound(f"no branch {pending_branch} in your scope")
    async with new_uow() as uow:
        session = uow.session
        if warehouse_id:
            await common.visible_warehouse(session, auth, warehouse_id)
        scope = None
        if auth.branch_id or auth.store_id:
            in_scope = await warehouses_db.list_warehouses(session, auth.branch_id, auth.store_id)
            scope = [w.id for w in in_scope]
        where = lists_db.TransferFilter(scope, warehouse_id, status, pending_branch)
        keys = await lists_db.transfer_page(session, where, size + 1, after)
        return await _load(session, keys, size, transfers_db.get_transfer)


async def list_stocktakes(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    status: str,
    page_size: int,
    page_token: str,
) -> tuple[list[Stocktake], str]:
    """A warehouse's stocktakes, newest first; by status, e.g. those awaiting approval."""
    _status(status, STOCKTAKE_STATUSES)
    size = paging.page_size(page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = _after(page_token)
    async with new_uow() as uow:
        session = uow.session
        await common.visible_warehouse(session, auth, warehouse_id)
        keys = await lists_db.stocktake_page(session, warehouse_id, status, size + 1, after)
        return await _load(session, keys, size, stocktakes_db.get_stocktake)


async def list_purchase_orders(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    status: str,
    page_size: int,
    page_token: str,
) -> tuple[list[purchasing.PurchaseOrder], str]:
    """A warehouse's purchase orders, newest first; by status, e.g. those still open."""
    _status(status, PO_STATUSES)
    size = paging.page_size(page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = _after(page_token)
    async with new_uow() as uow:
        session = uow.session
        await common.visible_warehouse(session, auth, warehouse_id)
        keys = await lists_db.purchase_order_page(session, warehouse_id, status, size + 1, after)
        return await _load(session, keys, size, procurement_db.get_purchase_order)


async def get_purchase_order(
    new_uow: NewUow, auth: AuthContext, purchase_order_id: str
) -> purchasing.PurchaseOrder:
    if not purchase_order_id:
        raise invalid("purchase_order_id", "is required")
    async with new_uow() as uow:
        session = uow.session
        found = await procurement_db.get_purchase_order(session, purchase_order_id)
        warehouse = (
            await warehouses_db.get_warehouse(session, found.warehouse_id) if found else None
        )
        # Another unit's order is indistinguishable from one that does not exist.
        if found is None or warehouse is None or not warehouse.visible_to(auth):
            raise NotFound(f"no purchase order {purchase_order_id} in your scope")
        return found
