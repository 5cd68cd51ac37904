"""Order events as the orders service announces them, and publishing them to JetStream the way
its outbox relay does (message id and event type in the headers)."""

from __future__ import annotations

import uuid
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.api import PubAck

from aftersales.events.v1 import events_pb2
from servicekit import bus
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER, fill_meta
from servicekit.timeutil import to_timestamp


def order_received(
    branch_id: str, store_id: str, received_at: datetime, service_type: str = "repair"
) -> events_pb2.OrderReceived:
    event = events_pb2.OrderReceived(
        order_id=str(uuid.uuid4()),
        number=f"{store_id}-{received_at:%Y%m%d}-0001",
        service_type=service_type,
        warranty_status="in_warranty",
        received_at=to_timestamp(received_at),
    )
    fill_meta(event.meta, branch_id, store_id)
    return event


async def publish(js: JetStreamContext, event: events_pb2.OrderReceived) -> PubAck:
    meta = event.meta
    return await js.publish(
        bus.subject("orders", meta.branch_id, meta.store_id, "order_received"),
        event.SerializeToString(),
        headers={
            MSG_ID_HEADER: meta.event_id,
            EVENT_TYPE_HEADER: events_pb2.OrderReceived.DESCRIPTOR.full_name,
        },
    )
