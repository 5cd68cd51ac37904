"""Old-part returns (旧件返还): the batches sent back and their lines."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.adapters.orm import old_part_batch_lines, old_part_batches
from services.inventory.domain.old_parts import OldPartLine


async def add_old_part_batch(
    session: AsyncConnection,
    batch_id: str,
    warehouse_id: str,
    document_id: str,
    lines: Collection[OldPartLine],
    user_id: str,
    at: datetime,
) -> None:
    await session.execute(
        old_part_batches.insert(),
        {
            "id": batch_id,
            "warehouse_id": warehouse_id,
            "document_id": document_id,
            "created_by": user_id,
            "created_at": at,
        },
    )
    await session.execute(
        old_part_batch_lines.insert(),
        [
            {
                "batch_id": batch_id,
                "order_id": x.order_id,
                "line_id": x.line_id,
                "quantity": x.quantity,
            }
            for x in lines
        ],
    )


async def get_old_part_batch(
    session: AsyncConnection, batch_id: str
) -> tuple[Row[tuple[object, ...]], list[OldPartLine]] | None:
    """A batch's header row and its lines."""
    header = (
        await session.execute(select(old_part_batches).where(old_part_batches.c.id == batch_id))
    ).first()
    if header is None:
        return None
    c = old_part_batch_lines.c
    rows = await session.execute(
        select(c.order_id, c.line_id, c.quantity)
        .where(c.batch_id == batch_id)
        .order_by(c.order_id, c.line_id)
    )
    return header, [OldPartLine(r.order_id, r.line_id, r.quantity) for r in rows]
