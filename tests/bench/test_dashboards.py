"""The dashboards bench's pieces: its cases, its figures and a tiny run end to end (no timing
asserted: the machine's speed is not the test's business)."""

from __future__ import annotations

from datetime import date

import pytest

from servicekit.testing import DatabaseTarget
from services.reporting.domain.period import Period, split
from services.reporting.seed_history import Plan
from tests.bench.dashboards import cases, measure, percentile, report, timing

PLAN = Plan(stores=40, branches=30, orders=1_000, days=730, until=date(2026, 11, 20))


def test_hq_a_branch_and_a_store_over_a_year_and_over_23_months_with_edge_days() -> None:
    found = cases(PLAN)
    assert [c.name for c in found] == [
        "HQ, a year",
        "HQ, 23 months + edges",
        "branch B07, a year",
        "branch B07, 23 months + edges",
        "store B07-0001, a year",
        "store B07-0001, 23 months + edges",
    ]
    assert [(c.caller.branch_id, c.store_id) for c in found[::2]] == [
        (None, ""),
        ("B07", ""),
        ("B07", "B07-0001"),
    ]
    year, long = found[0], found[1]
    assert Period(year.date_from, year.date_to).days == 365
    assert len(split(Period(year.date_from, year.date_to)).days) == 2
    parts = split(Period(long.date_from, long.date_to))
    assert parts.months == Period(date(2024, 12, 1), date(2026, 10, 1))  # 23 months
    assert [p.days for p in parts.days] == [5, 15]


def test_percentiles_by_nearest_rank() -> None:
    millis = [float(n) for n in range(1, 61)]
    assert percentile(millis, 0.5) == 31.0
    assert percentile(millis, 0.99) == 60.0
    assert timing("HQ, a year", millis, 7) == timing("HQ, a year", millis[::-1], 7)


@pytest.mark.service("reporting")
async def test_a_small_history_seeded_and_every_dashboard_timed(
    db_target: DatabaseTarget,
) -> None:
    figures = await measure(db_target.url, db_target.schema, PLAN, calls=2)
    size = figures["size"]
    assert (size["orders"], size["stores"], size["branches"]) == (1_000, 40, 30)
    assert size["rollup rows"] > size["order_rollups rows"] > 0
    rows = figures["dashboards"]
    assert [r["calls"] for r in rows] == [2] * 6
    assert rows[0]["orders_received"] > rows[2]["orders_received"] > 0  # HQ, then B07
    assert all(r["p99_ms"] >= r["p50_ms"] > 0 for r in rows)
    lines = report(figures)
    assert lines[0].startswith("Dashboards (GetKpis over gRPC, one call at a time) over 1,000")
    assert any(line.strip().startswith("store B07-0001, a year") for line in lines)
