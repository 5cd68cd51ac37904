"""Reading and writing the catalog, warehouses, stock levels and the ledger. SQL lives here;
rules live in domain/."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, case, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import upsert
from servicekit.timeutil import as_utc
from services.inventory.adapters.orm import (
    old_part_batch_lines,
    old_part_batches,
    order_part_lines,
    part_models,
    parts,
    purchase_order_lines,
    purchase_orders,
    quotas,
    reorder_levels,
    serial_items,
    stock_levels,
    stock_movements,
    stocktake_lines,
    stocktake_serials,
    stocktakes,
    transfer_approvals,
    transfer_lines,
    transfer_serials,
    transfers,
    warehouses,
)
from services.inventory.domain.catalog import Part
from services.inventory.domain.old_parts import OldPartLine
from services.inventory.domain.order_parts import OrderPartLine
from services.inventory.domain.purchasing import PurchaseLine, PurchaseOrder, ReorderLevel
from services.inventory.domain.quota import QuotaUse
from services.inventory.domain.serials import SerialItem
from services.inventory.domain.stock import OUTBOUND_KINDS, Movement, StockLevel
from services.inventory.domain.stocktake import Stocktake, StocktakeLine
from services.inventory.domain.transfer import Transfer, TransferLine
from services.inventory.domain.warehouse import Warehouse

LevelKey = tuple[str, str]  # (warehouse_id, part_number)


@dataclass(frozen=True)
class PartFilter:
    brand: str | None = None
    category: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class StockRow:
    level: StockLevel
    description: str


async def add_parts(session: AsyncConnection, catalog: Collection[Part]) -> None:
    await session.execute(
        parts.insert(),
        [
            {
                "part_number": p.part_number,
                "brand": p.brand,
                "description": p.description,
                "category": p.category,
                "serialised": p.serialised,
                "standard_cost_fen": p.standard_cost_fen,
                "retail_price_fen": p.retail_price_fen,
                "superseded_by": p.superseded_by,
            }
            for p in catalog
        ],
    )
    fits = [
        {"part_number": p.part_number, "model_code": model}
        for p in catalog
        for model in p.compatible_models
    ]
    if fits:
        await session.execute(part_models.insert(), fits)


async def list_parts(
    session: AsyncConnection, where: PartFilter, limit: int, after: str | None
) -> list[Part]:
    """By part number, keyset-paged: the page starts after the part number `after`."""
    c = parts.c
    conditions = []
    if where.brand:
        conditions.append(c.brand == where.brand)
    if where.category:
        conditions.append(c.category == where.category)
    if where.model:
        conditions.append(
            c.part_number.in_(
                select(part_models.c.part_number).where(part_models.c.model_code == where.model)
            )
        )
    if after:
        conditions.append(c.part_number > after)
    rows = (
        await session.execute(select(parts).where(*conditions).order_by(c.part_number).limit(limit))
    ).all()
    fits: dict[str, list[str]] = {}
    if rows:
        fit_rows = await session.execute(
            select(part_models.c.part_number, part_models.c.model_code)
            .where(part_models.c.part_number.in_([r.part_number for r in rows]))
            .order_by(part_models.c.part_number, part_models.c.model_code)
        )
        for part_number, model_code in fit_rows:
            fits.setdefault(part_number, []).append(model_code)
    return [_part_from_row(r, fits.get(r.part_number, [])) for r in rows]


def _part_from_row(row: Row[tuple[object, ...]], models: list[str]) -> Part:
    m = row._mapping
    return Part(
        part_number=m["part_number"],
        brand=m["brand"],
        description=m["description"],
        category=m["category"],
        serialised=m["serialised"],
        standard_cost_fen=m["standard_cost_fen"],
        retail_price_fen=m["retail_price_fen"],
        compatible_models=tuple(models),
        superseded_by=m["superseded_by"],
    )


async def get_part(session: AsyncConnection, part_number: str) -> Part | None:
    row = (await session.execute(select(parts).where(parts.c.part_number == part_number))).first()
    if row is None:
        return None
    models = await session.scalars(
        select(part_models.c.model_code)
        .where(part_models.c.part_number == part_number)
        .order_by(part_models.c.model_code)
    )
    return _part_from_row(row, list(models))


async def serialised_flags(
    session: AsyncConnection, part_numbers: Iterable[str]
) -> dict[str, bool]:
    """Whether each known part is serialised; unknown part numbers are left out."""
    rows = await session.execute(
        select(parts.c.part_number, parts.c.serialised).where(
            parts.c.part_number.in_(list(part_numbers))
        )
    )
    return {part_number: serialised for part_number, serialised in rows}


async def part_description(session: AsyncConnection, part_number: str) -> str | None:
    found: str | None = await session.scalar(
        select(parts.c.description).where(parts.c.part_number == part_number)
    )
    return found


async def add_warehouses(session: AsyncConnection, new: Collection[Warehouse]) -> None:
    await session.execute(
        warehouses.insert(),
        [
            {
                "id": w.id,
                "name": w.name,
                "kind": w.kind,
                "branch_id": w.branch_id,
                "store_id": w.store_id,
                "franchised": w.franchised,
            }
            for w in new
        ],
    )


def _warehouse_from_row(row: Row[tuple[object, ...]]) -> Warehouse:
    m = row._mapping
    return Warehouse(m["id"], m["name"], m["kind"], m["branch_id"], m["store_id"], m["franchised"])


async def list_warehouses(
    session: AsyncConnection, branch_id: str | None, store_id: str | None
) -> list[Warehouse]:
    """Warehouses of a branch (its central and its stores') or of one store; all when neither
    is given. Central warehouses come first in each branch."""
    c = warehouses.c
    conditions = []
    if branch_id:
        conditions.append(c.branch_id == branch_id)
    if store_id:
        conditions.append(c.store_id == store_id)
    rows = await session.execute(
        select(warehouses).where(*conditions).order_by(c.branch_id, c.kind, c.id)
    )
    return [_warehouse_from_row(row) for row in rows]


async def get_warehouse(session: AsyncConnection, warehouse_id: str) -> Warehouse | None:
    row = (await session.execute(select(warehouses).where(warehouses.c.id == warehouse_id))).first()
    return _warehouse_from_row(row) if row else None


async def central_warehouse(session: AsyncConnection, branch_id: str) -> Warehouse | None:
    """The branch's central warehouse (中心库), if it has one."""
    c = warehouses.c
    row = (
        await session.execute(
            select(warehouses).where(c.branch_id == branch_id, c.kind == "branch_central")
        )
    ).first()
    return _warehouse_from_row(row) if row else None


def _level_from_row(row: Row[tuple[object, ...]]) -> StockLevel:
    m = row._mapping
    return StockLevel(
        warehouse_id=m["warehouse_id"],
        part_number=m["part_number"],
        on_hand=m["on_hand"],
        reserved=m["reserved"],
        average_cost_fen=m["average_cost_fen"],
        value_fen=m["value_fen"],
    )


async def stock_in(
    session: AsyncConnection, warehouse_id: str, part_number: str | None
) -> list[StockRow]:
    c = stock_levels.c
    conditions = [c.warehouse_id == warehouse_id]
    if part_number:
        conditions.append(c.part_number == part_number)
    rows = await session.execute(
        select(stock_levels, parts.c.description)
        .join(parts, parts.c.part_number == c.part_number)
        .where(*conditions)
        .order_by(c.part_number)
    )
    return [StockRow(_level_from_row(row), row.description) for row in rows]


async def lock_levels(
    session: AsyncConnection, keys: Collection[LevelKey]
) -> dict[LevelKey, StockLevel]:
    """The levels about to change, locked until the transaction ends; a part never stocked in
    a warehouse gets an empty level first, so there is always a row to lock."""
    ordered = sorted(keys)  # one lock order for everyone: no deadlocks between postings
    await session.execute(
        upsert(session, stock_levels).on_conflict_do_nothing(
            index_elements=["warehouse_id", "part_number"]
        ),
        [
            {
                "warehouse_id": warehouse_id,
                "part_number": part_number,
                "on_hand": 0,
                "reserved": 0,
                "average_cost_fen": 0,
                "value_fen": 0,
            }
            for warehouse_id, part_number in ordered
        ],
    )
    c = stock_levels.c
    rows = await session.execute(
        select(stock_levels)
        .where(tuple_(c.warehouse_id, c.part_number).in_(ordered))
        .order_by(c.warehouse_id, c.part_number)
        .with_for_update()
    )
    return {(row.warehouse_id, row.part_number): _level_from_row(row) for row in rows}


async def save_levels(session: AsyncConnection, levels: Collection[StockLevel]) -> None:
    c = stock_levels.c
    await session.execute(
        update(stock_levels)
        .where(
            c.warehouse_id == bindparam("key_warehouse_id"),
            c.part_number == bindparam("key_part_number"),
        )
        .values(
            on_hand=bindparam("new_on_hand"),
            reserved=bindparam("new_reserved"),
            average_cost_fen=bindparam("new_average_cost_fen"),
            value_fen=bindparam("new_value_fen"),
        ),
        [
            {
                "key_warehouse_id": level.warehouse_id,
                "key_part_number": level.part_number,
                "new_on_hand": level.on_hand,
                "new_reserved": level.reserved,
                "new_average_cost_fen": level.average_cost_fen,
                "new_value_fen": level.value_fen,
            }
            for level in levels
        ],
    )


async def add_movements(session: AsyncConnection, movements: Collection[Movement]) -> list[int]:
    """Append to the ledger; the new rows' ids, in the order given."""
    if not movements:
        return []
    rows = await session.execute(
        stock_movements.insert().returning(stock_movements.c.id, sort_by_parameter_order=True),
        [
            {
                "warehouse_id": m.warehouse_id,
                "part_number": m.part_number,
                "kind": m.kind,
                "quantity": m.quantity,
                "unit_cost_fen": m.unit_cost_fen,
                "value_fen": m.value_fen,
                "document_type": m.document_type,
                "document_id": m.document_id,
                "occurred_at": m.occurred_at,
                "user_id": m.user_id,
                "serial_number": m.serial_number,
            }
            for m in movements
        ],
    )
    return [row.id for row in rows]


@dataclass(frozen=True)
class LedgerRow:
    id: int
    movement: Movement


async def list_movements(
    session: AsyncConnection,
    warehouse_id: str,
    part_number: str | None,
    limit: int,
    before_id: int | None,
) -> list[LedgerRow]:
    """A warehouse's ledger, newest first, keyset-paged: the page starts before `before_id`."""
    c = stock_movements.c
    conditions = [c.warehouse_id == warehouse_id]
    if part_number:
        conditions.append(c.part_number == part_number)
    if before_id is not None:
        conditions.append(c.id < before_id)
    rows = await session.execute(
        select(stock_movements).where(*conditions).order_by(c.id.desc()).limit(limit)
    )
    return [_ledger_row(row) for row in rows]


def _ledger_row(row: Row[tuple[object, ...]]) -> LedgerRow:
    return LedgerRow(
        row.id,
        Movement(
            warehouse_id=row.warehouse_id,
            part_number=row.part_number,
            kind=row.kind,
            quantity=row.quantity,
            unit_cost_fen=row.unit_cost_fen,
            document_type=row.document_type,
            document_id=row.document_id,
            occurred_at=as_utc(row.occurred_at),
            user_id=row.user_id,
            serial_number=row.serial_number,
            value_fen=row.value_fen,
        ),
    )


async def get_movement(session: AsyncConnection, movement_id: int) -> LedgerRow | None:
    row = (
        await session.execute(select(stock_movements).where(stock_movements.c.id == movement_id))
    ).first()
    return None if row is None else _ledger_row(row)


async def movements_like(session: AsyncConnection, first: int, last: int) -> list[LedgerRow]:
    """The rows from `first` to `last` of the first one's warehouse, part and document."""
    head = await get_movement(session, first)
    if head is None:
        return []
    c, m = stock_movements.c, head.movement
    rows = await session.execute(
        select(stock_movements)
        .where(
            c.id.between(first, last),
            c.warehouse_id == m.warehouse_id,
            c.part_number == m.part_number,
            c.document_type == m.document_type,
            c.document_id == m.document_id,
        )
        .order_by(c.id)
    )
    return [_ledger_row(row) for row in rows]


async def movements_of(session: AsyncConnection, movement_ids: Collection[int]) -> list[LedgerRow]:
    """Ledger rows by id, in id order."""
    rows = await session.execute(
        select(stock_movements)
        .where(stock_movements.c.id.in_(list(movement_ids)))
        .order_by(stock_movements.c.id)
    )
    return [_ledger_row(row) for row in rows]


async def retail_prices(session: AsyncConnection, part_numbers: Iterable[str]) -> dict[str, int]:
    """The retail price of each known part; unknown part numbers are left out."""
    rows = await session.execute(
        select(parts.c.part_number, parts.c.retail_price_fen).where(
            parts.c.part_number.in_(list(part_numbers))
        )
    )
    return {part_number: price for part_number, price in rows}


async def inbound_cost(session: AsyncConnection, warehouse_id: str, part_number: str) -> int | None:
    """What found stock is valued at: the warehouse's average cost of the part, or its standard
    cost when the warehouse has none. None for an unknown part."""
    average = await session.scalar(
        select(stock_levels.c.average_cost_fen).where(
            stock_levels.c.warehouse_id == warehouse_id,
            stock_levels.c.part_number == part_number,
            stock_levels.c.on_hand > 0,
        )
    )
    if average is not None:
        return int(average)
    standard = await session.scalar(
        select(parts.c.standard_cost_fen).where(parts.c.part_number == part_number)
    )
    return None if standard is None else int(standard)


def _line_from_row(row: Row[tuple[object, ...]]) -> OrderPartLine:
    m = row._mapping
    return OrderPartLine(
        order_id=m["order_id"],
        line_id=m["line_id"],
        warehouse_id=m["warehouse_id"],
        part_number=m["part_number"],
        quantity=m["quantity"],
        warranty=m["warranty"],
        retail_price_fen=m["retail_price_fen"],
        reserved=m["reserved"],
        short=m["short"],
        issued=m["issued"],
        returned=m["returned"],
        status=m["status"],
        unit_cost_fen=m["unit_cost_fen"],
        issued_at=_when(m["issued_at"]),
        old_returned=m["old_returned"],
    )


async def order_lines(
    session: AsyncConnection, order_id: str, *, lock: bool = False
) -> list[OrderPartLine]:
    """An order's part lines by line id; locked until the transaction ends when asked (always
    after the stock levels they touch: one lock order for everyone)."""
    c = order_part_lines.c
    query = select(order_part_lines).where(c.order_id == order_id).order_by(c.line_id)
    if lock:
        query = query.with_for_update()
    return [_line_from_row(row) for row in await session.execute(query)]


def _line_values(line: OrderPartLine, now: datetime) -> dict[str, object]:
    return {
        "warehouse_id": line.warehouse_id,
        "part_number": line.part_number,
        "quantity": line.quantity,
        "warranty": line.warranty,
        "retail_price_fen": line.retail_price_fen,
        "reserved": line.reserved,
        "short": line.short,
        "issued": line.issued,
        "returned": line.returned,
        "status": line.status,
        "unit_cost_fen": line.unit_cost_fen,
        "issued_at": line.issued_at,
        "old_returned": line.old_returned,
        "updated_at": now,
    }


async def add_lines(
    session: AsyncConnection, lines: Collection[OrderPartLine], now: datetime
) -> None:
    if not lines:
        return
    await session.execute(
        order_part_lines.insert(),
        [{"order_id": x.order_id, "line_id": x.line_id, **_line_values(x, now)} for x in lines],
    )


async def save_lines(
    session: AsyncConnection, lines: Collection[OrderPartLine], now: datetime
) -> None:
    c = order_part_lines.c
    for line in lines:
        await session.execute(
            update(order_part_lines)
            .where(c.order_id == line.order_id, c.line_id == line.line_id)
            .values(**_line_values(line, now))
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


def _when(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


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
        shipped_at=_when(m["shipped_at"]),
        received_at=_when(m["received_at"]),
        cancelled_at=_when(m["cancelled_at"]),
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


async def set_quota(
    session: AsyncConnection, warehouse_id: str, quota_fen: int, user_id: str, at: datetime
) -> None:
    await session.execute(
        upsert(session, quotas)
        .values(warehouse_id=warehouse_id, quota_fen=quota_fen, set_by=user_id, set_at=at)
        .on_conflict_do_update(
            index_elements=["warehouse_id"],
            set_={"quota_fen": quota_fen, "set_by": user_id, "set_at": at},
        )
    )


async def quota_use(
    session: AsyncConnection, warehouse_id: str, *, lock: bool = False
) -> QuotaUse | None:
    """The quota of a warehouse and what uses it, or None when it has no quota. Locked when
    asked, so two movements into the store are checked one after the other."""
    query = select(quotas.c.quota_fen).where(quotas.c.warehouse_id == warehouse_id)
    if lock:
        query = query.with_for_update()
    quota = await session.scalar(query)
    if quota is None:
        return None
    held = await held_value(session, warehouse_id)
    t = transfer_lines.c
    in_transit = await session.scalar(
        select(func.coalesce(func.sum(t.value_fen), 0))
        .join(transfers, transfers.c.id == t.transfer_id)
        .where(transfers.c.to_warehouse_id == warehouse_id, transfers.c.status == "shipped")
    )
    o = order_part_lines.c
    owed = await session.scalar(
        select(
            func.coalesce(func.sum((o.issued - o.returned - o.old_returned) * o.unit_cost_fen), 0)
        ).where(o.warehouse_id == warehouse_id, o.warranty.is_(True))
    )
    return QuotaUse(warehouse_id, int(quota), held, int(in_transit or 0), int(owed or 0))


async def held_value(session: AsyncConnection, warehouse_id: str) -> int:
    """What the on-hand is worth, over every part in the warehouse."""
    s = stock_levels.c
    held = await session.scalar(
        select(func.coalesce(func.sum(s.value_fen), 0)).where(s.warehouse_id == warehouse_id)
    )
    return int(held or 0)


async def lines_owing_old_parts(
    session: AsyncConnection, warehouse_id: str, *, lock: bool = False
) -> list[OrderPartLine]:
    """Warranty lines of a warehouse that still owe old parts, oldest issue first; locked
    when asked, so two batches cannot settle the same line twice."""
    o = order_part_lines.c
    query = (
        select(order_part_lines)
        .where(
            o.warehouse_id == warehouse_id,
            o.warranty.is_(True),
            o.issued - o.returned - o.old_returned > 0,
        )
        .order_by(o.issued_at, o.order_id, o.line_id)
    )
    if lock:
        query = query.with_for_update()
    return [_line_from_row(row) for row in await session.execute(query)]


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


@dataclass(frozen=True)
class SlowMoving:
    warehouse_id: str
    part_number: str
    description: str
    on_hand: int
    value_fen: int
    last_outbound_at: datetime | None


async def slow_moving(
    session: AsyncConnection, warehouse_ids: Collection[str], since: datetime, limit: int
) -> list[SlowMoving]:
    """Stock on hand in these warehouses with no outbound movement since `since`, most value
    first."""
    s, m = stock_levels.c, stock_movements.c
    last_out = (
        select(m.warehouse_id, m.part_number, func.max(m.occurred_at).label("last_out"))
        .where(m.kind.in_(OUTBOUND_KINDS), m.warehouse_id.in_(list(warehouse_ids)))
        .group_by(m.warehouse_id, m.part_number)
        .subquery()
    )
    value = s.value_fen.label("value_fen")
    rows = await session.execute(
        select(
            s.warehouse_id,
            s.part_number,
            parts.c.description,
            s.on_hand,
            value,
            last_out.c.last_out,
        )
        .join(parts, parts.c.part_number == s.part_number)
        .outerjoin(
            last_out,
            (last_out.c.warehouse_id == s.warehouse_id) & (last_out.c.part_number == s.part_number),
        )
        .where(
            s.warehouse_id.in_(list(warehouse_ids)),
            s.on_hand > 0,
            (last_out.c.last_out.is_(None)) | (last_out.c.last_out < since),
        )
        .order_by(value.desc(), s.warehouse_id, s.part_number)
        .limit(limit)
    )
    return [SlowMoving(w, p, d, int(q), int(v), _when(last)) for w, p, d, q, v, last in rows]


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
        decided_at=_when(m["decided_at"]),
    )


async def save_stocktake(session: AsyncConnection, doc: Stocktake) -> None:
    await session.execute(
        update(stocktakes)
        .where(stocktakes.c.id == doc.id)
        .values(status=doc.status, decided_by=doc.decided_by, decided_at=doc.decided_at)
    )


async def set_reorder_level(
    session: AsyncConnection, warehouse_id: str, level: ReorderLevel
) -> None:
    values = {
        "min_level": level.min_level,
        "max_level": level.max_level,
        "lead_time_days": level.lead_time_days,
    }
    await session.execute(
        upsert(session, reorder_levels)
        .values(warehouse_id=warehouse_id, part_number=level.part_number, **values)
        .on_conflict_do_update(index_elements=["warehouse_id", "part_number"], set_=values)
    )


@dataclass(frozen=True)
class ReorderPosition:
    """A part with a reorder level in a warehouse, and the figures a suggestion needs."""

    level: ReorderLevel
    available: int
    in_transit: int
    on_order: int
    consumed: int


def _pairs(rows: Iterable[Any]) -> dict[str, int]:
    """Rows of (part number, quantity) as a dictionary."""
    return {str(row[0]): int(row[1]) for row in rows}


async def reorder_positions(
    session: AsyncConnection, warehouse_id: str, since: datetime
) -> list[ReorderPosition]:
    r, s, t, m = reorder_levels.c, stock_levels.c, transfer_lines.c, stock_movements.c
    levels = (
        await session.execute(
            select(reorder_levels).where(r.warehouse_id == warehouse_id).order_by(r.part_number)
        )
    ).all()
    parts_wanted = [x.part_number for x in levels]
    available = _pairs(
        await session.execute(
            select(s.part_number, s.on_hand - s.reserved).where(
                s.warehouse_id == warehouse_id, s.part_number.in_(parts_wanted)
            )
        )
    )
    in_transit = _pairs(
        await session.execute(
            select(t.part_number, func.sum(t.quantity))
            .join(transfers, transfers.c.id == t.transfer_id)
            .where(transfers.c.to_warehouse_id == warehouse_id, transfers.c.status == "shipped")
            .group_by(t.part_number)
        )
    )
    p = purchase_order_lines.c
    on_order = _pairs(
        await session.execute(
            select(p.part_number, func.sum(p.quantity - p.received))
            .join(purchase_orders, purchase_orders.c.id == p.purchase_order_id)
            .where(
                purchase_orders.c.warehouse_id == warehouse_id,
                purchase_orders.c.status == "open",
            )
            .group_by(p.part_number)
        )
    )
    # Net consumption: issued to orders less returned from them, over the window.
    consumed = _pairs(
        await session.execute(
            select(m.part_number, -func.sum(m.quantity))
            .where(
                m.warehouse_id == warehouse_id,
                m.kind.in_(("issue", "return")),
                m.occurred_at >= since,
            )
            .group_by(m.part_number)
        )
    )
    return [
        ReorderPosition(
            ReorderLevel(x.part_number, x.min_level, x.max_level, x.lead_time_days),
            int(available.get(x.part_number, 0)),
            int(in_transit.get(x.part_number, 0)),
            int(on_order.get(x.part_number, 0)),
            int(consumed.get(x.part_number, 0)),
        )
        for x in levels
    ]


async def add_purchase_order(session: AsyncConnection, order: PurchaseOrder) -> None:
    await session.execute(
        purchase_orders.insert(),
        {
            "id": order.id,
            "warehouse_id": order.warehouse_id,
            "supplier": order.supplier,
            "status": order.status,
            "created_by": order.created_by,
            "created_at": order.created_at,
        },
    )
    await session.execute(
        purchase_order_lines.insert(),
        [
            {
                "purchase_order_id": order.id,
                "part_number": x.part_number,
                "quantity": x.quantity,
                "unit_cost_fen": x.unit_cost_fen,
                "received": x.received,
            }
            for x in order.lines
        ],
    )


async def get_purchase_order(
    session: AsyncConnection, order_id: str, *, lock: bool = False
) -> PurchaseOrder | None:
    query = select(purchase_orders).where(purchase_orders.c.id == order_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        return None
    p = purchase_order_lines.c
    lines = await session.execute(
        select(purchase_order_lines).where(p.purchase_order_id == order_id).order_by(p.part_number)
    )
    m = row._mapping
    return PurchaseOrder(
        id=m["id"],
        warehouse_id=m["warehouse_id"],
        supplier=m["supplier"],
        lines=tuple(
            PurchaseLine(x.part_number, x.quantity, x.unit_cost_fen, x.received) for x in lines
        ),
        created_by=m["created_by"],
        created_at=as_utc(m["created_at"]),
        status=m["status"],
    )


async def save_purchase_order(session: AsyncConnection, order: PurchaseOrder) -> None:
    await session.execute(
        update(purchase_orders).where(purchase_orders.c.id == order.id).values(status=order.status)
    )
    p = purchase_order_lines.c
    for line in order.lines:
        await session.execute(
            update(purchase_order_lines)
            .where(p.purchase_order_id == order.id, p.part_number == line.part_number)
            .values(received=line.received)
        )


async def successors(session: AsyncConnection) -> dict[str, str | None]:
    """Every part number and what supersedes it."""
    rows = await session.execute(select(parts.c.part_number, parts.c.superseded_by))
    return {part_number: superseded_by for part_number, superseded_by in rows}


async def put_part(session: AsyncConnection, part: Part) -> None:
    """Add the part, or change it; its compatible models are replaced."""
    values = {
        "brand": part.brand,
        "description": part.description,
        "category": part.category,
        "serialised": part.serialised,
        "standard_cost_fen": part.standard_cost_fen,
        "retail_price_fen": part.retail_price_fen,
        "superseded_by": part.superseded_by,
    }
    await session.execute(
        upsert(session, parts)
        .values(part_number=part.part_number, **values)
        .on_conflict_do_update(index_elements=["part_number"], set_=values)
    )
    await session.execute(part_models.delete().where(part_models.c.part_number == part.part_number))
    if part.compatible_models:
        await session.execute(
            part_models.insert(),
            [{"part_number": part.part_number, "model_code": m} for m in part.compatible_models],
        )


async def part_is_stocked(session: AsyncConnection, part_number: str) -> bool:
    """Whether the ledger ever moved the part (whatever a warehouse holds came in by it)."""
    moved = await session.scalar(
        select(stock_movements.c.id).where(stock_movements.c.part_number == part_number).limit(1)
    )
    return moved is not None


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


# --- Serialised items (串号) -------------------------------------------------------------------


def _serial_from_row(row: Row[tuple[object, ...]]) -> SerialItem:
    m = row._mapping
    return SerialItem(
        serial_number=m["serial_number"],
        part_number=m["part_number"],
        state=m["state"],
        unit_cost_fen=m["unit_cost_fen"],
        warehouse_id=m["warehouse_id"],
        transfer_id=m["transfer_id"],
        order_id=m["order_id"],
        line_id=m["line_id"],
    )


async def lock_serials(
    session: AsyncConnection, serial_numbers: Collection[str], *, lock: bool = True
) -> dict[str, SerialItem]:
    """The known ones of these serials; locked until the transaction ends unless asked not
    to (after the stock levels they move: one lock order for everyone)."""
    if not serial_numbers:
        return {}
    c = serial_items.c
    query = (
        select(serial_items)
        .where(c.serial_number.in_(sorted(serial_numbers)))
        .order_by(c.serial_number)
    )
    rows = await session.execute(query.with_for_update() if lock else query)
    return {row.serial_number: _serial_from_row(row) for row in rows}


def _serial_values(item: SerialItem, now: datetime) -> dict[str, object]:
    return {
        "part_number": item.part_number,
        "state": item.state,
        "warehouse_id": item.warehouse_id,
        "transfer_id": item.transfer_id,
        "order_id": item.order_id,
        "line_id": item.line_id,
        "unit_cost_fen": item.unit_cost_fen,
        "updated_at": now,
    }


async def add_serials(
    session: AsyncConnection, items: Collection[SerialItem], now: datetime
) -> None:
    """Serials new to the chain. The same serial added at once elsewhere fails the insert
    (the primary key), so it is never in two places."""
    if items:
        await session.execute(
            serial_items.insert(),
            [{"serial_number": x.serial_number, **_serial_values(x, now)} for x in items],
        )


async def save_serials(
    session: AsyncConnection, items: Collection[SerialItem], now: datetime
) -> None:
    c = serial_items.c
    for item in items:
        await session.execute(
            update(serial_items)
            .where(c.serial_number == item.serial_number)
            .values(**_serial_values(item, now))
        )


async def serials_of_lines(
    session: AsyncConnection, order_id: str, *, lock: bool = False
) -> list[SerialItem]:
    """The serials an order's lines hold or consumed, by serial."""
    c = serial_items.c
    query = select(serial_items).where(c.order_id == order_id).order_by(c.serial_number)
    if lock:
        query = query.with_for_update()
    return [_serial_from_row(row) for row in await session.execute(query)]


async def free_serials(
    session: AsyncConnection, warehouse_id: str, part_number: str, limit: int
) -> list[SerialItem]:
    """Serials of the part in stock in the warehouse and held for no order, locked, first by
    serial number. Called under the level's lock, so no one else takes them meanwhile."""
    c = serial_items.c
    rows = await session.execute(
        select(serial_items)
        .where(
            c.warehouse_id == warehouse_id,
            c.part_number == part_number,
            c.state == "in_stock",
            c.order_id.is_(None),
        )
        .order_by(c.serial_number)
        .limit(limit)
        .with_for_update()
    )
    return [_serial_from_row(row) for row in rows]


async def serials_in(
    session: AsyncConnection, warehouse_id: str, part_number: str | None
) -> list[SerialItem]:
    """Serials in stock in a warehouse (held or free), by part and serial."""
    c = serial_items.c
    conditions = [c.warehouse_id == warehouse_id, c.state == "in_stock"]
    if part_number:
        conditions.append(c.part_number == part_number)
    rows = await session.execute(
        select(serial_items).where(*conditions).order_by(c.part_number, c.serial_number)
    )
    return [_serial_from_row(row) for row in rows]


async def get_serial(session: AsyncConnection, serial_number: str) -> SerialItem | None:
    row = (
        await session.execute(
            select(serial_items).where(serial_items.c.serial_number == serial_number)
        )
    ).first()
    return None if row is None else _serial_from_row(row)


async def serial_history(session: AsyncConnection, serial_number: str) -> list[LedgerRow]:
    """Every ledger row of one serial, oldest first."""
    c = stock_movements.c
    rows = await session.execute(
        select(stock_movements).where(c.serial_number == serial_number).order_by(c.id)
    )
    return [_ledger_row(row) for row in rows]


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
