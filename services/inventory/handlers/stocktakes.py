"""Stocktake (盘点): counts against the book, posted at once or after a manager's approval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.auth import AuthContext, require_role
from servicekit.errors import NotFound, invalid
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork
from services.inventory.adapters.repository import catalog as catalog_db
from services.inventory.adapters.repository import serials as serials_db
from services.inventory.adapters.repository import stock as stock_db
from services.inventory.adapters.repository import stocktakes as stocktakes_db
from services.inventory.adapters.repository import warehouses as warehouses_db
from services.inventory.domain import serials, stocktake
from services.inventory.domain.stock import Posting
from services.inventory.domain.stocktake import Stocktake
from services.inventory.handlers import common
from services.inventory.handlers.common import (
    APPROVER_ROLES,
    STOCK_DOCUMENT_ROLES,
    MovementLine,
    NewUow,
    post_movements,
)


async def _post_stocktake(uow: UnitOfWork, doc: Stocktake) -> None:
    """Each difference becomes an adjustment at the average cost when counted; a serialised
    part's missing serials go out and its found ones come in, one by one."""
    lines = []
    for x in doc.lines:
        part, cost = x.part_number, x.unit_cost_fen
        if x.missing_serials:
            missing = x.missing_serials
            lines.append(
                MovementLine(doc.warehouse_id, part, "adjustment", -len(missing), cost, missing)
            )
        if x.found_serials:
            found = x.found_serials
            lines.append(
                MovementLine(doc.warehouse_id, part, "adjustment", len(found), cost, found)
            )
        if x.difference and not (x.missing_serials or x.found_serials):
            lines.append(MovementLine(doc.warehouse_id, part, "adjustment", x.difference, cost))
    await post_movements(uow, lines, Posting("stocktake", doc.id, utc_now(), doc.decided_by or ""))


async def record_stocktake(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    counts: list[tuple[str, int]],
    serial_numbers: Mapping[str, Sequence[str]] | None = None,
) -> Stocktake:
    """盘点: the counts against the book now. Differences within the approval threshold are
    posted at once; larger ones wait for a manager. A serialised part is counted serial by
    serial (by part in `serial_numbers`): the book's serials not seen are missing, the ones
    seen that the book does not have are found."""
    require_role(auth, STOCK_DOCUMENT_ROLES)
    stocktake.check_counts(counts)
    named = serial_numbers or {}
    for i, (part_number, counted) in enumerate(counts):
        if named.get(part_number):
            serials.check_serials(named[part_number], counted, f"lines[{i}].serials")
    async with new_uow() as uow:
        session = uow.session
        if (earlier := await uow.earlier_result()) is not None:
            return await _stocktake_in_scope(session, auth, earlier)
        warehouse = await common.visible_warehouse(session, auth, warehouse_id)
        serialised = await catalog_db.serialised_flags(session, {p for p, _ in counts})
        for i, (part_number, _) in enumerate(counts):
            if part_number not in serialised:
                raise invalid(f"lines[{i}].part_number", f"no part {part_number}")
            if serialised[part_number] and counted and not named.get(part_number):
                raise invalid(f"lines[{i}].serials", f"{part_number} is counted by serial")
            if named.get(part_number) and not serialised[part_number]:
                raise invalid(f"lines[{i}].serials", f"{part_number} is not serialised")
        levels = await stock_db.lock_levels(session, {(warehouse.id, p) for p, _ in counts})
        book = {part: level for (_, part), level in levels.items()}
        counted_lines = []
        for line in stocktake.count(counts, book):
            if serialised[line.part_number]:
                on_book = await serials_db.serials_in(session, warehouse.id, line.part_number)
                line = stocktake.serial_findings(
                    line, [x.serial_number for x in on_book], named.get(line.part_number, ())
                )
            counted_lines.append(line)
        now = utc_now()
        doc = Stocktake(
            id=common.new_document_id("ST"),
            warehouse_id=warehouse.id,
            lines=tuple(counted_lines),
            counted_by=auth.user_id,
            counted_at=now,
        )
        if not doc.needs_approval:
            doc = stocktake.decide(doc, True, auth.user_id, now)
        await stocktakes_db.add_stocktake(session, doc)
        if doc.status == "posted":
            await _post_stocktake(uow, doc)
        await common.announce_document(uow, warehouse, "stocktake", doc.id, doc.status)
        await uow.commit(result_id=doc.id)
    return doc


async def decide_stocktake(
    new_uow: NewUow, auth: AuthContext, stocktake_id: str, approve: bool
) -> Stocktake:
    """A manager approves (the differences are posted) or rejects a stocktake that waits."""
    require_role(auth, APPROVER_ROLES)
    async with new_uow() as uow:
        session = uow.session
        before = await _stocktake_in_scope(session, auth, stocktake_id)
        if await uow.earlier_result() is not None:
            return before
        await stock_db.lock_levels(
            session, {(before.warehouse_id, x.part_number) for x in before.lines}
        )
        locked = await stocktakes_db.get_stocktake(session, stocktake_id, lock=True)
        assert locked is not None  # it was there a moment ago and is never deleted
        after = stocktake.decide(locked, approve, auth.user_id, utc_now())
        if after != locked:
            await stocktakes_db.save_stocktake(session, after)
            if after.status == "posted":
                await _post_stocktake(uow, after)
            warehouse = await common.visible_warehouse(session, auth, after.warehouse_id)
            await common.announce_document(uow, warehouse, "stocktake", after.id, after.status)
            await uow.commit(result_id=after.id)
    return after


async def _stocktake_in_scope(
    session: AsyncConnection, auth: AuthContext, stocktake_id: str
) -> Stocktake:
    if not stocktake_id:
        raise invalid("stocktake_id", "is required")
    doc = await stocktakes_db.get_stocktake(session, stocktake_id)
    warehouse = await warehouses_db.get_warehouse(session, doc.warehouse_id) if doc else None
    if doc is None or warehouse is None or not warehouse.visible_to(auth):
        raise NotFound(f"no stocktake {stocktake_id} in your scope")
    return doc


async def get_stocktake(new_uow: NewUow, auth: AuthContext, stocktake_id: str) -> Stocktake:
    async with new_uow() as uow:
        return await _stocktake_in_scope(uow.session, auth, stocktake_id)
