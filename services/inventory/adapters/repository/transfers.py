"""Transfers (调拨) between warehouses: their lines, serials and approvals."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.timeutil import as_utc
from services.inventory.adapters.orm import (
    transfer_approvals,
    transfer_lines,
    transfer_serials,
    transfers,
    warehouses,
)
from services.inventory.adapters.repository.common import utc_or_none
from services.inventory.domain.transfer import Transfer, TransferLine


async def add_transfer(session: AsyncConnection, transfer: Transfer) -> None:
    await session.execute(
        transfers.insert(),
        {
            "id": transfer.id,
            "from_warehouse_id": transfer.from_warehouse_id,
            "to_warehouse_id": transfer.to_warehouse_id,
            "status": transfer.status,
            "note": transfer.note,
            "requested_by": transfer.requested_by,
            "requested_at": transfer.requested_at,
        },
    )
    await session.execute(
        transfer_lines.insert(),
        [
            {
                "transfer_id": transfer.id,
                "part_number": x.part_number,
                "quantity": x.quantity,
                "unit_cost_fen": x.unit_cost_fen,
                "value_fen": x.value_fen,
                "received": x.received,
                "short": x.short,
                "damaged": x.damaged,
            }
            for x in transfer.lines
        ],
    )
    named = [
        {"transfer_id": transfer.id, "serial_number": serial, "part_number": x.part_number}
        for x in transfer.lines
        for serial in x.serials
    ]
    if named:
        await session.execute(transfer_serials.insert(), named)


async def _transfer_serials(
    session: AsyncConnection, transfer_id: str
) -> dict[str, dict[str | None, list[str]]]:
    """A transfer's serials by part: all of them under None, and those short or damaged
    under their outcome."""
    c = transfer_serials.c
    rows = await session.execute(
        select(c.part_number, c.serial_number, c.outcome)
        .where(c.transfer_id == transfer_id)
        .order_by(c.part_number, c.serial_number)
    )
    found: dict[str, dict[str | None, list[str]]] = {}
    for part, serial, outcome in rows:
        by_outcome = found.setdefault(part, {})
        by_outcome.setdefault(None, []).append(serial)
        if outcome in ("short", "damaged"):
            by_outcome.setdefault(outcome, []).append(serial)
    return found


async def get_transfer(
    session: AsyncConnection, transfer_id: str, *, lock: bool = False
) -> Transfer | None:
    """A transfer with its lines and approvals; its row locked until the transaction ends
    when asked (after the stock levels it moves: one lock order for everyone)."""
    t = transfers
    sender, receiver = warehouses.alias("sender"), warehouses.alias("receiver")
    query = (
        select(t, sender.c.branch_id.label("from_branch"), receiver.c.branch_id.label("to_branch"))
        .join(sender, sender.c.id == t.c.from_warehouse_id)
        .join(receiver, receiver.c.id == t.c.to_warehouse_id)
        .where(t.c.id == transfer_id)
    )
    if lock:
        query = query.with_for_update(of=t)
    row = (await session.execute(query)).first()
    if row is None:
        return None
    line_rows = await session.execute(
        select(transfer_lines)
        .where(transfer_lines.c.transfer_id == transfer_id)
        .order_by(transfer_lines.c.part_number)
    )
    serials = await _transfer_serials(session, transfer_id)
    approved = await session.scalars(
        select(transfer_approvals.c.branch_id)
        .where(transfer_approvals.c.transfer_id == transfer_id)
        .order_by(transfer_approvals.c.approved_at, transfer_approvals.c.branch_id)
    )
    m = row._mapping
    return Transfer(
        id=m["id"],
        from_warehouse_id=m["from_warehouse_id"],
        from_branch_id=m["from_branch"],
        to_warehouse_id=m["to_warehouse_id"],
        to_branch_id=m["to_branch"],
        lines=tuple(
            TransferLine(
                part_number=x.part_number,
                quantity=x.quantity,
                unit_cost_fen=x.unit_cost_fen,
                value_fen=x.value_fen,
                received=x.received,
                short=x.short,
                damaged=x.damaged,
                serials=tuple(serials.get(x.part_number, {}).get(None, ())),
                short_serials=tuple(serials.get(x.part_number, {}).get("short", ())),
                damaged_serials=tuple(serials.get(x.part_number, {}).get("damaged", ())),
            )
            for x in line_rows
        ),
        requested_by=m["requested_by"],
        requested_at=as_utc(m["requested_at"]),
        note=m["note"],
        status=m["status"],
        approved_branches=tuple(approved),
        shipped_at=utc_or_none(m["shipped_at"]),
        received_at=utc_or_none(m["received_at"]),
        cancelled_at=utc_or_none(m["cancelled_at"]),
    )


async def save_transfer(session: AsyncConnection, transfer: Transfer) -> None:
    await session.execute(
        update(transfers)
        .where(transfers.c.id == transfer.id)
        .values(
            status=transfer.status,
            shipped_at=transfer.shipped_at,
            received_at=transfer.received_at,
            cancelled_at=transfer.cancelled_at,
        )
    )
    c = transfer_lines.c
    for line in transfer.lines:
        await session.execute(
            update(transfer_lines)
            .where(c.transfer_id == transfer.id, c.part_number == line.part_number)
            .values(
                unit_cost_fen=line.unit_cost_fen,
                value_fen=line.value_fen,
                received=line.received,
                short=line.short,
                damaged=line.damaged,
            )
        )
        if line.serials and transfer.status == "received":
            outcomes = dict.fromkeys(line.serials, "received")
            outcomes |= dict.fromkeys(line.short_serials, "short")
            outcomes |= dict.fromkeys(line.damaged_serials, "damaged")
            t = transfer_serials.c
            await session.execute(
                update(transfer_serials)
                .where(
                    t.transfer_id == transfer.id,
                    t.serial_number == bindparam("key_serial"),
                )
                .values(outcome=bindparam("new_outcome")),
                [{"key_serial": k, "new_outcome": v} for k, v in outcomes.items()],
            )


async def add_approvals(
    session: AsyncConnection,
    transfer_id: str,
    branch_ids: Collection[str],
    user_id: str,
    at: datetime,
) -> None:
    if not branch_ids:
        return
    await session.execute(
        transfer_approvals.insert(),
        [
            {"transfer_id": transfer_id, "branch_id": b, "approved_by": user_id, "approved_at": at}
            for b in branch_ids
        ],
    )
