"""The orders' day rules count Shanghai days, whatever the hour: the repeat-repair window, the
repair hold and the parts wait, each tried half an hour before and after midnight in Shanghai
(the same UTC day), at fixed instants."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from servicekit.timeutil import shanghai_day
from services.orders.domain.order import REPEAT_REPAIR_DAYS, is_repeat_repair
from services.orders.domain.warranty import (
    IN_WARRANTY,
    WarrantyPolicy,
    days_since_repair,
    decide_warranty,
    parts_wait_swap_on,
    with_repair_hold,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NATIONAL = WarrantyPolicy()


def at(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


CLOSED_DAY = date(2026, 3, 1)
LATE = at(CLOSED_DAY, 23, 30)  # 15:30 UTC on Mar 1
EARLY = at(date(2026, 3, 2), 0, 30)  # 16:30 UTC, the same UTC day


@pytest.mark.parametrize(
    ("closed_at", "back_on", "repeat"),
    [
        # Closed at 00:30 and back at 23:30 on the 90th Shanghai day: 90 days and 23 hours,
        # still within the 90 days.
        (at(CLOSED_DAY, 0, 30), date(2026, 5, 30), True),
        (LATE, date(2026, 5, 30), True),  # the 90th day after Mar 1
        (LATE, date(2026, 5, 31), False),  # the 91st, though only 89 days and an hour passed
        (EARLY, date(2026, 5, 31), True),  # closed on Mar 2: the 90th day
        (EARLY, date(2026, 6, 1), False),
    ],
)
def test_the_repeat_repair_window_counts_shanghai_days(
    closed_at: datetime, back_on: date, repeat: bool
) -> None:
    assert REPEAT_REPAIR_DAYS == 90
    for hour, minute in ((0, 30), (23, 30)):
        intake_day = shanghai_day(at(back_on, hour, minute))
        assert is_repeat_repair(days_since_repair(closed_at, intake_day)) is repeat
    assert is_repeat_repair(None) is False


@pytest.mark.parametrize(
    ("closed_at", "back_on", "free"),
    [
        (LATE, date(2026, 3, 31), True),  # day 30 after Mar 1
        (LATE, date(2026, 4, 1), False),
        (EARLY, date(2026, 4, 1), True),  # day 30 after Mar 2
        (EARLY, date(2026, 4, 2), False),
    ],
)
def test_the_repair_hold_counts_shanghai_days(
    closed_at: datetime, back_on: date, free: bool
) -> None:
    paid = decide_warranty(None, back_on, NATIONAL, brand_authorised=True)
    for hour, minute in ((0, 30), (23, 30)):
        since = days_since_repair(closed_at, shanghai_day(at(back_on, hour, minute)))
        held = with_repair_hold(paid, since, "SH-001-260301-0001", NATIONAL)
        assert (held.status == IN_WARRANTY) is free


@pytest.mark.parametrize(
    ("received_at", "swap_on"),
    [(LATE, date(2026, 4, 30)), (EARLY, date(2026, 5, 1))],
)
def test_the_parts_wait_counts_shanghai_days_from_intake(
    received_at: datetime, swap_on: date
) -> None:
    """60 days from the Shanghai day of intake: 23:30 on Mar 1 and 00:30 on Mar 2 are one UTC
    day but two Shanghai days apart."""
    intake_day = shanghai_day(received_at)
    covered = decide_warranty(date(2026, 2, 1), intake_day, NATIONAL, brand_authorised=True)
    assert parts_wait_swap_on(covered, intake_day, NATIONAL) == swap_on
