"""The routes on their own: send-outs, factory returns, swaps, mainboard changes, quick orders,
declined pickups and the swap a second warranty repair of one fault offers."""

from __future__ import annotations

import pytest

from servicekit.errors import Conflict, Forbidden, InvalidInput
from services.orders import events
from services.orders.domain import lifecycle, routes
from services.orders.domain.order import PlannedPart
from services.orders.tests.test_lifecycle import (
    CLERK,
    MANAGER,
    NOW,
    PARTNER_CLERK,
    PARTNER_TECH,
    PRICES,
    TECH,
    diagnosis,
    new_order,
    walk_to_approved,
)

NEW_IMEI = "356938035643809"
PARTNER = routes.Partner("SH", "SH-002", authorised=True)


def test_a_send_out_and_back_runs_the_repair_at_the_partner() -> None:
    order = new_order(warranty="in_warranty")
    with pytest.raises(InvalidInput):  # under warranty, only to an authorised store
        routes.send_out(order, CLERK, NOW, routes.Partner("SH", "SH-002", False), "")
    routes.send_out(order, CLERK, NOW, PARTNER, "no screen skill here")
    assert order.status == "sent_out" and order.store_ids() == ("SH-001", "SH-002")
    with pytest.raises(Forbidden):  # the intake store does not receive at the partner
        routes.receive(order, CLERK, NOW)
    routes.receive(order, PARTNER_CLERK, NOW)
    assert (order.status, order.holder_store_id) == ("at_partner", "SH-002")
    with pytest.raises(Forbidden):
        lifecycle.diagnose(order, TECH, NOW, diagnosis(), PRICES)
    with pytest.raises(Conflict):
        lifecycle.cancel(order, MANAGER, NOW, "customer left")
    lifecycle.diagnose(order, PARTNER_TECH, NOW, diagnosis(), PRICES)
    assert [(x.line_id, x.store_id) for x in order.work.lines] == [("P1", "SH-002")]
    lifecycle.quote(order, PARTNER_CLERK, NOW, 0)
    assert order.work.quote is not None and order.work.quote.store_id == "SH-002"
    lifecycle.approve(order, CLERK, NOW, accepted=True)  # the customer, at the intake store
    lifecycle.parts_reserved(order, PARTNER_TECH, NOW, {"P1": 1})
    lifecycle.start_repair(order, PARTNER_TECH, NOW)
    lifecycle.finish_repair(order, PARTNER_TECH, NOW, ("replace_screen",), "L2", ("P1",))
    lifecycle.check_quality(order, PARTNER_CLERK, NOW, passed=True)
    assert order.status == "at_partner" and order.work.partner_repaired
    with pytest.raises(Conflict):
        lifecycle.diagnose(order, PARTNER_TECH, NOW, diagnosis(), PRICES)
    routes.return_to_intake(order, PARTNER_CLERK, NOW, "")
    assert order.status == "returned_from_partner" and order.holder_store_id == "SH-001"
    with pytest.raises(Forbidden):
        routes.receive(order, PARTNER_CLERK, NOW)
    routes.receive(order, CLERK, NOW)
    assert order.status == "ready_for_pickup"
    lifecycle.pick_up(order, CLERK, NOW, "", 0)
    assert order.status == "closed"

    event = events.status_changed(order, "pickup", "ready_for_pickup")
    stores = [(s.store_id, s.role, s.warehouse_id, s.labour_fen) for s in event.stores]
    assert stores == [("SH-001", "intake", "WH-SH-001", 0), ("SH-002", "repairer", "WH-SH-002", 0)]


def test_the_partner_returns_an_unrepaired_device_with_a_reason_and_lets_its_parts_go() -> None:
    order = new_order()
    routes.send_out(order, CLERK, NOW, routes.Partner("SH", "SH-002", False), "")
    routes.receive(order, PARTNER_CLERK, NOW)
    lifecycle.diagnose(order, PARTNER_TECH, NOW, diagnosis(), PRICES)
    lifecycle.quote(order, PARTNER_CLERK, NOW, 5_000)
    lifecycle.approve(order, PARTNER_CLERK, NOW, accepted=True)
    lifecycle.parts_reserved(order, PARTNER_CLERK, NOW, {"P1": 1})
    with pytest.raises(InvalidInput):
        routes.return_to_intake(order, PARTNER_CLERK, NOW, "")
    routes.return_to_intake(order, PARTNER_CLERK, NOW, "board also cracked")
    assert order.work.lines[0].released and order.work.lines[0].reserved == 0
    routes.receive(order, CLERK, NOW)
    assert order.status == "received"  # back in the flow at the intake store


def test_a_declined_order_at_the_partner_comes_home_declined_and_pays_the_fee() -> None:
    order = new_order()
    routes.send_out(order, CLERK, NOW, PARTNER, "")
    routes.receive(order, PARTNER_CLERK, NOW)
    lifecycle.diagnose(order, PARTNER_TECH, NOW, diagnosis(), PRICES)
    lifecycle.quote(order, PARTNER_CLERK, NOW, 5_000)
    lifecycle.approve(order, CLERK, NOW, accepted=False)
    with pytest.raises(Conflict):  # still at the partner
        lifecycle.pick_up(order, CLERK, NOW, "cash", 2_000)
    routes.return_to_intake(order, PARTNER_CLERK, NOW, "")
    routes.receive(order, CLERK, NOW)
    assert order.status == "declined"
    lifecycle.pick_up(order, CLERK, NOW, "cash", 2_000)
    assert (order.status, order.work.inspection_fee_fen, order.closed_at) == ("closed", 2_000, None)


def test_a_factory_return_and_its_outcomes() -> None:
    order = new_order()
    with pytest.raises(InvalidInput) as caught:
        routes.ship_to_factory(order, CLERK, NOW, "", " ")
    assert {e.field for e in caught.value.errors} == {"carrier", "tracking_number"}
    routes.ship_to_factory(order, CLERK, NOW, "SF", "SF123")
    assert order.status == "at_factory"
    with pytest.raises(InvalidInput):
        routes.receive_from_factory(order, CLERK, NOW, "refused")  # say why
    with pytest.raises(InvalidInput):
        routes.receive_from_factory(order, CLERK, NOW, "replaced", "123")
    routes.receive_from_factory(order, CLERK, NOW, "replaced", NEW_IMEI)
    assert (order.status, order.current_imei) == ("quality_check", NEW_IMEI)

    refused = new_order()
    routes.ship_to_factory(refused, CLERK, NOW, "SF", "SF124")
    routes.receive_from_factory(refused, CLERK, NOW, "refused", "", "liquid damage")
    assert refused.status == "received" and refused.work.factory is not None


def test_a_swap_needs_it_planned_and_keeps_both_imeis() -> None:
    order = new_order(warranty="in_warranty")
    walk_to_approved(order, total=20_000)
    with pytest.raises(Conflict):
        routes.swap(order, CLERK, NOW, NEW_IMEI, "HW-SWAP-P60")
    planned = new_order(warranty="in_warranty")
    lifecycle.diagnose(planned, TECH, NOW, diagnosis(actions=("swap",)), PRICES)
    lifecycle.quote(planned, CLERK, NOW, 0)
    assert planned.work.manager_approval_required  # an in-warranty swap
    lifecycle.approve(planned, CLERK, NOW, accepted=True)
    assert planned.status == "awaiting_approval"
    lifecycle.manager_approve(planned, MANAGER, NOW, approved=True)
    lifecycle.parts_reserved(planned, TECH, NOW, {"L1": 1})
    with pytest.raises(InvalidInput):
        routes.swap(planned, CLERK, NOW, planned.intake.imei, "HW-SWAP-P60")
    routes.swap(planned, CLERK, NOW, NEW_IMEI, "HW-SWAP-P60")
    assert planned.status == "ready_for_pickup"
    assert planned.work.swap is not None and planned.work.swap.faulty_imei == planned.intake.imei
    assert planned.current_imei == NEW_IMEI
    screen, unit = planned.work.lines
    assert screen.released and screen.reserved == 0  # the repair's part goes back
    assert (unit.line_id, unit.part_id, unit.warranty) == ("S1", "HW-SWAP-P60", True)


def test_a_mainboard_replacement_must_be_planned_and_names_the_new_imei() -> None:
    order = new_order()
    walk_to_approved(order)
    lifecycle.start_repair(order, TECH, NOW)
    with pytest.raises(InvalidInput) as caught:
        lifecycle.finish_repair(order, TECH, NOW, ("mainboard_replacement",), "L3", (), NEW_IMEI)
    assert [e.field for e in caught.value.errors] == ["actions_done"]
    with pytest.raises(InvalidInput):
        lifecycle.finish_repair(order, TECH, NOW, ("replace_screen",), "L2", (), NEW_IMEI)

    board = new_order(warranty="in_warranty")
    lifecycle.diagnose(board, TECH, NOW, diagnosis(actions=("mainboard_replacement",)), PRICES)
    lifecycle.quote(board, CLERK, NOW, 0)
    assert board.work.manager_approval_required
    lifecycle.approve(board, CLERK, NOW, accepted=True)
    lifecycle.manager_approve(board, MANAGER, NOW, approved=True)
    lifecycle.parts_reserved(board, TECH, NOW, {"L1": 1})
    lifecycle.start_repair(board, TECH, NOW)
    with pytest.raises(InvalidInput):
        lifecycle.finish_repair(board, TECH, NOW, ("mainboard_replacement",), "L3", ())
    lifecycle.finish_repair(board, TECH, NOW, ("mainboard_replacement",), "L3", (), NEW_IMEI)
    assert board.current_imei == NEW_IMEI and board.intake.imei != NEW_IMEI


def test_warranty_work_of_an_unauthorised_brand_is_never_repaired_on_the_spot() -> None:
    order = new_order(warranty="in_warranty")
    order.brand_authorised = False
    walk_to_approved(order, total=20_000)
    with pytest.raises(Conflict):
        lifecycle.start_repair(order, TECH, NOW)


def test_a_second_warranty_repair_of_one_fault_offers_a_swap() -> None:
    order = new_order(warranty="in_warranty")
    lifecycle.diagnose(order, TECH, NOW, diagnosis(), PRICES, frozenset({"F-BAT"}))
    assert not order.work.swap_offered
    lifecycle.diagnose(order, TECH, NOW, diagnosis(), PRICES, frozenset({"F-LCD"}))
    assert order.work.swap_offered and "F-LCD" in order.timeline[-1].note
    paid = new_order()  # out of warranty: no swap is due
    lifecycle.diagnose(paid, TECH, NOW, diagnosis(), PRICES, frozenset({"F-LCD"}))
    assert not paid.work.swap_offered


def test_quick_orders_are_paid_and_closed_at_once() -> None:
    sale = new_order(service_type="accessory")
    parts = (PlannedPart("B", 2),)
    with pytest.raises(InvalidInput):
        routes.complete(sale, CLERK, NOW, ("sell",), parts, PRICES, 0, "cash", 5_000)
    routes.complete(sale, CLERK, NOW, ("sell",), parts, PRICES, 1_000, "cash", 11_000)
    assert sale.status == "closed" and sum(p.amount_fen for p in sale.work.payments) == 11_000
    assert [(x.part_id, x.quantity) for x in sale.work.lines] == [("B", 2)]
    free = new_order(warranty="in_warranty", service_type="software")
    routes.complete(free, TECH, NOW, ("upgrade",), (), PRICES, 3_000, "", 0)
    assert free.status == "closed" and free.work.payments == []
    repair = new_order()
    with pytest.raises(Conflict):
        routes.complete(repair, CLERK, NOW, ("sell",), (), PRICES, 0, "", 0)


def test_a_manufacturer_that_swaps_after_three_repairs_offers_it_at_the_third() -> None:
    order = new_order(warranty="in_warranty")
    lifecycle.diagnose(order, TECH, NOW, diagnosis(), PRICES, ("F-LCD",), swap_after_repairs=3)
    assert not order.work.swap_offered
    again = ("F-LCD", "F-BAT", "F-LCD")
    lifecycle.diagnose(order, TECH, NOW, diagnosis(), PRICES, again, swap_after_repairs=3)
    assert order.work.swap_offered and "no. 3" in order.work.swap_offer_reason
