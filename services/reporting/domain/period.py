"""The period a report covers (统计期间): whole Asia/Shanghai business days, both ends
inclusive, as the caller names them (YYYY-MM-DD) or, left empty, the last 30 days."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from servicekit.errors import FieldError, InvalidInput, invalid

DEFAULT_DAYS = 30
MAX_DAYS = 366 * 5
"""Five years of history are kept online; a longer period is a mistake, not a report."""

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # inclusive

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def _parse_day(text: str, field: str, errors: list[FieldError]) -> date | None:
    if not text:
        return None
    # date.fromisoformat alone would also take 20261127 or 2026-W48-5.
    if _DAY.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    errors.append(FieldError(field, "must be a date as YYYY-MM-DD"))
    return None


def report_period(date_from: str, date_to: str, today: date) -> Period:
    """The period asked for: an empty `date_to` is today, an empty `date_from` the 30 days up to
    `date_to`. Every malformed date is reported at once."""
    errors: list[FieldError] = []
    first = _parse_day(date_from, "date_from", errors)
    last = _parse_day(date_to, "date_to", errors)
    if errors:
        raise InvalidInput("the report period has errors", errors)
    last = last or today
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise invalid("date_to", "is before date_from (an empty date_to is today)")
    period = Period(first, last)
    if period.days > MAX_DAYS:
        raise invalid("date_from", f"the period may cover at most {MAX_DAYS} days")
    return period


@dataclass(frozen=True)
class PeriodParts:
    """A period as the rollups answer it: whole calendar months (their month rows) and the
    days at its edges outside them (day rows)."""

    months: Period | None  # first day of the first whole month .. first day of the last
    days: tuple[Period, ...]  # at most two: before the months and after them


def split(period: Period) -> PeriodParts:
    """Whole months inside the period, plus its edge days: a year is 12 month rows per unit
    instead of 365 day rows, and the figures add up to the same."""
    first_month = period.first if period.first.day == 1 else _next_month(period.first)
    after_last = _next_month(period.last)
    # The last whole month ends on the period's last day only when that is a month's end.
    last_month_end = period.last if after_last - timedelta(days=1) == period.last else None
    end = last_month_end or period.last.replace(day=1) - timedelta(days=1)
    if first_month > end:
        return PeriodParts(None, (period,))
    months = Period(first_month, end.replace(day=1))
    days = []
    if period.first < first_month:
        days.append(Period(period.first, first_month - timedelta(days=1)))
    if end < period.last:
        days.append(Period(end + timedelta(days=1), period.last))
    return PeriodParts(months, tuple(days))


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


DAY, WEEK, MONTH, QUARTER, YEAR = "d", "w", "m", "q", "y"
GRAINS = (DAY, WEEK, MONTH, QUARTER, YEAR)
"""The rollups' grains, finest first: a day, an ISO week (Monday to Sunday), a calendar month,
quarter and year, each row dated on its first day."""


def grain_start(grain: str, day: date) -> date:
    """The first day of the grain's row a day counts in."""
    match grain:
        case "d":
            return day
        case "w":
            return day - timedelta(days=day.weekday())
        case "m":
            return day.replace(day=1)
        case "q":
            return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
        case "y":
            return date(day.year, 1, 1)
    raise ValueError(f"no such grain: {grain}")


def grain_end(grain: str, start: date) -> date:
    """The last day of the grain's row dated `start`."""
    match grain:
        case "d":
            return start
        case "w":
            return start + timedelta(days=6)
        case "m":
            return _next_month(start) - timedelta(days=1)
        case "q":
            return _next_month(_next_month(_next_month(start))) - timedelta(days=1)
        case "y":
            return date(start.year, 12, 31)
    raise ValueError(f"no such grain: {grain}")


@dataclass(frozen=True)
class Tile:
    """Rows of one grain dated `first` to `last` (their first days), in a period's tiling."""

    grain: str
    first: date
    last: date


def tiles(period: Period) -> tuple[Tile, ...]:
    """The fewest rows that cover the period exactly, as runs of one grain: its whole months
    (as split() finds them) as whole years, quarters and months, and the edge days around them
    as whole weeks and days. A year is 2 months, 3 quarters and a few weeks and days per unit
    instead of 365 day rows; the figures add up to the same."""
    parts = split(period)
    edges = list(parts.days)
    before = [edges.pop(0)] if edges and edges[0].first == period.first else []
    runs: list[Tile] = []
    for edge in before:
        runs += _tile(edge, (WEEK, DAY))
    if parts.months is not None:
        core = Period(parts.months.first, grain_end(MONTH, parts.months.last))
        runs += _tile(core, (YEAR, QUARTER, MONTH))
    for edge in edges:
        runs += _tile(edge, (WEEK, DAY))
    return tuple(runs)


def _tile(period: Period, grains: tuple[str, ...]) -> list[Tile]:
    """Greedy from the left, the coarsest grain that starts here and fits: the grains nest
    (a year is whole quarters, a week whole days), so no tiling has fewer rows."""
    runs: list[Tile] = []
    day = period.first
    while day <= period.last:
        grain = next(
            g
            for g in grains
            if g == grains[-1] or (grain_start(g, day) == day and grain_end(g, day) <= period.last)
        )
        if runs and runs[-1].grain == grain:
            runs[-1] = Tile(grain, runs[-1].first, day)
        else:
            runs.append(Tile(grain, day, day))
        day = grain_end(grain, day) + timedelta(days=1)
    return runs
