"""The parts side of the report centre (报表中心): inventory value, turnover, slow-moving stock,
parts cost per order, orders waiting for parts, and the reconciliation of service records with
parts consumption (维修记录与用料不符). Pure rules; the figures' definitions are written once in
the contract (stock_reports.proto, the `figure` option of each field) and read from there.

Ordering the ledger. StockMoved carries no version, and a consumer's handler does not see the
stream sequence (a dead letter replayed gets a new one anyway). What orders one warehouse's
movements of one part is inventory itself: it writes them under that stock level's lock, and
stamps each event's `occurred_at` while the transaction holds it (the unit of work builds the
messages at commit), so for one warehouse and part a later movement has a later `occurred_at`,
and within one transaction the events are stamped in the order they were recorded. Two stamped
in the same microsecond are told apart by event id: arbitrary, but the same whatever order the
events arrive in, so every replica and every replay converges on one state.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from aftersales.reporting.v1 import stock_reports_pb2
from servicekit.timeutil import shanghai_day
from services.reporting.domain.period import Period

SLOW_MOVING_DAYS = 90
"""滞销: a part not issued for this many days (the spec's N)."""

REPAIR_FINISHED = frozenset({"quality_check", "ready_for_pickup", "closed"})
"""Statuses in which the repair is done, so the service record's parts are final."""

WAITING_PARTS = "waiting_parts"
DECLINED = "declined"

ISSUED_WITHOUT_LINE = "issued_without_line"
LINE_WITHOUT_ISSUE = "line_without_issue"
QUANTITY_DIFFERS = "quantity_differs"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Definition:
    """A figure: its field name, Chinese title and exact definition."""

    name: str
    title_zh: str
    definition: str


@functools.cache
def definitions() -> tuple[Definition, ...]:
    """Every figure defined in the contract, in the order of its messages."""
    found = []
    for message in (
        stock_reports_pb2.StockTotals,
        stock_reports_pb2.WaitingPart,
        stock_reports_pb2.RecordMismatch,
    ):
        for field in message.DESCRIPTOR.fields:
            options = field.GetOptions()
            if options.HasExtension(stock_reports_pb2.figure):
                figure = options.Extensions[stock_reports_pb2.figure]
                found.append(Definition(field.name, figure.title_zh, figure.definition))
    return tuple(found)


@dataclass(frozen=True, order=True)
class LedgerKey:
    """Where a movement stands in its warehouse's ledger of the part (see the module's note)."""

    occurred_us: int
    event_id: str


def ledger_key(occurred_at: datetime, event_id: str) -> LedgerKey:
    moment = occurred_at.astimezone(UTC) - _EPOCH
    return LedgerKey(moment // timedelta(microseconds=1), event_id)


@dataclass(frozen=True)
class Movement:
    """One StockMoved as the figures need it."""

    day: date  # Asia/Shanghai business day it happened on
    key: LedgerKey
    on_hand_after: int
    average_cost_after_fen: int
    issued_quantity: int  # issued to orders by this movement
    issued_cost_fen: int
    returned_cost_fen: int  # returned from orders by this movement

    @property
    def value_fen(self) -> int:
        return self.on_hand_after * self.average_cost_after_fen


def movement(
    occurred_at: datetime,
    event_id: str,
    kind: str,
    quantity: int,
    unit_cost_fen: int,
    on_hand_after: int,
    average_cost_after_fen: int,
) -> Movement:
    """A ledger row read for the figures: an issue (quantity < 0) and a return from an order
    (quantity > 0) are what orders consumed; other kinds only move the stock."""
    if on_hand_after < 0 or average_cost_after_fen < 0:
        raise ValueError("a stock level after a movement cannot be negative")
    issued = -quantity if kind == "issue" and quantity < 0 else 0
    returned = quantity if kind == "return" and quantity > 0 else 0
    return Movement(
        day=shanghai_day(occurred_at),
        key=ledger_key(occurred_at, event_id),
        on_hand_after=on_hand_after,
        average_cost_after_fen=average_cost_after_fen,
        issued_quantity=issued,
        issued_cost_fen=issued * unit_cost_fen,
        returned_cost_fen=returned * unit_cost_fen,
    )


@dataclass(frozen=True)
class Level:
    """A part's level in a warehouse as a movement left it (the close of a day, in a day row)."""

    day: date
    key: LedgerKey
    on_hand: int
    average_cost_fen: int

    @property
    def value_fen(self) -> int:
        return self.on_hand * self.average_cost_fen


def value_changes(
    moved: Movement, held_value_fen: int, next_day: date | None = None
) -> tuple[tuple[date, int], ...]:
    """The unit's inventory value changes when `moved` sets the part's level, worth
    `held_value_fen` before, from its day up to `next_day` (the part's next day with a movement,
    whose own level stands; None when this movement is the latest)."""
    shift = moved.value_fen - held_value_fen
    changes = [(moved.day, shift)]
    if next_day is not None:
        changes.append((next_day, -shift))
    return tuple(change for change in changes if change[1])


def late_value_changes(
    moved: Movement, same_day: Level | None, before: Level | None, next_day: date | None
) -> tuple[tuple[date, int], ...]:
    """A movement arriving after a later one of its part: it closes its day only if it is the
    day's latest so far, and then holds until the part's next day with a movement."""
    if same_day is not None and same_day.key >= moved.key:
        return ()
    held = same_day or before
    return value_changes(moved, held.value_fen if held else 0, next_day)


def round_half_up(numerator: int, denominator: int) -> int:
    return int((Decimal(numerator) / Decimal(denominator)).to_integral_value(ROUND_HALF_UP))


def closing_values(opening_fen: int, changes: Mapping[date, int], period: Period) -> list[int]:
    """The inventory value at the end of each day of the period, from the value before it and
    the day's changes: the last is the period's inventory value, their mean its average."""
    values = []
    value = opening_fen
    for offset in range(period.days):
        value += changes.get(period.first + timedelta(days=offset), 0)
        values.append(value)
    return values


def turnover_days(average_value_fen: int, issued_cost_fen: int, days: int) -> float | None:
    """平均库存金额 ÷ 日均领用成本, to one decimal; None when nothing was consumed."""
    if issued_cost_fen <= 0:
        return None
    exact = Decimal(average_value_fen) * days / Decimal(issued_cost_fen)
    return float(exact.quantize(Decimal("0.1"), ROUND_HALF_UP))


def per_order(parts_cost_fen: int, orders: int) -> int | None:
    return round_half_up(parts_cost_fen, orders) if orders > 0 else None


@dataclass(frozen=True)
class SlowMovingWindow:
    """As of `day`: issues after `quiet_after` make a part active; a part first moved after
    `held_since` is too new to be called slow."""

    day: date
    quiet_after: date
    held_since: date


def slow_moving_window(day: date) -> SlowMovingWindow:
    since = day - timedelta(days=SLOW_MOVING_DAYS)
    return SlowMovingWindow(day, since, since)


@dataclass(frozen=True)
class LineCounts:
    """An order line's issued and returned quantities at inventory, counters that only grow."""

    issued: int
    returned: int


@dataclass(frozen=True)
class LineProgress:
    now: LineCounts
    issued: int  # issued since what was stored
    returned: int


def line_progress(stored: LineCounts, reported: LineCounts) -> LineProgress:
    """An order line as an event reports it "as it is now", against what was stored: each
    counter moves only forward, so an older event arriving late changes nothing and the same
    event twice adds nothing."""
    now = LineCounts(max(stored.issued, reported.issued), max(stored.returned, reported.returned))
    return LineProgress(now, now.issued - stored.issued, now.returned - stored.returned)


def returned_unrepaired(to_status: str, from_status: str) -> bool:
    """拒修: a declined order (declined, then closed from declined at pickup) goes back
    unrepaired. The parts on its record were the diagnosis's plan the customer refused, never
    consumed, so its service record uses none: closed, it is no record with a part unissued."""
    return DECLINED in (to_status, from_status)


def record_text(record: Mapping[str, tuple[tuple[str, str], int]]) -> str:
    """A service record (part → (issuing branch and store, quantity)) as one text, the same for
    the same record: a step that changed nothing of it is known at once."""
    return json.dumps(
        [[part, *unit, quantity] for part, (unit, quantity) in sorted(record.items())],
        separators=(",", ":"),
    )


def record_parts(text: str) -> set[str]:
    """The parts of a record written by record_text ("" for none known)."""
    return {entry[0] for entry in json.loads(text)} if text else set()


def record_quantities(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The service record's quantity per part (a part may be on several lines)."""
    quantities: dict[str, int] = {}
    for part, quantity in lines:
        quantities[part] = quantities.get(part, 0) + quantity
    return quantities


def mismatch_kind(
    record_quantity: int, issued_quantity: int, repair_finished: bool, record_known: bool = True
) -> str | None:
    """How an order's service record and its parts consumption disagree on a part, if they do.
    An issue with no line is wrong as soon as the order's record is known (a step of the order
    carrying its parts has arrived); a missing or different issue only once the repair is
    finished (until then the part may simply not have been issued yet)."""
    if record_quantity <= 0:
        return ISSUED_WITHOUT_LINE if issued_quantity > 0 and record_known else None
    if not repair_finished or record_quantity == issued_quantity:
        return None
    return LINE_WITHOUT_ISSUE if issued_quantity <= 0 else QUANTITY_DIFFERS
