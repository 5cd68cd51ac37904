"""Warranty per part line (三包 per part): a battery, charger or earphone has its own period
from the purchase, the main unit's parts follow the device's warranty, and the quote (and a
quick order's bill) charges only the lines out of warranty."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from servicekit.errors import InvalidInput
from services.orders.domain import lifecycle, routes
from services.orders.domain.order import PlannedPart, RepairOrder
from services.orders.domain.warranty import (
    IN_WARRANTY,
    OUT_OF_WARRANTY,
    WarrantyDecision,
    WarrantyPolicy,
    add_months,
    decide_warranty,
    line_in_warranty,
    with_repair_hold,
)
from services.orders.tests.test_lifecycle import CLERK, TECH, diagnosis, new_order

SOLD = date(2025, 1, 10)
NATIONAL = WarrantyPolicy()  # main unit, battery and charger 12 months, earphones 3
LONG_BATTERY = replace(NATIONAL, battery_months=24)
PRICES = {"SCREEN": 20_000, "BATTERY": 8_000, "EARPHONE": 3_000}
CATEGORIES = {"SCREEN": "screen", "BATTERY": "battery", "EARPHONE": "earphone"}


def decided(intake_day: date, policy: WarrantyPolicy = NATIONAL) -> WarrantyDecision:
    return decide_warranty(SOLD, intake_day, policy, brand_authorised=True)


@pytest.mark.parametrize(
    ("case", "category", "intake_day", "policy", "free"),
    [
        ("a screen in the main unit's year", "screen", date(2025, 6, 1), NATIONAL, True),
        ("a screen after it", "screen", date(2026, 2, 1), NATIONAL, False),
        ("a battery within its 24 months", "battery", date(2026, 2, 1), LONG_BATTERY, True),
        ("a battery after them", "battery", date(2027, 1, 10), LONG_BATTERY, False),
        (
            "earphones past 3 months, the phone covered",
            "earphone",
            date(2025, 6, 1),
            NATIONAL,
            False,
        ),
        ("earphones within 3 months", "earphone", date(2025, 4, 9), NATIONAL, True),
        ("earphones on the day the 3 months end", "earphone", date(2025, 4, 10), NATIONAL, False),
        ("a charger within its year", "charger", date(2025, 12, 1), NATIONAL, True),
        ("a part of unknown category follows the phone", "", date(2026, 2, 1), NATIONAL, False),
    ],
)
def test_each_line_has_the_warranty_of_its_part(
    case: str, category: str, intake_day: date, policy: WarrantyPolicy, free: bool
) -> None:
    decision = decided(intake_day, policy)
    assert line_in_warranty(category, decision, SOLD, intake_day, policy) is free, case


def test_without_a_purchase_date_an_accessory_is_paid() -> None:
    decision = decide_warranty(None, date(2025, 2, 1), NATIONAL, brand_authorised=True)
    assert not line_in_warranty("battery", decision, None, date(2025, 2, 1), NATIONAL)


def test_the_technicians_finding_and_a_repair_hold_cover_every_line_alike() -> None:
    day = date(2025, 6, 1)  # the phone covered, earphones past their 3 months
    voided = WarrantyDecision(OUT_OF_WARRANTY, (), "technician: liquid damage", None, False)
    assert not line_in_warranty("battery", voided, SOLD, day, NATIONAL, technician_decided=True)
    covered = WarrantyDecision(IN_WARRANTY, ("repair",), "technician: a factory fault", None, False)
    assert line_in_warranty("earphone", covered, SOLD, day, NATIONAL, technician_decided=True)
    late = date(2027, 1, 1)  # every period over, but back within 30 days of a repair
    held = with_repair_hold(decided(late), 10, "SH-001-261222-0001", NATIONAL)
    assert line_in_warranty("battery", held, SOLD, late, NATIONAL)


def order_on(day: date, service_type: str = "repair") -> RepairOrder:
    order = new_order(service_type=service_type)
    order.intake = replace(order.intake, purchase_date=SOLD)
    order.received_at = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
    order.warranty = decided(day, LONG_BATTERY)
    return order


def test_a_phone_out_of_warranty_gets_its_battery_free_and_pays_the_screen() -> None:
    day = date(2026, 2, 1)  # main unit's year over; the battery's 24 months are not
    order = order_on(day)
    assert order.warranty.status == OUT_OF_WARRANTY
    planned = diagnosis(parts=(PlannedPart("SCREEN", 1), PlannedPart("BATTERY", 1)))
    lifecycle.diagnose(
        order, TECH, order.received_at, planned, PRICES, categories=CATEGORIES, policy=LONG_BATTERY
    )
    assert [(x.part_id, x.warranty) for x in order.work.lines] == [
        ("SCREEN", False),
        ("BATTERY", True),
    ]
    lifecycle.quote(order, CLERK, order.received_at, 5_000)
    assert order.work.quote is not None
    assert (order.work.quote.parts_fen, order.work.quote.total_fen) == (20_000, 25_000)


def test_a_phone_out_of_warranty_with_only_its_battery_to_change_pays_nothing() -> None:
    order = order_on(date(2026, 2, 1))
    planned = diagnosis(parts=(PlannedPart("BATTERY", 1),))
    lifecycle.diagnose(
        order, TECH, order.received_at, planned, PRICES, categories=CATEGORIES, policy=LONG_BATTERY
    )
    with pytest.raises(InvalidInput):
        lifecycle.quote(order, CLERK, order.received_at, 5_000)
    lifecycle.quote(order, CLERK, order.received_at, 0)
    assert order.work.quote is not None and order.work.quote.total_fen == 0


def test_a_phone_in_warranty_pays_for_earphones_past_their_months_only() -> None:
    day = date(2025, 6, 1)
    order = order_on(day, service_type="accessory")
    assert order.warranty.status == IN_WARRANTY
    parts = (PlannedPart("EARPHONE", 1), PlannedPart("BATTERY", 1))
    routes.complete(
        order,
        CLERK,
        order.received_at,
        ("replace",),
        parts,
        PRICES,
        1_000,
        "cash",
        4_000,
        CATEGORIES,
        LONG_BATTERY,
    )
    assert order.status == "closed"
    assert [(x.part_id, x.warranty) for x in order.work.lines] == [
        ("EARPHONE", False),
        ("BATTERY", True),
    ]
    assert sum(p.amount_fen for p in order.work.payments) == 4_000  # the fee and the earphones


def test_a_quick_battery_for_a_phone_out_of_warranty_is_free_within_its_months() -> None:
    order = order_on(date(2026, 2, 1), service_type="accessory")
    parts = (PlannedPart("BATTERY", 1),)
    routes.complete(
        order,
        CLERK,
        order.received_at,
        ("replace",),
        parts,
        PRICES,
        1_000,
        "",
        0,
        CATEGORIES,
        LONG_BATTERY,
    )
    assert order.status == "closed" and order.work.payments == []
    assert add_months(SOLD, LONG_BATTERY.battery_months) > date(2026, 2, 1)
