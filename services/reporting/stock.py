"""The parts side of the report centre (报表中心: 库存与用料): handlers of inventory's events (and
of orders' OrderStatusChanged for the service record's parts) that keep the stock read models,
and the queries behind StockReportsService, scoped to the caller.

Events in: inventory.v1.> on stream INVENTORY, durable consumer reporting-inventory
(StockMoved, OrderPartsChanged); OrderStatusChanged through STOCK_ORDER_EVENTS, chained with
the order consumer's own handler of that event."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from google.protobuf.message import Message

from aftersales.events.v1 import events_pb2, inventory_events_pb2, order_events_pb2
from servicekit.auth import AuthContext
from servicekit.inbox import EventConsumer, Handler, UnprocessableEvent
from servicekit.paging import decode_page_token, encode_page_token, page_size
from servicekit.runtime import Runtime
from servicekit.timeutil import from_timestamp, shanghai_day, utc_now
from servicekit.uow import UnitOfWork
from services.reporting.adapters import stock_repository as repo
from services.reporting.adapters.stock_repository import ReconciliationRow, Scope, Unit
from services.reporting.domain import stock
from services.reporting.domain.period import Period, report_period

NewUow = Callable[[], UnitOfWork]

INVENTORY_CONSUMER = "reporting-inventory"
WAITING_PARTS_SHOWN = 50
MISMATCH_PAGE = 50
MISMATCH_PAGE_MAX = 200


@dataclass
class Sums:
    """What a batch's events add to the rollups, summed until the unit of work commits: one
    statement per rollup table per batch, not per event."""

    rollups: stock.Rollups = field(default_factory=dict)
    pairs: dict[tuple[str, str, date, date], int] = field(default_factory=dict)
    waiting: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)


_sums: weakref.WeakKeyDictionary[UnitOfWork, Sums] = weakref.WeakKeyDictionary()


def _batch_sums(uow: UnitOfWork) -> Sums:
    sums = _sums.get(uow)
    if sums is None:
        sums = _sums[uow] = Sums()
        uow.at_commit("reporting-stock-rollups", functools.partial(add_batch_sums, uow))
    return sums


async def add_batch_sums(uow: UnitOfWork) -> None:
    """Write what the batch added to the rollups, rows in key order (every writer's lock
    order), as the unit of work commits."""
    sums = _sums.pop(uow, None)
    if sums is None:
        return
    await repo.add_rollups(uow.session, sums.rollups)
    await repo.add_issue_pairs(uow.session, sums.pairs)
    await repo.add_waiting_rollups(uow.session, sums.waiting)


def _unit(meta: events_pb2.EventMeta) -> Unit:
    """The unit an inventory event belongs to: its warehouse's branch and store ("" for a
    branch's central warehouse)."""
    if not meta.branch_id:
        raise UnprocessableEvent("an inventory event without its branch cannot be placed")
    return meta.branch_id, meta.store_id


async def stock_moved(uow: UnitOfWork, event: inventory_events_pb2.StockMoved) -> None:
    """库存台账: the part's level (valued) on the day, the unit's value change, and what orders
    consumed; applied only forward in the ledger's order (domain.stock)."""
    unit = _unit(event.meta)
    if not event.warehouse_id or not event.part_number:
        raise UnprocessableEvent("a stock movement without its warehouse and part")
    try:
        moved = stock.movement(
            from_timestamp(event.meta.occurred_at),
            event.meta.event_id,
            event.kind,
            event.quantity,
            event.unit_cost_fen,
            event.on_hand_after,
            event.average_cost_after_fen,
        )
    except ValueError as error:
        raise UnprocessableEvent(str(error)) from error
    session = uow.session
    held = await repo.advance_position(session, event.warehouse_id, event.part_number, unit, moved)
    days, first_day = await repo.part_days(
        session, event.warehouse_id, event.part_number, moved.day
    )
    if held is not None:
        # The part's latest movement (the usual case): it holds from its day on.
        changes = stock.value_changes(moved, held)
        closes = True
    else:
        same_day, before, next_day = await repo.days_around(
            session, event.warehouse_id, event.part_number, moved.day
        )
        changes = stock.late_value_changes(moved, same_day, before, next_day)
        closes = same_day is None or same_day.key < moved.key
    await repo.write_part_day(session, event.warehouse_id, event.part_number, unit, moved)
    slow = stock.slow_changes(
        days,
        first_day,
        stock.part_days_after(days, moved, closes),
        min(first_day, moved.day) if first_day else moved.day,
        moved.day,
    )
    rollups = _batch_sums(uow).rollups
    for level in stock.levels(unit):
        for day, change in changes:
            stock.add_rollup(rollups, level, day, stock.value_sums(day, change))
        for day, change in slow.items():
            stock.add_rollup(rollups, level, day, {"slow_change_fen": change})
        stock.add_rollup(
            rollups,
            level,
            moved.day,
            {
                "issued_cost_fen": moved.issued_cost_fen,
                "returned_cost_fen": moved.returned_cost_fen,
            },
        )


async def order_parts_changed(
    uow: UnitOfWork, event: inventory_events_pb2.OrderPartsChanged
) -> None:
    """领料/退料: what each line's issued and returned counters moved since last reported, costed
    at the line's unit cost on the day inventory booked it, and the order's net issues per part
    for the reconciliation. Lines come "as they are now", so only the growth counts."""
    unit = _unit(event.meta)
    lines = [line for line in event.lines if line.line_id]
    if not event.order_id or not lines:
        return
    reported = {
        line.line_id: (line.part_number, stock.LineCounts(line.issued, line.returned))
        for line in lines
    }
    session = uow.session
    stored = await repo.advance_order_lines(session, event.order_id, reported)
    changed = False
    issued_quantity = issued_cost = returned_cost = 0
    net: dict[str, int] = {}
    for line in lines:
        progress = stock.line_progress(
            stored.get(line.line_id, stock.LineCounts(0, 0)), reported[line.line_id][1]
        )
        if not (progress.issued or progress.returned):
            continue
        changed = True
        issued_quantity += progress.issued
        issued_cost += progress.issued * line.unit_cost_fen
        returned_cost += progress.returned * line.unit_cost_fen
        net[line.part_number] = net.get(line.part_number, 0) + progress.issued - progress.returned
    if not changed:
        return
    day = shanghai_day(from_timestamp(event.meta.occurred_at))
    issued_days = await repo.issue_days(session, event.order_id) if issued_quantity else set()
    await repo.add_order_day(
        session, day, unit, event.order_id, issued_quantity, issued_cost, returned_cost
    )
    await repo.add_issued(session, event.order_id, unit, net)
    sums = _batch_sums(uow)
    rollups, pairs = sums.rollups, sums.pairs
    for level in stock.levels(unit):
        added = 0
        if issued_quantity:
            # The order's days with issues at this level: the store's, the branch's, all.
            days = {d for u, d in issued_days if stock.covers(level, u)}
            added, level_pairs = stock.issue_day_changes(days, day)
            for (earlier, later), n in level_pairs.items():
                key = (level[0], level[1], later, earlier)
                pairs[key] = pairs.get(key, 0) + n
        stock.add_rollup(
            rollups,
            level,
            day,
            {"parts_cost_fen": issued_cost - returned_cost, "issue_days": added},
        )


INVENTORY_EVENTS: dict[str, tuple[type[Message], Handler]] = {
    inventory_events_pb2.StockMoved.DESCRIPTOR.full_name: (
        inventory_events_pb2.StockMoved,
        stock_moved,
    ),
    inventory_events_pb2.OrderPartsChanged.DESCRIPTOR.full_name: (
        inventory_events_pb2.OrderPartsChanged,
        order_parts_changed,
    ),
}
"""Handlers of inventory's events, by event full name; other inventory events are acked unread."""


async def order_parts_recorded(uow: UnitOfWork, event: order_events_pb2.OrderStatusChanged) -> None:
    """维修记录用料: the service record's parts and what the order is short of, as its latest
    step (by version) says; an older step arriving late changes nothing."""
    if not event.order_id or not event.meta.branch_id:
        raise UnprocessableEvent("an order step without its order and branch cannot be placed")
    if not event.HasField("received_at"):
        # Announced before steps carried the record's parts (received_at came with them): an
        # empty list here says nothing, so the order's record stays unknown.
        return
    branches = {s.store_id: s.branch_id for s in event.stores if s.branch_id}
    intake: Unit = (event.meta.branch_id, event.meta.store_id)
    lines = [line for line in event.part_lines if line.part_id]
    if stock.returned_unrepaired(event.to_status, event.from_status):
        lines = []
    issuing = {line.part_id: line.store_id or intake[1] for line in reversed(lines)}
    record: dict[str, tuple[Unit, int]] = {
        part: ((branches.get(issuing[part], intake[0]), issuing[part]), quantity)
        for part, quantity in stock.record_quantities(
            (line.part_id, line.quantity) for line in lines
        ).items()
    }
    text = stock.record_text(record)
    session = uow.session
    before = await repo.advance_order(
        session, event.order_id, event.number, event.version, event.to_status, text
    )
    if before is None:
        return
    was_waiting, record_before = before[0] == stock.WAITING_PARTS, before[1]
    if text != record_before:
        dropped = stock.record_parts(record_before) - set(record)
        await repo.set_record(session, event.order_id, record, dropped)
    # Rows of what an order is short of exist only while its latest step left it waiting.
    waiting = _batch_sums(uow).waiting

    def count(part: str, unit: Unit, orders: int, quantity: int) -> None:
        for level in stock.levels(unit):
            n, q = waiting.get((*level, part), (0, 0))
            waiting[(*level, part)] = (n + orders, q + quantity)

    if was_waiting:
        for part, unit, quantity in await repo.forget_waiting_parts(session, event.order_id):
            count(part, unit, -1, -quantity)
    if event.to_status == stock.WAITING_PARTS and event.short_parts:
        short = stock.record_quantities(
            (p.part_id, p.quantity) for p in event.short_parts if p.part_id
        )
        await repo.add_waiting_parts(session, event.order_id, intake, short)
        for part, quantity in short.items():
            count(part, intake, 1, quantity)


STOCK_ORDER_EVENTS: dict[str, tuple[type[Message], Handler]] = {
    order_events_pb2.OrderStatusChanged.DESCRIPTOR.full_name: (
        order_events_pb2.OrderStatusChanged,
        order_parts_recorded,
    ),
}
"""The parts side's handler of order events, to chain with the order consumer's own."""


def stock_consumers(runtime: Runtime) -> EventConsumer:
    """HQ figures need every branch's warehouses, so one durable takes all inventory events."""
    return runtime.consumer(INVENTORY_CONSUMER, "INVENTORY", ["inventory.v1.>"], INVENTORY_EVENTS)


# The figures.


@dataclass(frozen=True)
class StockTotals:
    """The figures of one unit or of the scope (definitions: stock_reports.proto)."""

    branch_id: str | None
    store_id: str | None
    inventory_value_fen: int
    average_inventory_value_fen: int
    issued_cost_fen: int
    turnover_days: float | None
    slow_moving_value_fen: int
    parts_cost_fen: int
    orders_with_issues: int
    parts_cost_per_order_fen: int | None


@dataclass(frozen=True)
class StockFigures:
    branch_id: str | None
    store_id: str | None
    period: Period
    total: StockTotals
    by_store: tuple[StockTotals, ...]
    waiting_parts: tuple[repo.WaitingRow, ...]


def _totals(
    unit: tuple[str | None, str | None], period: Period, found: repo.UnitSums
) -> StockTotals:
    sums = found.sums
    value = found.opening_fen + sums["value_change_fen"]
    average = stock.average_value(
        found.opening_fen, sums["value_change_fen"], sums["value_change_day_fen"], period
    )
    issued = sums["issued_cost_fen"] - sums["returned_cost_fen"]
    return StockTotals(
        branch_id=unit[0],
        store_id=unit[1],
        inventory_value_fen=value,
        average_inventory_value_fen=average,
        issued_cost_fen=issued,
        turnover_days=stock.turnover_days(average, issued, period.days),
        slow_moving_value_fen=found.slow_moving_fen,
        parts_cost_fen=sums["parts_cost_fen"],
        orders_with_issues=found.orders_with_issues,
        parts_cost_per_order_fen=stock.per_order(sums["parts_cost_fen"], found.orders_with_issues),
    )


async def get_stock_figures(
    new_uow: NewUow,
    auth: AuthContext,
    branch_id: str,
    store_id: str,
    date_from: str,
    date_to: str,
) -> StockFigures:
    """The figures for the caller's unit, or a unit below it they name, per store and summed,
    from the rollups (a few rows per unit, however long the history). A unit outside their
    scope is NotFound."""
    branch, store = auth.narrow(branch_id or None, store_id or None)
    period = report_period(date_from, date_to, today=shanghai_day(utc_now()))
    scope = Scope(branch, store)
    async with new_uow() as uow:
        session = uow.session
        own = await repo.unit_sums(session, lambda table: repo.own_unit(table, scope), period)
        stores = await repo.unit_sums(session, lambda table: repo.stores_of(table, scope), period)
        waiting = await repo.waiting_parts(session, scope, WAITING_PARTS_SHOWN)
    nothing = repo.UnitSums(0, 0, 0, dict.fromkeys(stock.ROLLUP_SUMS, 0))
    by_store = tuple(
        _totals(unit, period, stores[unit]) for unit in sorted(stores, key=lambda u: u[::-1])
    )
    total = _totals((branch, store), period, next(iter(own.values()), nothing))
    return StockFigures(branch, store, period, total, by_store, tuple(waiting))


@dataclass(frozen=True)
class RecordMismatch:
    row: ReconciliationRow
    kind: str


async def list_record_mismatches(
    new_uow: NewUow,
    auth: AuthContext,
    branch_id: str,
    store_id: str,
    requested_page_size: int,
    page_token: str,
) -> tuple[list[RecordMismatch], str]:
    """维修记录与用料不符 in the caller's scope, a page at a time by order and part; the token of
    the next page, empty on the last."""
    branch, store = auth.narrow(branch_id or None, store_id or None)
    size = page_size(requested_page_size, MISMATCH_PAGE, MISMATCH_PAGE_MAX)
    after = decode_page_token(page_token, 2) if page_token else None
    async with new_uow() as uow:
        rows = await repo.disagreements(uow.session, Scope(branch, store), after, size + 1)
    found = []
    for row in rows[:size]:
        kind = stock.mismatch_kind(
            row.record_quantity, row.issued_quantity, row.repair_finished, row.record_known
        )
        if kind is not None:
            found.append(RecordMismatch(row, kind))
    last = rows[size - 1] if len(rows) > size else None
    return found, encode_page_token(last.order_id, last.part_number) if last else ""
