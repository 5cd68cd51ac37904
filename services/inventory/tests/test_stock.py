"""The stock rules without a database: moving-average cost, never negative, the sign and cost of
each kind of movement; and the demo opening stock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from servicekit.demo import demo_data
from servicekit.errors import Conflict, InvalidInput
from services.inventory import demo
from services.inventory.domain.stock import (
    Posting,
    StockLevel,
    book,
    by_serial,
    receive,
    withdraw,
)

AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
EMPTY = StockLevel("WH-SH-001", "HW-BAT-P60")


def posting(document_id: str = "ref", user_id: str = "u1") -> Posting:
    return Posting("receipt", document_id, AT, user_id)


def booked(level: StockLevel, kind: str, quantity: int, cost: int | None = None) -> StockLevel:
    after, _ = book(level, kind, quantity, cost, posting())
    return after


def test_first_receipt_sets_the_average_to_its_cost() -> None:
    level = receive(EMPTY, 4, 9000)
    assert (level.on_hand, level.average_cost_fen) == (4, 9000)


def test_receipt_moves_the_average_weighted_by_quantity() -> None:
    level = receive(receive(EMPTY, 3, 10000), 1, 14000)
    assert (level.on_hand, level.average_cost_fen) == (4, 11000)


def test_the_average_is_derived_from_the_value_and_rounds_down_to_the_whole_fen() -> None:
    # (2*100 + 1*101) / 3 = 100.33… fen, and (1*100 + 2*101) / 3 = 100.67… fen: both shown as
    # 100, but the level keeps every fen of 301 and 302.
    level = receive(receive(EMPTY, 2, 100), 1, 101)
    assert (level.average_cost_fen, level.value_fen) == (100, 301)
    level = receive(receive(EMPTY, 1, 100), 2, 101)
    assert (level.average_cost_fen, level.value_fen) == (100, 302)


def test_fen_that_do_not_divide_leave_with_the_last_units() -> None:
    # 3 units worth 100 fen go one by one: 33, 33, and the last takes the 34 left.
    level = receive(receive(EMPTY, 2, 0), 1, 100)
    assert (level.on_hand, level.value_fen, level.average_cost_fen) == (3, 100, 33)
    taken = []
    for _ in range(3):
        level, out = withdraw(level, 1)
        taken.append(out)
    assert taken == [33, 33, 34]
    assert (level.on_hand, level.value_fen) == (0, 0)


def test_value_in_is_value_out_plus_value_held_to_the_fen() -> None:
    """Receipts at prices that do not divide, then issues, transfers and write-offs of odd
    quantities: every fen the ledger brought in either left on a ledger line or is held."""
    level, lines = EMPTY, []
    for quantity, cost in ((3, 1001), (7, 333), (2, 1), (5, 997)):
        level, line = book(level, "receipt", quantity, cost, posting())
        lines.append(line)
    for kind, quantity in (("issue", -4), ("transfer_out", -3), ("scrap", -1), ("adjustment", -5)):
        level, line = book(level, kind, quantity, None, posting())
        lines.append(line)
        ledger_value = sum(x.value_fen for x in lines)
        assert ledger_value == level.value_fen
    assert sum(x.quantity for x in lines) == level.on_hand == 4
    value_in = sum(x.value_fen for x in lines if x.value_fen > 0)
    value_out = -sum(x.value_fen for x in lines if x.value_fen < 0)
    assert value_in == 3 * 1001 + 7 * 333 + 2 * 1 + 5 * 997
    assert value_in == value_out + level.value_fen
    level, line = book(level, "issue", -4, None, posting())
    assert level.value_fen == 0 and -line.value_fen == value_in - value_out


def test_a_serialised_movement_splits_its_value_exactly_over_its_serials() -> None:
    level = receive(EMPTY, 3, 0)
    level = receive(level, 1, 100)  # 4 units worth 100
    after, moved = book(level, "issue", -3, None, posting())
    rows = by_serial(moved, after, ["S1", "S2", "S3"])
    assert sum(m.value_fen for m, _ in rows) == moved.value_fen == -75
    assert [lv.value_fen for _, lv in rows][-1] == after.value_fen == 25
    assert [lv.on_hand for _, lv in rows] == [3, 2, 1]


def test_a_receipt_into_emptied_stock_takes_the_new_cost() -> None:
    level, _ = withdraw(receive(EMPTY, 2, 5000), 2)
    assert level.on_hand == 0
    assert receive(level, 1, 8000).average_cost_fen == 8000


def test_withdrawing_keeps_the_average_cost() -> None:
    level, out = withdraw(receive(EMPTY, 5, 3000), 2)
    assert (level.on_hand, level.average_cost_fen, out) == (3, 3000, 6000)


def test_stock_never_goes_negative() -> None:
    level = receive(EMPTY, 2, 3000)
    with pytest.raises(Conflict) as caught:
        withdraw(level, 3)
    assert "HW-BAT-P60" in caught.value.message
    assert "2 available" in caught.value.message


def test_reserved_stock_cannot_be_withdrawn() -> None:
    level = StockLevel(
        "WH-SH-001", "HW-BAT-P60", on_hand=5, reserved=4, average_cost_fen=1, value_fen=5
    )
    assert level.available == 1
    with pytest.raises(Conflict):
        withdraw(level, 2)
    assert withdraw(level, 1)[0].on_hand == 4


def test_outbound_movements_are_booked_at_the_average_cost() -> None:
    level = receive(receive(EMPTY, 1, 1000), 1, 2000)
    after, movement = book(level, "transfer_out", -1, 99999, posting("TR-1", "keeper"))
    assert movement.unit_cost_fen == 1500  # the sender's average, not what the caller said
    assert (movement.quantity, after.on_hand, after.average_cost_fen) == (-1, 1, 1500)


def test_inbound_movements_are_booked_at_their_unit_cost() -> None:
    after, movement = book(EMPTY, "receipt", 3, 4200, posting("GRN-1", "keeper"))
    assert (movement.kind, movement.quantity, movement.unit_cost_fen) == ("receipt", 3, 4200)
    assert movement.document_id == "GRN-1"
    assert after.on_hand == 3


def test_adjustments_go_either_way() -> None:
    level = booked(EMPTY, "adjustment", 2, 100)
    assert booked(level, "adjustment", -1).on_hand == 1


@pytest.mark.parametrize(
    ("kind", "quantity", "cost", "field"),
    [
        ("receipt", -1, 100, "quantity"),
        ("issue", 1, None, "quantity"),
        ("scrap", 0, None, "quantity"),
        ("adjustment", 0, None, "quantity"),
        ("receipt", 1, None, "unit_cost_fen"),
        ("receipt", 1, -5, "unit_cost_fen"),
        ("gift", 1, 100, "kind"),
    ],
)
def test_bad_movements_name_the_field(
    kind: str, quantity: int, cost: int | None, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        book(EMPTY, kind, quantity, cost, posting())
    assert [e.field for e in caught.value.errors] == [field]


def test_demo_opening_stock_follows_the_authorisations_and_ranges() -> None:
    data = demo_data()
    lines = demo.opening_stock(data)
    assert lines == demo.opening_stock(data)  # deterministic
    brand_of = {p["part_number"]: p["brand"] for p in data["parts"]}
    serialised = {p["part_number"] for p in data["parts"] if p["serialised"]}
    for line in lines:
        assert line.kind == "receipt"
        assert line.part_number not in serialised
        store = line.warehouse_id.removeprefix("WH-")
        if store in data["store_authorisations"]:
            assert brand_of[line.part_number] in data["store_authorisations"][store]
            assert 2 <= line.quantity <= 6
        else:
            assert store in {"SH", "ZJ"}
            assert 10 <= line.quantity <= 20
    central = [x for x in lines if x.warehouse_id == "WH-SH"]
    assert len(central) == len(brand_of) - len(serialised)
    # Spread over the whole range, not stuck at one value.
    assert {x.quantity for x in central} == set(range(10, 21))
