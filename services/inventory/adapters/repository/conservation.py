"""The conservation check (守恒): the ledger, the balances, the serials and what is in transit,
summed per part."""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.adapters.orm import (
    parts,
    serial_items,
    stock_levels,
    stock_movements,
    transfer_lines,
    transfers,
)


async def ledger_by_part_and_kind(
    session: AsyncConnection, part_number: str | None
) -> dict[str, dict[str, int]]:
    """Signed quantities summed per part and kind of movement, over all warehouses."""
    c = stock_movements.c
    query = select(c.part_number, c.kind, func.sum(c.quantity)).group_by(c.part_number, c.kind)
    if part_number:
        query = query.where(c.part_number == part_number)
    sums: dict[str, dict[str, int]] = {}
    for part, kind, quantity in await session.execute(query):
        sums.setdefault(part, {})[kind] = int(quantity)
    return sums


async def ledger_value_by_part(
    session: AsyncConnection, part_number: str | None
) -> dict[str, tuple[int, int]]:
    """Per part, the value the ledger brought into the chain and took out of it (both
    positive); transfers only move value inside it, so they are left out."""
    c = stock_movements.c
    value_in = func.sum(case((c.value_fen > 0, c.value_fen), else_=0))
    value_out = func.sum(case((c.value_fen < 0, -c.value_fen), else_=0))
    query = (
        select(c.part_number, value_in, value_out)
        .where(c.kind.not_in(("transfer_out", "transfer_in")))
        .group_by(c.part_number)
    )
    if part_number:
        query = query.where(c.part_number == part_number)
    return {part: (int(i or 0), int(o or 0)) for part, i, o in await session.execute(query)}


async def value_by_part(session: AsyncConnection, part_number: str | None) -> dict[str, int]:
    """What the on-hand is worth per part over all warehouses, from the balances."""
    c = stock_levels.c
    query = select(c.part_number, func.sum(c.value_fen)).group_by(c.part_number)
    if part_number:
        query = query.where(c.part_number == part_number)
    return {part: int(value) for part, value in await session.execute(query)}


async def on_hand_by_part(session: AsyncConnection, part_number: str | None) -> dict[str, int]:
    """On-hand per part over all warehouses, from the balances."""
    c = stock_levels.c
    query = select(c.part_number, func.sum(c.on_hand)).group_by(c.part_number)
    if part_number:
        query = query.where(c.part_number == part_number)
    return {part: int(quantity) for part, quantity in await session.execute(query)}


async def in_transit_by_part(session: AsyncConnection, part_number: str | None) -> dict[str, int]:
    """Units shipped and not yet received, per part."""
    c = transfer_lines.c
    query = (
        select(c.part_number, func.sum(c.quantity))
        .join(transfers, transfers.c.id == c.transfer_id)
        .where(transfers.c.status == "shipped")
        .group_by(c.part_number)
    )
    if part_number:
        query = query.where(c.part_number == part_number)
    return {part: int(quantity) for part, quantity in await session.execute(query)}


async def in_transit_value_by_part(
    session: AsyncConnection, part_number: str | None
) -> dict[str, int]:
    """What the units shipped and not yet received took from their senders, per part."""
    c = transfer_lines.c
    query = (
        select(c.part_number, func.sum(c.value_fen))
        .join(transfers, transfers.c.id == c.transfer_id)
        .where(transfers.c.status == "shipped")
        .group_by(c.part_number)
    )
    if part_number:
        query = query.where(c.part_number == part_number)
    return {part: int(value) for part, value in await session.execute(query)}


async def warehouses_off(session: AsyncConnection, part_number: str | None) -> dict[str, list[str]]:
    """Per part, the warehouses whose ledger summed does not equal their on-hand, or whose
    ledger's value summed does not equal what their on-hand is worth."""
    s, m = stock_levels.c, stock_movements.c
    ledger = (
        select(
            m.warehouse_id,
            m.part_number,
            func.sum(m.quantity).label("total"),
            func.sum(m.value_fen).label("value"),
        )
        .group_by(m.warehouse_id, m.part_number)
        .subquery()
    )
    query = (
        select(s.part_number, s.warehouse_id)
        .outerjoin(
            ledger,
            (ledger.c.warehouse_id == s.warehouse_id) & (ledger.c.part_number == s.part_number),
        )
        .where(
            (func.coalesce(ledger.c.total, 0) != s.on_hand)
            | (func.coalesce(ledger.c.value, 0) != s.value_fen)
        )
        .order_by(s.part_number, s.warehouse_id)
    )
    if part_number:
        query = query.where(s.part_number == part_number)
    off: dict[str, list[str]] = {}
    for part, warehouse_id in await session.execute(query):
        off.setdefault(part, []).append(warehouse_id)
    return off


async def serials_off(session: AsyncConnection, part_number: str | None) -> dict[str, list[str]]:
    """Per serialised part, where its serials disagree with the balances: the warehouses
    whose serials in stock (or held) are not their on-hand (or reserved), and "in transit"
    when the serials on their way are not the units shipped."""
    s, i, p = stock_levels.c, serial_items.c, parts.c
    counted = (
        select(
            i.warehouse_id,
            i.part_number,
            func.count().label("in_stock"),
            func.count(i.order_id).label("held"),
        )
        .where(i.state == "in_stock")
        .group_by(i.warehouse_id, i.part_number)
        .subquery()
    )
    query = (
        select(s.part_number, s.warehouse_id)
        .join(parts, p.part_number == s.part_number)
        .outerjoin(
            counted,
            (counted.c.warehouse_id == s.warehouse_id) & (counted.c.part_number == s.part_number),
        )
        .where(
            p.serialised.is_(True),
            (func.coalesce(counted.c.in_stock, 0) != s.on_hand)
            | (func.coalesce(counted.c.held, 0) != s.reserved),
        )
        .order_by(s.part_number, s.warehouse_id)
    )
    if part_number:
        query = query.where(s.part_number == part_number)
    off: dict[str, list[str]] = {}
    for part, warehouse_id in await session.execute(query):
        off.setdefault(part, []).append(warehouse_id)
    # Serials in stock where no balance row is, or in transit other than the units shipped.
    strays = select(i.part_number).where(
        i.state == "in_stock",
        ~select(s.warehouse_id)
        .where(s.warehouse_id == i.warehouse_id, s.part_number == i.part_number)
        .exists(),
    )
    if part_number:
        strays = strays.where(i.part_number == part_number)
    for (part,) in await session.execute(strays.distinct()):
        off.setdefault(part, []).append("no balance")
    transit_query = (
        select(i.part_number, func.count()).where(i.state == "in_transit").group_by(i.part_number)
    )
    if part_number:
        transit_query = transit_query.where(i.part_number == part_number)
    serials_moving = {part: int(n) for part, n in await session.execute(transit_query)}
    serialised = set(await session.scalars(select(p.part_number).where(p.serialised.is_(True))))
    shipped = {
        part: n
        for part, n in (await in_transit_by_part(session, part_number)).items()
        if part in serialised
    }
    for part in sorted(set(serials_moving) | set(shipped)):
        if serials_moving.get(part, 0) != shipped.get(part, 0):
            off.setdefault(part, []).append("in transit")
    return off
