"""The pure rules of serialised items (串号) and superseded parts (替代料): each move of a
serial from where it must be to where it goes, the ledger split one serial a row, the
successor chain, a line switching to its successor, and a stocktake counted by serial."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from servicekit.errors import Conflict, InvalidInput
from services.inventory.domain import order_parts, serials, stocktake
from services.inventory.domain.catalog import current_successor, successor_chain
from services.inventory.domain.order_parts import OrderPartLine
from services.inventory.domain.serials import SerialItem
from services.inventory.domain.stock import Movement, StockLevel, by_serial

PART, WH, OTHER = "HW-MAI-P60", "WH-SH-001", "WH-SH-002"
AT = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def in_stock(serial: str = "SN1", warehouse: str = WH) -> SerialItem:
    return serials.receive(None, serial, PART, warehouse, 120_000)


def test_a_new_serial_comes_into_stock_and_a_known_one_is_refused_with_where_it_is() -> None:
    item = in_stock()
    assert (item.state, item.warehouse_id, item.unit_cost_fen) == ("in_stock", WH, 120_000)
    with pytest.raises(Conflict, match=f"SN1 is in stock in {WH}"):
        serials.receive(item, "SN1", PART, OTHER, 1)
    gone = serials.write_off(item, PART, WH, "return_to_manufacturer")
    assert (gone.state, gone.warehouse_id) == ("returned_to_manufacturer", None)
    # The manufacturer sends it back repaired: it comes in again.
    back = serials.receive(gone, "SN1", PART, OTHER, 90_000)
    assert (back.state, back.warehouse_id, back.unit_cost_fen) == ("in_stock", OTHER, 90_000)


def test_a_serial_is_one_part_only() -> None:
    with pytest.raises(Conflict, match="is a HW-MAI-P60, not OP-MAI-FINDX7"):
        serials.write_off(in_stock(), "OP-MAI-FINDX7", WH, "scrap")


def test_an_order_line_holds_consumes_and_gives_back_its_serial() -> None:
    held = serials.hold(in_stock(), PART, WH, "o-1", "l-1")
    assert held.held and held.warehouse_id == WH
    # Held again for the same line: the same; for another line, or written off: refused.
    assert serials.hold(held, PART, WH, "o-1", "l-1") == held
    with pytest.raises(Conflict, match="held for order o-1 line l-1"):
        serials.hold(held, PART, WH, "o-2", "l-1")
    with pytest.raises(Conflict):
        serials.write_off(held, PART, WH, "scrap")
    with pytest.raises(Conflict):
        serials.ship(held, PART, WH, "TR-1")
    consumed = serials.consume(held, "o-1", "l-1")
    assert (consumed.state, consumed.warehouse_id, consumed.order_id) == ("consumed", None, "o-1")
    with pytest.raises(Conflict, match="consumed by order o-1 line l-1"):
        serials.consume(consumed, "o-1", "l-1")
    with pytest.raises(Conflict):
        serials.give_back(consumed, "o-2", "l-1", WH, 1)
    back = serials.give_back(consumed, "o-1", "l-1", WH, 120_000)
    assert (back.state, back.warehouse_id, back.order_id, back.held) == (
        "in_stock",
        WH,
        None,
        False,
    )
    assert serials.let_go(held, "o-1", "l-1") == in_stock()


def test_a_transfer_takes_a_free_serial_into_transit_and_only_its_receiver_takes_it_in() -> None:
    with pytest.raises(Conflict, match=f"not free in {OTHER}"):
        serials.ship(in_stock(), PART, OTHER, "TR-1")
    moving = serials.ship(in_stock(), PART, WH, "TR-1")
    assert (moving.state, moving.warehouse_id, moving.transfer_id) == ("in_transit", None, "TR-1")
    with pytest.raises(Conflict, match="on transfer TR-1, not in transit on transfer TR-2"):
        serials.arrive(moving, "TR-2", OTHER, 1)
    with pytest.raises(Conflict):
        serials.hold(moving, PART, WH, "o-1", "l-1")
    arrived = serials.arrive(moving, "TR-1", OTHER, 120_000)
    assert (arrived.state, arrived.warehouse_id, arrived.transfer_id) == ("in_stock", OTHER, None)


def test_a_missing_serial_can_be_found_again_and_only_a_missing_one() -> None:
    missing = serials.write_off(in_stock(), PART, WH, "adjustment")
    assert missing.state == "missing"
    assert serials.find(missing, "SN1", PART, OTHER, 5).warehouse_id == OTHER
    assert serials.find(None, "SN9", PART, WH, 5).state == "in_stock"
    with pytest.raises(Conflict, match="not missing"):
        serials.find(in_stock(), "SN1", PART, WH, 5)
    scrapped = serials.write_off(in_stock(), PART, WH, "scrap")
    with pytest.raises(Conflict):
        serials.find(scrapped, "SN1", PART, WH, 5)


def test_serials_named_are_one_per_unit_well_formed_and_never_twice() -> None:
    serials.check_serials(["A1", "B-2/3"], 2)
    with pytest.raises(InvalidInput) as error:
        serials.check_serials(["A1"], 2)
    assert error.value.errors[0].field == "serials"
    with pytest.raises(InvalidInput) as error:
        serials.check_serials(["A1", "B2", "A1"], 3, "lines[0].serials")
    assert error.value.errors[0].field == "lines[0].serials[2]"
    with pytest.raises(InvalidInput) as error:
        serials.check_serials(["A1", " bad"], 2)
    assert error.value.errors[0].field == "serials[1]"


def test_a_movement_of_serials_is_one_ledger_row_each_with_its_level() -> None:
    moved = Movement(WH, PART, "receipt", 3, 100, "receipt", "GRN-1", AT, "u-1")
    after = StockLevel(WH, PART, on_hand=5, average_cost_fen=100, value_fen=500)
    rows = by_serial(moved, after, ["A", "B", "C"])
    assert [(m.serial_number, m.quantity, lv.on_hand) for m, lv in rows] == [
        ("A", 1, 3),
        ("B", 1, 4),
        ("C", 1, 5),
    ]
    out = Movement(WH, PART, "issue", -2, 100, "order", "o-1", AT, "u-1")
    rows = by_serial(out, StockLevel(WH, PART, on_hand=1), ["A", "B"])
    assert [(m.quantity, lv.on_hand) for m, lv in rows] == [(-1, 2), (-1, 1)]
    with pytest.raises(InvalidInput):
        by_serial(out, after, ["A"])


def test_a_successor_chain_ends_at_the_current_part_and_never_loops() -> None:
    catalog: dict[str, str | None] = {"A": "B", "B": "C", "C": None, "X": None}
    assert successor_chain("A", catalog) == ("B", "C")
    assert current_successor("A", catalog) == "C"
    assert current_successor("B", catalog) == "C"
    assert successor_chain("C", catalog) == () and current_successor("X", catalog) is None
    # A loop the catalog would refuse still ends.
    assert successor_chain("P", {"P": "Q", "Q": "P"}) == ("Q",)


def test_a_line_switches_to_its_successor_letting_the_old_hold_go() -> None:
    line = OrderPartLine("o-1", "l-1", WH, "A", 2, False, 100)
    old, held = order_parts.reserve(StockLevel(WH, "A", on_hand=1), line)
    assert (held.reserved, held.short, held.status) == (1, 1, "short")
    old, new, switched = order_parts.switch_part(
        old, StockLevel(WH, "C", on_hand=3), held, "C", 2, 150
    )
    assert old.reserved == 0 and new.reserved == 2
    assert (switched.part_number, switched.reserved, switched.status) == ("C", 2, "reserved")
    assert switched.retail_price_fen == 150
    issued = OrderPartLine("o-1", "l-1", WH, "A", 1, False, 100, issued=1, status="issued")
    with pytest.raises(Conflict, match="return it"):
        order_parts.switch_part(old, new, issued, "C", 1, 150)


def test_a_stocktake_by_serial_finds_the_missing_and_the_unknown() -> None:
    [line] = stocktake.count([(PART, 2)], {PART: StockLevel(WH, PART, on_hand=2)})
    counted = stocktake.serial_findings(line, ["A", "B"], ["B", "Z"])
    assert (counted.missing_serials, counted.found_serials) == (("A",), ("Z",))
    # The same count, yet two units change hands: both are booked and valued.
    assert counted.difference == 0 and counted.units_changed == 2
