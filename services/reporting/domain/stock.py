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
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
        for described in message.DESCRIPTOR.fields:
            options = described.GetOptions()
            if options.HasExtension(stock_reports_pb2.figure):
                figure = options.Extensions[stock_reports_pb2.figure]
                found.append(Definition(described.name, figure.title_zh, figure.definition))
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


def record_of(text: str) -> dict[str, tuple[tuple[str, str], int]]:
    """A record written by record_text ("" for none known)."""
    if not text:
        return {}
    return {part: ((branch, store), quantity) for part, branch, store, quantity in json.loads(text)}


def record_parts(text: str) -> set[str]:
    """The parts of a record written by record_text ("" for none known)."""
    return set(record_of(text))


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


# Rollups (汇总). Every figure but the waiting parts is kept per unit and day as changes that
# add up, at three levels: the store (branch, store), the branch (branch, ALL) and the chain
# (ALL, ALL); each change goes to its day's row, its month's row (dated the 1st) and the unit's
# all-time row, so a period reads whole months plus its edge days, and a level as of a day is
# the all-time row less what came after that day. The order of events does not matter: every
# change is a difference of what a row of the part or the order held before and after.

ALL = "*"
"""A branch or store spelt so is every one (no branch or store is); a branch's central
warehouse is its store ""."""

DAY, MONTH, EVER = "d", "m", "t"
EVER_DAY = date(1970, 1, 1)
"""The date of a unit's all-time row (grain EVER)."""

ROLLUP_SUMS = (
    "value_change_fen",
    "value_change_day_fen",  # each change × its day's ordinal: the period's average from sums
    "issued_cost_fen",
    "returned_cost_fen",
    "slow_change_fen",
    "parts_cost_fen",
    "issue_days",  # (order, day) pairs with parts issued, per level: orders_with_issues
)

Unit = tuple[str, str]
RollupKey = tuple[str, str, str, date]  # branch, store, grain, day
Rollups = dict[RollupKey, dict[str, int]]


def levels(unit: Unit) -> tuple[Unit, Unit, Unit]:
    """The store's own rows, its branch's and the chain's."""
    return (unit, (unit[0], ALL), (ALL, ALL))


def month_of(day: date) -> date:
    return day.replace(day=1)


def add_rollup(rollups: Rollups, unit: Unit, day: date, sums: Mapping[str, int]) -> None:
    """Add one unit's change of `day` to its day, month and all-time rows (zeros left out)."""
    for grain, dated in ((DAY, day), (MONTH, month_of(day)), (EVER, EVER_DAY)):
        row = rollups.setdefault((unit[0], unit[1], grain, dated), {})
        for name, amount in sums.items():
            if amount:
                row[name] = row.get(name, 0) + amount


def value_sums(day: date, change_fen: int) -> dict[str, int]:
    return {"value_change_fen": change_fen, "value_change_day_fen": change_fen * day.toordinal()}


def average_value(opening_fen: int, change_fen: int, change_day_fen: int, period: Period) -> int:
    """The mean of the period's closing values from the value before it and the sums of its
    changes: Σ closing = days × opening + Σ change × (days from the change's to the last)."""
    after_last = period.last.toordinal() + 1
    total = opening_fen * period.days + change_fen * after_last - change_day_fen
    return round_half_up(total, period.days)


@dataclass(frozen=True)
class PartDay:
    """A part's day row as the slow-moving figure reads it."""

    day: date
    value_fen: int
    issued: bool


def slow_value(days: Sequence[PartDay], first_day: date | None, on: date) -> int:
    """The part's slow-moving value as of `on` (see the figure): its value then, when it was
    held for SLOW_MOVING_DAYS and not issued over the window (days by date)."""
    window = slow_moving_window(on)
    if first_day is None or first_day > window.held_since:
        return 0
    value = 0
    for row in days:
        if row.day > on:
            break
        if row.issued and row.day > window.quiet_after:
            return 0
        value = row.value_fen
    return value


def _turns(days: Sequence[PartDay], first_day: date | None) -> set[date]:
    """Where a part's slow-moving value may change: its days, each issue's end of window, the
    day it has been held long enough."""
    quiet = timedelta(days=SLOW_MOVING_DAYS)
    turns = {row.day for row in days}
    turns |= {row.day + quiet for row in days if row.issued}
    if first_day is not None:
        turns.add(first_day + quiet)
    return turns


def slow_changes(
    before: Sequence[PartDay],
    first_before: date | None,
    after: Sequence[PartDay],
    first_after: date | None,
    start: date,
) -> dict[date, int]:
    """How a part's slow-moving value changes, as a series of changes per day, when its rows
    go from `before` to `after`, both alike before `start`. The rows must hold every day from
    SLOW_MOVING_DAYS before `start` on, and the last one before that."""
    turns = sorted(
        t for t in _turns(before, first_before) | _turns(after, first_after) if t >= start
    )
    changes: dict[date, int] = {}
    held = 0
    for turn in turns:
        difference = slow_value(after, first_after, turn) - slow_value(before, first_before, turn)
        if difference != held:
            changes[turn] = difference - held
            held = difference
    return changes


def part_days_after(days: Sequence[PartDay], moved: Movement, closes: bool) -> list[PartDay]:
    """A part's rows once `moved` is written to its day: its level
    closes the day when it is the day's latest (`closes`); its issues count either way."""
    found = [row for row in days if row.day != moved.day]
    same = next((row for row in days if row.day == moved.day), None)
    value = moved.value_fen if closes or same is None else same.value_fen
    issued = moved.issued_quantity > 0 or (same is not None and same.issued)
    found.append(PartDay(moved.day, value, issued))
    return sorted(found, key=lambda row: row.day)


def issue_day_changes(
    days: Collection[date], added: date
) -> tuple[int, dict[tuple[date, date], int]]:
    """An order's days with issues at one level gaining `added`: the change to that day's
    count of (order, day) pairs, and to the pairs of the order's consecutive days. The orders
    with issues in a period are its (order, day) pairs less the consecutive pairs inside it:
    each order's days inside the period, less all but its first."""
    if added in days:
        return 0, {}
    earlier = max((d for d in days if d < added), default=None)
    later = min((d for d in days if d > added), default=None)
    pairs: dict[tuple[date, date], int] = {}
    if earlier is not None:
        pairs[(earlier, added)] = 1
    if later is not None:
        pairs[(added, later)] = 1
        if earlier is not None:
            pairs[(earlier, later)] = -1
    return 1, pairs


def covers(level: Unit, unit: Unit) -> bool:
    """Whether a level's rows (levels()) count the store's."""
    return level[0] in (ALL, unit[0]) and level[1] in (ALL, unit[1])


@dataclass
class PartRow:
    """A part's day row: the level that closed the day, and what the day issued to orders."""

    level: Level
    issued_quantity: int


@dataclass
class PartState:
    """A warehouse part as a batch of movements reads it once and changes it in memory: its
    latest level (None for a part never moved), its day rows from SLOW_MOVING_DAYS before the
    batch's earliest day on and the last one before those, and its first day."""

    latest: LedgerKey | None
    value_fen: int
    rows: dict[date, PartRow]
    first_day: date | None
    changed: set[date] = field(default_factory=set)


def apply_movement(
    part: PartState, moved: Movement
) -> tuple[tuple[tuple[date, int], ...], dict[date, int]]:
    """Apply a movement to the part: the unit's inventory value changes and slow-moving value
    changes it makes, the same whatever order the part's movements come in."""
    ordered = sorted(part.rows)
    days = [
        PartDay(day, part.rows[day].level.value_fen, part.rows[day].issued_quantity > 0)
        for day in ordered
    ]
    same = part.rows.get(moved.day)
    if part.latest is None or part.latest < moved.key:
        # The part's latest movement (the usual case): it holds from its day on.
        changes = value_changes(moved, part.value_fen)
        part.latest, part.value_fen = moved.key, moved.value_fen
        closes = True
    else:
        before = next((part.rows[day] for day in reversed(ordered) if day < moved.day), None)
        later = next((day for day in ordered if day > moved.day), None)
        changes = late_value_changes(
            moved, same.level if same else None, before.level if before else None, later
        )
        closes = same is None or same.level.key < moved.key
    first_after = min(part.first_day, moved.day) if part.first_day else moved.day
    slow = slow_changes(
        days, part.first_day, part_days_after(days, moved, closes), first_after, moved.day
    )
    level = (
        Level(moved.day, moved.key, moved.on_hand_after, moved.average_cost_after_fen)
        if closes or same is None
        else same.level
    )
    issued = (same.issued_quantity if same else 0) + moved.issued_quantity
    part.rows[moved.day] = PartRow(level, issued)
    part.first_day = first_after
    part.changed.add(moved.day)
    return changes, slow
