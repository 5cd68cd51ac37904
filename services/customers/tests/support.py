"""Helpers of the customers tests: a lane of the shared ORDERS stream, OrderReceived events as
the orders service announces them, a consumer running in the background, a signed-in caller."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from aftersales.events.v1 import events_pb2
from servicekit.inbox import EventConsumer
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER, fill_meta
from servicekit.personal_data import DataKey, InMemoryKeys
from servicekit.runtime import Runtime
from servicekit.timeutil import to_timestamp, utc_now

PHONE = "13812345678"
OTHER_PHONE = "13987654321"
IMEI = "490154203237518"


@dataclass
class Lane:
    """A branch of our own on the shared ORDERS stream, and a durable consumer that sees only
    it: the NATS server lives for the whole test session and other tests publish there too."""

    branch_id: str
    store_id: str
    consumer: EventConsumer
    # The data keys the lane's events are sealed with, as orders seals them.
    keys: InMemoryKeys

    @property
    def subject(self) -> str:
        return f"orders.v1.{self.branch_id}.{self.store_id}.order_received"


def order_received(
    lane: Lane,
    order_id: str | None = None,
    name: str = "张三",
    phone: str = PHONE,
    imei: str = IMEI,
    received_at: datetime | None = None,
) -> events_pb2.OrderReceived:
    order_id = order_id or str(uuid.uuid4())
    event = events_pb2.OrderReceived(
        order_id=order_id,
        number=f"{lane.store_id}-261123-{order_id[:4]}",
        service_type="repair",
        warranty_status="out_of_warranty",
        customer=sealed_customer(lane.keys.key_for(phone), order_id, name, phone),
        device=events_pb2.DeviceSnapshot(imei=imei, brand="huawei", model="p60", colour="black"),
        received_at=to_timestamp(received_at or utc_now()),
    )
    fill_meta(event.meta, lane.branch_id, lane.store_id)
    return event


def sealed_customer(
    key: DataKey, order_id: str, name: str, phone: str
) -> events_pb2.CustomerSnapshot:
    person = events_pb2.PersonalData(name=name, phone=phone)
    return events_pb2.CustomerSnapshot(
        key_id=key.key_id, sealed=key.seal(person.SerializeToString(), order_id)
    )


async def publish(runtime: Runtime, lane: Lane, event: events_pb2.OrderReceived) -> None:
    """As the orders outbox relay does: the event id is the message id."""
    await publish_raw(runtime, lane, event.SerializeToString(), event.meta.event_id)


async def publish_raw(runtime: Runtime, lane: Lane, payload: bytes, event_id: str) -> None:
    await runtime.js.publish(
        lane.subject,
        payload,
        headers={
            MSG_ID_HEADER: event_id,
            EVENT_TYPE_HEADER: events_pb2.OrderReceived.DESCRIPTOR.full_name,
        },
    )


@contextlib.asynccontextmanager
async def consuming(runtime: Runtime, consumer: EventConsumer) -> AsyncIterator[None]:
    """The consumer runs as it does in the service, and stops (finishing its message) after."""
    task = asyncio.create_task(consumer.run(runtime.js))
    try:
        yield
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 10)
