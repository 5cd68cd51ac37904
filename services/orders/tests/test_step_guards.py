"""Every step's guards come from one table (`lifecycle.STEPS`): walked for every step, from each
status it starts from, at a store authorised for the brand or not, in or out of warranty. A
step doing the work (issuing parts, handing over a swap unit, completing a quick order) is
refused where an in-warranty order must be sent on (SPEC §2); every other step is taken."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, InvalidInput
from services.orders.domain import lifecycle, routes
from services.orders.domain.lifecycle import STEPS
from services.orders.domain.order import FactoryReturn, RepairOrder
from services.orders.tests.test_lifecycle import NOW, PRICES, diagnosis, new_order

INTAKE_STORE, PARTNER_STORE = "SH-001", "SH-002"
SWAP_IMEI = "356938035643809"


def fabricated(step: str, status: str, warranty: str, authorised: bool) -> RepairOrder:
    """An order standing at `status`, with what that status implies for `step` to be taken."""
    service_type = {"complete": "accessory", "swap": "swap"}.get(step, "repair")
    order = new_order(warranty=warranty, service_type=service_type)
    order.status = status
    order.brand_authorised = authorised
    order.warranty = replace(
        order.warranty, send_on_required=warranty == "in_warranty" and not authorised
    )
    work = order.work
    if status in ("sent_out", "at_partner", "returned_from_partner"):
        work.partner_branch_id, work.partner_store_id = "SH", PARTNER_STORE
        work.at_partner = status == "at_partner"
    if step == "return" and status != "at_partner":
        work.partner_branch_id, work.partner_store_id, work.at_partner = "SH", PARTNER_STORE, True
    if step == "manager-approval":
        work.manager_approval_required = True
    if step == "pickup" and status == "declined":
        work.declined = True
    if status == "at_factory":
        work.factory = FactoryReturn("SF", "SF1234", NOW)
    if step == "swap":
        work.diagnosis = diagnosis(actions=("swap",))
    return order


def actor(order: RepairOrder, step: str) -> AuthContext:
    """A user of the first role the step allows, at the store the step belongs to."""
    rule = STEPS[step]
    role = rule.roles[0]
    if role == "branch_manager":
        return AuthContext("u-mgr", role, "SH", None)
    store = (
        order.holder_store_id
        if rule.where in (lifecycle.HOLDER, lifecycle.ANY)
        else lifecycle.destination_store_id(order)
        if rule.where == lifecycle.DESTINATION
        else order.store_id
    )
    return AuthContext(f"u-{role}", role, "SH", store)


def take(order: RepairOrder, step: str, who: AuthContext, now: datetime) -> None:
    """The step through its domain function, with data it accepts."""
    free = not lifecycle.chargeable(order)
    if step == "diagnosis":
        lifecycle.diagnose(order, who, now, diagnosis(), PRICES)
    elif step == "quote":
        lifecycle.quote(order, who, now, 0 if free else 10_000)
    elif step == "approval":
        lifecycle.approve(order, who, now, accepted=True)
    elif step == "manager-approval":
        lifecycle.manager_approve(order, who, now, approved=True)
    elif step == "parts":
        lifecycle.check_step(order, "parts", who)  # as the handler takes it
        lifecycle.parts_reserved(order, who, now, {})
    elif step == "repair/start":
        lifecycle.start_repair(order, who, now)
    elif step == "repair/finish":
        lifecycle.finish_repair(order, who, now, ("replace_screen",), "L2", ())
    elif step == "qc":
        lifecycle.check_quality(order, who, now, passed=True)
    elif step == "pickup":
        lifecycle.pick_up(order, who, now, "cash", 0)
    elif step == "cancel":
        lifecycle.cancel(order, who, now, "changed mind")
    elif step == "send-out":
        routes.send_out(order, who, now, routes.Partner("SH", PARTNER_STORE, True), "")
    elif step == "receive":
        routes.receive(order, who, now)
    elif step == "return":
        routes.return_to_intake(order, who, now, "cannot fix")
    elif step == "factory-return":
        routes.ship_to_factory(order, who, now, "SF", "SF1234")
    elif step == "factory-receive":
        routes.receive_from_factory(order, who, now, "repaired")
    elif step == "swap":
        routes.swap(order, who, now, SWAP_IMEI, "HW-SWAP-P60")
    elif step == "complete":
        due = 0 if free else 3_000
        routes.complete(order, who, now, ("flash",), (), PRICES, due, "cash", due)
    else:
        raise AssertionError(f"no way to take {step} here")


def test_the_walk_takes_every_step_of_the_table() -> None:
    """A step added to the table without its way here fails, instead of going unwalked."""
    for name, rule in STEPS.items():
        order = fabricated(name, rule.from_statuses[0], "out_of_warranty", True)
        take(order, name, actor(order, name), NOW)


@pytest.mark.parametrize("step", sorted(STEPS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_step_keeps_the_guards_of_the_table(step: str, data: st.DataObject) -> None:
    rule = STEPS[step]
    status = data.draw(st.sampled_from(rule.from_statuses), label="status")
    warranty = data.draw(st.sampled_from(["in_warranty", "out_of_warranty"]), label="warranty")
    authorised = data.draw(st.booleans(), label="authorised")
    order = fabricated(step, status, warranty, authorised)
    who = actor(order, step)
    before = (order.status, len(order.timeline), [replace(x) for x in order.work.lines])
    send_on = warranty == "in_warranty" and not authorised and not order.work.at_partner
    if rule.does_work and send_on:
        with pytest.raises(Conflict) as refused:
            take(order, step, who, NOW)
        assert refused.value.message == lifecycle.SEND_ON
        # A refused step changes nothing.
        assert (order.status, len(order.timeline), order.work.lines) == before
        return
    take(order, step, who, NOW)
    assert order.timeline[-1].step == step
    if rule.does_work:
        assert lifecycle.repairable_here(order)


def test_only_the_steps_that_do_the_work_are_kept_from_a_store_that_must_send_on() -> None:
    doing = {name for name, rule in STEPS.items() if rule.does_work}
    assert doing == {"repair/start", "swap", "complete"}


def test_an_in_warranty_quick_order_at_an_unauthorised_store_is_sent_on_not_done_free() -> None:
    order = fabricated("complete", "received", "in_warranty", authorised=False)
    clerk = actor(order, "complete")
    with pytest.raises(Conflict, match="send it to an authorised store"):
        take(order, "complete", clerk, NOW)
    assert order.status == "received" and not order.work.payments
    # Sending it on is the way.
    routes.send_out(order, clerk, NOW, routes.Partner("SH", PARTNER_STORE, True), "")
    assert order.status == "sent_out"


def test_a_swap_names_the_unit_it_issues() -> None:
    order = fabricated("swap", "approved", "out_of_warranty", authorised=True)
    clerk = actor(order, "swap")
    with pytest.raises(InvalidInput) as refused:
        routes.swap(order, clerk, NOW, SWAP_IMEI, "")
    assert [e.field for e in refused.value.errors] == ["part_id"]
    assert order.status == "approved" and order.work.swap is None and not order.work.lines
    routes.swap(order, clerk, NOW, SWAP_IMEI, "HW-SWAP-P60")
    (unit,) = order.work.lines
    assert (unit.line_id, unit.part_id, unit.serials) == ("S1", "HW-SWAP-P60", (SWAP_IMEI,))


def test_a_second_customer_approval_while_the_manager_is_awaited_is_refused() -> None:
    order = fabricated("approval", "awaiting_approval", "out_of_warranty", authorised=True)
    order.work.manager_approval_required = True
    clerk = actor(order, "approval")
    lifecycle.approve(order, clerk, NOW, accepted=True)
    assert order.status == "awaiting_approval" and order.work.customer_approved
    entries = len(order.timeline)
    with pytest.raises(Conflict, match="branch manager's answer is awaited"):
        lifecycle.approve(order, clerk, NOW, accepted=True)
    assert len(order.timeline) == entries
    # The manager's answer still completes it.
    manager = AuthContext("u-mgr", "branch_manager", "SH", None)
    lifecycle.manager_approve(order, manager, NOW, approved=True)
    assert order.status == "approved"


def test_a_second_manager_approval_while_the_customer_is_awaited_is_refused() -> None:
    order = fabricated("manager-approval", "awaiting_approval", "out_of_warranty", True)
    manager = actor(order, "manager-approval")
    lifecycle.manager_approve(order, manager, NOW, approved=True)
    with pytest.raises(Conflict, match="customer's answer is awaited"):
        lifecycle.manager_approve(order, manager, NOW, approved=True)
    assert len(order.timeline) == 1
