"""Stocktakes (盘点): counts against the book, with the serials missing or found."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.timeutil import as_utc
from services.inventory.adapters.orm import stocktake_lines, stocktake_serials, stocktakes
from services.inventory.adapters.repository.common import utc_or_none
from services.inventory.domain.stocktake import Stocktake, StocktakeLine


async def add_stocktake(session: AsyncConnection, doc: Stocktake) -> None:
    await session.execute(
        stocktakes.insert(),
        {
            "id": doc.id,
            "warehouse_id": doc.warehouse_id,
            "status": doc.status,
            "counted_by": doc.counted_by,
            "counted_at": doc.counted_at,
            "decided_by": doc.decided_by,
            "decided_at": doc.decided_at,
        },
    )
    await session.execute(
        stocktake_lines.insert(),
        [
            {
                "stocktake_id": doc.id,
                "part_number": x.part_number,
                "book": x.book,
                "counted": x.counted,
                "unit_cost_fen": x.unit_cost_fen,
            }
            for x in doc.lines
        ],
    )
    findings = [
        {
            "stocktake_id": doc.id,
            "serial_number": serial,
            "part_number": x.part_number,
            "finding": finding,
        }
        for x in doc.lines
        for finding, serials in (("missing", x.missing_serials), ("found", x.found_serials))
        for serial in serials
    ]
    if findings:
        await session.execute(stocktake_serials.insert(), findings)


async def get_stocktake(
    session: AsyncConnection, stocktake_id: str, *, lock: bool = False
) -> Stocktake | None:
    query = select(stocktakes).where(stocktakes.c.id == stocktake_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        return None
    lines = await session.execute(
        select(stocktake_lines)
        .where(stocktake_lines.c.stocktake_id == stocktake_id)
        .order_by(stocktake_lines.c.part_number)
    )
    c = stocktake_serials.c
    findings: dict[tuple[str, str], list[str]] = {}
    for part, serial, finding in await session.execute(
        select(c.part_number, c.serial_number, c.finding)
        .where(c.stocktake_id == stocktake_id)
        .order_by(c.serial_number)
    ):
        findings.setdefault((part, finding), []).append(serial)
    m = row._mapping
    return Stocktake(
        id=m["id"],
        warehouse_id=m["warehouse_id"],
        lines=tuple(
            StocktakeLine(
                x.part_number,
                x.book,
                x.counted,
                x.unit_cost_fen,
                tuple(findings.get((x.part_number, "missing"), ())),
                tuple(findings.get((x.part_number, "found"), ())),
            )
            for x in lines
        ),
        counted_by=m["counted_by"],
        counted_at=as_utc(m["counted_at"]),
        status=m["status"],
        decided_by=m["decided_by"],
        decided_at=utc_or_none(m["decided_at"]),
    )


async def save_stocktake(session: AsyncConnection, doc: Stocktake) -> None:
    await session.execute(
        update(stocktakes)
        .where(stocktakes.c.id == doc.id)
        .values(status=doc.status, decided_by=doc.decided_by, decided_at=doc.decided_at)
    )
