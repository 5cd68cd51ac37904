"""The warranty decision at intake (三包), case by case from SPEC §2: the days after sale that
entitle return, swap or repair, the main unit's year, no proof of purchase, a manufacturer's
longer policy, and a brand the store is not authorised for."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from services.orders.domain.warranty import (
    IN_WARRANTY,
    OUT_OF_WARRANTY,
    WarrantyPolicy,
    add_months,
    decide_warranty,
    parts_wait_swap_on,
    with_repair_hold,
)

SOLD = date(2026, 3, 10)
NATIONAL = WarrantyPolicy()
TWO_YEARS = replace(NATIONAL, main_unit_months=24)


def day(n: int) -> date:
    """Day n after sale, the day of sale being day 1."""
    return SOLD + timedelta(days=n - 1)


@pytest.mark.parametrize(
    ("case", "purchase", "intake", "policy", "status", "entitlements"),
    [
        ("the day of sale", SOLD, day(1), NATIONAL, IN_WARRANTY, ("return", "swap", "repair")),
        ("day 7: still 包退", SOLD, day(7), NATIONAL, IN_WARRANTY, ("return", "swap", "repair")),
        ("day 8: 包换", SOLD, day(8), NATIONAL, IN_WARRANTY, ("swap", "repair")),
        ("day 15: still 包换", SOLD, day(15), NATIONAL, IN_WARRANTY, ("swap", "repair")),
        ("day 16: repair only", SOLD, day(16), NATIONAL, IN_WARRANTY, ("repair",)),
        ("the last day of the year", SOLD, date(2027, 3, 9), NATIONAL, IN_WARRANTY, ("repair",)),
        ("a year on: over", SOLD, date(2027, 3, 10), NATIONAL, OUT_OF_WARRANTY, ()),
        ("no proof of purchase", None, day(3), NATIONAL, OUT_OF_WARRANTY, ()),
        (
            "a two-year maker, month 18",
            SOLD,
            date(2027, 9, 10),
            TWO_YEARS,
            IN_WARRANTY,
            ("repair",),
        ),
        ("a two-year maker, two years on", SOLD, date(2028, 3, 10), TWO_YEARS, OUT_OF_WARRANTY, ()),
        (
            "a maker with 10 swap days",
            SOLD,
            day(12),
            replace(NATIONAL, swap_days=10),
            IN_WARRANTY,
            ("repair",),
        ),
    ],
)
def test_the_warranty_decision_follows_the_three_guarantees(
    case: str,
    purchase: date | None,
    intake: date,
    policy: WarrantyPolicy,
    status: str,
    entitlements: tuple[str, ...],
) -> None:
    decided = decide_warranty(purchase, intake, policy, brand_authorised=True)
    assert (decided.status, decided.entitlements) == (status, entitlements), case
    assert decided.reason
    assert decided.send_on_required is False
    if status == IN_WARRANTY:
        assert purchase is not None
        assert decided.expires_on == add_months(purchase, policy.main_unit_months)


def test_warranty_work_of_an_unauthorised_brand_is_sent_on() -> None:
    decided = decide_warranty(SOLD, day(30), NATIONAL, brand_authorised=False)
    assert decided.status == IN_WARRANTY and decided.send_on_required
    assert "not authorised" in decided.reason
    # Out of warranty the customer pays: any store may repair it.
    paid = decide_warranty(None, day(30), NATIONAL, brand_authorised=False)
    assert paid.status == OUT_OF_WARRANTY and not paid.send_on_required


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2026, 3, 10), 12, date(2027, 3, 10)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
    ],
)
def test_months_are_added_to_the_last_day_a_short_month_has(
    start: date, months: int, end: date
) -> None:
    assert add_months(start, months) == end


@pytest.mark.parametrize(
    ("days_since_repair", "free"),
    [(0, True), (1, True), (30, True), (31, False), (None, False)],
)
def test_a_device_back_within_the_repair_hold_is_repaired_free(
    days_since_repair: int | None, free: bool
) -> None:
    paid = decide_warranty(None, day(400), NATIONAL, brand_authorised=True)
    held = with_repair_hold(paid, days_since_repair, "SH-001-260101-0001", NATIONAL)
    assert (held.status == IN_WARRANTY) is free
    if free:
        assert held.entitlements == ("repair",)
        assert "SH-001-260101-0001" in held.reason and "返修保修" in held.reason
    else:
        assert held == paid
    # Under warranty anyway: the decision stands, and says why the repair is free twice over.
    covered = decide_warranty(SOLD, day(40), NATIONAL, brand_authorised=True)
    again = with_repair_hold(covered, 10, "SH-001-260101-0001", NATIONAL)
    assert (again.status, again.entitlements) == (covered.status, covered.entitlements)
    assert again.reason.startswith(covered.reason)


def test_an_in_warranty_repair_waiting_too_long_for_parts_is_owed_a_swap() -> None:
    covered = decide_warranty(SOLD, day(40), NATIONAL, brand_authorised=True)
    assert parts_wait_swap_on(covered, day(40), NATIONAL) == day(100)
    patient = replace(NATIONAL, parts_wait_days=90)
    assert parts_wait_swap_on(covered, day(40), patient) == day(130)
    paid = decide_warranty(None, day(40), NATIONAL, brand_authorised=True)
    assert parts_wait_swap_on(paid, day(40), NATIONAL) is None
