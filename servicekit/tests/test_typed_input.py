"""What a Chinese keyboard types: full-width digits in an IMEI or a phone, and dates at the edge
of the calendar."""

from __future__ import annotations

from datetime import date

import pytest

from servicekit.identifiers import imei_problem, mobile_problem, normalise_digits
from servicekit.timeutil import (
    EARLIEST_DAY,
    LATEST_DAY,
    day_problem,
    parse_day,
    shanghai_day_end_utc,
    shanghai_day_start_utc,
)

IMEI = "490154203237518"
PHONE = "13812345678"
FULL_WIDTH_IMEI = "４９０１５４２０３２３７５１８"
FULL_WIDTH_PHONE = "13８１２３４５６７８"


def test_full_width_digits_are_refused_as_typed() -> None:
    # \d took them: a number stored as typed is never found by its ASCII twin.
    assert imei_problem(FULL_WIDTH_IMEI) == "must be exactly 15 digits"
    assert mobile_problem(FULL_WIDTH_PHONE) is not None


def test_full_width_digits_become_ascii_at_the_door() -> None:
    assert normalise_digits(FULL_WIDTH_IMEI) == IMEI
    assert normalise_digits(f"　{FULL_WIDTH_PHONE} ") == PHONE  # an ideographic space too
    assert imei_problem(normalise_digits(FULL_WIDTH_IMEI)) is None
    assert mobile_problem(normalise_digits(FULL_WIDTH_PHONE)) is None


@pytest.mark.parametrize(
    "typed",
    [
        "٤٩٠١٥٤٢٠٣٢٣٧٥١٨",  # Arabic-Indic digits: NFKC keeps them, so they stay refused
        "४९०१५४२०३२३७५१८",  # Devanagari
        "49015420323751８x",
    ],
)
def test_only_ascii_digits_pass_after_normalising(typed: str) -> None:
    assert imei_problem(normalise_digits(typed)) is not None


def test_days_outside_the_business_calendar_are_refused_by_name() -> None:
    assert day_problem(EARLIEST_DAY) is None
    assert day_problem(LATEST_DAY) is None
    for day in (date.min, date(1, 1, 1), date(1989, 12, 31), date(2100, 1, 1), date.max):
        assert day_problem(day) == "must be between 1990-01-01 and 2099-12-31"
    for text in ("0001-01-01", "9999-12-31"):
        with pytest.raises(ValueError, match="must be between"):
            parse_day(text)
    assert parse_day("2026-03-01") == date(2026, 3, 1)


def test_every_day_of_the_calendar_has_shanghai_bounds_in_utc() -> None:
    # At 0001-01-01 or 9999-12-31 these overflow (a 500 for a filter); inside they never do.
    assert shanghai_day_start_utc(EARLIEST_DAY).isoformat() == "1989-12-31T16:00:00+00:00"
    assert shanghai_day_end_utc(LATEST_DAY).isoformat() == "2099-12-31T16:00:00+00:00"
