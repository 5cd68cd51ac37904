"""The report period rules, without I/O: defaults, inclusive ends, and every bad date named."""

from __future__ import annotations

from datetime import date

import pytest

from servicekit.errors import InvalidInput
from services.reporting.domain.period import DEFAULT_DAYS, MAX_DAYS, Period, report_period

TODAY = date(2026, 11, 27)


def test_no_dates_means_the_last_30_days_up_to_today() -> None:
    period = report_period("", "", TODAY)
    assert period == Period(date(2026, 10, 29), TODAY)
    assert period.days == DEFAULT_DAYS


def test_only_date_to_means_the_30_days_up_to_it() -> None:
    assert report_period("", "2026-02-10", TODAY) == Period(date(2026, 1, 12), date(2026, 2, 10))


def test_only_date_from_runs_to_today() -> None:
    assert report_period("2026-11-01", "", TODAY) == Period(date(2026, 11, 1), TODAY)


def test_one_day_is_both_ends() -> None:
    assert report_period("2026-11-27", "2026-11-27", TODAY).days == 1


@pytest.mark.parametrize(
    "text", ["2026-13-01", "2026-02-30", "27/11/2026", "20261127", "2026-W48-5"]
)
def test_a_malformed_date_is_named(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        report_period(text, "", TODAY)
    assert [e.field for e in caught.value.errors] == ["date_from"]


def test_both_malformed_dates_are_named_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        report_period("yesterday", "2026-11-31", TODAY)
    assert [e.field for e in caught.value.errors] == ["date_from", "date_to"]


def test_date_to_before_date_from_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        report_period("2026-11-27", "2026-11-26", TODAY)
    assert [e.field for e in caught.value.errors] == ["date_to"]


def test_a_future_date_from_with_no_date_to_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        report_period("2026-12-01", "", TODAY)
    assert [e.field for e in caught.value.errors] == ["date_to"]


def test_five_years_is_the_longest_period() -> None:
    longest = report_period("2021-11-27", "2026-11-30", TODAY)
    assert longest.days == MAX_DAYS
    with pytest.raises(InvalidInput) as caught:
        report_period("2021-11-26", "2026-11-30", TODAY)
    assert [e.field for e in caught.value.errors] == ["date_from"]
