"""The routes against a real database through the gRPC servicer: a partner's parts booked at
its own warehouse under its own reference, both stores on the events, IMEI links written with
the step, and no unit stranded when a swap or a quick order cannot finish."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from aftersales.events.v1.order_events_pb2 import OrderStatusChanged
from aftersales.orders.v1 import orders_pb2
from servicekit.auth import AuthContext
from servicekit.errors import Conflict, PreconditionFailed
from servicekit.runtime import Runtime
from services.orders.adapters.orm import imei_links, outbox, repair_orders
from services.orders.tests.fake_parts import FakeParts
from services.orders.tests.test_lifecycle_integration import (
    CLERK,
    DIAGNOSIS,
    PRICE,
    SCREEN,
    TECH,
    Desk,
    runtime,
    someone_else_changes,
    yes,
)

__all__ = ["runtime"]  # the fixture, shared

PARTNER_CLERK = AuthContext("u-p-clerk", "clerk", "ZJ", "ZJ-001")
PARTNER_TECH = AuthContext("u-p-tech", "technician", "ZJ", "ZJ-001")
MANAGER = AuthContext("u-mgr", "branch_manager", "SH", None)
UNIT = "HW-SWAP-P60"
NEW_IMEI = "356938035643809"


@pytest.mark.service("orders")
async def test_a_partner_books_its_parts_at_its_own_warehouse(runtime: Runtime) -> None:
    parts = FakeParts(stock={SCREEN: 2}, prices={SCREEN: PRICE})
    desk = Desk(runtime, parts)
    order = await desk.intake()
    out = orders_pb2.SendOutRequest(branch_id="ZJ", store_id="ZJ-001")
    order = await desk.step(CLERK, order, "send-out", send_out=out)
    order = await desk.step(PARTNER_CLERK, order, "receive")
    order = await desk.step(PARTNER_TECH, order, "diagnosis", diagnosis=DIAGNOSIS)
    quote = orders_pb2.QuoteRequest(labour_fen=5_000)
    order = await desk.step(PARTNER_CLERK, order, "quote", quote=quote)
    order = await desk.step(PARTNER_CLERK, order, "approval", decision=yes())
    assert order.status == "approved"
    ref = f"{order.id}/ZJ-001"
    assert ("reserve", ref, ["P1"]) in parts.calls
    assert parts.reserved[(ref, "P1")] == 1
    order = await desk.step(PARTNER_TECH, order, "repair/start")
    assert parts.issued[(ref, "P1")] == 1

    async with runtime.db.session() as session:
        payload = await session.scalar(select(outbox.c.payload).order_by(outbox.c.seq.desc()))
    event = OrderStatusChanged.FromString(payload)
    assert [(s.branch_id, s.store_id, s.role, s.labour_fen) for s in event.stores] == [
        ("SH", "SH-001", "intake", 0),
        ("ZJ", "ZJ-001", "repairer", 5_000),
    ]
    assert (event.warehouse_id, event.holder_store_id) == ("WH-ZJ-001", "ZJ-001")


@pytest.mark.service("orders")
async def test_a_quick_order_short_of_parts_strands_no_reservation(runtime: Runtime) -> None:
    parts = FakeParts(stock={SCREEN: 1}, prices={SCREEN: PRICE})
    desk = Desk(runtime, parts)
    order = await desk.intake()
    async with runtime.db.session() as session:
        # An accessory sale, taken in as such.
        await session.execute(update(repair_orders).values(service_type="accessory"))
        await session.commit()
    order = await desk.get(order.id)
    quick = orders_pb2.QuickService(
        actions_done=["sell"],
        parts=[orders_pb2.PlannedPart(part_id=SCREEN, quantity=2)],
        method="cash",
        amount_fen=2 * PRICE,
    )
    with pytest.raises(Conflict, match="short"):
        await desk.step(CLERK, order, "complete", quick=quick)
    assert parts.stock[SCREEN] == 1 and not any(parts.reserved.values())
    assert (await desk.get(order.id)).status == "received"


async def _approved_swap(desk: Desk) -> orders_pb2.RepairOrder:
    order = await desk.intake()
    swap_plan = orders_pb2.Diagnosis(fault_code="F-MB", actions=["swap"], repair_level="L1")
    order = await desk.step(TECH, order, "diagnosis", diagnosis=swap_plan)
    order = await desk.step(CLERK, order, "quote", quote=orders_pb2.QuoteRequest(labour_fen=0))
    return await desk.step(CLERK, order, "approval", decision=yes())


@pytest.mark.service("orders")
async def test_a_swap_links_the_imeis_and_gives_its_unit_back_when_it_cannot_be_written(
    runtime: Runtime,
) -> None:
    parts = FakeParts(units={UNIT: [NEW_IMEI]}, prices={})
    desk = Desk(runtime, parts)
    order = await _approved_swap(desk)
    unit = orders_pb2.SwapRequest(imei=NEW_IMEI, part_id=UNIT)
    parts.meanwhile["issue"] = someone_else_changes(runtime, order.id)
    with pytest.raises(PreconditionFailed):
        await desk.step(CLERK, order, "swap", swap=unit)
    # Given back, by its serial.
    assert parts.stock[UNIT] == 1 and parts.issued[(order.id, "S1")] == 0
    assert parts.units[UNIT] == [NEW_IMEI]

    order = await desk.get(order.id)
    order = await desk.step(CLERK, order, "swap", swap=unit)
    assert (order.status, order.current_imei, order.swap.faulty_imei) == (
        "ready_for_pickup",
        NEW_IMEI,
        order.device.imei,
    )
    assert parts.stock[UNIT] == 0 and parts.serials_of[(order.id, "S1")] == [NEW_IMEI]
    async with runtime.db.session() as session:
        links = (await session.execute(select(imei_links))).all()
    assert [(x.old_imei, x.new_imei, x.kind) for x in links] == [
        (order.device.imei, NEW_IMEI, "swap")
    ]


@pytest.mark.service("orders")
async def test_approved_at_the_intake_store_the_partner_reserves_its_own_parts(
    runtime: Runtime,
) -> None:
    parts = FakeParts(stock={SCREEN: 2}, prices={SCREEN: PRICE})
    desk = Desk(runtime, parts)
    order = await desk.intake()
    out = orders_pb2.SendOutRequest(branch_id="ZJ", store_id="ZJ-001")
    order = await desk.step(CLERK, order, "send-out", send_out=out)
    order = await desk.step(PARTNER_CLERK, order, "receive")
    order = await desk.step(PARTNER_TECH, order, "diagnosis", diagnosis=DIAGNOSIS)
    quote = orders_pb2.QuoteRequest(labour_fen=5_000)
    order = await desk.step(PARTNER_CLERK, order, "quote", quote=quote)
    order = await desk.step(CLERK, order, "approval", decision=yes("the customer said yes"))
    # The intake clerk cannot book at the partner's warehouse: the partner does, with parts.
    assert order.status == "waiting_parts" and "ZJ-001" in order.timeline[-1].note
    assert not any(call[0] == "reserve" for call in parts.calls)
    order = await desk.step(PARTNER_TECH, order, "parts")
    assert order.status == "approved" and parts.reserved[(f"{order.id}/ZJ-001", "P1")] == 1
