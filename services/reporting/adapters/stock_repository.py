"""Reading and writing the parts side's read models. Statements are built once per dialect (a
consumer hot path) and take their values as bound parameters; rows of one statement are sent
together (executemany), keys sorted so that concurrent writers lock rows in one order. A batch
of events reads and locks the rows it changes once (lock_parts, lock_order_lines), applies its
events in memory (domain.stock) and writes each table once."""

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
    or_,
    select,
    tuple_,
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
    PartRow,
    PartState,
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


@functools.cache
def _claim_orders(dialect_name: str) -> Any:
    return upsert_on(dialect_name, stock_record_orders).on_conflict_do_nothing()


@functools.cache
def _record_orders() -> Any:
    c = stock_record_orders.c
    return (
        select(c.order_id, c.version, c.status, c.record)
        .where(c.order_id.in_(bindparam("orders", expanding=True)))
        .order_by(c.order_id)
        .with_for_update()
    )


async def lock_record_orders(
    session: AsyncConnection, order_ids: Collection[str]
) -> dict[str, tuple[int, str, str]]:
    """The batch's orders, locked until commit, each (version, status, record) as its latest
    step left it: (0, "", "") for an order not seen yet (no record known). Two statements."""
    keys = sorted(order_ids)
    await session.execute(
        _claim_orders(session.dialect.name),
        [
            {
                "order_id": order_id,
                "number": "",
                "version": 0,
                "status": "",
                "record": "",
                "previous_status": "",
                "previous_record": "",
            }
            for order_id in keys
        ],
    )
    rows = await session.execute(_record_orders(), {"orders": keys})
    return {r.order_id: (r.version, r.status, r.record) for r in rows}


@functools.cache
def _save_orders() -> Any:
    c = stock_record_orders.c
    return (
        update(stock_record_orders)
        .where(c.order_id == bindparam("o_id"))
        .values(
            number=bindparam("now_number"),
            version=bindparam("now_version"),
            status=bindparam("now_status"),
            record=bindparam("now_record"),
            previous_status=bindparam("was_status"),
            previous_record=bindparam("was_record"),
        )
    )


async def save_record_orders(
    session: AsyncConnection, rows: Sequence[tuple[str, str, int, str, str, str, str]]
) -> None:
    """Each (order, number, version, status, record, status before, record before), locked by
    lock_record_orders, in one statement."""
    if rows:
        await session.execute(
            _save_orders(),
            [
                {
                    "o_id": order_id,
                    "now_number": number,
                    "now_version": version,
                    "now_status": status,
                    "now_record": record,
                    "was_status": was_status,
                    "was_record": was_record,
                }
                for order_id, number, version, status, record, was_status, was_record in sorted(
                    rows
                )
            ],
        )


@functools.cache
def _set_record(dialect_name: str) -> Any:
    statement = upsert_on(dialect_name, stock_reconciliation)
    return statement.on_conflict_do_update(
        index_elements=[stock_reconciliation.c.order_id, stock_reconciliation.c.part_number],
        set_={
            name: statement.excluded[name] for name in ("record_quantity", "branch_id", "store_id")
        },
    )


async def set_records(
    session: AsyncConnection, records: Mapping[tuple[str, str], tuple[Unit, int]]
) -> None:
    """Each (order, part)'s quantity on the service record (0: dropped from it), with the unit
    whose warehouse issues it, in one statement."""
    rows = [
        {
            "order_id": order_id,
            "part_number": part,
            "branch_id": unit[0],
            "store_id": unit[1],
            "record_quantity": quantity,
            "issued_quantity": 0,
        }
        for (order_id, part), (unit, quantity) in sorted(records.items())
    ]
    if rows:
        await session.execute(_set_record(session.dialect.name), rows)


@functools.cache
def _forget_waiting() -> Any:
    c = stock_waiting_parts.c
    return (
        delete(stock_waiting_parts)
        .where(c.order_id.in_(bindparam("orders", expanding=True)))
        .returning(c.part_number, c.branch_id, c.store_id, c.quantity)
    )


async def forget_waiting_parts(
    session: AsyncConnection, order_ids: Collection[str]
) -> list[tuple[str, Unit, int]]:
    """What the orders were short of, each (part, unit, quantity), no longer."""
    if not order_ids:
        return []
    rows = await session.execute(_forget_waiting(), {"orders": sorted(order_ids)})
    return [(row.part_number, (row.branch_id, row.store_id), row.quantity) for row in rows]


async def add_waiting_parts(
    session: AsyncConnection, short: Mapping[tuple[str, str], tuple[Unit, int]]
) -> None:
    """What each (order, part) waiting for parts is short of, with the order's unit."""
    if short:
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
                for (order_id, part), (unit, quantity) in sorted(short.items())
            ],
        )


PartKey = tuple[str, str]  # (warehouse_id, part_number)
LineKey = tuple[str, str]  # (order_id, line_id)


@functools.cache
def _claim_positions(dialect_name: str) -> Any:
    return upsert_on(dialect_name, stock_positions).on_conflict_do_nothing()


@functools.cache
def _positions() -> Any:
    c = stock_positions.c
    return (
        select(c.warehouse_id, c.part_number, c.occurred_us, c.event_id, c.value_fen)
        .where(tuple_(c.warehouse_id, c.part_number).in_(bindparam("keys", expanding=True)))
        .order_by(c.warehouse_id, c.part_number)
        .with_for_update()
    )


_UNMOVED = -1
"""occurred_us of a part's row claimed by a batch before its first movement is applied."""


async def lock_parts(
    session: AsyncConnection, parts: Mapping[PartKey, Unit], earliest: date
) -> dict[PartKey, PartState]:
    """The batch's parts, locked until commit (on PostgreSQL: concurrent consumers handle one
    part's movements one batch at a time; SQLite takes its write lock up front), each with
    what its movements from `earliest` on need (domain.stock.PartState). Four statements."""
    keys = sorted(parts)
    await session.execute(
        _claim_positions(session.dialect.name),
        [
            {
                "warehouse_id": warehouse,
                "part_number": part,
                "branch_id": parts[(warehouse, part)][0],
                "store_id": parts[(warehouse, part)][1],
                "on_hand": 0,
                "average_cost_fen": 0,
                "value_fen": 0,
                "occurred_us": _UNMOVED,
                "event_id": "",
                "previous_value_fen": 0,
            }
            for warehouse, part in keys
        ],
    )
    found = {}
    for row in await session.execute(_positions(), {"keys": keys}):
        moved = row.occurred_us != _UNMOVED
        found[(row.warehouse_id, row.part_number)] = PartState(
            LedgerKey(row.occurred_us, row.event_id) if moved else None,
            int(row.value_fen),
            {},
            None,
        )
    d = stock_part_days.c
    cut = earliest - timedelta(days=SLOW_MOVING_DAYS)
    same_part = tuple_(d.warehouse_id, d.part_number).in_(keys)
    earlier = stock_part_days.alias("earlier")
    last_before = (
        select(func.max(earlier.c.day))
        .where(
            earlier.c.warehouse_id == d.warehouse_id,
            earlier.c.part_number == d.part_number,
            earlier.c.day < cut,
        )
        .scalar_subquery()
    )
    rows = await session.execute(
        select(
            d.warehouse_id,
            d.part_number,
            d.day,
            d.occurred_us,
            d.event_id,
            d.on_hand,
            d.average_cost_fen,
            d.issued_quantity,
        ).where(same_part, or_(d.day >= cut, d.day == last_before))
    )
    for row in rows:
        level = Level(
            row.day, LedgerKey(row.occurred_us, row.event_id), row.on_hand, row.average_cost_fen
        )
        state = found[(row.warehouse_id, row.part_number)]
        state.rows[row.day] = PartRow(level, int(row.issued_quantity))
    firsts = await session.execute(
        select(d.warehouse_id, d.part_number, func.min(d.day))
        .where(same_part)
        .group_by(d.warehouse_id, d.part_number)
    )
    for warehouse, part, first in firsts:
        found[(warehouse, part)].first_day = first
    return found


@functools.cache
def _save_positions(dialect_name: str) -> Any:
    statement = upsert_on(dialect_name, stock_positions)
    keys = {"warehouse_id", "part_number"}
    return statement.on_conflict_do_update(
        index_elements=[stock_positions.c.warehouse_id, stock_positions.c.part_number],
        set_={
            column.name: statement.excluded[column.name]
            for column in stock_positions.columns
            if column.name not in keys
        },
    )


@functools.cache
def _save_part_days(dialect_name: str) -> Any:
    statement = upsert_on(dialect_name, stock_part_days)
    keys = {column.name for column in stock_part_days.primary_key.columns}
    return statement.on_conflict_do_update(
        index_elements=list(stock_part_days.primary_key.columns),
        set_={
            column.name: statement.excluded[column.name]
            for column in stock_part_days.columns
            if column.name not in keys
        },
    )


async def save_parts(
    session: AsyncConnection,
    parts: Mapping[PartKey, PartState],
    units: Mapping[PartKey, Unit],
    held_before: Mapping[PartKey, tuple[LedgerKey | None, int]],
) -> None:
    """Write the levels of the parts whose latest movement the batch moved, and the day rows
    it changed: two statements, rows in key order. The parts are locked (lock_parts), so
    each row is written as it now stands."""
    positions, days = [], []
    for key in sorted(parts):
        state, (branch, store) = parts[key], units[key]
        unit = {"branch_id": branch, "store_id": store}
        latest_before, value_before = held_before[key]
        if state.latest is not None and state.latest != latest_before:
            level = next(r.level for r in state.rows.values() if r.level.key == state.latest)
            positions.append(
                {
                    "warehouse_id": key[0],
                    "part_number": key[1],
                    **unit,
                    "on_hand": level.on_hand,
                    "average_cost_fen": level.average_cost_fen,
                    "value_fen": level.value_fen,
                    "occurred_us": level.key.occurred_us,
                    "event_id": level.key.event_id,
                    "previous_value_fen": value_before,
                }
            )
        for day in sorted(state.changed):
            row = state.rows[day]
            days.append(
                {
                    "warehouse_id": key[0],
                    "part_number": key[1],
                    "day": day,
                    **unit,
                    "on_hand": row.level.on_hand,
                    "average_cost_fen": row.level.average_cost_fen,
                    "value_fen": row.level.value_fen,
                    "occurred_us": row.level.key.occurred_us,
                    "event_id": row.level.key.event_id,
                    "issued_quantity": row.issued_quantity,
                }
            )
    if positions:
        await session.execute(_save_positions(session.dialect.name), positions)
    if days:
        await session.execute(_save_part_days(session.dialect.name), days)


@functools.cache
def _claim_lines(dialect_name: str) -> Any:
    return upsert_on(dialect_name, stock_order_lines).on_conflict_do_nothing()


@functools.cache
def _lines() -> Any:
    c = stock_order_lines.c
    return (
        select(c.order_id, c.line_id, c.issued, c.returned)
        .where(tuple_(c.order_id, c.line_id).in_(bindparam("keys", expanding=True)))
        .order_by(c.order_id, c.line_id)
        .with_for_update()
    )


async def lock_order_lines(
    session: AsyncConnection, lines: Mapping[LineKey, str]
) -> dict[LineKey, LineCounts]:
    """The batch's order lines (→ part number), locked until commit, with their counters as
    last stored (0 for a new line). Two statements."""
    keys = sorted(lines)
    await session.execute(
        _claim_lines(session.dialect.name),
        [
            {
                "order_id": order_id,
                "line_id": line_id,
                "part_number": lines[(order_id, line_id)],
                "issued": 0,
                "returned": 0,
                "previous_issued": 0,
                "previous_returned": 0,
            }
            for order_id, line_id in keys
        ],
    )
    rows = await session.execute(_lines(), {"keys": keys})
    return {(r.order_id, r.line_id): LineCounts(r.issued, r.returned) for r in rows}


@functools.cache
def _save_lines() -> Any:
    c = stock_order_lines.c
    return (
        update(stock_order_lines)
        .where(c.order_id == bindparam("o_id"), c.line_id == bindparam("l_id"))
        .values(
            issued=bindparam("now_issued"),
            returned=bindparam("now_returned"),
            previous_issued=bindparam("was_issued"),
            previous_returned=bindparam("was_returned"),
        )
    )


async def save_order_lines(
    session: AsyncConnection,
    before: Mapping[LineKey, LineCounts],
    now: Mapping[LineKey, LineCounts],
) -> None:
    """The counters of the lines that moved (locked by lock_order_lines), in one statement."""
    rows = [
        {
            "o_id": key[0],
            "l_id": key[1],
            "now_issued": counts.issued,
            "now_returned": counts.returned,
            "was_issued": before[key].issued,
            "was_returned": before[key].returned,
        }
        for key, counts in sorted(now.items())
        if counts != before[key]
    ]
    if rows:
        await session.execute(_save_lines(), rows)


@functools.cache
def _issue_days() -> Any:
    c = stock_order_days.c
    return select(c.order_id, c.branch_id, c.store_id, c.day).where(
        c.order_id.in_(bindparam("orders", expanding=True)), c.issued_quantity > 0
    )


async def issue_days(
    session: AsyncConnection, order_ids: Collection[str]
) -> dict[str, set[tuple[Unit, date]]]:
    """Per order, the units and days that issued parts to it."""
    found: dict[str, set[tuple[Unit, date]]] = {order_id: set() for order_id in order_ids}
    if order_ids:
        rows = await session.execute(_issue_days(), {"orders": sorted(order_ids)})
        for row in rows:
            found[row.order_id].add(((row.branch_id, row.store_id), row.day))
    return found


@functools.cache
def _add_order_days(dialect_name: str) -> Any:
    return _adding(
        dialect_name, stock_order_days, ("issued_quantity", "issued_cost_fen", "returned_cost_fen")
    )


async def add_order_days(
    session: AsyncConnection,
    sums: Mapping[tuple[date, str, str, str], tuple[int, int, int]],
) -> None:
    """Add (issued quantity, issued cost, returned cost) to each (day, branch, store, order)."""
    rows = [
        {
            "day": day,
            "branch_id": branch,
            "store_id": store,
            "order_id": order_id,
            "issued_quantity": quantity,
            "issued_cost_fen": issued,
            "returned_cost_fen": returned,
        }
        for (day, branch, store, order_id), (quantity, issued, returned) in sorted(sums.items())
    ]
    if rows:
        await session.execute(_add_order_days(session.dialect.name), rows)


@functools.cache
def _add_issued(dialect_name: str) -> Any:
    """Add to the quantity of a part issued to an order, net of returns (the unit of the row's
    first issue stays)."""
    return _adding(dialect_name, stock_reconciliation, ("issued_quantity",))


async def add_issued(
    session: AsyncConnection, net_issued: Mapping[tuple[str, str], tuple[Unit, int]]
) -> None:
    """Add each (order, part)'s net issues, with the unit that issued them."""
    rows = [
        {
            "order_id": order_id,
            "part_number": part,
            "branch_id": unit[0],
            "store_id": unit[1],
            "record_quantity": 0,
            "issued_quantity": quantity,
        }
        for (order_id, part), (unit, quantity) in sorted(net_issued.items())
    ]
    if rows:
        await session.execute(_add_issued(session.dialect.name), rows)


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
