"""The parts side of the report centre (报表中心: 库存与用料): handlers of inventory's events (and
of orders' OrderStatusChanged for the service record's parts) that keep the stock read models,
and the queries behind StockReportsService, scoped to the caller.

Events in: inventory.v1.> on stream INVENTORY, durable consumer reporting-inventory
(StockMoved, OrderPartsChanged); OrderStatusChanged through STOCK_ORDER_EVENTS, chained with
the order consumer's own handler of that event.

The inventory handlers only check and note each event; `finish_batch`, run as the batch's unit
of work commits, applies them all in a fixed number of statements (read and lock the parts and
order lines once, apply in memory in arrival order, write each table once) and adds the batch's
summed changes to the rollups, from which every figure is read."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncConnection

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


@dataclass(frozen=True)
class PartsReported:
    """One OrderPartsChanged as the batch applies it."""

    order_id: str
    unit: Unit
    day: date
    lines: tuple[tuple[str, str, stock.LineCounts, int], ...]  # line, part, counters, unit cost


@dataclass(frozen=True)
class RecordStep:
    """One OrderStatusChanged as the service record and the waiting parts need it."""

    order_id: str
    number: str
    version: int
    status: str
    text: str  # the service record (domain.stock.record_text)
    intake: Unit
    short: dict[str, int]  # what the order waits for, when its step left it waiting


@dataclass
class Batch:
    """A batch's events, noted by the handlers in arrival order, and what they add to the
    rollups, until the unit of work commits (finish_batch): the batch is read and written in
    a fixed number of statements, whatever its size, not a few per event."""

    movements: list[tuple[str, str, Unit, stock.Movement]] = field(default_factory=list)
    parts_reported: list[PartsReported] = field(default_factory=list)
    order_steps: list[RecordStep] = field(default_factory=list)
    rollups: stock.Rollups = field(default_factory=dict)
    pairs: dict[tuple[str, str, date, date], int] = field(default_factory=dict)
    waiting: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)


_batches: weakref.WeakKeyDictionary[UnitOfWork, Batch] = weakref.WeakKeyDictionary()


def _batch(uow: UnitOfWork) -> Batch:
    batch = _batches.get(uow)
    if batch is None:
        batch = _batches[uow] = Batch()
        uow.at_commit("reporting-stock", functools.partial(finish_batch, uow))
    return batch


async def finish_batch(uow: UnitOfWork) -> None:
    """Apply the batch's movements and order parts, then add its changes to the rollups, rows
    in key order (every writer's lock order), as the unit of work commits."""
    batch = _batches.pop(uow, None)
    if batch is None:
        return
    session = uow.session
    if batch.movements:
        await _apply_movements(session, batch)
    if batch.parts_reported:
        await _apply_parts_reported(session, batch)
    if batch.order_steps:
        await _apply_order_steps(session, batch)
    await repo.add_rollups(session, batch.rollups)
    await repo.add_issue_pairs(session, batch.pairs)
    await repo.add_waiting_rollups(session, batch.waiting)


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
    _batch(uow).movements.append((event.warehouse_id, event.part_number, unit, moved))


async def _apply_movements(session: AsyncConnection, batch: Batch) -> None:
    """Each part read and locked once, its movements applied in arrival order (the same
    figures whatever the order: domain.stock.apply_movement), written once."""
    units: dict[tuple[str, str], Unit] = {}
    for warehouse, part, unit, _ in batch.movements:
        units.setdefault((warehouse, part), unit)
    earliest = min(moved.day for *_, moved in batch.movements)
    parts = await repo.lock_parts(session, units, earliest)
    held = {key: (state.latest, state.value_fen) for key, state in parts.items()}
    for warehouse, part, unit, moved in batch.movements:
        changes, slow = stock.apply_movement(parts[(warehouse, part)], moved)
        for level in stock.levels(unit):
            for day, change in changes:
                stock.add_rollup(batch.rollups, level, day, stock.value_sums(day, change))
            for day, change in slow.items():
                stock.add_rollup(batch.rollups, level, day, {"slow_change_fen": change})
            stock.add_rollup(
                batch.rollups,
                level,
                moved.day,
                {
                    "issued_cost_fen": moved.issued_cost_fen,
                    "returned_cost_fen": moved.returned_cost_fen,
                },
            )
    await repo.save_parts(session, parts, units, held)


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
    _batch(uow).parts_reported.append(
        PartsReported(
            event.order_id,
            unit,
            shanghai_day(from_timestamp(event.meta.occurred_at)),
            tuple(
                (
                    line.line_id,
                    line.part_number,
                    stock.LineCounts(line.issued, line.returned),
                    line.unit_cost_fen,
                )
                for line in lines
            ),
        )
    )


async def _apply_parts_reported(session: AsyncConnection, batch: Batch) -> None:
    """The batch's order lines read and locked once, each event's growth applied in arrival
    order, and the order days, net issues, lines and rollups written once."""
    parts_of = {
        (reported.order_id, line_id): part
        for reported in batch.parts_reported
        for line_id, part, _, _ in reported.lines
    }
    stored = await repo.lock_order_lines(session, parts_of)
    counters = dict(stored)
    issued_days = await repo.issue_days(
        session,
        {r.order_id for r in batch.parts_reported if any(c.issued for _, _, c, _ in r.lines)},
    )
    order_days: dict[tuple[date, str, str, str], tuple[int, int, int]] = {}
    net: dict[tuple[str, str], tuple[Unit, int]] = {}
    for reported in batch.parts_reported:
        issued_quantity = issued_cost = returned_cost = 0
        changed = False
        for line_id, part, counts, unit_cost in reported.lines:
            key = (reported.order_id, line_id)
            progress = stock.line_progress(counters.get(key, stock.LineCounts(0, 0)), counts)
            counters[key] = progress.now
            if not (progress.issued or progress.returned):
                continue
            changed = True
            issued_quantity += progress.issued
            issued_cost += progress.issued * unit_cost
            returned_cost += progress.returned * unit_cost
            unit, quantity = net.get((reported.order_id, part), (reported.unit, 0))
            net[(reported.order_id, part)] = (
                unit,
                quantity + progress.issued - progress.returned,
            )
        if not changed:
            continue
        day, unit = reported.day, reported.unit
        order_day = (day, unit[0], unit[1], reported.order_id)
        quantity, issued, returned = order_days.get(order_day, (0, 0, 0))
        order_days[order_day] = (
            quantity + issued_quantity,
            issued + issued_cost,
            returned + returned_cost,
        )
        days = issued_days.setdefault(reported.order_id, set())
        for level in stock.levels(unit):
            added = 0
            if issued_quantity:
                # The order's days with issues at this level: the store's, the branch's, all.
                added, level_pairs = stock.issue_day_changes(
                    {d for u, d in days if stock.covers(level, u)}, day
                )
                for (earlier, later), n in level_pairs.items():
                    pair = (level[0], level[1], later, earlier)
                    batch.pairs[pair] = batch.pairs.get(pair, 0) + n
            stock.add_rollup(
                batch.rollups,
                level,
                day,
                {"parts_cost_fen": issued_cost - returned_cost, "issue_days": added},
            )
        if issued_quantity:
            days.add((unit, day))
    await repo.save_order_lines(session, stored, counters)
    await repo.add_order_days(session, order_days)
    await repo.add_issued(session, net)


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
    short: dict[str, int] = {}
    if event.to_status == stock.WAITING_PARTS:
        short = stock.record_quantities(
            (p.part_id, p.quantity) for p in event.short_parts if p.part_id
        )
    _batch(uow).order_steps.append(
        RecordStep(
            event.order_id,
            event.number,
            event.version,
            event.to_status,
            stock.record_text(record),
            intake,
            short,
        )
    )


async def _apply_order_steps(session: AsyncConnection, batch: Batch) -> None:
    """Each order's latest step in the batch against what its row held before: the record's
    changed parts, and what it is short of (rows that exist only while its latest step left it
    waiting), each table written once."""
    stored = await repo.lock_record_orders(session, {step.order_id for step in batch.order_steps})
    latest: dict[str, RecordStep] = {}
    for step in batch.order_steps:
        current = latest.get(step.order_id)
        if step.version > (current.version if current else stored[step.order_id][0]):
            latest[step.order_id] = step
    saved, records, short = [], {}, {}
    forgotten = set()
    for order_id, step in latest.items():
        _, was_status, was_record = stored[order_id]
        saved.append(
            (order_id, step.number, step.version, step.status, step.text, was_status, was_record)
        )
        if step.text != was_record:
            record = stock.record_of(step.text)
            for part, (unit, _) in stock.record_of(was_record).items():
                records[(order_id, part)] = (unit, 0)
            for part, (unit, quantity) in record.items():
                records[(order_id, part)] = (unit, quantity)
        if was_status == stock.WAITING_PARTS:
            forgotten.add(order_id)
        for part, quantity in step.short.items():
            short[(order_id, part)] = (step.intake, quantity)
    await repo.save_record_orders(session, saved)
    await repo.set_records(session, records)

    def count(part: str, unit: Unit, orders: int, quantity: int) -> None:
        for level in stock.levels(unit):
            n, q = batch.waiting.get((*level, part), (0, 0))
            batch.waiting[(*level, part)] = (n + orders, q + quantity)

    for part, unit, quantity in await repo.forget_waiting_parts(session, forgotten):
        count(part, unit, -1, -quantity)
    await repo.add_waiting_parts(session, short)
    for (_, part), (unit, quantity) in short.items():
        count(part, unit, 1, quantity)


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
