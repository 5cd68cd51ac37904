"""Warehouse keepers' documents: receipts (入库), adjustments (盘盈/盘亏), write-offs
(报废/返厂), and the ledger."""

from __future__ import annotations

from collections.abc import Sequence

from servicekit import paging
from servicekit.auth import AuthContext, require_role
from servicekit.errors import Forbidden, NotFound, invalid
from servicekit.uow import UnitOfWork
from services.inventory.adapters.repository import catalog as catalog_db
from services.inventory.adapters.repository import ledger as ledger_db
from services.inventory.adapters.repository import stock as stock_db
from services.inventory.domain.stocktake import APPROVAL_THRESHOLD_FEN
from services.inventory.handlers import common, quotas
from services.inventory.handlers.common import (
    DEFAULT_PAGE_SIZE,
    MAX_DOCUMENT_QUANTITY,
    MAX_PAGE_SIZE,
    MAX_UNIT_COST_FEN,
    STOCK_DOCUMENT_ROLES,
    MovementLine,
    NewUow,
    Posted,
    post_movements,
)


def _check_document_quantity(quantity: int, *, signed: bool) -> None:
    if quantity == 0 or (quantity < 0 and not signed):
        raise invalid("quantity", "must not be zero" if signed else "must be positive")
    if abs(quantity) > MAX_DOCUMENT_QUANTITY:
        raise invalid("quantity", f"must be at most {MAX_DOCUMENT_QUANTITY} units")


async def record_receipt(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    part_number: str,
    quantity: int,
    unit_cost_fen: int,
    document_id: str,
    serial_numbers: Sequence[str] = (),
) -> Posted:
    """入库: stock comes in at a unit cost and the warehouse's moving average follows. A
    serialised part names a serial for each unit, none already in the chain."""
    require_role(auth, STOCK_DOCUMENT_ROLES)
    if not part_number:
        raise invalid("part_number", "is required")
    _check_document_quantity(quantity, signed=False)
    if not 0 <= unit_cost_fen <= MAX_UNIT_COST_FEN:
        raise invalid("unit_cost_fen", f"must be between 0 and {MAX_UNIT_COST_FEN}")
    async with new_uow() as uow:
        if (earlier := await _earlier_movement(uow)) is not None:
            return earlier
        warehouse = await common.visible_warehouse(uow.session, auth, warehouse_id)
        if not await catalog_db.retail_prices(uow.session, [part_number]):
            raise invalid("part_number", f"no part {part_number}")
        # The level before the quota: the one lock order every posting keeps.
        await stock_db.lock_levels(uow.session, {(warehouse.id, part_number)})
        await quotas.admit_into(
            uow.session, warehouse.id, quantity * unit_cost_fen, f"receipt of {part_number}"
        )
        line = MovementLine(
            warehouse.id, part_number, "receipt", quantity, unit_cost_fen, tuple(serial_numbers)
        )
        posting = common.posting(auth, "receipt", document_id or common.new_document_id("GRN"))
        booked = await post_movements(uow, [line], posting)
        await uow.commit(result_id=_rows_id(booked))
    return booked


async def record_adjustment(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    part_number: str,
    quantity: int,
    reason: str,
    document_id: str,
    serial_numbers: Sequence[str] = (),
) -> Posted:
    """盘盈/盘亏: found stock comes in at the warehouse's average cost (the part's standard
    cost when there is none); missing stock goes out at it. Only available stock can be
    written off: what is held for orders must be released first. A serialised part names
    its serials: found ones unknown or once missing, missing ones free in the warehouse."""
    require_role(auth, STOCK_DOCUMENT_ROLES)
    if not part_number:
        raise invalid("part_number", "is required")
    if not reason.strip():
        raise invalid("reason", "is required")
    _check_document_quantity(quantity, signed=True)
    async with new_uow() as uow:
        if (earlier := await _earlier_movement(uow)) is not None:
            return earlier
        session = uow.session
        warehouse = await common.visible_warehouse(session, auth, warehouse_id)
        if not await catalog_db.retail_prices(session, [part_number]):
            raise invalid("part_number", f"no part {part_number}")
        # The level before the quota (the one lock order), and the cost read under its lock.
        await stock_db.lock_levels(session, {(warehouse.id, part_number)})
        cost = await stock_db.inbound_cost(session, warehouse.id, part_number)
        if cost is None:
            raise invalid("part_number", f"no part {part_number}")
        if auth.role == "warehouse_keeper" and abs(quantity) * cost > APPROVAL_THRESHOLD_FEN:
            raise Forbidden(
                f"an adjustment worth more than {APPROVAL_THRESHOLD_FEN} fen needs a manager: "
                "record a stocktake for approval"
            )
        await quotas.admit_into(
            session, warehouse.id, quantity * cost, f"adjustment of {part_number}"
        )
        line = MovementLine(
            warehouse.id, part_number, "adjustment", quantity, cost, tuple(serial_numbers)
        )
        posting = common.posting(auth, "adjustment", document_id or common.new_document_id("ADJ"))
        booked = await post_movements(uow, [line], posting)
        await uow.commit(result_id=_rows_id(booked))
    return booked


WRITE_OFF_KINDS = ("scrap", "return_to_manufacturer")


async def record_write_off(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    part_number: str,
    quantity: int,
    kind: str,
    reason: str,
    document_id: str,
    serial_numbers: Sequence[str] = (),
) -> Posted:
    """报废 or 返厂: available stock leaves the chain at the warehouse's average cost; a
    serialised part names the free serials that leave."""
    require_role(auth, STOCK_DOCUMENT_ROLES)
    if kind not in WRITE_OFF_KINDS:
        raise invalid("kind", f"must be one of {', '.join(WRITE_OFF_KINDS)}")
    if not part_number:
        raise invalid("part_number", "is required")
    if not reason.strip():
        raise invalid("reason", "is required")
    _check_document_quantity(quantity, signed=False)
    async with new_uow() as uow:
        if (earlier := await _earlier_movement(uow)) is not None:
            return earlier
        warehouse = await common.visible_warehouse(uow.session, auth, warehouse_id)
        if not await catalog_db.retail_prices(uow.session, [part_number]):
            raise invalid("part_number", f"no part {part_number}")
        line = MovementLine(warehouse.id, part_number, kind, -quantity, None, tuple(serial_numbers))
        prefix = "SCR" if kind == "scrap" else "RTM"
        posting = common.posting(auth, kind, document_id or common.new_document_id(prefix))
        booked = await post_movements(uow, [line], posting)
        await uow.commit(result_id=_rows_id(booked))
    return booked


def _rows_id(booked: Posted) -> str:
    """The ledger rows of one document line, named for the handled-requests log."""
    ids = [movement_id for movement_id, _ in booked]
    return ",".join(map(str, ids)) if len(ids) <= 8 else f"{ids[0]}-{ids[-1]}"


async def _earlier_movement(uow: UnitOfWork) -> Posted | None:
    """The ledger rows an earlier try of this very request booked (its reply was lost). Many
    rows (a serial each) are named by their first and last id: the rows of one warehouse's
    part between them are this document's, since its level was locked while they were
    written."""
    earlier = await uow.earlier_result()
    if earlier is None:
        return None
    if "-" in earlier:
        first, last = (int(x) for x in earlier.split("-"))
        rows = await ledger_db.movements_like(uow.session, first, last)
    else:
        rows = await ledger_db.movements_of(uow.session, [int(x) for x in earlier.split(",")])
    if not rows:
        raise NotFound(f"movements {earlier} of an earlier try are gone")
    return [(row.id, row.movement) for row in rows]


async def list_movements(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    part_number: str,
    page_size: int,
    page_token: str,
) -> tuple[list[ledger_db.LedgerRow], str]:
    """A warehouse's ledger, newest first, a page at a time."""
    size = paging.page_size(page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    before = None
    if page_token:
        raw = paging.decode_page_token(page_token, 1)[0]
        if not raw.isdigit():
            raise invalid("cursor", "is not a cursor this service issued")
        before = int(raw)
    async with new_uow() as uow:
        await common.visible_warehouse(uow.session, auth, warehouse_id)
        page = await ledger_db.list_movements(
            uow.session, warehouse_id, part_number or None, size + 1, before
        )
    if len(page) > size:
        return page[:size], paging.encode_page_token(str(page[size - 1].id))
    return page, ""
