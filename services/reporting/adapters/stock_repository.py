"""Reading and writing the parts side's read models. Statements are built once per dialect (a
consumer hot path) and take their values as bound parameters; rows of one statement are sent
together (executemany), keys sorted so that concurrent writers lock rows in one order. Where a
handler needs what a row held before, the upsert that changes it returns that (the row keeps
its previous values), so it is one statement, not a read and a write."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import upsert_on
from services.reporting.adapters.stock_tables import (
    stock_order_days,
    stock_order_lines,
    stock_part_days,
    stock_positions,
    stock_reconciliation,
    stock_record_orders,
    stock_store_days,
    stock_waiting_parts,
)
from services.reporting.domain.period import Period
from services.reporting.domain.stock import (
    REPAIR_FINISHED,
    LedgerKey,
    Level,
    LineCounts,
    Movement,
    SlowMovingWindow,
)

Unit = tuple[str, str]  # (branch_id, store_id)


@dataclass(frozen=True)
class Scope:
    """The units a query covers: None is every branch, or every store of the branch."""

    branch_id: str | None
    store_id: str | None

    def where(self, table: Table) -> list[Any]:
        conditions = []
        if self.branch_id:
            conditions.append(table.c.branch_id == self.branch_id)
        if self.store_id:
            conditions.append(table.c.store_id == self.store_id)
        return conditions


def _newer(table: Table, excluded: Any) -> Any:
    """The incoming row is later in the ledger than the stored one (domain.stock.LedgerKey)."""
    return or_(
        table.c.occurred_us < excluded.occurred_us,
        and_(table.c.occurred_us == excluded.occurred_us, table.c.event_id < excluded.event_id),
    )


def _movement_row(warehouse_id: str, part_number: str, unit: Unit, moved: Movement) -> dict:
    return {
        "warehouse_id": warehouse_id,
        "part_number": part_number,
        "branch_id": unit[0],
        "store_id": unit[1],
        "on_hand": moved.on_hand_after,
        "average_cost_fen": moved.average_cost_after_fen,
        "value_fen": moved.value_fen,
        "occurred_us": moved.key.occurred_us,
        "event_id": moved.key.event_id,
    }


@functools.cache
def _advance_position(dialect_name: str) -> Any:
    """Move the part's level forward, returning the value it replaced; nothing when the
    movement is older. On PostgreSQL the row stays locked until commit either way, so one
    part's movements are handled one at a time by concurrent consumers (SQLite takes its write
    lock up front)."""
    statement = upsert_on(dialect_name, stock_positions)
    changing = ("branch_id", "store_id", "on_hand", "average_cost_fen", "value_fen")
    return (
        statement.on_conflict_do_update(
            index_elements=[stock_positions.c.warehouse_id, stock_positions.c.part_number],
            set_={
                **{name: statement.excluded[name] for name in changing},
                "occurred_us": statement.excluded.occurred_us,
                "event_id": statement.excluded.event_id,
                "previous_value_fen": stock_positions.c.value_fen,
            },
            where=_newer(stock_positions, statement.excluded),
        )
    ).returning(stock_positions.c.previous_value_fen)


async def advance_position(
    session: AsyncConnection, warehouse_id: str, part_number: str, unit: Unit, moved: Movement
) -> int | None:
    """The value the part held before when this movement is its latest (0 when new), or None
    when a later movement was applied already."""
    row = await session.execute(
        _advance_position(session.dialect.name),
        {**_movement_row(warehouse_id, part_number, unit, moved), "previous_value_fen": 0},
    )
    found = row.first()
    return None if found is None else int(found.previous_value_fen)


_LEVEL_COLUMNS = ("day", "occurred_us", "event_id", "on_hand", "average_cost_fen")


@functools.cache
def _days_around() -> Any:
    """The part's day rows up to the day (that day and the one before), and its next day."""
    c = stock_part_days.c
    same_part = (c.warehouse_id == bindparam("warehouse_id"), c.part_number == bindparam("part"))
    columns = [c[name] for name in _LEVEL_COLUMNS]
    upto = (
        select(*columns)
        .where(*same_part, c.day <= bindparam("day"))
        .order_by(c.day.desc())
        .limit(2)
        .subquery()
    )
    after = (
        select(*columns)
        .where(*same_part, c.day > bindparam("day"))
        .order_by(c.day)
        .limit(1)
        .subquery()
    )
    return union_all(select(upto), select(after))


async def days_around(
    session: AsyncConnection, warehouse_id: str, part_number: str, day: date
) -> tuple[Level | None, Level | None, date | None]:
    """(the day's closing level, the last earlier day's, the first later day)."""
    rows = await session.execute(
        _days_around(), {"warehouse_id": warehouse_id, "part": part_number, "day": day}
    )
    same_day = before = None
    next_day = None
    for row in rows:
        found = Level(
            row.day, LedgerKey(row.occurred_us, row.event_id), row.on_hand, row.average_cost_fen
        )
        if found.day == day:
            same_day = found
        elif found.day < day:
            before = found
        else:
            next_day = found.day
    return same_day, before, next_day


@functools.cache
def _write_part_day(dialect_name: str) -> Any:
    """The day closes on the latest of its movements; every movement adds its issues."""
    statement = upsert_on(dialect_name, stock_part_days)
    newer = _newer(stock_part_days, statement.excluded)
    closing = ("on_hand", "average_cost_fen", "value_fen", "occurred_us", "event_id")
    return statement.on_conflict_do_update(
        index_elements=list(stock_part_days.primary_key.columns),
        set_={
            **{
                name: case((newer, statement.excluded[name]), else_=stock_part_days.c[name])
                for name in closing
            },
            "issued_quantity": stock_part_days.c.issued_quantity
            + statement.excluded.issued_quantity,
        },
    )


async def write_part_day(
    session: AsyncConnection, warehouse_id: str, part_number: str, unit: Unit, moved: Movement
) -> None:
    await session.execute(
        _write_part_day(session.dialect.name),
        {
            **_movement_row(warehouse_id, part_number, unit, moved),
            "day": moved.day,
            "issued_quantity": moved.issued_quantity,
        },
    )


_STORE_DAY_SUMS = ("value_change_fen", "issued_cost_fen", "returned_cost_fen")


@functools.cache
def _add_store_days(dialect_name: str) -> Any:
    statement = upsert_on(dialect_name, stock_store_days)
    return statement.on_conflict_do_update(
        index_elements=list(stock_store_days.primary_key.columns),
        set_={
            name: stock_store_days.c[name] + statement.excluded[name] for name in _STORE_DAY_SUMS
        },
    )


async def add_store_days(
    session: AsyncConnection, unit: Unit, sums: Mapping[date, tuple[int, int, int]]
) -> None:
    """Add (value change, issued cost, returned cost) to the unit's days, in one statement."""
    if not sums:
        return
    await session.execute(
        _add_store_days(session.dialect.name),
        [
            {
                "day": day,
                "branch_id": unit[0],
                "store_id": unit[1],
                **dict(zip(_STORE_DAY_SUMS, sums[day], strict=True)),
            }
            for day in sorted(sums)
        ],
    )


def _grown(table: Table, excluded: Any, name: str) -> Any:
    """A counter that only grows (domain.stock.line_progress)."""
    return case((excluded[name] > table.c[name], excluded[name]), else_=table.c[name])


@functools.cache
def _advance_order_lines(dialect_name: str) -> Any:
    statement = upsert_on(dialect_name, stock_order_lines)
    return statement.on_conflict_do_update(
        index_elements=[stock_order_lines.c.order_id, stock_order_lines.c.line_id],
        set_={
            "issued": _grown(stock_order_lines, statement.excluded, "issued"),
            "returned": _grown(stock_order_lines, statement.excluded, "returned"),
            "previous_issued": stock_order_lines.c.issued,
            "previous_returned": stock_order_lines.c.returned,
        },
    ).returning(
        stock_order_lines.c.line_id,
        stock_order_lines.c.previous_issued,
        stock_order_lines.c.previous_returned,
    )


async def advance_order_lines(
    session: AsyncConnection, order_id: str, lines: Mapping[str, tuple[str, LineCounts]]
) -> dict[str, LineCounts]:
    """Move the order's lines' counters (line id → part number and counters reported) forward;
    per line, what was stored before (0 for a new line)."""
    rows = await session.execute(
        _advance_order_lines(session.dialect.name),
        [
            {
                "order_id": order_id,
                "line_id": line_id,
                "part_number": part,
                "issued": counts.issued,
                "returned": counts.returned,
                "previous_issued": 0,
                "previous_returned": 0,
            }
            for line_id, (part, counts) in sorted(lines.items())
        ],
    )
    return {row.line_id: LineCounts(row.previous_issued, row.previous_returned) for row in rows}


@functools.cache
def _add_order_day(dialect_name: str) -> Any:
    statement = upsert_on(dialect_name, stock_order_days)
    sums = ("issued_quantity", "issued_cost_fen", "returned_cost_fen")
    return statement.on_conflict_do_update(
        index_elements=list(stock_order_days.primary_key.columns),
        set_={name: stock_order_days.c[name] + statement.excluded[name] for name in sums},
    )


async def add_order_day(
    session: AsyncConnection,
    day: date,
    unit: Unit,
    order_id: str,
    issued_quantity: int,
    issued_cost_fen: int,
    returned_cost_fen: int,
) -> None:
    await session.execute(
        _add_order_day(session.dialect.name),
        {
            "day": day,
            "branch_id": unit[0],
            "store_id": unit[1],
            "order_id": order_id,
            "issued_quantity": issued_quantity,
            "issued_cost_fen": issued_cost_fen,
            "returned_cost_fen": returned_cost_fen,
        },
    )


@functools.cache
def _add_issued(dialect_name: str) -> Any:
    """Add to the quantity of a part issued to an order, net of returns."""
    statement = upsert_on(dialect_name, stock_reconciliation)
    return statement.on_conflict_do_update(
        index_elements=[stock_reconciliation.c.order_id, stock_reconciliation.c.part_number],
        set_={
            "issued_quantity": stock_reconciliation.c.issued_quantity
            + statement.excluded.issued_quantity
        },
    )


async def add_issued(
    session: AsyncConnection, order_id: str, unit: Unit, net_issued: Mapping[str, int]
) -> None:
    await session.execute(
        _add_issued(session.dialect.name),
        [
            {
                "order_id": order_id,
                "part_number": part,
                "branch_id": unit[0],
                "store_id": unit[1],
                "record_quantity": 0,
                "issued_quantity": quantity,
            }
            for part, quantity in sorted(net_issued.items())
        ],
    )


@functools.cache
def _advance_order(dialect_name: str) -> Any:
    """Keep the order's latest step, only forward by version, returning what it replaced."""
    statement = upsert_on(dialect_name, stock_record_orders)
    return statement.on_conflict_do_update(
        index_elements=[stock_record_orders.c.order_id],
        set_={
            **{
                name: statement.excluded[name] for name in ("number", "version", "status", "record")
            },
            "previous_status": stock_record_orders.c.status,
            "previous_record": stock_record_orders.c.record,
        },
        where=stock_record_orders.c.version < statement.excluded.version,
    ).returning(stock_record_orders.c.previous_status, stock_record_orders.c.previous_record)


async def advance_order(
    session: AsyncConnection, order_id: str, number: str, version: int, status: str, record: str
) -> tuple[str, str] | None:
    """The status and record the order had before this step (empty when new), or None when
    this step is not its latest (an older or repeated one)."""
    moved = await session.execute(
        _advance_order(session.dialect.name),
        {
            "order_id": order_id,
            "number": number,
            "version": version,
            "status": status,
            "record": record,
            "previous_status": "",
            "previous_record": "",
        },
    )
    row = moved.first()
    return None if row is None else (row.previous_status, row.previous_record)


@functools.cache
def _set_record(dialect_name: str) -> Any:
    statement = upsert_on(dialect_name, stock_reconciliation)
    return statement.on_conflict_do_update(
        index_elements=[stock_reconciliation.c.order_id, stock_reconciliation.c.part_number],
        set_={
            name: statement.excluded[name] for name in ("record_quantity", "branch_id", "store_id")
        },
    )


@functools.cache
def _clear_record() -> Any:
    c = stock_reconciliation.c
    return (
        update(stock_reconciliation)
        .where(
            c.order_id == bindparam("o_id"),
            c.part_number.in_(bindparam("parts", expanding=True)),
        )
        .values(record_quantity=0)
    )


async def set_record(
    session: AsyncConnection,
    order_id: str,
    quantities: Mapping[str, tuple[Unit, int]],
    dropped: Collection[str],
) -> None:
    """The service record's quantity per part (with the unit whose warehouse issues it); parts
    dropped from the record go to 0."""
    if quantities:
        await session.execute(
            _set_record(session.dialect.name),
            [
                {
                    "order_id": order_id,
                    "part_number": part,
                    "branch_id": unit[0],
                    "store_id": unit[1],
                    "record_quantity": quantity,
                    "issued_quantity": 0,
                }
                for part, (unit, quantity) in sorted(quantities.items())
            ],
        )
    if dropped:
        await session.execute(_clear_record(), {"o_id": order_id, "parts": sorted(dropped)})


@functools.cache
def _forget_waiting() -> Any:
    return delete(stock_waiting_parts).where(stock_waiting_parts.c.order_id == bindparam("o_id"))


async def forget_waiting_parts(session: AsyncConnection, order_id: str) -> None:
    await session.execute(_forget_waiting(), {"o_id": order_id})


async def add_waiting_parts(
    session: AsyncConnection, order_id: str, unit: Unit, short: Mapping[str, int]
) -> None:
    """What the order waiting for parts is short of."""
    await session.execute(
        stock_waiting_parts.insert(),
        [
            {
                "order_id": order_id,
                "part_number": part,
                "branch_id": unit[0],
                "store_id": unit[1],
                "quantity": quantity,
            }
            for part, quantity in sorted(short.items())
        ],
    )


# Reading the figures.


@dataclass(frozen=True)
class StoreDays:
    """A period's store-day sums: the value before it, each day's change, and consumption."""

    opening: dict[Unit, int]
    changes: dict[Unit, dict[date, int]]
    issued_cost: dict[Unit, int]
    returned_cost: dict[Unit, int]


async def store_days(session: AsyncConnection, scope: Scope, period: Period) -> StoreDays:
    c = stock_store_days.c
    conditions = scope.where(stock_store_days)
    opening_rows = await session.execute(
        select(c.branch_id, c.store_id, func.sum(c.value_change_fen))
        .where(*conditions, c.day < period.first)
        .group_by(c.branch_id, c.store_id)
    )
    days = StoreDays({(b, s): int(v) for b, s, v in opening_rows}, {}, {}, {})
    rows = await session.execute(
        select(
            c.branch_id,
            c.store_id,
            c.day,
            func.sum(c.value_change_fen),
            func.sum(c.issued_cost_fen),
            func.sum(c.returned_cost_fen),
        )
        .where(*conditions, c.day >= period.first, c.day <= period.last)
        .group_by(c.branch_id, c.store_id, c.day)
    )
    for branch, store, day, change, issued, returned in rows:
        unit = (branch, store)
        days.changes.setdefault(unit, {})[day] = int(change)
        days.issued_cost[unit] = days.issued_cost.get(unit, 0) + int(issued)
        days.returned_cost[unit] = days.returned_cost.get(unit, 0) + int(returned)
    return days


async def slow_moving_values(
    session: AsyncConnection, scope: Scope, window: SlowMovingWindow
) -> dict[Unit, int]:
    """Per unit, the value as of the day of the parts quiet over the window (see its figure):
    each part's last day row up to the day, for parts held long enough and not issued since."""
    d = stock_part_days.c
    recent_issues = func.sum(case((d.day > window.quiet_after, d.issued_quantity), else_=0))
    last = (
        select(d.warehouse_id, d.part_number, func.max(d.day).label("day"))
        .where(*scope.where(stock_part_days), d.day <= window.day)
        .group_by(d.warehouse_id, d.part_number)
        .having(func.min(d.day) <= window.held_since, recent_issues == 0)
        .subquery()
    )
    rows = await session.execute(
        select(d.branch_id, d.store_id, func.sum(d.value_fen))
        .join_from(
            stock_part_days,
            last,
            and_(
                d.warehouse_id == last.c.warehouse_id,
                d.part_number == last.c.part_number,
                d.day == last.c.day,
            ),
        )
        .where(d.on_hand > 0)
        .group_by(d.branch_id, d.store_id)
    )
    return {(b, s): int(v) for b, s, v in rows}


@dataclass(frozen=True)
class PartsCost:
    cost: dict[Unit, int]
    orders: dict[Unit, int]
    orders_in_scope: int


async def parts_cost(session: AsyncConnection, scope: Scope, period: Period) -> PartsCost:
    c = stock_order_days.c
    conditions = [*scope.where(stock_order_days), c.day >= period.first, c.day <= period.last]
    issuing = func.count(func.distinct(case((c.issued_quantity > 0, c.order_id))))
    rows = await session.execute(
        select(
            c.branch_id,
            c.store_id,
            func.sum(c.issued_cost_fen - c.returned_cost_fen),
            issuing,
        )
        .where(*conditions)
        .group_by(c.branch_id, c.store_id)
    )
    cost, orders = {}, {}
    for branch, store, net, count in rows:
        cost[(branch, store)] = int(net)
        orders[(branch, store)] = int(count)
    total = await session.scalar(select(issuing).where(*conditions))
    return PartsCost(cost, orders, int(total or 0))


@dataclass(frozen=True)
class WaitingRow:
    part_number: str
    orders: int
    quantity: int


async def waiting_parts(session: AsyncConnection, scope: Scope, limit: int) -> list[WaitingRow]:
    c = stock_waiting_parts.c
    orders = func.count(func.distinct(c.order_id))
    rows = await session.execute(
        select(c.part_number, orders, func.sum(c.quantity))
        .where(*scope.where(stock_waiting_parts))
        .group_by(c.part_number)
        .order_by(orders.desc(), c.part_number)
        .limit(limit)
    )
    return [WaitingRow(part, int(n), int(q)) for part, n, q in rows]


@dataclass(frozen=True)
class ReconciliationRow:
    order_id: str
    order_number: str
    part_number: str
    branch_id: str
    store_id: str
    record_quantity: int
    issued_quantity: int
    repair_finished: bool
    record_known: bool


async def disagreements(
    session: AsyncConnection, scope: Scope, after: Sequence[str] | None, limit: int
) -> list[ReconciliationRow]:
    """Order parts whose record and issues may disagree (domain.stock.mismatch_kind decides),
    by order id then part, after the key `after`."""
    r = stock_reconciliation.c
    o = stock_record_orders.c
    finished = func.coalesce(o.status, "").in_(sorted(REPAIR_FINISHED))
    conditions = [
        *scope.where(stock_reconciliation),
        or_(
            and_(r.record_quantity <= 0, r.issued_quantity > 0, o.order_id.is_not(None)),
            and_(finished, r.record_quantity > 0, r.record_quantity != r.issued_quantity),
        ),
    ]
    if after:
        order_id, part = after
        conditions.append(
            or_(r.order_id > order_id, and_(r.order_id == order_id, r.part_number > part))
        )
    rows = await session.execute(
        select(
            r.order_id,
            func.coalesce(o.number, ""),
            r.part_number,
            r.branch_id,
            r.store_id,
            r.record_quantity,
            r.issued_quantity,
            finished,
            o.order_id.is_not(None),
        )
        .outerjoin_from(stock_reconciliation, stock_record_orders, o.order_id == r.order_id)
        .where(*conditions)
        .order_by(r.order_id, r.part_number)
        .limit(limit)
    )
    return [
        ReconciliationRow(
            order_id, number, part, branch, store, record, issued, bool(finished), bool(known)
        )
        for order_id, number, part, branch, store, record, issued, finished, known in rows
    ]
