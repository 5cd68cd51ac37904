"""The synthetic history: a small plan seeded into the real database answers like one fed by
events (its rollups are its facts' contributions), and a database with orders is refused."""

from __future__ import annotations

from datetime import date

import pytest

from servicekit.auth import AuthContext
from servicekit.runtime import Runtime
from services.reporting import handlers
from services.reporting.seed_history import Plan, parse, seed_history
from services.reporting.tests.test_facts_integration import (
    rollups_equal_the_contributions_of_the_facts,
)

PLAN = Plan(stores=5, branches=2, orders=900, days=90, until=date(2026, 11, 30), seed=1)


@pytest.mark.service("reporting")
async def test_a_seeded_history_adds_up_like_one_fed_by_events(runtime: Runtime) -> None:
    seeded = await seed_history(runtime.db, PLAN)
    assert seeded.orders == 900
    await rollups_equal_the_contributions_of_the_facts(runtime)

    hq = await handlers.get_kpis(
        runtime.uow, AuthContext("u-a", "hq_analyst"), "", "", "2026-09-02", "2026-11-30"
    )
    assert hq.orders_received == 900
    assert [u.branch_id for u in hq.by_unit] == ["B01", "B02"]
    assert sum(u.figures["received"] for u in hq.by_unit) == 900
    assert hq.by_store == ()
    assert 0 < hq.figures["closed"] <= 900
    assert hq.figures.repeat_repair_rate is not None
    median = hq.figures.turnaround_median_hours
    assert median is not None and median > 0

    with pytest.raises(ValueError, match="empty"):
        await seed_history(runtime.db, PLAN)


def test_the_plan_deals_stores_and_orders_out_evenly() -> None:
    plan = Plan(stores=5, branches=2, orders=11)
    assert plan.stores_of(0) == ["B01-0001", "B01-0002", "B01-0003"]
    assert plan.stores_of(1) == ["B02-0001", "B02-0002"]
    assert [plan.orders_of(i) for i in range(5)] == [3, 2, 2, 2, 2]
    assert parse(["--stores", "10", "--branches", "2", "--until", "2026-11-30"]).until == date(
        2026, 11, 30
    )
    with pytest.raises(SystemExit):
        parse(["--branches", "0"])
