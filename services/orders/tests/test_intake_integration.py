"""Intake against a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL) and a real
NATS server: the order is stored, numbered, announced once, and a retry changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from aftersales.events.v1 import events_pb2
from servicekit.auth import AuthContext
from servicekit.errors import InvalidInput, NotFound
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.orders import handlers
from services.orders.adapters import repository
from services.orders.adapters.orm import outbox, repair_orders
from services.orders.domain.intake import IntakeForm
from services.orders.service import SPEC

CLERK = AuthContext("u-clerk", "clerk", "SH", "SH-001")
BASE = repository.BaseDataCache()


def form(**changes: str) -> IntakeForm:
    values = dict(
        customer_name="张三",
        customer_phone="13812345678",
        imei="490154203237518",
        brand="huawei",
        model="p60",
        colour="black",
        purchase_date="",
        fault_description="screen cracked",
        symptom_code="",
        service_type="repair",
        accessories="",
        appearance="",
        promised_date="",
    )
    values.update(changes)
    return IntakeForm(**values)


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("orders", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


@pytest.mark.service("orders")
async def test_intake_stores_numbers_and_announces_once(runtime: Runtime) -> None:
    order = await handlers.create_repair_order(
        runtime.uow, BASE, CLERK, form(), "SH", "SH-001", request_id="u-clerk:key-1"
    )
    again = await handlers.create_repair_order(
        runtime.uow, BASE, CLERK, form(), "SH", "SH-001", request_id="u-clerk:key-1"
    )
    assert again.id == order.id
    assert order.status == "received"
    assert order.number.startswith("SH-001-")
    assert order.brand_authorised is True

    async with runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(repair_orders)) == 1
        assert await session.scalar(select(func.count()).select_from(outbox)) == 1

    sub = await runtime.js.pull_subscribe(
        "orders.v1.SH.SH-001.order_received", durable=None, stream="ORDERS"
    )
    assert await runtime.relay.publish_pending() == 1
    messages = await sub.fetch(10, timeout=5)
    received = [events_pb2.OrderReceived.FromString(m.data) for m in messages]
    assert order.id in [e.order_id for e in received]
    mine = next(e for e in received if e.order_id == order.id)
    assert (mine.meta.branch_id, mine.meta.store_id) == ("SH", "SH-001")
    assert messages[0].headers["Nats-Msg-Id"]
    # Everything committed is published; nothing is left pending.
    assert await runtime.relay.pending() == 0


@pytest.mark.service("orders")
async def test_bad_intake_changes_nothing(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput) as caught:
        await handlers.create_repair_order(
            runtime.uow,
            BASE,
            CLERK,
            form(imei="490154203237519", brand="nokia"),
            "SH",
            "SH-001",
            None,
        )
    assert {e.field for e in caught.value.errors} == {"device.imei", "device.brand"}
    async with runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(repair_orders)) == 0
        assert await session.scalar(select(func.count()).select_from(outbox)) == 0


@pytest.mark.service("orders")
async def test_other_store_cannot_read_the_order(runtime: Runtime) -> None:
    order = await handlers.create_repair_order(
        runtime.uow, BASE, CLERK, form(), "SH", "SH-001", None
    )
    other_store = AuthContext("u2", "clerk", "SH", "SH-002")
    other_branch = AuthContext("u3", "branch_manager", "ZJ")
    for outsider in (other_store, other_branch):
        with pytest.raises(NotFound):
            await handlers.get_repair_order(runtime.uow, outsider, order.id)
    manager = AuthContext("u4", "branch_manager", "SH")
    assert (await handlers.get_repair_order(runtime.uow, manager, order.id)).id == order.id


@pytest.mark.service("orders")
async def test_concurrent_intake_numbers_are_unique(runtime: Runtime) -> None:
    created = await asyncio.gather(
        *(
            handlers.create_repair_order(runtime.uow, BASE, CLERK, form(), "SH", "SH-001", None)
            for _ in range(10)
        )
    )
    assert len({o.number for o in created}) == 10


@pytest.mark.service("orders")
async def test_listing_pages_through_every_order_once(runtime: Runtime) -> None:
    for _ in range(5):
        await handlers.create_repair_order(runtime.uow, BASE, CLERK, form(), "SH", "SH-001", None)
    where = handlers.order_filter(CLERK, "", "", "", "", "", "", "", "")
    seen: list[str] = []
    token = ""
    while True:
        page, token = await handlers.list_repair_orders(runtime.uow, where, 2, token)
        seen += [o.id for o in page]
        if not token:
            break
    assert len(seen) == len(set(seen)) == 5
    with pytest.raises(NotFound):
        handlers.order_filter(CLERK, "", "SH-002", "", "", "", "", "", "")
