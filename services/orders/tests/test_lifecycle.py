"""The state machine on its own: guards, timeline, and random walks that never break a guard."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, Forbidden, InvalidInput
from services.orders.domain import lifecycle, routes
from services.orders.domain.lifecycle import STEPS
from services.orders.domain.order import Diagnosis, Intake, PlannedPart, Quote, RepairOrder
from services.orders.domain.warranty import WarrantyDecision

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
CLERK = AuthContext("u-clerk", "clerk", "SH", "SH-001")
TECH = AuthContext("u-tech", "technician", "SH", "SH-001")
MANAGER = AuthContext("u-mgr", "branch_manager", "SH", None)
KEEPER = AuthContext("u-keeper", "warehouse_keeper", "SH", "SH-001")
PRICES = {"HW-SCR-001": 20_000, "B": 5_000}  # the catalog's retail prices, in fen


def new_order(warranty: str = "out_of_warranty", service_type: str = "repair") -> RepairOrder:
    intake = Intake(
        customer_name="张三",
        customer_phone="13812345678",
        imei="490154203237518",
        brand="huawei",
        model="p60",
        colour="",
        purchase_date=date(2024, 1, 1),
        fault_description="screen cracked",
        symptom_code="",
        service_type=service_type,
        accessories="",
        appearance="",
        promised_date=None,
    )
    return RepairOrder(
        id="o-1",
        number="SH-001-260302-0001",
        status="received",
        branch_id="SH",
        store_id="SH-001",
        intake=intake,
        warranty=WarrantyDecision(warranty, ("repair",), "", None, False),
        brand_authorised=True,
        repeat_repair=False,
        received_at=NOW,
        created_by="u-clerk",
    )


def diagnosis(**changes: object) -> Diagnosis:
    values: dict[str, object] = dict(
        symptom_code="S01",
        fault_code="F-LCD",
        cause_code="C-DROP",
        actions=("replace_screen",),
        parts=(PlannedPart("HW-SCR-001", 1),),
        repair_level="L2",
    )
    values.update(changes)
    return Diagnosis(**values)  # type: ignore[arg-type]


def parts_came(order: RepairOrder, actor: AuthContext, reserved: dict[str, int]) -> None:
    """The `parts` step as the handler takes it: the guard, then inventory's answer."""
    lifecycle.check_step(order, "parts", actor)
    lifecycle.parts_reserved(order, actor, NOW, reserved)


def walk_to_approved(order: RepairOrder, total: int = 30_000) -> None:
    lifecycle.diagnose(order, TECH, NOW, diagnosis(), PRICES)
    lifecycle.quote(order, CLERK, NOW, total - 20_000)
    lifecycle.approve(order, CLERK, NOW, accepted=True)


def test_a_paid_repair_walks_to_closed_and_each_step_is_in_the_timeline() -> None:
    order = new_order()
    walk_to_approved(order)
    assert order.status == "approved"
    lifecycle.parts_reserved(order, TECH, NOW, {"L1": 1})
    assert order.status == "approved"
    lifecycle.start_repair(order, TECH, NOW)
    assert order.work.lines[0].issued == 1 and order.work.lines[0].reserved == 0
    lifecycle.finish_repair(order, TECH, NOW, ("replace_screen",), "L2", ())
    lifecycle.check_quality(order, CLERK, NOW, passed=False, note="touch dead in a corner")
    assert order.status == "in_repair"
    lifecycle.finish_repair(order, TECH, NOW, ("replace_screen",), "L2", ())
    lifecycle.check_quality(order, CLERK, NOW + timedelta(hours=1), passed=True)
    lifecycle.pick_up(order, CLERK, NOW + timedelta(hours=2), "wechat_pay", 30_000)
    assert order.status == "closed"
    assert order.closed_at == NOW + timedelta(hours=2)
    assert order.work.payments[0].amount_fen == 30_000
    steps = [(e.step, e.status) for e in order.timeline]
    assert steps == [
        ("diagnosis", "diagnosed"),
        ("quote", "awaiting_approval"),
        ("approval", "approved"),
        ("repair/start", "in_repair"),
        ("repair/finish", "quality_check"),
        ("qc", "in_repair"),
        ("repair/finish", "quality_check"),
        ("qc", "ready_for_pickup"),
        ("pickup", "closed"),
    ]
    last = order.timeline[-1]
    assert (last.user_id, last.store_id) == ("u-clerk", "SH-001")
    assert last.note == "paid 30000 fen by wechat_pay"


def test_a_part_the_catalog_does_not_know_is_refused_at_diagnosis() -> None:
    order = new_order()
    with pytest.raises(InvalidInput) as caught:
        lifecycle.diagnose(order, TECH, NOW, diagnosis(parts=(PlannedPart("NOPE", 1),)), PRICES)
    assert [e.field for e in caught.value.errors] == ["parts[0].part_id"]
    assert order.status == "received"


def test_a_step_from_the_wrong_status_is_a_conflict_naming_the_status() -> None:
    order = new_order()
    with pytest.raises(Conflict, match="the order is received"):
        lifecycle.start_repair(order, TECH, NOW)


def test_a_role_that_may_not_take_the_step_is_forbidden_whatever_the_status() -> None:
    order = new_order()
    with pytest.raises(Forbidden):
        lifecycle.diagnose(order, CLERK, NOW, diagnosis(), PRICES)
    with pytest.raises(Forbidden):
        lifecycle.pick_up(order, TECH, NOW, "cash", 0)


def test_overriding_the_warranty_needs_a_reason_and_makes_the_work_chargeable() -> None:
    order = new_order(warranty="in_warranty")
    with pytest.raises(InvalidInput) as caught:
        lifecycle.diagnose(order, TECH, NOW, diagnosis(warranty_override="out_of_warranty"), PRICES)
    assert caught.value.errors[0].field == "override_reason"
    lifecycle.diagnose(
        order,
        TECH,
        NOW,
        diagnosis(warranty_override="out_of_warranty", override_reason="liquid damage"),
        PRICES,
    )
    assert order.warranty.status == "out_of_warranty"
    assert "liquid damage" in order.warranty.reason
    assert lifecycle.chargeable(order)
    assert order.work.lines[0].warranty is False


def test_warranty_work_is_quoted_free_and_picked_up_without_payment() -> None:
    order = new_order(warranty="in_warranty")
    lifecycle.diagnose(order, TECH, NOW, diagnosis(), PRICES)
    with pytest.raises(InvalidInput):
        lifecycle.quote(order, CLERK, NOW, 5_000)
    lifecycle.quote(order, CLERK, NOW, 0)
    assert order.work.quote is not None and order.work.quote.total_fen == 0
    lifecycle.approve(order, CLERK, NOW, accepted=True)
    lifecycle.parts_reserved(order, TECH, NOW, {"L1": 1})
    lifecycle.start_repair(order, TECH, NOW)
    lifecycle.finish_repair(order, TECH, NOW, ("replace_screen",), "L2", ("L1",))
    assert order.work.lines[0].old_part_kept
    lifecycle.check_quality(order, CLERK, NOW, passed=True)
    with pytest.raises(InvalidInput):
        lifecycle.pick_up(order, CLERK, NOW, "cash", 100)
    lifecycle.pick_up(order, CLERK, NOW, "", 0)
    assert order.status == "closed" and order.work.payments == []


@pytest.mark.parametrize(
    ("warranty", "actions", "total", "needed"),
    [
        ("out_of_warranty", ("replace_screen",), 100_000, False),  # at the threshold
        ("out_of_warranty", ("replace_screen",), 100_001, True),  # above it
        ("in_warranty", ("mainboard_replacement",), 0, True),
        ("out_of_warranty", ("mainboard_replacement",), 50_000, False),
    ],
)
def test_the_branch_manager_approves_big_quotes_and_warranty_mainboards(
    warranty: str, actions: tuple[str, ...], total: int, needed: bool
) -> None:
    order = new_order(warranty=warranty)
    lifecycle.diagnose(order, TECH, NOW, diagnosis(actions=actions), PRICES)
    lifecycle.quote(order, CLERK, NOW, total - 20_000 if warranty == "out_of_warranty" else 0)
    assert order.work.manager_approval_required is needed
    lifecycle.approve(order, CLERK, NOW, accepted=True)
    assert order.status == ("awaiting_approval" if needed else "approved")
    if needed:
        lifecycle.manager_approve(order, MANAGER, NOW, approved=True)
        assert order.status == "approved"
        assert order.timeline[-1].store_id == "SH-001"  # a branch user acts at the order's store
    else:
        with pytest.raises(Conflict):
            lifecycle.manager_approve(order, MANAGER, NOW, approved=True)


def test_a_shortage_waits_for_parts_until_they_come() -> None:
    order = new_order()
    lifecycle.diagnose(
        order,
        TECH,
        NOW,
        diagnosis(parts=(PlannedPart("HW-SCR-001", 2), PlannedPart("B", 1))),
        PRICES,
    )
    lifecycle.quote(order, CLERK, NOW, 1_000)
    assert order.work.quote == Quote(1_000, 2 * 20_000 + 5_000, "SH-001")
    lifecycle.approve(order, CLERK, NOW, accepted=True)
    lifecycle.parts_reserved(order, TECH, NOW, {"L1": 1, "L2": 1})
    assert order.status == "waiting_parts"
    assert order.timeline[-1].note == "short: HW-SCR-001 ×1"
    parts_came(order, KEEPER, {"L1": 1})
    assert order.status == "waiting_parts"
    assert (order.timeline[-1].user_id, order.timeline[-1].note) == (
        "u-keeper",
        "short: HW-SCR-001 ×1",
    )
    parts_came(order, KEEPER, {"L1": 2})
    assert order.status == "approved"


def test_a_cancel_releases_the_reservations_and_a_decline_ends_the_order() -> None:
    order = new_order()
    walk_to_approved(order)
    lifecycle.parts_reserved(order, TECH, NOW, {"L1": 1})
    lifecycle.cancel(order, CLERK, NOW, "customer changed their mind")
    assert order.work.lines[0].reserved == 0 and order.work.lines[0].released
    declined = new_order()
    lifecycle.diagnose(declined, TECH, NOW, diagnosis(), PRICES)
    lifecycle.quote(declined, CLERK, NOW, 50_000)
    lifecycle.approve(declined, CLERK, NOW, accepted=False, note="too dear")
    assert declined.status == "declined"
    assert declined.timeline[-1].note == "too dear"


# --- random walks -----------------------------------------------------------------------------

PARTNER_CLERK = AuthContext("u-p-clerk", "clerk", "SH", "SH-002")
PARTNER_TECH = AuthContext("u-p-tech", "technician", "SH", "SH-002")
ACTORS = (
    CLERK,
    TECH,
    MANAGER,
    KEEPER,
    PARTNER_CLERK,
    PARTNER_TECH,
    AuthContext("u-an", "hq_analyst"),
)
NEW_IMEIS = ("356938035643809", "353918057426386", "867530020419838")


def _take(order: RepairOrder, name: str, actor: AuthContext, flag: bool, amount: int) -> None:
    """Take one step with plausible data; the flag picks a branch (accept, pass, a shortage)."""
    line_ids = [line.line_id for line in order.work.lines]
    if name == "diagnosis":
        lifecycle.diagnose(order, actor, NOW, diagnosis(), PRICES)
    elif name == "quote":
        free = not lifecycle.chargeable(order)
        lifecycle.quote(order, actor, NOW, 0 if free else amount)
    elif name == "approval":
        lifecycle.approve(order, actor, NOW, accepted=flag)
    elif name == "manager-approval":
        lifecycle.manager_approve(order, actor, NOW, approved=flag)
    elif name == "parts":
        parts_came(order, actor, dict.fromkeys(line_ids, 1 if flag else 0))
    if name in ("approval", "manager-approval") and order.status == "approved":
        # As the handler does: reserve at once; an odd amount stands for a shortage.
        lifecycle.parts_reserved(order, actor, NOW, dict.fromkeys(line_ids, amount % 2))
    elif name == "repair/start":
        lifecycle.start_repair(order, actor, NOW)
    elif name == "repair/finish":
        lifecycle.finish_repair(order, actor, NOW, ("replace_screen",), "L2", ())
    elif name == "qc":
        lifecycle.check_quality(order, actor, NOW, passed=flag, note="checked")
    elif name == "pickup":
        due = order.work.quote.total_fen if order.work.quote and lifecycle.chargeable(order) else 0
        lifecycle.pick_up(order, actor, NOW, "cash", due)
    elif name == "cancel":
        lifecycle.cancel(order, actor, NOW, "changed mind")
    elif name == "send-out":
        routes.send_out(order, actor, NOW, routes.Partner("SH", "SH-002", flag), "")
    elif name == "receive":
        routes.receive(order, actor, NOW)
    elif name == "return":
        routes.return_to_intake(order, actor, NOW, "" if flag else "cannot fix")
    elif name == "factory-return":
        routes.ship_to_factory(order, actor, NOW, "SF", "SF1234")
    elif name == "factory-receive":
        outcome = routes.FACTORY_OUTCOMES[amount % 3]
        new_imei = NEW_IMEIS[amount % 2] if outcome == "replaced" else ""
        routes.receive_from_factory(order, actor, NOW, outcome, new_imei, "no cover")
    elif name == "swap":
        routes.swap(order, actor, NOW, NEW_IMEIS[2], "SWAP-1" if flag else "")
    elif name == "complete":
        routes.complete(order, actor, NOW, ("flash",), (), PRICES, amount, "cash", amount)


def draw_move(data: st.DataObject, status: str) -> tuple[str, AuthContext, bool, int]:
    """Mostly a step the status allows by a role that may take it, so that walks go deep (a
    cancel now and then); sometimes any step by anyone, so that the guards are tried."""
    possible = sorted(
        name
        for name, step in STEPS.items()
        if status in step.from_statuses and (name != "cancel" or data.draw(st.integers(0, 9)) == 0)
    )
    plausible = bool(possible) and data.draw(st.integers(0, 9)) < 8
    name = data.draw(st.sampled_from(possible if plausible else sorted(STEPS)))
    fitting = [a for a in ACTORS if a.role in STEPS[name].roles]
    actor = data.draw(st.sampled_from(fitting if plausible else ACTORS))
    return name, actor, data.draw(st.booleans()), data.draw(st.integers(0, 200_000))


@settings(max_examples=300, deadline=None)
@given(warranty=st.sampled_from(["in_warranty", "out_of_warranty"]), data=st.data())
def test_no_random_walk_reaches_a_status_its_guards_forbid(
    warranty: str, data: st.DataObject
) -> None:
    order = new_order(warranty=warranty)
    for _ in range(data.draw(st.integers(0, 40))):
        name, actor, flag, amount = draw_move(data, order.status)
        before = replace(order, timeline=list(order.timeline))
        try:
            _take(order, name, actor, flag, amount)
        except (Conflict, Forbidden, InvalidInput):
            # A refused step changes nothing.
            assert (order.status, len(order.timeline)) == (before.status, len(before.timeline))
            continue
        step = STEPS[name]
        assert actor.role in step.roles
        assert before.status in step.from_statuses
        # Every move is in the timeline, by whom and where.
        assert len(order.timeline) > len(before.timeline)
        assert order.timeline[-1].status == order.status
        assert order.timeline[-1].user_id == actor.user_id
        # A store user acts only at the order's store the step belongs to.
        if actor.store_id:
            assert actor.store_id in order.store_ids()
        # The statuses that promise something keep their promise.
        work = order.work
        promising = ("approved", "in_repair", "quality_check", "ready_for_pickup")
        # Repaired by the factory, it comes back with no quote of ours.
        if order.status in promising and not work.factory:
            assert lifecycle.approvals_complete(order)
            assert work.quote is not None and work.diagnosis is not None
        if order.status == "approved":
            assert all(line.short == 0 for line in work.lines)
        if order.status in ("in_repair", "quality_check") and not work.factory:
            assert lifecycle.repairable_here(order)
        if order.status == "closed":
            paid = sum(p.amount_fen for p in work.payments)
            if work.declined:
                assert paid == work.inspection_fee_fen
            else:
                due = work.quote.total_fen if work.quote else 0
                assert paid == (due if lifecycle.chargeable(order) else 0)
        # The device is with the partner only between its receipt there and its return, and
        # nothing the intake store does for the customer happens meanwhile (the partner may
        # send it on to the factory, though).
        if work.at_partner:
            assert work.partner_store_id
            assert order.status not in (
                "sent_out",
                "returned_from_partner",
                "ready_for_pickup",
                "closed",
                "cancelled",
            )
        if order.status in ("sent_out", "returned_from_partner"):
            assert work.partner_store_id and not work.at_partner
        if work.swap:
            assert routes.swap_planned(order) and order.current_imei == work.swap.imei
        # Parts balance: a line never holds more than it asked for, and an order past the
        # start of its repair or cancelled holds no reservation.
        for line in work.lines:
            assert line.reserved >= 0 and line.issued >= 0
            assert line.reserved + line.issued + line.short == line.quantity
        if order.status in ("in_repair", "quality_check", "ready_for_pickup", "closed"):
            assert all(line.reserved == 0 for line in work.lines)
        if order.status in ("cancelled", "declined"):
            assert all(line.reserved == 0 and line.issued == 0 for line in work.lines)
