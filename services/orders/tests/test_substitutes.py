"""替代料 in the order's rules, pure: an offer recorded on a short line and in the timeline, a
successor taken at the `parts` step and priced anew, and the quote rules that follow."""

from __future__ import annotations

import pytest

from servicekit.errors import InvalidInput
from services.orders.domain import lifecycle
from services.orders.domain.lifecycle import Substitute
from services.orders.domain.order import PlannedPart, RepairOrder
from services.orders.tests.test_lifecycle import CLERK, NOW, TECH, diagnosis, new_order

OLD, NEW, CHEAPER = "HW-BAT-OLD", "HW-BAT-NEW", "HW-BAT-CHEAP"
PRICES = {OLD: 20_000, NEW: 25_000, CHEAPER: 15_000}


def waiting_for_old(warranty: str = "out_of_warranty", labour: int = 10_000) -> RepairOrder:
    """Approved with one battery line, short of it, and its successor offered."""
    order = new_order(warranty)
    lifecycle.diagnose(order, TECH, NOW, diagnosis(parts=(PlannedPart(OLD, 1),)), PRICES)
    lifecycle.quote(order, CLERK, NOW, labour if warranty == "out_of_warranty" else 0)
    lifecycle.approve(order, CLERK, NOW, accepted=True)
    lifecycle.parts_reserved(order, CLERK, NOW, {"L1": 0}, offers={"L1": (NEW, 3)})
    return order


def test_a_short_superseded_line_shows_its_successor_in_the_line_and_the_timeline() -> None:
    order = waiting_for_old()
    line = order.work.lines[0]
    assert order.status == "waiting_parts"
    assert (line.successor_part_id, line.successor_available) == (NEW, 3)
    assert f"替代料 {NEW}: 3 available" in order.timeline[-1].note


def test_a_dearer_successor_sends_a_chargeable_order_back_for_approval() -> None:
    order = waiting_for_old()
    lifecycle.substitute(order, TECH, NOW, [Substitute("L1", NEW)], PRICES)
    line, quote = order.work.lines[0], order.work.quote
    assert (line.part_id, line.retail_price_fen, line.successor_part_id) == (NEW, 25_000, "")
    assert quote is not None and (quote.labour_fen, quote.parts_fen) == (10_000, 25_000)
    assert order.status == "awaiting_approval" and not order.work.customer_approved
    assert "quote 35000 fen (was 30000)" in order.timeline[-1].note
    # Its reservation is recorded, and the approvals decide the status.
    lifecycle.parts_reserved(order, TECH, NOW, {"L1": 1})
    assert order.status == "awaiting_approval" and line.reserved == 1
    lifecycle.approve(order, CLERK, NOW, accepted=True)
    assert order.status == "approved"


def test_a_dearer_successor_above_the_threshold_needs_the_manager_again() -> None:
    order = waiting_for_old(labour=75_000)
    lifecycle.substitute(order, TECH, NOW, [Substitute("L1", NEW)], PRICES, threshold_fen=98_000)
    assert order.status == "awaiting_approval" and order.work.manager_approval_required


def test_a_cheaper_successor_stands_with_the_quote_lowered() -> None:
    order = waiting_for_old()
    lifecycle.substitute(order, TECH, NOW, [Substitute("L1", CHEAPER)], PRICES)
    assert order.status == "waiting_parts" and order.work.customer_approved
    assert order.work.quote is not None and order.work.quote.total_fen == 25_000
    lifecycle.parts_reserved(order, TECH, NOW, {"L1": 1})
    assert order.status == "approved"


def test_under_warranty_a_successor_costs_the_customer_nothing() -> None:
    order = waiting_for_old("in_warranty")
    lifecycle.substitute(order, TECH, NOW, [Substitute("L1", NEW)], PRICES)
    assert order.status == "waiting_parts"
    assert order.work.quote is not None and order.work.quote.total_fen == 0


def test_a_decline_after_a_dearer_successor_lets_its_hold_go() -> None:
    order = waiting_for_old()
    lifecycle.substitute(order, TECH, NOW, [Substitute("L1", NEW)], PRICES)
    lifecycle.parts_reserved(order, TECH, NOW, {"L1": 1})
    lifecycle.approve(order, CLERK, NOW, accepted=False)
    line = order.work.lines[0]
    assert order.status == "declined" and (line.reserved, line.released) == (0, True)


@pytest.mark.parametrize(
    ("substitutes", "field"),
    [
        ([Substitute("L9", NEW)], "substitutes[0].line_id"),
        ([Substitute("L1", "NO-SUCH")], "substitutes[0].part_id"),
        ([Substitute("L1", OLD)], "substitutes[0].part_id"),
        ([Substitute("L1", "")], "substitutes[0].part_id"),
        ([Substitute("L1", NEW), Substitute("L1", NEW)], "substitutes[1].line_id"),
    ],
)
def test_bad_substitutes_name_the_field(substitutes: list[Substitute], field: str) -> None:
    order = waiting_for_old()
    with pytest.raises(InvalidInput) as caught:
        lifecycle.substitute(order, TECH, NOW, substitutes, PRICES)
    assert field in [e.field for e in caught.value.errors]
    assert order.work.lines[0].part_id == OLD


def test_a_line_offered_nothing_takes_no_substitute() -> None:
    order = waiting_for_old()
    order.work.lines[0].successor_part_id = ""
    with pytest.raises(InvalidInput) as caught:
        lifecycle.substitute(order, TECH, NOW, [Substitute("L1", NEW)], PRICES)
    assert [e.reason for e in caught.value.errors] == ["was offered no successor (替代料)"]
