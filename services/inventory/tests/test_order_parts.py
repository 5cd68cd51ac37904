"""The rules of an order's parts without a database: reserve what is there and report the
rest short, never hold or issue twice, release only what is not issued, return at the line's
cost; and the conservation check."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from servicekit.errors import Conflict, InvalidInput
from services.inventory.domain import order_parts
from services.inventory.domain.conservation import conserve
from services.inventory.domain.order_parts import OrderPartLine
from services.inventory.domain.stock import Posting, StockLevel

POSTING = Posting("order", "o-1", datetime(2025, 3, 1, 9, 30, tzinfo=UTC), "u-tech")
LEVEL = StockLevel(
    "WH-SH-001", "HW-SCR-P60", on_hand=3, reserved=1, average_cost_fen=41000, value_fen=123000
)


def line(quantity: int = 2) -> OrderPartLine:
    return OrderPartLine(
        order_id="o-1",
        line_id="l-1",
        warehouse_id="WH-SH-001",
        part_number="HW-SCR-P60",
        quantity=quantity,
        warranty=False,
        retail_price_fen=89900,
    )


def test_reserve_holds_what_is_available() -> None:
    level, held = order_parts.reserve(LEVEL, line(2))
    assert (held.reserved, held.short, held.status) == (2, 0, "reserved")
    assert (level.reserved, level.available, level.on_hand) == (3, 0, 3)


def test_reserve_reports_the_shortfall() -> None:
    level, held = order_parts.reserve(LEVEL, line(5))
    assert (held.reserved, held.short, held.status) == (2, 3, "short")
    assert level.available == 0


def test_reserving_again_holds_nothing_twice_and_tops_up_a_short_line() -> None:
    level, held = order_parts.reserve(LEVEL, line(2))
    assert order_parts.reserve_again(level, held, "HW-SCR-P60", 2) == (level, held)

    level, short = order_parts.reserve(LEVEL, line(4))
    arrived = replace(level, on_hand=level.on_hand + 5)
    after, topped = order_parts.reserve_again(arrived, short, "HW-SCR-P60", 4)
    assert (topped.reserved, topped.short, topped.status) == (4, 0, "reserved")
    assert after.reserved == LEVEL.reserved + 4


def test_another_part_or_quantity_for_a_held_line_is_a_conflict() -> None:
    level, held = order_parts.reserve(LEVEL, line(2))
    with pytest.raises(Conflict):
        order_parts.reserve_again(level, held, "HW-SCR-P60", 3)
    with pytest.raises(Conflict):
        order_parts.reserve_again(level, held, "HW-BAT-P60", 2)


@pytest.mark.parametrize("quantity", [0, -1, order_parts.MAX_LINE_QUANTITY + 1])
def test_bad_quantities_are_refused(quantity: int) -> None:
    with pytest.raises(InvalidInput):
        order_parts.reserve(LEVEL, line(quantity))


def test_issue_takes_the_held_stock_out_at_the_average_cost_once() -> None:
    level, held = order_parts.reserve(LEVEL, line(2))
    after, issued, movement = order_parts.issue(level, held, POSTING)
    assert (after.on_hand, after.reserved) == (1, 1)  # the other order's unit stays held
    assert (issued.issued, issued.reserved, issued.status) == (2, 0, "issued")
    assert issued.unit_cost_fen == 41000
    assert movement is not None
    assert (movement.kind, movement.quantity, movement.unit_cost_fen) == ("issue", -2, 41000)
    assert (movement.document_type, movement.document_id) == ("order", "o-1")
    assert order_parts.issue(after, issued, POSTING) == (after, issued, None)


def test_a_short_line_cannot_be_issued_until_its_parts_arrive() -> None:
    level, short = order_parts.reserve(LEVEL, line(3))
    with pytest.raises(Conflict):
        order_parts.issue(level, short, POSTING)
    arrived = replace(level, on_hand=level.on_hand + 1)
    after, issued, _ = order_parts.issue(arrived, short, POSTING)
    assert (issued.issued, after.on_hand, after.reserved) == (3, 1, 1)


def test_release_frees_only_what_is_not_issued() -> None:
    level, held = order_parts.reserve(LEVEL, line(2))
    after, released = order_parts.release(level, held)
    assert (after.reserved, released.reserved, released.status) == (1, 0, "released")
    assert order_parts.release(after, released) == (after, released)

    level, held = order_parts.reserve(LEVEL, line(2))
    level, issued, _ = order_parts.issue(level, held, POSTING)
    assert order_parts.release(level, issued) == (level, issued)
    with pytest.raises(Conflict):
        order_parts.issue(after, released, POSTING)


def test_return_puts_issued_parts_back_at_the_line_cost() -> None:
    level, held = order_parts.reserve(LEVEL, line(2))
    level, issued, _ = order_parts.issue(level, held, POSTING)
    # Stock bought dearer since: the return pulls the average back towards the line's cost.
    dearer = replace(level, on_hand=2, reserved=0, average_cost_fen=50000, value_fen=100000)
    after, back, movement = order_parts.give_back(dearer, issued, 1, POSTING)
    assert (movement.kind, movement.quantity, movement.unit_cost_fen) == ("return", 1, 41000)
    assert (after.on_hand, after.average_cost_fen) == (3, (2 * 50000 + 41000) // 3)
    assert (back.returned, back.status) == (1, "issued")
    _, all_back, _ = order_parts.give_back(after, back, 1, POSTING)
    assert all_back.status == "returned"
    with pytest.raises(InvalidInput):
        order_parts.give_back(after, all_back, 1, POSTING)
    with pytest.raises(Conflict):
        order_parts.give_back(LEVEL, line(2), 1, POSTING)


def test_conservation_balances_when_the_ledger_explains_the_stock() -> None:
    ledger = {"receipt": 20, "issue": -5, "return": 1, "scrap": -2, "adjustment": -1}
    check = conserve("HW-SCR-P60", ledger, on_hand=13, in_transit=0)
    assert (check.receipts, check.consumed, check.scrapped, check.adjustments) == (20, 4, 2, -1)
    assert check.expected == 13
    assert check.balanced


def test_conservation_counts_stock_in_transit() -> None:
    ledger = {"receipt": 10, "transfer_out": -4, "transfer_in": 3}
    assert conserve("P", ledger, on_hand=9, in_transit=1).balanced
    # A transfer booked out but counted nowhere is caught.
    assert not conserve("P", ledger, on_hand=9, in_transit=0).balanced
    # So is a balance that moved without its ledger line.
    assert not conserve("P", {"receipt": 10}, on_hand=11, in_transit=0).balanced


def test_conservation_holds_each_warehouse_to_its_own_ledger() -> None:
    # Two warehouses wrong by one each way cancel out in the totals; the check still fails.
    check = conserve("P", {"receipt": 10}, on_hand=10, in_transit=0, warehouses_off=("W1", "W2"))
    assert check.expected == check.on_hand and not check.balanced
