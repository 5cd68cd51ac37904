"""Times are stored in UTC and shown in Asia/Shanghai; business days are Shanghai days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp

SHANGHAI = ZoneInfo("Asia/Shanghai")

EARLIEST_DAY = date(1990, 1, 1)
LATEST_DAY = date(2099, 12, 31)
"""The days a business date may name (a purchase, a promise, a report's or a filter's bounds):
no phone was sold before 1990 nor is anything promised past 2099. Outside them a day is a typing
mistake, and at the edges of the calendar (0001-01-01, 9999-12-31) a Shanghai day's bounds in UTC
do not exist at all."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def shanghai_day(moment: datetime) -> date:
    return as_utc(moment).astimezone(SHANGHAI).date()


def shanghai_day_start_utc(day: date) -> datetime:
    return datetime.combine(day, time.min, SHANGHAI).astimezone(UTC)


def shanghai_day_end_utc(day: date) -> datetime:
    """The first instant after `day` ends, for half-open ranges."""
    return shanghai_day_start_utc(day + timedelta(days=1))


def shanghai_day_start_after(moment: datetime, days: int) -> datetime:
    """The first instant (UTC) of the Shanghai day `days` after the one `moment` falls on: a
    business rule of "n days after" counts Shanghai days, whatever the hour (0: the start of
    its own day)."""
    return shanghai_day_start_utc(shanghai_day(moment) + timedelta(days=days))


def to_timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(as_utc(moment))
    return stamp


def from_timestamp(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def day_problem(day: date) -> str | None:
    """Why a business date is not acceptable, or None when it is."""
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        return f"must be between {EARLIEST_DAY} and {LATEST_DAY}"
    return None


def parse_day(text: str) -> date:
    """A YYYY-MM-DD business date; ValueError saying why when it is malformed or out of range."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError("must be a date as YYYY-MM-DD") from None
    if problem := day_problem(day):
        raise ValueError(problem)
    return day
