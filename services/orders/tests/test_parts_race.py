"""The parts side of a step against the real inventory (its gRPC service in this process, each
service on its own database: SQLite, or PostgreSQL with TEST_DATABASE_URL): two tries of one
step at once leave the order's holds equal to inventory's, an attempt never written is let go
once its grace runs out, and a swap issues its unit from swap stock with a ledger row."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from aftersales.events.v1.order_events_pb2 import OrderStatusChanged
from aftersales.orders.v1 import orders_pb2
from servicekit.auth import AuthContext, reset_auth, set_auth
from servicekit.errors import InvalidInput, PreconditionFailed, ServiceUnavailable
from servicekit.personal_data import InMemoryKeys
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import (
    DatabaseTarget,
    NatsServer,
    database_target,
    drop_schema,
    service_settings,
    serving,
)
from servicekit.timeutil import utc_now
from services.inventory import service as inventory_service
from services.inventory.adapters.orm import serial_items, stock_movements
from services.inventory.adapters.repository import holds as held_by
from services.inventory.domain.holds import EVENT_SETTLE
from services.inventory.handlers import holds, work_order_parts
from services.orders import handlers
from services.orders.adapters import repository
from services.orders.adapters.inventory import Held, InventoryParts, StepAttempt
from services.orders.adapters.orm import outbox
from services.orders.domain.order import PartLine
from services.orders.grpc_api import OrdersService
from services.orders.service import SPEC
from services.orders.tests.test_intake_integration import form

CLERK = AuthContext("u-clerk", "clerk", "SH", "SH-001")
TECH = AuthContext("u-tech", "technician", "SH", "SH-001")
SCREEN = "HW-SCR-P60"  # in the demo stock of WH-SH-001
SWAP_UNIT, SWAP_IMEI = "HW-SWAP-P60", "352847060000013"  # a demo swap unit of WH-SH-001
GRACE = timedelta(minutes=10)
ROUNDS = 100


@dataclass
class Services:
    orders: Runtime
    inventory: Runtime
    channel: grpc.aio.Channel


@pytest.fixture
async def services(
    db_target: DatabaseTarget, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[Services]:
    inventory_target = database_target("inventory", tmp_path)
    orders = await open_runtime(
        SPEC, service_settings("orders", db_target, nats_server.url, demo_data=True)
    )
    inventory = await open_runtime(
        inventory_service.SPEC,
        service_settings("inventory", inventory_target, nats_server.url, demo_data=True),
    )
    try:
        async with serving(inventory_service.SPEC, inventory) as channel:
            yield Services(orders, inventory, channel)
    finally:
        await close_runtime(inventory)
        await close_runtime(orders)
        await drop_schema(inventory_target)


class Gated(InventoryParts):
    """Inventory, with both tries of a step let through its reservation before either goes on
    to write (so the race happens every round), then resumed in a shuffled order."""

    def __init__(self, channel: grpc.aio.Channel, rng: random.Random) -> None:
        super().__init__(channel)
        self.rng = rng
        self.gate: asyncio.Barrier | None = None

    async def reserve(
        self,
        order_id: str,
        warehouse_id: str,
        lines: Sequence[PartLine],
        attempt: StepAttempt | None = None,
    ) -> dict[str, Held]:
        held = await super().reserve(order_id, warehouse_id, lines, attempt)
        if self.gate is not None and attempt is not None:
            await self.gate.wait()
            for _ in range(self.rng.randrange(4)):
                await asyncio.sleep(0)
        return held


class Desk:
    def __init__(self, runtime: Runtime, parts: InventoryParts) -> None:
        self.service = OrdersService(runtime.uow, parts, InMemoryKeys())
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
            personal_keys=InMemoryKeys(),
        )
        return await self.get(order.id)

    async def get(self, order_id: str) -> orders_pb2.RepairOrder:
        request = orders_pb2.GetRepairOrderRequest(id=order_id)
        return await self.as_(CLERK, self.service.GetRepairOrder, request)

    async def step(
        self, who: AuthContext, order: orders_pb2.RepairOrder, step: str, **data: Any
    ) -> orders_pb2.RepairOrder:
        request = orders_pb2.TakeStepRequest(
            order_id=order.id, expected_version=order.version, step=step, **data
        )
        return await self.as_(who, self.service.TakeStep, request)

    @staticmethod
    async def as_(
        who: AuthContext, method: Callable[..., Awaitable[Any]], request: object
    ) -> orders_pb2.RepairOrder:
        token = set_auth(who)
        try:
            found: orders_pb2.RepairOrder = await method(request, None)
            return found
        finally:
            reset_auth(token)


def yes() -> orders_pb2.Decision:
    return orders_pb2.Decision(accepted=True)


async def quoted(desk: Desk, part: str = SCREEN) -> orders_pb2.RepairOrder:
    order = await desk.intake()
    plan = orders_pb2.Diagnosis(
        fault_code="F-LCD",
        actions=["replace_screen"],
        parts=[orders_pb2.PlannedPart(part_id=part, quantity=1)],
        repair_level="L2",
    )
    order = await desk.step(TECH, order, "diagnosis", diagnosis=plan)
    quote = orders_pb2.QuoteRequest(labour_fen=10_000)
    return await desk.step(CLERK, order, "quote", quote=quote)


async def inventory_holds(services: Services, order_id: str) -> dict[str, int]:
    token = set_auth(CLERK)
    try:
        found = await work_order_parts.get_order_parts(services.inventory.uow, CLERK, order_id)
    finally:
        reset_auth(token)
    return {x.line_id: x.reserved for x in found.lines}


def order_holds(order: orders_pb2.RepairOrder) -> dict[str, int]:
    return {x.line_id: x.reserved for x in order.lines}


async def last_event(runtime: Runtime) -> OrderStatusChanged:
    async with runtime.db.session() as session:
        payload = await session.scalar(select(outbox.c.payload).order_by(outbox.c.seq.desc()))
    return OrderStatusChanged.FromString(payload)


async def hear(services: Services, event: OrderStatusChanged) -> None:
    """Inventory's consumer taking the order's event."""
    async with services.inventory.uow() as uow:
        await holds.order_moved(uow, event)
        await uow.commit()


def other_order_moved(created_at: datetime) -> OrderStatusChanged:
    """An event of an order holding no parts, created at `created_at`."""
    event = OrderStatusChanged(order_id="o-other", version=2, to_status="diagnosed")
    event.meta.occurred_at.FromDatetime(created_at)
    return event


@pytest.mark.service("orders")
async def test_the_same_approval_twice_at_once_leaves_the_orders_holds_equal_to_inventorys(
    services: Services,
) -> None:
    parts = Gated(services.channel, random.Random(11))
    desk = Desk(services.orders, parts)
    for round_ in range(ROUNDS):
        order = await quoted(desk)
        parts.gate = asyncio.Barrier(2)
        answers = await asyncio.gather(
            desk.step(CLERK, order, "approval", decision=yes()),
            desk.step(CLERK, order, "approval", decision=yes()),
            return_exceptions=True,
        )
        parts.gate = None
        lost = [x for x in answers if isinstance(x, BaseException)]
        assert len(lost) == 1 and isinstance(lost[0], PreconditionFailed), (round_, answers)
        written = await desk.get(order.id)
        assert written.status == "approved", round_
        assert order_holds(written) == {"L1": 1} == await inventory_holds(services, order.id), (
            round_
        )
        # Inventory hears which attempt was written: the winner's hold stays.
        await hear(services, await last_event(services.orders))
        assert await inventory_holds(services, order.id) == {"L1": 1}, round_
        cancel = orders_pb2.CancelRequest(reason="the customer changed their mind")
        cancelled = await desk.step(CLERK, written, "cancel", cancel=cancel)
        assert order_holds(cancelled) == {"L1": 0} == await inventory_holds(services, order.id)


class DiesAfterReserving(InventoryParts):
    """Orders dying between inventory's reservation and its own commit: after the reservation
    nothing of the step reaches anyone (no write, no undo)."""

    async def reserve(
        self,
        order_id: str,
        warehouse_id: str,
        lines: Sequence[PartLine],
        attempt: StepAttempt | None = None,
    ) -> dict[str, Held]:
        await super().reserve(order_id, warehouse_id, lines, attempt)
        self.release = self._gone  # type: ignore[method-assign]
        raise ServiceUnavailable("orders died")

    async def _gone(self, *_: object) -> dict[str, int]:
        raise ServiceUnavailable("orders died")


@pytest.mark.service("orders")
async def test_a_hold_whose_step_was_never_written_is_let_go_within_the_grace(
    services: Services,
) -> None:
    desk = Desk(services.orders, InventoryParts(services.channel))
    order = await quoted(desk)
    dying = Desk(services.orders, DiesAfterReserving(services.channel))
    with pytest.raises(ServiceUnavailable):
        await dying.step(CLERK, order, "approval", decision=yes())
    assert (await desk.get(order.id)).status == "awaiting_approval"
    assert await inventory_holds(services, order.id) == {"L1": 1}  # leaked, for now
    async with services.inventory.uow() as uow:
        [claim] = await held_by.claims_of(uow.session, order.id)
    assert (claim.order_version, claim.committed) == (order.version + 1, False)
    new_uow = services.inventory.uow

    # Orders' events, of another order, flow past the claim: within the grace, nothing goes.
    await hear(services, other_order_moved(claim.claimed_at + GRACE - timedelta(seconds=1)))
    settled = utc_now() + EVENT_SETTLE  # the keeper's round once what was heard settled
    assert await holds.loose_holds(new_uow, GRACE, settled) == []
    assert await holds.let_go_stale(new_uow, GRACE, settled) == 0
    assert await inventory_holds(services, order.id) == {"L1": 1}  # still within its grace

    await hear(services, other_order_moved(claim.claimed_at + GRACE))
    settled = utc_now() + EVENT_SETTLE
    [loose] = await holds.loose_holds(new_uow, GRACE, settled)
    assert (loose.line.line_id, loose.reason) == (
        "L1",
        f"attempt never written: {claim.attempt_id}@v{claim.order_version}",
    )
    assert await holds.let_go_stale(new_uow, GRACE, settled) == 1
    assert await inventory_holds(services, order.id) == {"L1": 0}
    # The order, untouched, takes the step again and holds the part.
    approved = await desk.step(CLERK, order, "approval", decision=yes())
    assert order_holds(approved) == {"L1": 1} == await inventory_holds(services, order.id)


@pytest.mark.service("orders")
async def test_a_lost_attempt_is_let_go_when_the_orders_event_names_the_winner(
    services: Services,
) -> None:
    """The loser died before its undo: the winner's event tells inventory at once."""
    desk = Desk(services.orders, InventoryParts(services.channel))
    order = await quoted(desk)
    dying = Desk(services.orders, DiesAfterReserving(services.channel))
    with pytest.raises(ServiceUnavailable):
        await dying.step(CLERK, order, "approval", decision=yes())
    cancel = orders_pb2.CancelRequest(reason="the customer left")
    await desk.step(CLERK, order, "cancel", cancel=cancel)
    # The cancel moved no parts of its own (the order held none): the hold is the dead
    # attempt's, at the version the cancel took.
    assert await inventory_holds(services, order.id) == {"L1": 1}
    event = await last_event(services.orders)
    assert (event.version, event.to_status) == (order.version + 1, "cancelled")
    await hear(services, event)
    assert await inventory_holds(services, order.id) == {"L1": 0}
    async with services.inventory.uow() as uow:
        assert await held_by.claims_of(uow.session, order.id) == []


@pytest.mark.service("orders")
async def test_a_cancelled_orders_holds_are_let_go_when_inventory_hears_of_it(
    services: Services,
) -> None:
    """The cancel's own release failed (only logged): the order's event lets the hold go."""
    desk = Desk(services.orders, InventoryParts(services.channel))
    order = await desk.step(CLERK, await quoted(desk), "approval", decision=yes())
    assert await inventory_holds(services, order.id) == {"L1": 1}
    broken = InventoryParts(services.channel)

    async def release(*_: object) -> dict[str, int]:
        raise ServiceUnavailable("inventory unavailable")

    broken.release = release  # type: ignore[method-assign]
    cancel = orders_pb2.CancelRequest(reason="the customer left")
    with pytest.raises(ServiceUnavailable):
        await Desk(services.orders, broken).step(CLERK, order, "cancel", cancel=cancel)
    order = await desk.step(CLERK, order, "cancel", cancel=cancel)  # inventory back: released
    assert await inventory_holds(services, order.id) == {"L1": 0}


@pytest.mark.service("orders")
async def test_a_swap_issues_the_named_unit_from_swap_stock_with_a_ledger_row(
    services: Services,
) -> None:
    desk = Desk(services.orders, InventoryParts(services.channel))
    order = await desk.intake()
    plan = orders_pb2.Diagnosis(fault_code="F-MB", actions=["swap"], repair_level="L1")
    order = await desk.step(TECH, order, "diagnosis", diagnosis=plan)
    order = await desk.step(CLERK, order, "quote", quote=orders_pb2.QuoteRequest(labour_fen=0))
    order = await desk.step(CLERK, order, "approval", decision=yes())
    with pytest.raises(InvalidInput) as caught:
        await desk.step(CLERK, order, "swap", swap=orders_pb2.SwapRequest(imei=SWAP_IMEI))
    assert [e.field for e in caught.value.errors] == ["part_id"]
    assert (await desk.get(order.id)).status == "approved"

    unit = orders_pb2.SwapRequest(imei=SWAP_IMEI, part_id=SWAP_UNIT)
    order = await desk.step(CLERK, order, "swap", swap=unit)
    [line] = [x for x in order.lines if x.line_id == "S1"]
    assert (line.part_id, line.issued, list(line.serials)) == (SWAP_UNIT, 1, [SWAP_IMEI])
    async with services.inventory.db.session() as session:
        m = stock_movements.c
        ledger = (
            await session.execute(
                select(m.kind, m.quantity, m.serial_number).where(
                    m.document_type == "order", m.document_id == order.id
                )
            )
        ).all()
        s = serial_items.c
        where = (
            await session.execute(
                select(s.state, s.order_id, s.line_id).where(s.serial_number == SWAP_IMEI)
            )
        ).one()
    assert [tuple(x) for x in ledger] == [("issue", -1, SWAP_IMEI)]
    assert tuple(where) == ("consumed", order.id, "S1")
