"""Personal data in orders against a real database and a real NATS server: OrderReceived
carries the customer's name and phone sealed with their data key only, and a CustomerErased
from customers leaves the customer's orders without them (found neither by id nor by phone)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from aftersales.events.v1 import customer_events_pb2, events_pb2
from aftersales.orders.v1 import orders_pb2
from servicekit.auth import AuthContext
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER, fill_meta
from servicekit.personal_data import PersonalDataKeys
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, acting_as, eventually, service_settings
from services.orders import erasure, handlers
from services.orders.adapters import repository
from services.orders.adapters.orm import outbox, repair_orders
from services.orders.domain.intake import IntakeForm
from services.orders.grpc_api import OrdersService
from services.orders.service import SPEC
from services.orders.tests.fake_parts import FakeParts

pytestmark = pytest.mark.service("orders")

CLERK = AuthContext("u-clerk", "clerk", "SH", "SH-001")
NAME = "王小明"


def new_phone() -> str:
    # The NATS server (and its key bucket) lives for the whole session: a phone per test.
    return "137" + "".join(secrets.choice("0123456789") for _ in range(8))


def form(phone: str) -> IntakeForm:
    return IntakeForm(
        customer_name=NAME,
        customer_phone=phone,
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


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    runtime = await open_runtime(
        SPEC, service_settings("orders", db_target, nats_server.url, demo_data=True)
    )
    yield runtime
    await close_runtime(runtime)


async def take_in(runtime: Runtime, keys: PersonalDataKeys, phone: str) -> str:
    order = await handlers.create_repair_order(
        runtime.uow,
        repository.BaseDataCache(),
        CLERK,
        form(phone),
        "SH",
        "SH-001",
        None,
        personal_keys=keys,
    )
    return order.id


async def test_order_received_carries_the_name_and_phone_sealed_only(runtime: Runtime) -> None:
    keys = PersonalDataKeys(runtime.js)
    phone = new_phone()
    first = await take_in(runtime, keys, phone)
    second = await take_in(runtime, keys, phone)

    async with runtime.db.session() as session:
        payloads = (await session.scalars(select(outbox.c.payload))).all()
    assert len(payloads) == 2
    for payload in payloads:
        assert phone.encode() not in payload
        assert NAME.encode() not in payload
    events = {e.order_id: e for e in map(events_pb2.OrderReceived.FromString, payloads)}
    # One customer, one key: both orders name it, and it opens each order's own snapshot.
    assert events[first].customer.key_id == events[second].customer.key_id
    key = await keys.key_by_id(events[first].customer.key_id)
    for order_id, event in events.items():
        person = events_pb2.PersonalData.FromString(key.open(event.customer.sealed, order_id))
        assert (person.name, person.phone) == (NAME, phone)


async def test_an_erasure_clears_the_orders_by_id_and_by_key(runtime: Runtime) -> None:
    keys = PersonalDataKeys(runtime.js)
    phone, other_phone = new_phone(), new_phone()
    known = await take_in(runtime, keys, phone)
    # Taken in just before the erasure: customers had not heard of it yet.
    unheard_of = await take_in(runtime, keys, phone)
    someone_else = await take_in(runtime, keys, other_phone)
    key = await keys.key_for_phone(phone)

    tag = uuid.uuid4().hex[:8]
    consumer = erasure.erasures_consumer(
        runtime, name=f"{erasure.ERASURES_CONSUMER}-{tag}", subject=f"customers.v1.T{tag}.*.*"
    )
    event = customer_events_pb2.CustomerErased(
        customer_id="c-1", order_ids=[known], key_ids=[key.key_id]
    )
    fill_meta(event.meta, f"T{tag}", "_")
    task = asyncio.create_task(consumer.run(runtime.js))
    try:
        await runtime.js.publish(
            f"customers.v1.T{tag}._.customer_erased",
            event.SerializeToString(),
            headers={
                MSG_ID_HEADER: event.meta.event_id,
                EVENT_TYPE_HEADER: customer_events_pb2.CustomerErased.DESCRIPTOR.full_name,
            },
        )

        async def cleared() -> bool:
            async with runtime.db.session() as session:
                rows = await session.execute(
                    select(repair_orders.c.customer_phone).where(
                        repair_orders.c.id.in_([known, unheard_of])
                    )
                )
                return all(phone == "" for (phone,) in rows)

        await eventually(cleared)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 10)
        with contextlib.suppress(Exception):
            await runtime.js.delete_consumer(erasure.CUSTOMERS_STREAM, consumer.name)

    service = OrdersService(runtime.uow, FakeParts(), keys)
    with acting_as(CLERK):
        for order_id in (known, unheard_of):
            answer = await service.GetRepairOrder(
                orders_pb2.GetRepairOrderRequest(id=order_id),
                None,  # type: ignore[arg-type]
            )
            assert (answer.customer.name, answer.customer.phone) == (erasure.ERASED_NAME, "")
        kept = await service.GetRepairOrder(
            orders_pb2.GetRepairOrderRequest(id=someone_else),
            None,  # type: ignore[arg-type]
        )
        assert (kept.customer.name, kept.customer.phone) == (NAME, other_phone)
    where = handlers.order_filter(CLERK, "", "", "", "", "", phone, "", "")
    found, _ = await handlers.list_repair_orders(runtime.uow, where, 20, "")
    assert found == []
