"""Reading and writing the parts side's read models. Statements are built once per dialect (a
consumer hot path) and take their values as bound parameters; rows of one statement are sent
together (executemany), keys sorted so that concurrent writers lock rows in one order. Where a
handler needs what a row held before, the upsert that changes it returns that (the row keeps
its previous values), so it is one statement, not a read and a write."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import upsert_on
from services.reporting.adapters.stock_tables import (
    stock_issue_pairs,
    stock_order_days,
    stock_order_lines,
    stock_part_days,
    stock_positions,
    stock_reconciliation,
    stock_record_orders,
    stock_rollups,
    stock_waiting_parts,
    stock_waiting_rollups,
)
from services.reporting.domain.period import Period, split
from services.reporting.domain.stock import (
    ALL,
    DAY,
    EVER,
    MONTH,
    REPAIR_FINISHED,
    ROLLUP_SUMS,
    SLOW_MOVING_DAYS,
    LedgerKey,
    Level,
    LineCounts,
    Movement,
    PartDay,
    Rollups,
    Unit,
    month_of,
)


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
    c = stock_waiting_parts.c
    return (
        delete(stock_waiting_parts)
        .where(c.order_id == bindparam("o_id"))
        .returning(c.part_number, c.branch_id, c.store_id, c.quantity)
    )


async def forget_waiting_parts(
    session: AsyncConnection, order_id: str
) -> list[tuple[str, Unit, int]]:
    """What the order was short of, each (part, unit, quantity), no longer."""
    rows = await session.execute(_forget_waiting(), {"o_id": order_id})
    return [(row.part_number, (row.branch_id, row.store_id), row.quantity) for row in rows]


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


@functools.cache
def _part_days() -> Any:
    """A part's day rows from a day on, the last one before it, and its first day."""
    c = stock_part_days.c
    same_part = (c.warehouse_id == bindparam("warehouse_id"), c.part_number == bindparam("part"))
    columns = (c.day, c.value_fen, c.issued_quantity > 0)
    from_day = select(literal("r").label("kind"), *columns).where(
        *same_part, c.day >= bindparam("day")
    )
    before = (
        select(literal("r").label("kind"), *columns)
        .where(*same_part, c.day < bindparam("day"))
        .order_by(c.day.desc())
        .limit(1)
        .subquery()
    )
    first = select(literal("f").label("kind"), func.min(c.day), literal(0), literal(False)).where(
        *same_part
    )
    return union_all(from_day, select(before), first)


async def part_days(
    session: AsyncConnection, warehouse_id: str, part_number: str, day: date
) -> tuple[list[PartDay], date | None]:
    """What a change from `day` on needs to know of the part's slow-moving value
    (domain.stock.slow_changes): its rows from SLOW_MOVING_DAYS before the day on and the last
    one before those, by day, and its first day (None for a part never moved)."""
    rows = await session.execute(
        _part_days(),
        {
            "warehouse_id": warehouse_id,
            "part": part_number,
            "day": day - timedelta(days=SLOW_MOVING_DAYS),
        },
    )
    days, first = [], None
    for kind, found, value, issued in rows:
        if kind == "f":
            first = found
        else:
            days.append(PartDay(found, int(value), bool(issued)))
    return sorted(days, key=lambda row: row.day), first


@functools.cache
def _issue_days() -> Any:
    c = stock_order_days.c
    return select(c.branch_id, c.store_id, c.day).where(
        c.order_id == bindparam("o_id"), c.issued_quantity > 0
    )


async def issue_days(session: AsyncConnection, order_id: str) -> set[tuple[Unit, date]]:
    """The units and days that issued parts to the order."""
    rows = await session.execute(_issue_days(), {"o_id": order_id})
    return {((row.branch_id, row.store_id), row.day) for row in rows}


def _adding(dialect_name: str, table: Table, names: Sequence[str]) -> Any:
    statement = upsert_on(dialect_name, table)
    return statement.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={name: table.c[name] + statement.excluded[name] for name in names},
    )


@functools.cache
def _add_rollups(dialect_name: str) -> Any:
    return _adding(dialect_name, stock_rollups, ROLLUP_SUMS)


async def add_rollups(session: AsyncConnection, rollups: Rollups) -> None:
    """Add changes to the rollups in one statement, rows in key order (lock order)."""
    rows = [
        {
            "branch_id": branch,
            "store_id": store,
            "grain": grain,
            "day": day,
            **{name: sums.get(name, 0) for name in ROLLUP_SUMS},
        }
        for (branch, store, grain, day), sums in sorted(rollups.items())
        if any(sums.values())
    ]
    if rows:
        await session.execute(_add_rollups(session.dialect.name), rows)


@functools.cache
def _add_issue_pairs(dialect_name: str) -> Any:
    return _adding(dialect_name, stock_issue_pairs, ("orders",))


async def add_issue_pairs(
    session: AsyncConnection, pairs: Mapping[tuple[str, str, date, date], int]
) -> None:
    """Add to the orders of each (branch, store, day, earlier day)."""
    rows = [
        {"branch_id": b, "store_id": s, "day": day, "earlier_day": earlier, "orders": n}
        for (b, s, day, earlier), n in sorted(pairs.items())
        if n
    ]
    if rows:
        await session.execute(_add_issue_pairs(session.dialect.name), rows)


@functools.cache
def _add_waiting_rollups(dialect_name: str) -> Any:
    return _adding(dialect_name, stock_waiting_rollups, ("orders", "quantity"))


async def add_waiting_rollups(
    session: AsyncConnection, changes: Mapping[tuple[str, str, str], tuple[int, int]]
) -> None:
    """Add (orders, quantity) to each (branch, store, part)."""
    rows = [
        {"branch_id": b, "store_id": s, "part_number": part, "orders": n, "quantity": q}
        for (b, s, part), (n, q) in sorted(changes.items())
        if n or q
    ]
    if rows:
        await session.execute(_add_waiting_rollups(session.dialect.name), rows)


# Reading the figures: from the rollups only.


def own_unit(table: Table, scope: Scope) -> list[Any]:
    """The rows of the scope's own unit: the chain's, a branch's, or a store's."""
    c = table.c
    if scope.store_id:
        branch = c.branch_id == scope.branch_id if scope.branch_id else c.branch_id != ALL
        return [branch, c.store_id == scope.store_id]
    return [c.branch_id == (scope.branch_id or ALL), c.store_id == ALL]


def stores_of(table: Table, scope: Scope) -> list[Any]:
    """The rows of every store (and central warehouse) in the scope."""
    c = table.c
    return [c.branch_id != ALL, c.store_id != ALL, *scope.where(table)]


def _in_period(period: Period) -> Any:
    """Rows of the period: month rows of its whole months, day rows of its edge days."""
    parts = split(period)
    c = stock_rollups.c
    conditions = [
        and_(c.grain == DAY, c.day >= days.first, c.day <= days.last) for days in parts.days
    ]
    if parts.months is not None:
        conditions.append(
            and_(c.grain == MONTH, c.day >= parts.months.first, c.day <= parts.months.last)
        )
    return or_(*conditions)


def _after(day: date) -> Any:
    """Rows of what came after the day: later months' rows, the rest of its month's days."""
    c = stock_rollups.c
    return or_(
        and_(c.grain == MONTH, c.day > month_of(day)),
        and_(c.grain == DAY, c.day > day, c.day >= month_of(day), c.day < _next_month(day)),
    )


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass(frozen=True)
class UnitSums:
    """A unit's rollups over a period: the values as of its edges and its sums."""

    opening_fen: int  # inventory value at the end of the day before the period
    slow_moving_fen: int  # slow-moving value at the end of its last day
    orders_with_issues: int
    sums: dict[str, int]  # ROLLUP_SUMS over the period's days


async def unit_sums(
    session: AsyncConnection, units: Callable[[Table], list[Any]], period: Period
) -> dict[Unit, UnitSums]:
    """Per unit `units` selects (own_unit or stores_of), in three reads of a few rows per
    unit: its all-time row less what came after, the period's month and edge-day rows, and
    its issue pairs inside the period."""
    c = stock_rollups.c
    before = period.first - timedelta(days=1)
    ever = c.grain == EVER

    def as_of(name: str, after: Any) -> Any:
        return func.sum(case((ever, c[name]), (after, -c[name]), else_=0))

    levels = await session.execute(
        select(
            c.branch_id,
            c.store_id,
            as_of("value_change_fen", _after(before)).label("opening"),
            as_of("slow_change_fen", _after(period.last)).label("slow"),
        )
        .where(*units(stock_rollups), or_(ever, _after(before), _after(period.last)))
        .group_by(c.branch_id, c.store_id)
    )
    opening = {(r.branch_id, r.store_id): (int(r.opening), int(r.slow)) for r in levels}
    rows = await session.execute(
        select(c.branch_id, c.store_id, *(func.sum(c[name]).label(name) for name in ROLLUP_SUMS))
        .where(*units(stock_rollups), _in_period(period))
        .group_by(c.branch_id, c.store_id)
    )
    sums = {
        (r.branch_id, r.store_id): {name: int(getattr(r, name)) for name in ROLLUP_SUMS}
        for r in rows
    }
    p = stock_issue_pairs.c
    pairs = await session.execute(
        select(p.branch_id, p.store_id, func.sum(p.orders))
        .where(
            *units(stock_issue_pairs),
            p.earlier_day >= period.first,
            p.day <= period.last,
        )
        .group_by(p.branch_id, p.store_id)
    )
    repeated = {(b, s): int(n) for b, s, n in pairs}
    found = {}
    for unit in {*sums, *(u for u, levels in opening.items() if any(levels))}:
        value, slow = opening.get(unit, (0, 0))
        period_sums = sums.get(unit, dict.fromkeys(ROLLUP_SUMS, 0))
        orders = period_sums["issue_days"] - repeated.get(unit, 0)
        found[unit] = UnitSums(value, slow, orders, period_sums)
    return found


async def waiting_parts(session: AsyncConnection, scope: Scope, limit: int) -> list[WaitingRow]:
    c = stock_waiting_rollups.c
    rows = await session.execute(
        select(c.part_number, c.orders, c.quantity)
        .where(*own_unit(stock_waiting_rollups, scope), c.orders > 0)
        .order_by(c.orders.desc(), c.part_number)
        .limit(limit)
    )
    return [WaitingRow(part, int(n), int(q)) for part, n, q in rows]


@dataclass(frozen=True)
class WaitingRow:
    part_number: str
    orders: int
    quantity: int


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
