"""Transfer rules without a database: approvals by branch, shipping at the sender's cost,
receiving with short and damaged units written off, cancelling only before shipping."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from servicekit.errors import Conflict, Forbidden, InvalidInput
from services.inventory.domain import transfer
from services.inventory.domain.conservation import conserve
from services.inventory.domain.stock import Posting, StockLevel
from services.inventory.domain.transfer import Transfer

AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
POSTING = Posting("transfer", "TR-1", AT, "u-k")
PART = "HW-SCR-P60"


def request(to_branch: str = "SH") -> Transfer:
    return Transfer(
        id="TR-1",
        from_warehouse_id="WH-SH",
        from_branch_id="SH",
        to_warehouse_id="WH-SH-001" if to_branch == "SH" else "WH-ZJ-001",
        to_branch_id=to_branch,
        lines=transfer.check_lines([(PART, 4)]),
        requested_by="u-k",
        requested_at=AT,
    )


def approved(doc: Transfer) -> Transfer:
    return transfer.approve(doc, None)


def test_within_a_branch_its_manager_approves() -> None:
    doc = transfer.approve(request(), "SH")
    assert (doc.status, doc.pending_branches) == ("approved", ())
    assert transfer.approve(doc, "SH") == doc


def test_across_branches_both_approve() -> None:
    doc = transfer.approve(request("ZJ"), "ZJ")
    assert (doc.status, doc.pending_branches) == ("requested", ("SH",))
    with pytest.raises(Conflict):
        transfer.ship(doc, {PART: StockLevel("WH-SH", PART, 10, 0, 100)}, POSTING)
    doc = transfer.approve(doc, "SH")
    assert doc.status == "approved" and set(doc.approved_branches) == {"SH", "ZJ"}
    with pytest.raises(Forbidden):
        transfer.approve(request("ZJ"), "GD")


def test_shipping_moves_stock_into_transit_at_the_senders_cost() -> None:
    sender = {
        PART: StockLevel(
            "WH-SH", PART, on_hand=10, reserved=2, average_cost_fen=40000, value_fen=400000
        )
    }
    shipped, after, booked = transfer.ship(approved(request()), sender, POSTING)
    assert shipped.status == "shipped" and shipped.in_transit == {PART: 4}
    assert shipped.lines[0].unit_cost_fen == 40000
    assert (after[PART].on_hand, after[PART].reserved) == (6, 2)
    [(out, _)] = booked
    assert (out.kind, out.quantity, out.unit_cost_fen) == ("transfer_out", -4, 40000)
    # Held stock is not available to ship.
    with pytest.raises(Conflict):
        transfer.ship(approved(request()), {PART: replace(sender[PART], reserved=7)}, POSTING)


def test_receiving_with_discrepancies_writes_them_off_at_the_transfer_cost() -> None:
    sender = {PART: StockLevel("WH-SH", PART, 10, 0, 40000, 400000)}
    shipped, _, _ = transfer.ship(approved(request()), sender, POSTING)
    receiver = {
        PART: StockLevel(
            "WH-SH-001", PART, on_hand=2, reserved=0, average_cost_fen=46000, value_fen=92000
        )
    }
    received, after, booked = transfer.receive_goods(shipped, receiver, {PART: (1, 1)}, POSTING)
    assert received.status == "received" and received.in_transit == {}
    assert (received.lines[0].received, received.lines[0].short, received.lines[0].damaged) == (
        2,
        1,
        1,
    )
    # Two good units at 40000 join two at 46000.
    assert (after[PART].on_hand, after[PART].average_cost_fen) == (4, 43000)
    assert [(m.kind, m.quantity, m.unit_cost_fen) for m, _ in booked] == [
        ("transfer_in", 4, 40000),
        ("adjustment", -2, 40000),
    ]
    ledger = {"receipt": 12, "transfer_out": -4, "transfer_in": 4, "adjustment": -2}
    assert conserve(PART, ledger, on_hand=6 + 4, in_transit=0).balanced
    with pytest.raises(InvalidInput):
        transfer.receive_goods(shipped, receiver, {PART: (3, 2)}, POSTING)
    with pytest.raises(InvalidInput):
        transfer.receive_goods(shipped, receiver, {"OTHER": (1, 0)}, POSTING)


def test_a_transfer_carries_its_value_to_the_fen() -> None:
    """7 units worth 1000 fen (142.86 each) at the sender; 4 shipped take 571 fen with them,
    in transit; received with one short, the short one is written off with its 142 and the
    good three bring 429. Nothing is lost: 1000 = 429 + 429 at the sender + 142 written off."""
    sender = {PART: StockLevel("WH-SH", PART, 7, 0, 142, 1000)}
    shipped, left, out = transfer.ship(approved(request()), sender, POSTING)
    assert (left[PART].on_hand, left[PART].value_fen) == (3, 429)
    assert shipped.lines[0].value_fen == 571 == -out[0][0].value_fen
    receiver = {PART: StockLevel("WH-SH-001", PART)}
    _, after, booked = transfer.receive_goods(shipped, receiver, {PART: (1, 0)}, POSTING)
    assert [(m.kind, m.quantity, m.value_fen) for m, _ in booked] == [
        ("transfer_in", 4, 571),
        ("adjustment", -1, -142),
    ]
    assert (after[PART].on_hand, after[PART].value_fen, after[PART].average_cost_fen) == (
        3,
        429,
        143,
    )
    assert left[PART].value_fen + after[PART].value_fen + 142 == 1000


def test_cancel_only_before_shipping() -> None:
    assert transfer.cancel(request(), AT).status == "cancelled"
    shipped, _, _ = transfer.ship(
        approved(request()), {PART: StockLevel("WH-SH", PART, 10, 0, 1)}, POSTING
    )
    with pytest.raises(Conflict):
        transfer.cancel(shipped, AT)
    with pytest.raises(Conflict):
        transfer.approve(transfer.cancel(request(), AT), "SH")


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([], "lines"),
        ([(PART, 0)], "lines[0].quantity"),
        ([("", 1)], "lines[0].part_number"),
        ([(PART, 1), (PART, 2)], "lines"),
    ],
)
def test_bad_lines_name_the_field(lines: list[tuple[str, int]], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        transfer.check_lines(lines)
    assert caught.value.errors[0].field == field
