"""Steps of the lifecycle against a real database (SQLite, or PostgreSQL with
TEST_DATABASE_URL), through the gRPC servicer: versions, the timeline, events, and inventory
called outside our transactions with its work undone when the write fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import select, update

from aftersales.events.v1.order_events_pb2 import OrderStatusChanged
from aftersales.orders.v1 import orders_pb2
from servicekit.auth import AuthContext, reset_auth, set_auth
from servicekit.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
)
from servicekit.personal_data import InMemoryKeys
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.orders import handlers
from services.orders.adapters import repository
from services.orders.adapters.orm import outbox, repair_orders
from services.orders.grpc_api import OrdersService
from services.orders.service import SPEC
from services.orders.tests.fake_parts import FakeParts
from services.orders.tests.test_intake_integration import form

CLERK = AuthContext("u-clerk", "clerk", "SH", "SH-001")
TECH = AuthContext("u-tech", "technician", "SH", "SH-001")
OTHER_CLERK = AuthContext("u-clerk2", "clerk", "SH", "SH-002")
SCREEN = "HW-SCR-001"
PRICE = 20_000  # the screen's retail price

KEYS = InMemoryKeys()


def inventory(stock: int) -> FakeParts:
    return FakeParts(stock={SCREEN: stock}, prices={SCREEN: PRICE})


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("orders", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


class Desk:
    """Takes steps through the servicer as a given user, the way the gateway calls it."""

    def __init__(self, runtime: Runtime, parts: FakeParts) -> None:
        self.service = OrdersService(runtime.uow, parts, KEYS)
        self.runtime = runtime

    async def intake(self) -> orders_pb2.RepairOrder:
        order = await handlers.create_repair_order(
            self.runtime.uow,
            repository.BaseDataCache(),
            CLERK,
            form(),
            "SH",
            "SH-001",
            None,
            personal_keys=KEYS,
        )
        return await self.get(order.id)

    async def get(self, order_id: str) -> orders_pb2.RepairOrder:
        return await self.as_(
            CLERK, self.service.GetRepairOrder, orders_pb2.GetRepairOrderRequest(id=order_id)
        )

    async def step(
        self, who: AuthContext, order: orders_pb2.RepairOrder, step: str, **data: object
    ) -> orders_pb2.RepairOrder:
        request = orders_pb2.TakeStepRequest(
            order_id=order.id, expected_version=order.version, step=step, **data
        )
        return await self.as_(who, self.service.TakeStep, request)

    @staticmethod
    async def as_(who: AuthContext, method: object, request: object) -> orders_pb2.RepairOrder:
        token = set_auth(who)
        try:
            return await method(request, None)  # type: ignore[operator, no-any-return]
        finally:
            reset_auth(token)


DIAGNOSIS = orders_pb2.Diagnosis(
    fault_code="F-LCD",
    actions=["replace_screen"],
    parts=[orders_pb2.PlannedPart(part_id=SCREEN, quantity=1)],
    repair_level="L2",
)


async def to_quoted(desk: Desk, total: int = 30_000) -> orders_pb2.RepairOrder:
    order = await desk.intake()
    order = await desk.step(TECH, order, "diagnosis", diagnosis=DIAGNOSIS)
    quote = orders_pb2.QuoteRequest(labour_fen=total - PRICE)
    return await desk.step(CLERK, order, "quote", quote=quote)


def yes(note: str = "") -> orders_pb2.Decision:
    return orders_pb2.Decision(accepted=True, note=note)


@pytest.mark.service("orders")
async def test_a_paid_repair_is_closed_with_its_parts_issued_and_every_step_announced(
    runtime: Runtime,
) -> None:
    parts = inventory(3)
    desk = Desk(runtime, parts)
    order = await to_quoted(desk)
    assert (order.quote.labour_fen, order.quote.parts_fen) == (10_000, PRICE)
    assert order.lines[0].retail_price_fen == PRICE
    assert parts.calls[0] == ("retail_prices", "huawei", [SCREEN])
    order = await desk.step(CLERK, order, "approval", decision=yes())
    assert (order.status, order.lines[0].reserved) == ("approved", 1)
    order = await desk.step(TECH, order, "repair/start")
    assert (order.lines[0].issued, order.lines[0].reserved) == (1, 0)
    report = orders_pb2.RepairReport(actions_done=["replace_screen"], repair_level="L2")
    order = await desk.step(TECH, order, "repair/finish", repair=report)
    order = await desk.step(CLERK, order, "qc", decision=yes("all good"))
    pay = orders_pb2.PickupRequest(method="alipay", amount_fen=30_000)
    order = await desk.step(CLERK, order, "pickup", pickup=pay)

    again = await desk.get(order.id)
    assert again == order
    assert (again.status, again.version) == ("closed", 8)
    assert [(e.step, e.status) for e in again.timeline][-3:] == [
        ("repair/finish", "quality_check"),
        ("qc", "ready_for_pickup"),
        ("pickup", "closed"),
    ]
    assert again.payments[0].amount_fen == 30_000
    assert parts.stock[SCREEN] == 2 and parts.issued[(order.id, "L1")] == 1

    async with runtime.db.session() as session:
        rows = (await session.execute(select(outbox.c.subject, outbox.c.payload))).all()
    subjects = [subject for subject, _ in rows]
    assert subjects[1:] == [
        f"orders.v1.SH.SH-001.order_{s}"
        for s in (
            "diagnosed",
            "awaiting_approval",
            "approved",
            "in_repair",
            "quality_check",
            "ready_for_pickup",
            "closed",
        )
    ]
    closed = OrderStatusChanged.FromString(rows[-1][1])
    assert (closed.from_status, closed.to_status, closed.paid_fen) == (
        "ready_for_pickup",
        "closed",
        30_000,
    )
    assert [(s.branch_id, s.store_id) for s in closed.stores] == [("SH", "SH-001")]
    async with runtime.db.session() as session:
        closed_at = await session.scalar(select(repair_orders.c.closed_at))
    assert closed_at is not None  # a device back within 90 days is a repeat repair


@pytest.mark.service("orders")
async def test_a_stale_version_is_refused_and_another_store_sees_nothing(runtime: Runtime) -> None:
    desk = Desk(runtime, inventory(0))
    order = await desk.intake()
    await desk.step(TECH, order, "diagnosis", diagnosis=DIAGNOSIS)
    with pytest.raises(PreconditionFailed):
        await desk.step(TECH, order, "diagnosis", diagnosis=DIAGNOSIS)
    with pytest.raises(NotFound):
        await desk.step(OTHER_CLERK, order, "cancel", cancel=orders_pb2.CancelRequest(reason="x"))
    fresh = await desk.get(order.id)
    with pytest.raises(Forbidden):
        await desk.step(CLERK, fresh, "repair/start")
    with pytest.raises(Conflict, match="the order is diagnosed"):
        await desk.step(TECH, fresh, "repair/start")


@pytest.mark.service("orders")
async def test_two_concurrent_steps_on_one_order_one_wins(runtime: Runtime) -> None:
    desk = Desk(runtime, inventory(5))
    order = await to_quoted(desk)
    results = await asyncio.gather(
        desk.step(CLERK, order, "approval", decision=yes()),
        desk.step(CLERK, order, "cancel", cancel=orders_pb2.CancelRequest(reason="changed mind")),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, orders_pb2.RepairOrder)]
    lost = [r for r in results if isinstance(r, DomainError)]
    assert len(won) == 1 and len(lost) == 1
    assert isinstance(lost[0], PreconditionFailed | Conflict)
    final = await desk.get(order.id)
    assert final.version == order.version + 1
    assert final.status == won[0].status


def someone_else_changes(runtime: Runtime, order_id: str) -> Callable[[], Awaitable[None]]:
    """Another user's step, written while ours is with inventory."""

    async def change() -> None:
        async with runtime.db.session() as session:
            await session.execute(
                update(repair_orders)
                .where(repair_orders.c.id == order_id)
                .values(version=repair_orders.c.version + 1)
            )
            await session.commit()

    return change


@pytest.mark.service("orders")
async def test_a_reservation_whose_write_fails_is_released(runtime: Runtime) -> None:
    parts = inventory(2)
    desk = Desk(runtime, parts)
    order = await to_quoted(desk)

    parts.meanwhile["reserve"] = someone_else_changes(runtime, order.id)
    with pytest.raises(PreconditionFailed):
        await desk.step(CLERK, order, "approval", decision=yes())
    assert [call[0] for call in parts.calls][-2:] == ["reserve", "release"]
    assert parts.stock[SCREEN] == 2 and not parts.reserved
    assert (await desk.get(order.id)).status == "awaiting_approval"


@pytest.mark.service("orders")
async def test_a_shortage_waits_for_parts_and_a_cancel_releases_them(runtime: Runtime) -> None:
    parts = inventory(0)
    desk = Desk(runtime, parts)
    order = await to_quoted(desk)
    order = await desk.step(CLERK, order, "approval", decision=yes())
    assert order.status == "waiting_parts"
    assert (order.lines[0].reserved, order.lines[0].short) == (0, 1)
    async with runtime.db.session() as session:
        last = select(outbox.c.subject, outbox.c.payload).order_by(outbox.c.seq.desc()).limit(1)
        subject, payload = (await session.execute(last)).one()
    assert subject == "orders.v1.SH.SH-001.order_waiting_parts"
    waiting = OrderStatusChanged.FromString(payload)
    assert waiting.warehouse_id == "WH-SH-001"
    assert [(p.line_id, p.part_id, p.quantity) for p in waiting.short_parts] == [("L1", SCREEN, 1)]
    parts.stock[SCREEN] = 1  # a transfer came in
    order = await desk.step(TECH, order, "parts")
    assert order.status == "approved" and order.lines[0].reserved == 1
    assert [(e.step, e.status) for e in order.timeline][-3:] == [
        ("quote", "awaiting_approval"),
        ("approval", "waiting_parts"),  # approved with the reservation short: never `approved`
        ("parts", "approved"),
    ]
    order = await desk.step(
        CLERK, order, "cancel", cancel=orders_pb2.CancelRequest(reason="customer left")
    )
    assert order.status == "cancelled" and order.lines[0].released
    assert parts.calls[-1] == ("release", order.id, ["L1"])
    assert parts.stock[SCREEN] == 1


@pytest.mark.service("orders")
async def test_a_declined_quote_ends_the_order(runtime: Runtime) -> None:
    desk = Desk(runtime, inventory(0))
    order = await to_quoted(desk, total=150_000)
    assert order.quote.manager_approval_required
    decline = orders_pb2.Decision(accepted=False, note="too dear")
    order = await desk.step(CLERK, order, "approval", decision=decline)
    assert order.status == "declined"
    listed = await desk.as_(
        CLERK,
        desk.service.ListRepairOrders,
        orders_pb2.ListRepairOrdersRequest(status="declined"),
    )
    assert [o.id for o in listed.orders] == [order.id]  # type: ignore[attr-defined]


@pytest.mark.service("orders")
async def test_a_cancel_whose_write_fails_reserves_its_parts_again(runtime: Runtime) -> None:
    parts = inventory(1)
    desk = Desk(runtime, parts)
    order = await desk.step(CLERK, await to_quoted(desk), "approval", decision=yes())
    parts.meanwhile["release"] = someone_else_changes(runtime, order.id)
    with pytest.raises(PreconditionFailed):
        await desk.step(CLERK, order, "cancel", cancel=orders_pb2.CancelRequest(reason="left"))
    assert [call[0] for call in parts.calls][-2:] == ["release", "reserve"]
    assert parts.reserved == {(order.id, "L1"): 1} and parts.stock[SCREEN] == 0
    assert (await desk.get(order.id)).lines[0].reserved == 1


@pytest.mark.service("orders")
async def test_an_issue_whose_write_fails_is_found_issued_when_the_step_is_taken_again(
    runtime: Runtime,
) -> None:
    parts = inventory(1)
    desk = Desk(runtime, parts)
    order = await desk.step(CLERK, await to_quoted(desk), "approval", decision=yes())
    parts.meanwhile["issue"] = someone_else_changes(runtime, order.id)
    with pytest.raises(PreconditionFailed):
        await desk.step(TECH, order, "repair/start")
    assert parts.issued[(order.id, "L1")] == 1
    order = await desk.step(TECH, await desk.get(order.id), "repair/start")
    assert order.status == "in_repair" and order.lines[0].issued == 1
    assert parts.issued[(order.id, "L1")] == 1 and parts.stock[SCREEN] == 0  # issued once


@pytest.mark.service("orders")
async def test_a_cancel_gives_back_what_a_racing_repair_start_issued(runtime: Runtime) -> None:
    parts = inventory(1)
    desk = Desk(runtime, parts)
    order = await desk.step(CLERK, await to_quoted(desk), "approval", decision=yes())
    await parts.issue(order.id, ["L1"])  # a repair start that issued, then lost the race
    order = await desk.step(CLERK, order, "cancel", cancel=orders_pb2.CancelRequest(reason="left"))
    assert order.status == "cancelled"
    assert parts.calls[-1] == ("give_back", order.id, {"L1": 1})
    assert parts.stock[SCREEN] == 1 and parts.issued[(order.id, "L1")] == 0


@pytest.mark.service("orders")
async def test_an_undo_that_fails_is_logged_and_the_step_still_answers_its_own_error(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    parts = inventory(1)
    desk = Desk(runtime, parts)
    order = await to_quoted(desk)
    parts.meanwhile["reserve"] = someone_else_changes(runtime, order.id)

    async def inventory_down(order_id: str, line_ids: object, attempt: object = None) -> None:
        raise ServiceUnavailable("inventory unavailable")

    parts.release = inventory_down  # type: ignore[method-assign]
    with pytest.raises(PreconditionFailed):
        await desk.step(CLERK, order, "approval", decision=yes())
    assert f"could not undo inventory's side of approval on order {order.id}" in caplog.text
