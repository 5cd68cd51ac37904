"""Which business day an event counts on (Asia/Shanghai, not UTC), and how figures add up."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.reporting.domain.kpis import (
    CountRow,
    DailyKey,
    Kpis,
    ServiceTypeKpis,
    StoreKpis,
    daily_key,
    summarise,
)
from services.reporting.domain.period import Period


@pytest.mark.parametrize(
    ("received_at", "day"),
    [
        (datetime(2026, 11, 26, 16, 30, tzinfo=UTC), date(2026, 11, 27)),  # 00:30 in Shanghai
        (datetime(2026, 11, 26, 15, 59, 59, tzinfo=UTC), date(2026, 11, 26)),  # 23:59:59
        (datetime(2026, 11, 26, 16, 0, tzinfo=UTC), date(2026, 11, 27)),  # midnight
        (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), date(2027, 1, 1)),  # new year's day
        (datetime(2026, 11, 26, 16, 30), date(2026, 11, 27)),  # naive times are UTC
    ],
)
def test_an_order_counts_on_its_shanghai_business_day(received_at: datetime, day: date) -> None:
    key = daily_key(received_at, "SH", "SH-001", "repair")
    assert key == DailyKey(day, "SH", "SH-001", "repair")


@pytest.mark.parametrize(("branch", "store"), [("", "SH-001"), ("SH", "")])
def test_an_event_without_its_store_cannot_be_counted(branch: str, store: str) -> None:
    with pytest.raises(ValueError, match="branch and store"):
        daily_key(datetime(2026, 11, 27, tzinfo=UTC), branch, store, "repair")


def test_the_scope_total_is_the_sum_of_its_stores() -> None:
    period = Period(date(2026, 11, 27), date(2026, 11, 27))
    stores = (StoreKpis("SH", "SH-001", 3), StoreKpis("SH", "SH-002", 4))
    assert Kpis("SH", None, period, stores).orders_received == 7
    assert Kpis("SH", None, period, ()).orders_received == 0


def test_counts_are_summed_per_store_and_per_service_type() -> None:
    rows = [
        CountRow("SH", "SH-002", "repair", 2),
        CountRow("SH", "SH-001", "swap", 1),
        CountRow("SH", "SH-001", "repair", 4),
    ]
    by_store, by_type = summarise(rows)
    assert by_store == (StoreKpis("SH", "SH-001", 5), StoreKpis("SH", "SH-002", 2))
    assert by_type == (ServiceTypeKpis("repair", 6), ServiceTypeKpis("swap", 1))
