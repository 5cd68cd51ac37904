"""Old-part returns (旧件返还): what a warehouse owes the manufacturers, and batches sent back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.auth import AuthContext, require_role
from servicekit.errors import NotFound
from servicekit.timeutil import as_utc, utc_now
from services.inventory.adapters.repository import old_part_returns as old_part_returns_db
from services.inventory.adapters.repository import order_parts as order_parts_db
from services.inventory.domain import old_parts
from services.inventory.domain.events import OldPartsReturned
from services.inventory.domain.old_parts import OldPartLine
from services.inventory.domain.order_parts import OrderPartLine
from services.inventory.handlers import common
from services.inventory.handlers.common import STOCK_DOCUMENT_ROLES, NewUow


@dataclass(frozen=True)
class OldPartBatch:
    id: str
    warehouse_id: str
    document_id: str
    lines: list[OldPartLine]
    created_by: str
    created_at: datetime


async def list_old_parts_owed(
    new_uow: NewUow, auth: AuthContext, warehouse_id: str, overdue_only: bool
) -> list[OrderPartLine]:
    """What a warehouse owes the manufacturers, line by line, oldest first; or only what is
    overdue."""
    async with new_uow() as uow:
        warehouse = await common.visible_warehouse(uow.session, auth, warehouse_id)
        lines = await order_parts_db.lines_owing_old_parts(uow.session, warehouse.id)
    if overdue_only:
        now = utc_now()
        return [x for x in lines if old_parts.overdue(x, now)]
    return lines


async def return_old_parts(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    batch: Sequence[OldPartLine],
    document_id: str,
) -> OldPartBatch:
    """A batch of old parts goes back to the manufacturer, each matched to the line it
    settles; the lines it names owe that much less."""
    require_role(auth, STOCK_DOCUMENT_ROLES)
    async with new_uow() as uow:
        session = uow.session
        if (earlier := await uow.earlier_result()) is not None:
            return await _old_part_batch(session, earlier)
        warehouse = await common.visible_warehouse(session, auth, warehouse_id)
        owing = await order_parts_db.lines_owing_old_parts(session, warehouse.id, lock=True)
        settled = old_parts.match(batch, {(x.order_id, x.line_id): x for x in owing})
        now = utc_now()
        done = OldPartBatch(
            id=common.new_document_id("OPR"),
            warehouse_id=warehouse.id,
            document_id=document_id,
            lines=list(batch),
            created_by=auth.user_id,
            created_at=now,
        )
        await order_parts_db.save_lines(session, settled, now)
        await old_part_returns_db.add_old_part_batch(
            session, done.id, warehouse.id, document_id, batch, auth.user_id, now
        )
        await common.announce_document(uow, warehouse, "old_part_return", done.id)
        # Orders' settlement holds a claim line until its old parts are back: it hears of
        # them here, in the same transaction as the batch.
        parts = {(x.order_id, x.line_id): x.part_number for x in settled}
        returned = tuple(
            (x.order_id, x.line_id, parts[(x.order_id, x.line_id)], x.quantity) for x in batch
        )
        common.announce(uow, warehouse, OldPartsReturned(done.id, returned))
        await uow.commit(result_id=done.id)
    return done


async def _old_part_batch(session: AsyncConnection, batch_id: str) -> OldPartBatch:
    found = await old_part_returns_db.get_old_part_batch(session, batch_id)
    if found is None:
        raise NotFound(f"old-part batch {batch_id} of an earlier try is gone")
    header, lines = found
    return OldPartBatch(
        id=batch_id,
        warehouse_id=str(header.warehouse_id),
        document_id=str(header.document_id),
        lines=lines,
        created_by=str(header.created_by),
        created_at=as_utc(header.created_at),
    )
