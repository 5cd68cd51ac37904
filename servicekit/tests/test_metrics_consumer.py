"""What a consumer tells /metrics, against a real database and NATS: how far behind its stream
it is, and the messages it was given again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from aftersales.events.v1 import events_pb2
from servicekit import bus
from servicekit.db import Database, new_metadata
from servicekit.inbox import EventConsumer, inbox_table
from servicekit.outbox import fill_meta, outbox_table
from servicekit.testing import DatabaseTarget, database_with, eventually
from servicekit.uow import UnitOfWork

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
RECEIVED = events_pb2.OrderReceived.DESCRIPTOR.full_name


@pytest.fixture
async def db(db_target: DatabaseTarget) -> AsyncIterator[Database]:
    async with database_with(db_target, metadata) as database:
        yield database


async def test_pending_messages_and_redeliveries(db: Database, js: bus.JetStreamContext) -> None:
    handled: list[str] = []

    async def on_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        handled.append(event.order_id)

    store = uuid.uuid4().hex[:8]
    subject = f"orders.v1.T.{store}.order_received"
    name = f"metrics-{store}"
    consumer = EventConsumer(
        service="t",
        name=name,
        stream="ORDERS",
        subjects=[subject],
        handlers={RECEIVED: (events_pb2.OrderReceived, on_received)},
        new_uow=lambda: UnitOfWork(db, outbox, lambda: None),
        inbox=inbox,
        js=js,
    )
    await consumer.set_up(js)
    for _ in range(3):
        event = events_pb2.OrderReceived(order_id=str(uuid.uuid4()), number="n")
        fill_meta(event.meta, "T", store)
        await js.publish(
            subject,
            event.SerializeToString(),
            headers={"Nats-Msg-Id": event.meta.event_id, "Event-Type": RECEIVED},
        )
    labels = {"service": "t", "consumer": name}
    await consumer._sample(js)
    assert REGISTRY.get_sample_value("aftersales_consumer_pending_messages", labels) == 3

    sub = await js.pull_subscribe_bind(durable=name, stream="ORDERS")
    [first] = await sub.fetch(1, timeout=5)
    await first.nak()
    fetched = await sub.fetch(2, timeout=5)
    fetched += await sub.fetch(1, timeout=5)
    (again,) = [m for m in fetched if m.metadata.num_delivered == 2]
    await consumer.handle(again)
    await sub.unsubscribe()
    assert len(handled) == 1
    assert REGISTRY.get_sample_value("aftersales_consumer_redeliveries_total", labels) == 1

    async def settled() -> bool:
        # The server takes an ack a moment after it is sent.
        consumer._last_sample = None
        await consumer._sample(js)
        unacked = REGISTRY.get_sample_value("aftersales_consumer_ack_pending_messages", labels)
        return unacked == 2

    await eventually(settled, within=5)
    # All three delivered now, two of them not acknowledged yet.
    assert REGISTRY.get_sample_value("aftersales_consumer_pending_messages", labels) == 0
