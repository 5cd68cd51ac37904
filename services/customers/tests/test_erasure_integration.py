"""Erasure as crypto-shredding, on a real database and a real NATS server: the data keys of
every order of the customer (a merged record's and an old phone's included) are destroyed, so
the events that carried their name and phone no longer open; CustomerErased tells orders which
orders and keys; a late OrderReceived of the erased customer records nobody."""

from __future__ import annotations

import secrets
import uuid

import pytest
from sqlalchemy import select

from aftersales.events.v1 import customer_events_pb2, events_pb2, order_events_pb2
from servicekit.auth import AuthContext
from servicekit.errors import NotFound
from servicekit.inbox import UnprocessableEvent
from servicekit.outbox import fill_meta
from servicekit.personal_data import KeyShredded, PersonalDataKeys
from servicekit.runtime import Runtime
from services.customers import handlers
from services.customers.adapters import repository
from services.customers.adapters.orm import outbox
from services.customers.tests.support import Lane, order_received, sealed_customer

pytestmark = pytest.mark.service("customers")

HQ = AuthContext("u-hq", "hq_admin")


def new_phone() -> str:
    # The NATS server (and its key bucket) lives for the whole session: phones per test.
    return "136" + "".join(secrets.choice("0123456789") for _ in range(8))


async def sealed_order(
    keys: PersonalDataKeys, lane: Lane, name: str, phone: str, imei: str = "490154203237518"
) -> events_pb2.OrderReceived:
    """As orders announces an intake: the name and phone sealed with the phone's key."""
    event = order_received(lane, name=name, phone=phone, imei=imei)
    key = await keys.key_for_phone(phone)
    event.customer.CopyFrom(sealed_customer(key, event.order_id, name, phone))
    return event


def closed(lane: Lane, order_id: str) -> order_events_pb2.OrderStatusChanged:
    event = order_events_pb2.OrderStatusChanged(
        order_id=order_id, number="SH-1", step="pickup", to_status="closed", version=9
    )
    fill_meta(event.meta, lane.branch_id, lane.store_id)
    return event


async def test_erasure_destroys_the_keys_of_every_order_and_tells_orders(
    runtime: Runtime, lane: Lane
) -> None:
    keys = PersonalDataKeys(runtime.js)
    phone, old_phone = new_phone(), new_phone()
    first = await sealed_order(keys, lane, "赵六", old_phone)
    second = await sealed_order(keys, lane, "赵六", phone, imei="356938035643809")
    async with runtime.uow() as uow:
        for event in (first, second):
            await handlers.record_order_received(uow, event, keys)
            await handlers.record_order_status(uow, closed(lane, event.order_id), 3)
        await uow.commit()
    kept = (await handlers.find_customer(runtime.uow, phone, "")).customer
    other = (await handlers.find_customer(runtime.uow, old_phone, "")).customer
    async with runtime.uow() as uow:
        await repository.merge_into(uow.session, kept.id, other.id)
        await uow.commit()

    await handlers.erase_customer(runtime.uow, HQ, kept.id, "request #7", keys)

    key_ids = sorted({first.customer.key_id, second.customer.key_id})
    for key_id in key_ids:
        with pytest.raises(KeyShredded):
            await keys.key_by_id(key_id)
    async with runtime.db.session() as session:
        rows = (await session.execute(select(outbox.c.subject, outbox.c.payload))).all()
    [(subject, payload)] = [r for r in rows if r.subject.endswith(".customer_erased")]
    assert subject == "customers.v1._._.customer_erased"
    erased = customer_events_pb2.CustomerErased.FromString(payload)
    assert erased.customer_id == kept.id
    assert sorted(erased.order_ids) == sorted([first.order_id, second.order_id])
    assert sorted(erased.key_ids) == key_ids
    # Both phones, taken in again, are new customers with new keys.
    assert (await keys.key_for_phone(phone)).key_id not in key_ids
    assert (await keys.key_for_phone(old_phone)).key_id not in key_ids


async def test_an_order_of_an_erased_customer_arriving_late_records_nobody(
    runtime: Runtime, lane: Lane
) -> None:
    keys = PersonalDataKeys(runtime.js)
    phone = new_phone()
    late = await sealed_order(keys, lane, "钱七", phone)
    await keys.shred([late.customer.key_id])

    async with runtime.uow() as uow:
        await handlers.record_order_received(uow, late, keys)
        await uow.commit()

    with pytest.raises(NotFound):
        await handlers.find_customer(runtime.uow, phone, "")


async def test_a_sealed_snapshot_that_does_not_open_is_refused(
    runtime: Runtime, lane: Lane
) -> None:
    keys = PersonalDataKeys(runtime.js)
    event = await sealed_order(keys, lane, "孙八", new_phone())
    event.order_id = str(uuid.uuid4())  # sealed for another order
    async with runtime.uow() as uow:
        with pytest.raises(UnprocessableEvent):
            await handlers.record_order_received(uow, event, keys)


async def test_an_event_naming_no_key_is_refused(runtime: Runtime, lane: Lane) -> None:
    """An OrderReceived from before sealing (name and phone in fields now reserved) or a forged
    one goes to the dead letters, where an operator sees it, instead of vanishing."""
    event = await sealed_order(PersonalDataKeys(runtime.js), lane, "孙八", new_phone())
    event.customer.key_id = ""
    async with runtime.uow() as uow:
        with pytest.raises(UnprocessableEvent):
            await handlers.record_order_received(uow, event, PersonalDataKeys(runtime.js))
