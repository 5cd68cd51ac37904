"""Serials and successors through the gRPC servicer on a real database: a swap takes exactly
the unit its IMEI names (a unit not in stock is a 409 naming it), and a short superseded line
is offered its successor, taken at the `parts` step and priced anew (替代料)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aftersales.events.v1.order_events_pb2 import OrderStatusChanged
from aftersales.orders.v1 import orders_pb2
from servicekit.errors import Conflict, InvalidInput
from servicekit.runtime import Runtime
from services.orders.adapters.orm import outbox
from services.orders.tests.fake_parts import FakeParts
from services.orders.tests.test_lifecycle_integration import (
    CLERK,
    PRICE,
    SCREEN,
    TECH,
    Desk,
    runtime,
    yes,
)
from services.orders.tests.test_routes_integration import NEW_IMEI, UNIT, _approved_swap

__all__ = ["runtime"]  # the fixture, shared

OTHER_IMEI = "356938035643817"
OLD, NEW, ASIDE = "HW-BAT-OLD", "HW-BAT-NEW", "HW-BAT-ASIDE"
PRICES = {OLD: 20_000, NEW: 25_000, ASIDE: 18_000}


@pytest.mark.service("orders")
async def test_a_swap_takes_exactly_the_unit_its_imei_names(runtime: Runtime) -> None:
    parts = FakeParts(units={UNIT: [OTHER_IMEI, NEW_IMEI]})
    desk = Desk(runtime, parts)
    order = await _approved_swap(desk)
    unit = orders_pb2.SwapRequest(imei=NEW_IMEI, part_id=UNIT)
    order = await desk.step(CLERK, order, "swap", swap=unit)
    [line] = [x for x in order.lines if x.line_id == "S1"]
    assert (line.part_id, line.issued, list(line.serials)) == (UNIT, 1, [NEW_IMEI])
    assert parts.units[UNIT] == [OTHER_IMEI]  # the other unit stays in swap stock
    assert parts.serials_of[(order.id, "S1")] == [NEW_IMEI]
    assert order.swap.faulty_return_owed and order.swap.faulty_imei == order.device.imei


@pytest.mark.service("orders")
async def test_a_swap_unit_not_in_stock_is_refused_naming_its_imei(runtime: Runtime) -> None:
    parts = FakeParts(units={UNIT: [OTHER_IMEI]})
    desk = Desk(runtime, parts)
    order = await _approved_swap(desk)
    unit = orders_pb2.SwapRequest(imei=NEW_IMEI, part_id=UNIT)
    with pytest.raises(Conflict, match=f"swap unit {NEW_IMEI}"):
        await desk.step(CLERK, order, "swap", swap=unit)
    assert parts.units[UNIT] == [OTHER_IMEI] and not any(parts.reserved.values())
    assert (await desk.get(order.id)).status == "approved"


@pytest.mark.service("orders")
async def test_a_swap_unit_must_be_a_serialised_part(runtime: Runtime) -> None:
    parts = FakeParts(stock={SCREEN: 1}, prices={SCREEN: PRICE})
    desk = Desk(runtime, parts)
    order = await _approved_swap(desk)
    unit = orders_pb2.SwapRequest(imei=NEW_IMEI, part_id=SCREEN)
    with pytest.raises(InvalidInput) as caught:
        await desk.step(CLERK, order, "swap", swap=unit)
    assert [e.field for e in caught.value.errors] == ["part_id"]
    assert parts.stock[SCREEN] == 1 and (await desk.get(order.id)).status == "approved"


def battery_parts() -> FakeParts:
    """The old battery is out at the store; its successor is in (替代料)."""
    return FakeParts(
        stock={OLD: 0, NEW: 2, ASIDE: 5}, prices=PRICES, successors={OLD: NEW, ASIDE: NEW}
    )


async def waiting_for_old(desk: Desk) -> orders_pb2.RepairOrder:
    order = await desk.intake()
    plan = orders_pb2.Diagnosis(
        fault_code="F-BAT",
        actions=["replace_battery"],
        parts=[orders_pb2.PlannedPart(part_id=OLD, quantity=1)],
        repair_level="L1",
    )
    order = await desk.step(TECH, order, "diagnosis", diagnosis=plan)
    quote = orders_pb2.QuoteRequest(labour_fen=10_000)
    order = await desk.step(CLERK, order, "quote", quote=quote)
    return await desk.step(CLERK, order, "approval", decision=yes())


def take(line_id: str, part_id: str) -> orders_pb2.PartsRequest:
    return orders_pb2.PartsRequest(
        substitutes=[orders_pb2.Substitute(line_id=line_id, part_id=part_id)]
    )


@pytest.mark.service("orders")
async def test_a_short_superseded_line_takes_its_successor_and_is_approved_again(
    runtime: Runtime,
) -> None:
    parts = battery_parts()
    desk = Desk(runtime, parts)
    order = await waiting_for_old(desk)
    assert order.status == "waiting_parts"
    [line] = order.lines
    assert (line.part_id, line.short, line.successor_part_id, line.successor_available) == (
        OLD,
        1,
        NEW,
        2,
    )
    async with runtime.db.session() as session:
        payload = await session.scalar(select(outbox.c.payload).order_by(outbox.c.seq.desc()))
    waiting = OrderStatusChanged.FromString(payload)
    assert [
        (p.part_id, p.successor_part_id, p.successor_available) for p in waiting.short_parts
    ] == [(OLD, NEW, 2)]

    # The successor costs more: held at once, and the customer approves the new quote.
    order = await desk.step(TECH, order, "parts", parts=take("L1", NEW))
    [line] = order.lines
    assert (line.part_id, line.retail_price_fen, line.reserved, line.successor_part_id) == (
        NEW,
        25_000,
        1,
        "",
    )
    assert order.status == "awaiting_approval" and order.quote.total_fen == 35_000
    assert parts.parts_of[(order.id, "L1")] == NEW and parts.stock[NEW] == 1
    order = await desk.step(CLERK, order, "approval", decision=yes())
    assert order.status == "approved" and order.lines[0].reserved == 1
    assert parts.stock[NEW] == 1  # reserved once
    order = await desk.step(TECH, order, "repair/start")
    assert parts.issued[(order.id, "L1")] == 1


@pytest.mark.service("orders")
async def test_a_part_off_the_superseded_chain_is_refused_and_changes_nothing(
    runtime: Runtime,
) -> None:
    parts = battery_parts()
    desk = Desk(runtime, parts)
    order = await waiting_for_old(desk)
    with pytest.raises(Conflict):
        await desk.step(TECH, order, "parts", parts=take("L1", ASIDE))
    after = await desk.get(order.id)
    assert (after.status, after.version, after.lines[0].part_id) == (
        "waiting_parts",
        order.version,
        OLD,
    )
    assert parts.parts_of[(order.id, "L1")] == OLD and parts.stock[ASIDE] == 5
